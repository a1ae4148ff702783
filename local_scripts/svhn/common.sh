# shellcheck shell=bash disable=SC2034  # sourced: the variables are read by the scripts that source it
# Shared by the SVHN scripts: run from the repository root, with every setting overridable from the
# environment (e.g. `TRAIN_STEPS=2000 bash local_scripts/svhn/train_teacher.sh`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

python_bin=${PYTHON:-python}
data_root=${DATA_ROOT:-./data/svhn}
proc_dir=${PROC_DIR:-${data_root}/proc}
unlabeled_dir=${UNLABELED_DIR:-${proc_dir}/unlabeled}
predict_root=${PREDICT_ROOT:-${data_root}/predict}
teacher_ckpt=${TEACHER_CKPT:-./ckpt/teacher_ckpt}
model_dir=${MODEL_DIR:-./ckpt/exp_1}
num_shards=${NUM_SHARDS:-128}
# Flags every main.py call of the original scripts passed (upstream `local_scripts/svhn/*.sh`), plus any of yours.
read -r -a extra_flags <<< "${EXTRA_FLAGS:-}"
base_flags=(--model_name=efficientnet-b0 --task_name=svhn --use_tpu=False --use_bfloat16=False "${extra_flags[@]}")
all_shards=$(seq -s, 0 $((num_shards - 1)))

require_teacher() {
  if [[ ! -e "${teacher_ckpt}" && ! -e "${teacher_ckpt}.index" ]]; then
    echo "error: no teacher checkpoint at ${teacher_ckpt}. The original download link is dead: train one with" >&2
    echo "  bash local_scripts/svhn/train_teacher.sh, or set TEACHER_CKPT to your checkpoint (a model_dir of" >&2
    echo "  ours, or the original TF1 prefix such as ckpt/teacher_ckpt/model.ckpt)." >&2
    exit 1
  fi
}
