#!/usr/bin/env bash
# Step 3 (upstream `svhn/predict.sh`): predict every unlabeled shard with the teacher's EMA weights.
# Fixed: the original passed the (empty) predict directory as --label_data_dir (`${data_root}`); this reads
# the unlabeled shards. All shards run in one process (a comma list of --shard_id); finished shards are skipped.
source "$(dirname "$0")/common.sh"
require_teacher
"${python_bin}" main.py "${base_flags[@]}" --mode=predict --predict_ckpt_path="${teacher_ckpt}" --worker_id=0 \
  --num_shards="${num_shards}" --shard_id="${SHARDS:-${all_shards}}" --file_prefix=extra \
  --label_data_dir="${unlabeled_dir}" --data_type=tfrecord --info_dir="${predict_root}/info" \
  --output_dir="${predict_root}/predict_label"
