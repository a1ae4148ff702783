#!/usr/bin/env bash
# Filter and balance (upstream `imagenet/filter_unlabel.sh`): no argument = both phases over every shard in one
# process (--all_shards); 1 or 0 = upstream's per-shard phase loop, the master (shard 0) last.
source "$(dirname "$0")/common.sh"
require unlabel_data_dir
filter_flags=(--input_dir="${unlabel_data_dir}" --file_prefix=extra --info_dir="${data_root}/info"
  --prediction_dir="${data_root}/predict_label" --prelim_stats_dir="${data_root}/prelim_stats"
  --output_dir="${data_root}/filter_data" --num_shards="${num_shards}" --min_threshold="${MIN_THRESHOLD:-0.3}"
  --num_label_classes="${num_label_classes}" --task=0 --num_image="${NUM_IMAGE:-130000}")
if [[ $# -eq 0 ]]; then
  "${python_bin}" filter_unlabel.py "${filter_flags[@]}" --all_shards
else
  for ((shard_id = num_shards - 1; shard_id >= 0; shard_id--)); do
    "${python_bin}" filter_unlabel.py "${filter_flags[@]}" --shard_id="${shard_id}" --only_get_stats="$1"
  done
fi
