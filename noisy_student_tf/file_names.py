"""The names of the files the stages hand each other, as upstream names them. Every stage, the Beam pipeline
and the driver ask here (through the configs' path methods: `PredictConfig.input_path`, `FilterConfig.data_path`,
...), so a name is written once. Plain strings, no TensorFlow."""

from __future__ import annotations

import re

from noisy_student_tf.errors import UserError

# `<prefix>-SSSSS-of-NNNNN`, the shards of prepro/proc_svhn and predict's input.
SHARD_PATTERN = re.compile(r"^(?P<prefix>.+)-(?P<index>\d{5})-of-(?P<total>\d{5})$")


def check_file_prefix(prefix: str, flag: str = "--file_prefix") -> str:
    """A shard-name prefix must be a plain name: it is joined to directories, and a prefix like `../x` would read
    or write outside them."""
    if not prefix or prefix in (".", "..") or prefix.startswith(".") or "/" in prefix or "\\" in prefix \
            or "\0" in prefix:
        raise UserError(f"{flag}={prefix!r} must be a plain file-name prefix (no '/', not starting with '.'), "
                        "e.g. train or extra")
    return prefix


def shard_name(prefix: str, index: int, num_shards: int) -> str:
    """'%s-%05d-of-%05d', e.g. train-00003-of-00128 (upstream `utils.py`, `get_filename`)."""
    return "%s-%05d-of-%05d" % (prefix, index, num_shards)


def prediction_name(shard: int, num_shards: int, worker: int) -> str:
    """Upstream `predict_label.py`, `run_prediction`: train-info-<shard>-of-<num_shards>-<worker>."""
    return "train-info-%05d-of-%05d-%05d" % (shard, num_shards, worker)


def info_name(shard: int, num_shards: int, worker: int) -> str:
    """Upstream `predict_label.py`, `get_num_image`: info-<shard>-of-<num_shards>-<worker>.txt,
    JSON {"image_num": n}."""
    return "info-%05d-of-%05d-%05d.txt" % (shard, num_shards, worker)


def is_info_name(name: str) -> bool:
    """An `info_name` file (the driver sums them instead of reading every record again)."""
    return name.startswith("info-") and name.endswith(".txt")


def filtered_name(task: int, shard: int, num_shards: int, prefix: str = "train") -> str:
    """Upstream `filter_unlabel.py`, `filter_image_by_idx`: train-<task>-<shard>-of-<num_shards> (also the name
    reassign reads and writes, `utils.py`, `get_reassign_filename`)."""
    return "%s-%d-%05d-of-%05d" % (prefix, task, shard, num_shards)


def prelim_stats_name(shard: int, task: int) -> str:
    """Upstream `filter_unlabel.py`, `get_threshold`'s per-shard histogram: prelim_stats_<shard>_<task>.json."""
    return "prelim_stats_%05d_%d.json" % (shard, task)


def stats_name(shard: int, task: int) -> str:
    """Upstream `filter_unlabel.py`, `filter_image_by_idx`'s per-shard counts: stats_<shard>_<task>.json."""
    return "stats_%05d_%d.json" % (shard, task)
