"""prepro_digits.py: scikit-learn's digits as shards (see noisy_student_tf/data/sources/digits.py)."""

from __future__ import annotations

from absl import flags, logging

from noisy_student_tf.errors import UserError


def define_flags(flag_values=flags.FLAGS) -> None:
    flags.DEFINE_string("output_dir", "data/digits/proc", "Where the shards go (unlabeled/ below it).",
                        flag_values=flag_values)
    flags.DEFINE_integer("seed", 0, "Seed of the split.", flag_values=flag_values)


def run(F) -> dict:
    if not F.output_dir:
        raise UserError("--output_dir is required")
    from noisy_student_tf.data.sources import digits  # imports TF; defining the flags (--help) must not

    counts = digits.prepare(F.output_dir, seed=F.seed)
    logging.info("digits in %s: %s (use --task_name=digits)", F.output_dir,
                 ", ".join(f"{k} {v}" for k, v in counts.items()))
    return counts


def main(argv) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; flags are written --name=value")
    run(flags.FLAGS)
