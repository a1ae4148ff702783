#!/usr/bin/env bash
# New: train the SVHN teacher on the labeled data alone (the original's download link is dead). Same recipe as
# run.sh without unlabeled data; writes the model_dir ckpt/teacher_ckpt that run.sh and predict.sh read.
# A re-run resumes from the last checkpoint.
source "$(dirname "$0")/common.sh"
"${python_bin}" main.py "${base_flags[@]}" --mode=train --train_batch_size=128 --iterations_per_loop=1000 \
  --save_checkpoints_steps=1000 --augment_name=v1 --randaug_mag=5 --final_base_lr=0.0002 --weight_decay=1e-4 \
  --train_steps="${TRAIN_STEPS:-109474}" --label_data_dir="${proc_dir}" --model_dir="${teacher_ckpt}"
"${python_bin}" main.py "${base_flags[@]}" --mode=eval --label_data_dir="${proc_dir}" --model_dir="${teacher_ckpt}"
