"""The upstream-compatible entry point: `main.py --mode=train|eval|predict|train_and_eval`."""

from __future__ import annotations

from absl import flags, logging

from noisy_student_tf.errors import UserError
from noisy_student_tf.jobs import evaluate, predict, settings, train

FLAGS = flags.FLAGS
MODES = ("train", "eval", "predict", "train_and_eval")


def main(argv) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; flags are written --name=value")
    settings.report_ignored_flags(FLAGS)
    if FLAGS.use_tpu and not FLAGS.tpu and FLAGS["use_tpu"].present:
        logging.warning("--use_tpu without --tpu: no TPU to connect to, running on the local devices")
    mode = FLAGS.mode
    if mode not in MODES:
        raise UserError(f"unknown --mode={mode!r}: choose one of {', '.join(MODES)}")
    if mode == "predict":
        predict.run(FLAGS)
        return
    # Upstream's default train_and_eval only wrote FLAGS.json (spec §11.1 item 1); here it trains, then evaluates.
    if mode in ("train", "train_and_eval"):
        train.run(FLAGS)
    if mode in ("eval", "train_and_eval"):
        evaluate.run(FLAGS)
