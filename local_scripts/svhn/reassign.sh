#!/usr/bin/env bash
# Step 7, optional (upstream local_scripts/svhn/reassign.sh): re-label the filtered shards, record for record.
# As upstream, with the teacher (TEACHER_CKPT, upstream's ckpt/teacher_ckpt/model.ckpt); REASSIGN_CKPT names
# another model, e.g. the student of run.sh (REASSIGN_CKPT=./ckpt/exp_1).
source "$(dirname "$0")/common.sh"
if [[ -z "${REASSIGN_CKPT:-}" ]]; then
  require_teacher
fi
"${python_bin}" main.py "${base_flags[@]}" --mode=predict --predict_ckpt_path="${REASSIGN_CKPT:-${teacher_ckpt}}" \
  --worker_id=0 --num_shards="${num_shards}" --shard_id="${SHARDS:-${all_shards}}" --file_prefix=train \
  --label_data_dir="${predict_root}/filter_data/data" --data_type=tfrecord --info_dir="${predict_root}/info" \
  --output_dir="${predict_root}/reassign" --reassign_label=True
