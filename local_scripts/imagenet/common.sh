# shellcheck shell=bash disable=SC2034  # sourced: the variables are read by the scripts that source it
# Shared by the ImageNet scripts. Fill in the variables below (or set them in the environment, in capitals:
# LABEL_DATA_DIR=... bash local_scripts/imagenet/train.sh); a script stops with a message naming any it needs
# that is empty. Run from anywhere: paths are relative to the repository root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

label_data_dir=${LABEL_DATA_DIR:-}        # labeled shards: train-*, and dev-*/test-* or validation-* for eval
unlabel_data_dir=${UNLABEL_DATA_DIR:-}    # unlabeled shards extra-SSSSS-of-NNNNN (with dummy prediction keys)
model_name=${MODEL_NAME:-}                # the student, e.g. efficientnet-b0 ... efficientnet-l2
teacher_model_name=${TEACHER_MODEL_NAME:-${model_name}}
teacher_ckpt=${TEACHER_CKPT:-}            # the teacher: a model_dir of ours or an original TF1 checkpoint
model_dir=${MODEL_DIR:-./ckpt/imagenet}
data_root=${PREDICT_ROOT:-./data/imagenet/predict}
num_shards=${NUM_SHARDS:-128}
num_label_classes=${NUM_LABEL_CLASSES:-1000}
python_bin=${PYTHON:-python}
read -r -a extra_flags <<< "${EXTRA_FLAGS:-}"   # e.g. the per-model flags listed in train.sh
base_flags=(--use_tpu=False --use_bfloat16=False --num_label_classes="${num_label_classes}" "${extra_flags[@]}")
all_shards=$(seq -s, 0 $((num_shards - 1)))

require() {
  local name
  for name in "$@"; do
    if [[ -z "${!name}" ]]; then
      echo "error: ${name} is empty: set it at the top of local_scripts/imagenet/common.sh or in the environment" \
           "(${name^^}=...)" >&2
      exit 1
    fi
  done
}
