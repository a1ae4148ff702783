#!/usr/bin/env bash
# Step 7, optional (spec §2.1, §7): re-label the filtered shards with a better model, record for record.
# REASSIGN_CKPT is that model (default: the student of run.sh); the original pointed at the teacher.
source "$(dirname "$0")/common.sh"
"${python_bin}" main.py "${base_flags[@]}" --mode=predict --predict_ckpt_path="${REASSIGN_CKPT:-${model_dir}}" \
  --worker_id=0 --num_shards="${num_shards}" --shard_id="${SHARDS:-${all_shards}}" --file_prefix=train \
  --label_data_dir="${predict_root}/filter_data/data" --data_type=tfrecord --info_dir="${predict_root}/info" \
  --output_dir="${predict_root}/reassign" --reassign_label=True
