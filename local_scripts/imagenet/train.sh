#!/usr/bin/env bash
# The student with an online teacher (upstream `imagenet/train.sh`). Per-model flags of the original, to pass in
# EXTRA_FLAGS:
#   B0: --unlabel_ratio=1 --train_ratio=2        B1: --unlabel_ratio=3 --train_ratio=2
#   B2: --unlabel_ratio=3 --train_ratio=2 --augment_name=v1 --randaug_mag=6
#   B3: ... --randaug_mag=12   B4: ... --randaug_mag=15 (all --train_ratio=2)
#   B5: --unlabel_ratio=3 --augment_name=v1 --randaug_mag=18   B6: ... 24   B7: ... 27
# Unlike the original, MODEL_DIR is not deleted first: a re-run resumes. Delete it to start over.
source "$(dirname "$0")/common.sh"
require label_data_dir unlabel_data_dir model_name teacher_ckpt
"${python_bin}" main.py "${base_flags[@]}" --mode=train --model_name="${model_name}" \
  --label_data_dir="${label_data_dir}" --model_dir="${model_dir}" --unlabel_data_dir="${unlabel_data_dir}" \
  --teacher_model_name="${teacher_model_name}" --teacher_model_path="${teacher_ckpt}" --teacher_softmax_temp=1
