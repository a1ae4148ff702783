#!/usr/bin/env bash
# The main job: Noisy Student on scikit-learn's digits (bundled, no download), end to end on a CPU.
# Prepares the shards, trains a teacher on 100 labeled images, then 3 iterations of predict -> filter/balance ->
# noised student -> eval, each student the next teacher. Prints a table; writes summary.json, summary.md and
# accuracy.png to OUTPUT_DIR. A re-run resumes at the first unfinished stage.
# The recipe (network, steps, batch sizes, noise) is `digits` in noisy_student_tf/recipes.py; these variables
# change it:
#   OUTPUT_DIR (./ckpt/digits) DATA_DIR (./data/digits/proc) SEED (0) ITERATIONS (3)
#   TEACHER_STEPS (400), TEACHER_BATCH_SIZE (32), STUDENT_STEPS (600), BATCH_SIZE (16: labeled images per student
#   step), EXTRA_FLAGS (more iterate.py flags)
set -euo pipefail
cd "$(dirname "$0")/../.."
python_bin=${PYTHON:-python}
data_dir=${DATA_DIR:-./data/digits/proc}
read -r -a extra_flags <<< "${EXTRA_FLAGS:-}"
recipe_flags=()
[[ -z "${ITERATIONS:-}" ]] || recipe_flags+=(--iterations="${ITERATIONS}")
[[ -z "${BATCH_SIZE:-}" ]] || recipe_flags+=(--train_batch_size="${BATCH_SIZE}")
[[ -z "${TEACHER_BATCH_SIZE:-}" ]] || recipe_flags+=(--teacher_train_batch_size="${TEACHER_BATCH_SIZE}")
[[ -z "${TEACHER_STEPS:-}" ]] || recipe_flags+=(--teacher_train_steps="${TEACHER_STEPS}")
[[ -z "${STUDENT_STEPS:-}" ]] || recipe_flags+=(--student_train_steps="${STUDENT_STEPS}")
"${python_bin}" prepro_digits.py --output_dir="${data_dir}" --seed="${SEED:-0}"
"${python_bin}" iterate.py --recipe=digits --label_data_dir="${data_dir}" \
  --unlabel_data_dir="${data_dir}/unlabeled" --output_dir="${OUTPUT_DIR:-./ckpt/digits}" --seed="${SEED:-0}" \
  "${recipe_flags[@]}" "${extra_flags[@]}"
