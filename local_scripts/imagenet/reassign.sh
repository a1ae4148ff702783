#!/usr/bin/env bash
# Re-label the filtered shards with a better model (spec §7). Fixed: the original passed --task_name=svhn here
# (32x32 input, 10 classes: spec §11.1 item 4). REASSIGN_CKPT defaults to the student in MODEL_DIR.
source "$(dirname "$0")/common.sh"
require model_name
"${python_bin}" main.py "${base_flags[@]}" --mode=predict --model_name="${model_name}" \
  --predict_ckpt_path="${REASSIGN_CKPT:-${model_dir}}" --worker_id=0 --num_shards="${num_shards}" \
  --shard_id="${SHARDS:-${all_shards}}" --file_prefix=train --label_data_dir="${data_root}/filter_data/data" \
  --data_type=tfrecord --info_dir="${data_root}/info" --output_dir="${data_root}/reassign" --reassign_label=True
