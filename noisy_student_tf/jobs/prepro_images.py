"""prepro_images.py: a folder of your own images as shards (see noisy_student_tf/data/sources/image_folder.py)."""

from __future__ import annotations

from absl import flags, logging

from noisy_student_tf.data.sources import image_folder
from noisy_student_tf.errors import UserError


def options(F) -> image_folder.Options:
    return image_folder.Options(labels=F.labels, image_size=F.image_size, dev_fraction=F.dev_fraction,
                                test_fraction=F.test_fraction, num_shards=F.num_shards, seed=F.seed,
                                on_bad_image=F.on_bad_image, num_classes=F.num_classes, name=F.name,
                                flip=F.flip, num_threads=F.num_threads)


def _report(summary: image_folder.Summary, output_dir: str) -> None:
    counts = ", ".join(f"{split} {n} ({len(summary.shards[split])} shards)" for split, n in summary.counts.items())
    logging.info("wrote %s to %s; %d unreadable files skipped", counts, summary.shard_dir, len(summary.bad_images))
    if summary.labeled:
        logging.info("train with: --task_name=%s --label_data_dir=%s", summary.task_file, output_dir)
    else:
        logging.info("use as --unlabel_data_dir=%s; predict/filter with --file_prefix=%s --num_shards=%d",
                     summary.shard_dir, image_folder.UNLABELED_PREFIX, len(summary.shards["extra"]))


def run(F) -> image_folder.Summary:
    summary = image_folder.prepare(F.input_dir or "", F.output_dir or "", options(F))
    _report(summary, F.output_dir)
    return summary


def main(argv) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; flags are written --name=value")
    run(flags.FLAGS)
