#!/usr/bin/env bash
# The student from stored, filtered pseudo labels (upstream README.md's `run_offline.sh` step). The original
# train_offline.sh was a byte-identical copy of train.sh with an online teacher; this one trains offline from
# filter_unlabel.sh's output.
source "$(dirname "$0")/common.sh"
require label_data_dir model_name
"${python_bin}" main.py "${base_flags[@]}" --mode=train --model_name="${model_name}" \
  --label_data_dir="${label_data_dir}" --model_dir="${model_dir}" \
  --unlabel_data_dir="${OFFLINE_DATA_DIR:-${data_root}/filter_data/data}" --unlabel_ratio="${UNLABEL_RATIO:-3}" \
  --teacher_softmax_temp=1
