"""prepro_images.py: a folder of your own images as shards (see noisy_student_tf/data/sources/image_folder.py)."""

from __future__ import annotations

from absl import flags, logging

from noisy_student_tf.data.sources import image_folder
from noisy_student_tf.errors import UserError


def define_flags(flag_values=flags.FLAGS) -> None:
    fv = {"flag_values": flag_values}
    defaults = image_folder.Options()
    flags.DEFINE_string("input_dir", None, "Folder of images: one sub-folder per class (labeled), or flat "
                        "(unlabeled).", **fv)
    flags.DEFINE_string("output_dir", None, "Where the shards, task_info.json and class_names.json go; unlabeled "
                        "shards go to <output_dir>/unlabeled.", **fv)
    flags.DEFINE_enum("labels", defaults.labels, image_folder.LABEL_MODES,
                      "folders: each sub-folder is a class; none: every image is unlabeled; auto: folders if "
                      "--input_dir has sub-folders.", **fv)
    flags.DEFINE_integer("image_size", defaults.image_size, "0: keep sizes (ImageNet-style path); S: centre "
                         "square crop resized to SxS, small-image model (32 as SVHN).", **fv)
    flags.DEFINE_float("dev_fraction", defaults.dev_fraction, "Share of each class for dev.", **fv)
    flags.DEFINE_float("test_fraction", defaults.test_fraction, "Share of each class for test.", **fv)
    flags.DEFINE_integer("num_shards", defaults.num_shards, "Shards of train and of unlabeled extra (dev and test "
                         "get half as many); never more than images.", **fv)
    flags.DEFINE_integer("seed", defaults.seed, "Seed of the split and of the record order.", **fv)
    flags.DEFINE_enum("on_bad_image", defaults.on_bad_image, image_folder.BAD_IMAGE_MODES,
                      "skip: leave unreadable files out and list them in bad_images.txt; fail: stop at the first.",
                      **fv)
    flags.DEFINE_integer("num_classes", defaults.num_classes, "Unlabeled images only: length of the stored "
                         "(dummy) teacher probabilities; 0 = from <output_dir>/task_info.json of labeled data.", **fv)
    flags.DEFINE_string("name", defaults.name, "Task name in task_info.json; default: the input folder's name.",
                        **fv)
    flags.DEFINE_bool("flip", defaults.flip, "Random horizontal flips in training (turn off for text, digits).",
                      **fv)
    flags.DEFINE_integer("num_threads", defaults.num_threads, "Decoding threads; 0 = one per core (at most 8).",
                         **fv)


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
