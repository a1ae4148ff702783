"""proc_svhn.py: SVHN as TFRecord shards, like upstream's script but from local files only (spec §1.3, §10).

The library is noisy_student_tf/data/sources/svhn.py; this module checks the flags (defined in
noisy_student_tf/flags.py).
"""

from __future__ import annotations

from absl import flags, logging

from noisy_student_tf.data.sources import svhn
from noisy_student_tf.errors import UserError


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
