"""proc_svhn.py: SVHN as TFRecord shards, like upstream's script but from local files only (spec §1.3, §10).

The library is noisy_student_tf/data/sources/svhn.py; this module holds the flags and checks them.
"""

from __future__ import annotations

from absl import flags, logging

from noisy_student_tf.data.sources import svhn
from noisy_student_tf.errors import UserError


def define_flags(flag_values=flags.FLAGS) -> None:
    fv = {"flag_values": flag_values}
    # Upstream's four flags, with upstream's defaults (spec §1.3).
    flags.DEFINE_string("task_name", "svhn", "Task to prepare; only svhn exists.", **fv)
    flags.DEFINE_string("raw_data_dir", None,
                        "Directory holding train_32x32.mat, test_32x32.mat and extra_32x32.mat (directly or in "
                        "downloaded_data/). Nothing is downloaded. Not used with --tfds_name.", **fv)
    flags.DEFINE_string("output_dir", "", "TFRecord output root; extra goes to <output_dir>/unlabeled/.", **fv)
    flags.DEFINE_bool("full_train_data", False,
                      "No dev split: train keeps all images, dev is a copy of test, and every file is named "
                      "<split>_full-*.", **fv)
    # Additions.
    flags.DEFINE_string("tfds_name", "",
                        "Read a locally prepared TFDS data set instead of the .mat files, e.g. svhn_cropped "
                        "(splits train/test/extra; from TFDS's data directory, $TFDS_DATA_DIR or "
                        "~/tensorflow_datasets; never downloaded).", **fv)
    flags.DEFINE_integer("seed", svhn.UPSTREAM_SEED,
                         "Seed of the train/dev split and of the extra order; the default gives upstream's split.",
                         **fv)


def source_of(F):
    if F.tfds_name:
        # TFDS finds its own data directory; scripts pass --raw_data_dir either way, so it is not reused here.
        return svhn.TfdsSource(F.tfds_name)
    return svhn.MatSource(F.raw_data_dir)


def run(F) -> dict:
    if F.task_name != "svhn":
        raise UserError(f"--task_name={F.task_name!r}: proc_svhn.py only prepares svhn "
                        f"(for scikit-learn's digits use prepro_digits.py)")
    if not F.output_dir:
        raise UserError("--output_dir is required: the directory for the TFRecord shards")
    counts = svhn.prepare(source_of(F), F.output_dir, seed=F.seed, full_train_data=F.full_train_data)
    logging.info("svhn in %s: %s", F.output_dir, ", ".join(f"{k} {v}" for k, v in counts.items()))
    return counts


def main(argv) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; flags are written --name=value")
    run(flags.FLAGS)
