"""filter_unlabel.py (upstream `filter_unlabel.py`): one shard's phase, or both phases over every shard."""

from __future__ import annotations

from noisy_student_tf.config import FilterConfig
from noisy_student_tf.offline.filter_shards import run_all_shards, run_shard


def run(cfg: FilterConfig):
    """Runs the invocation `cfg` describes: `cfg.all_shards` (both phases, every shard, in this process) or
    phase `cfg.only_get_stats` of shard `cfg.shard_id`, as upstream.

    Returns:
        The statistics of what was written (`run_all_shards`, `run_shard`).
    """
    cfg.validate()
    if cfg.all_shards:
        return run_all_shards(cfg, cfg.num_workers)
    return run_shard(cfg, cfg.shard_id, cfg.only_get_stats)
