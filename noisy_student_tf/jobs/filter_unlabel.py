"""filter_unlabel.py (spec §6): flags -> FilterConfig -> one shard's phase, or --all_shards."""

from __future__ import annotations

from absl import flags, logging

from noisy_student_tf.errors import UserError
from noisy_student_tf.offline.filter_shards import FilterConfig, run_all_shards, run_shard


def config(F) -> FilterConfig:
    if F.data_type != "tfrecord":
        raise UserError(f"--data_type={F.data_type!r}: only tfrecord is supported (as upstream)")
    if F.only_get_stats not in (0, 1):
        raise UserError(f"--only_get_stats must be 0 or 1, got {F.only_get_stats}")
    return FilterConfig(
        input_dir=F.input_dir, prediction_dir=F.prediction_dir, info_dir=F.info_dir,
        prelim_stats_dir=F.prelim_stats_dir, output_dir=F.output_dir, num_classes=F.num_label_classes,
        num_shards=F.num_shards, only_use_num_shards=F.only_use_num_shards, num_image=F.num_image,
        total_replicas=F.total_replicas, task=F.task, debug=F.debug, min_threshold=F.min_threshold,
        max_prob=F.max_prob, upsample=bool(F.upsample), file_prefix=F.file_prefix, use_top=bool(F.use_top),
        use_all=F.use_all, seed=F.seed, rebuild_stale=F.rebuild_stale, poll_seconds=F.poll_seconds,
        wait_timeout=F.wait_timeout)


def run(F):
    cfg = config(F)
    cfg.validate()
    for name in ("total_label_replicas", "eval_imagenet_p"):
        if F[name].present:
            logging.warning("--%s is ignored (upstream never used the value given)", name)
    if F.all_shards:
        if F.num_workers < 0:
            raise UserError(f"--num_workers must be >= 0, got {F.num_workers}")
        return run_all_shards(cfg, F.num_workers or None)
    return run_shard(cfg, F.shard_id, bool(F.only_get_stats))


def main(argv) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; flags are written --name=value")
    run(flags.FLAGS)
