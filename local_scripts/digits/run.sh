#!/usr/bin/env bash
# The main job: Noisy Student on scikit-learn's digits (bundled, no download), end to end on a CPU.
# Prepares the shards, trains a teacher on 100 labeled images, then 3 iterations of predict -> filter/balance ->
# noised student -> eval, each student the next teacher. Prints a table; writes summary.json, summary.md and
# accuracy.png to OUTPUT_DIR. A re-run resumes at the first unfinished stage.
#   OUTPUT_DIR (./ckpt/digits) DATA_DIR (./data/digits/proc) SEED (0) ITERATIONS (3)
#   TEACHER_STEPS (400), TEACHER_BATCH_SIZE (32), STUDENT_STEPS (600), BATCH_SIZE (16: labeled images per student
#   step), EXTRA_FLAGS (more iterate.py flags)
# The network is EfficientNet-B0 at half width and depth (CPU budget). The teacher sees 32 labeled images per
# step; students train from scratch with RandAugment (M=5), dropout and stochastic depth, on 16 labeled + 32
# pseudo-labeled images per step (more steps of smaller batches beat fewer large ones in the same time here).
set -euo pipefail
cd "$(dirname "$0")/../.."
python_bin=${PYTHON:-python}
data_dir=${DATA_DIR:-./data/digits/proc}
read -r -a extra_flags <<< "${EXTRA_FLAGS:-}"
"${python_bin}" prepro_digits.py --output_dir="${data_dir}" --seed="${SEED:-0}"
"${python_bin}" iterate.py --task_name=digits --label_data_dir="${data_dir}" \
  --unlabel_data_dir="${data_dir}/unlabeled" --output_dir="${OUTPUT_DIR:-./ckpt/digits}" --seed="${SEED:-0}" \
  --iterations="${ITERATIONS:-3}" --unlabel_ratio=2 --train_batch_size="${BATCH_SIZE:-16}" \
  --teacher_train_batch_size="${TEACHER_BATCH_SIZE:-32}" --teacher_train_steps="${TEACHER_STEPS:-400}" \
  --student_train_steps="${STUDENT_STEPS:-600}" \
  --train_flags=--width_coefficient=0.5,--depth_coefficient=0.5 "${extra_flags[@]}"
