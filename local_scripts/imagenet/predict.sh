#!/usr/bin/env bash
# Predict every unlabeled shard with the teacher (upstream `imagenet/predict.sh`). Fixed: the original read the
# (empty) predict directory (`--label_data_dir=${data_root}`) instead of the unlabeled shards. SHARDS=0,1,2 limits
# the shards (parallel jobs).
source "$(dirname "$0")/common.sh"
require unlabel_data_dir teacher_model_name teacher_ckpt
"${python_bin}" main.py "${base_flags[@]}" --mode=predict --model_name="${teacher_model_name}" \
  --predict_ckpt_path="${teacher_ckpt}" --worker_id=0 --num_shards="${num_shards}" \
  --shard_id="${SHARDS:-${all_shards}}" --file_prefix=extra --label_data_dir="${unlabel_data_dir}" \
  --data_type=tfrecord --info_dir="${data_root}/info" --output_dir="${data_root}/predict_label"
