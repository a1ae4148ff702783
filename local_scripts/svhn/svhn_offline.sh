#!/usr/bin/env bash
# Step 6 (upstream `svhn/svhn_offline.sh`): the student from the stored, filtered pseudo labels (no teacher at
# training time), then eval. Point UNLABEL_DATA_DIR at reassign's output to train from re-assigned labels.
# Unlike the original, ckpt/exp_1 is not deleted first: a re-run resumes. Delete it to start over.
source "$(dirname "$0")/common.sh"
"${python_bin}" main.py "${base_flags[@]}" --mode=train --train_batch_size=128 --iterations_per_loop=1000 \
  --save_checkpoints_steps=1000 --unlabel_ratio=5 --teacher_softmax_temp=1 --augment_name=v1 --randaug_mag=5 \
  --final_base_lr=0.0002 --weight_decay=1e-4 --train_steps="${TRAIN_STEPS:-109474}" \
  --label_data_dir="${proc_dir}" --model_dir="${model_dir}" \
  --unlabel_data_dir="${UNLABEL_DATA_DIR:-${predict_root}/filter_data/data}"
"${python_bin}" main.py "${base_flags[@]}" --mode=eval --label_data_dir="${proc_dir}" --model_dir="${model_dir}"
