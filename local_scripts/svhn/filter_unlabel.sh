#!/usr/bin/env bash
# Steps 4-5 (upstream `svhn/filter_unlabel.sh`): filter the predictions by confidence and balance the classes.
#   bash filter_unlabel.sh       both phases, every shard, in one process on all cores (--all_shards)
#   bash filter_unlabel.sh 1     upstream's phase 1 (statistics), one job per shard, the master (0) last
#   bash filter_unlabel.sh 0     upstream's phase 2 (write the filtered shards), likewise
source "$(dirname "$0")/common.sh"
filter_flags=(--input_dir="${unlabeled_dir}" --file_prefix=extra --info_dir="${predict_root}/info"
  --prediction_dir="${predict_root}/predict_label" --prelim_stats_dir="${predict_root}/prelim_stats"
  --output_dir="${predict_root}/filter_data" --num_shards="${num_shards}" --min_threshold="${MIN_THRESHOLD:-0.3}"
  --num_label_classes=10 --task=0 --num_image="${NUM_IMAGE:-53113}")
if [[ $# -eq 0 ]]; then
  "${python_bin}" filter_unlabel.py "${filter_flags[@]}" --all_shards
else
  for ((shard_id = num_shards - 1; shard_id >= 0; shard_id--)); do
    "${python_bin}" filter_unlabel.py "${filter_flags[@]}" --shard_id="${shard_id}" --only_get_stats="$1"
  done
fi
