#!/usr/bin/env bash
# Re-label the filtered shards (upstream local_scripts/imagenet/reassign.sh): as upstream, with the teacher
# (TEACHER_CKPT, a TEACHER_MODEL_NAME network); REASSIGN_CKPT with REASSIGN_MODEL_NAME names another model, e.g.
# the student in MODEL_DIR. Fixed: the original passed --task_name=svhn here (32x32 input, 10 classes).
source "$(dirname "$0")/common.sh"
reassign_ckpt=${REASSIGN_CKPT:-${teacher_ckpt}}
reassign_model_name=${REASSIGN_MODEL_NAME:-${teacher_model_name}}
require reassign_ckpt reassign_model_name
"${python_bin}" main.py "${base_flags[@]}" --mode=predict --model_name="${reassign_model_name}" \
  --predict_ckpt_path="${reassign_ckpt}" --worker_id=0 --num_shards="${num_shards}" \
  --shard_id="${SHARDS:-${all_shards}}" --file_prefix=train --label_data_dir="${data_root}/filter_data/data" \
  --data_type=tfrecord --info_dir="${data_root}/info" --output_dir="${data_root}/reassign" --reassign_label=True
