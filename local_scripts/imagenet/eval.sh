#!/usr/bin/env bash
# Top-1/top-5 on dev-* and test-* (or validation-*, the standard ImageNet name, which the original could not
# read: upstream `main.py`, `main`, evaluates only `dev*` and `test*`); results also in MODEL_DIR/eval_results.json.
source "$(dirname "$0")/common.sh"
require label_data_dir model_name
"${python_bin}" main.py "${base_flags[@]}" --mode=eval --model_name="${model_name}" \
  --label_data_dir="${label_data_dir}" --model_dir="${model_dir}"
