#!/usr/bin/env bash
# Step 1 (upstream `svhn/prepro.sh`): SVHN .mat files in data/svhn/raw/ (or a prepared TFDS svhn_cropped: set
# PROC_FLAGS=--tfds_name=svhn_cropped) -> data/svhn/proc/{train,dev,test}-* and proc/unlabeled/extra-*.
# Nothing is downloaded. The original also fetched a teacher checkpoint whose link is dead: see train_teacher.sh.
source "$(dirname "$0")/common.sh"
read -r -a proc_flags <<< "${PROC_FLAGS:-}"
"${python_bin}" proc_svhn.py --task_name=svhn --raw_data_dir="${RAW_DATA_DIR:-${data_root}/raw}" \
  --output_dir="${proc_dir}" "${proc_flags[@]}"
