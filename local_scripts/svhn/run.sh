#!/usr/bin/env bash
# Step 2 (upstream `svhn/run.sh`): the student with an online teacher (98.6% in the original README), then eval.
# The teacher is TEACHER_CKPT: a model_dir of ours (train_teacher.sh) or the original TF1 checkpoint.
# Unlike the original, ckpt/exp_1 is not deleted first: a re-run resumes. Delete it to start over.
source "$(dirname "$0")/common.sh"
require_teacher
"${python_bin}" main.py "${base_flags[@]}" --mode=train --train_batch_size=128 --iterations_per_loop=1000 \
  --save_checkpoints_steps=1000 --unlabel_ratio=5 --teacher_softmax_temp=1 --augment_name=v1 --randaug_mag=5 \
  --final_base_lr=0.0002 --weight_decay=1e-4 --train_steps="${TRAIN_STEPS:-109474}" \
  --label_data_dir="${proc_dir}" --teacher_model_name=efficientnet-b0 --teacher_model_path="${teacher_ckpt}" \
  --model_dir="${model_dir}" --unlabel_data_dir="${unlabeled_dir}"
"${python_bin}" main.py "${base_flags[@]}" --mode=eval --label_data_dir="${proc_dir}" --model_dir="${model_dir}"
