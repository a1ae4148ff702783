"""Converts original TF1 checkpoints to Keras model files and back."""

from __future__ import annotations

import os

from absl import flags, logging

from noisy_student_tf.errors import UserError
from noisy_student_tf.io_utils import atomic_output
from noisy_student_tf.models import MODEL_TABLE, build_model, default_image_size
from noisy_student_tf.models import tf1_checkpoint

FLAGS = flags.FLAGS


def tf1_to_keras() -> str:
    if not FLAGS.tf1_ckpt:
        raise UserError("--tf1_ckpt is required: the TF1 checkpoint to convert")
    output = FLAGS.output
    if not output or not output.endswith(".keras"):
        raise UserError(f"--output must name a .keras file, got {output!r}")
    model_name = FLAGS.model_name or tf1_checkpoint.infer_model_name(FLAGS.tf1_ckpt)
    if model_name not in MODEL_TABLE:
        raise UserError(f"--model_name={model_name!r} is not one of {', '.join(MODEL_TABLE)}")
    num_classes = FLAGS.num_label_classes or tf1_checkpoint.infer_num_classes(
        FLAGS.tf1_ckpt, model_name, FLAGS.scope)
    size = FLAGS.input_image_size or default_image_size(model_name, FLAGS.small_image_model)
    model = build_model(model_name, num_classes, small_image_model=FLAGS.small_image_model,
                        input_shape=(size, size, 3))
    report = tf1_checkpoint.load_tf1_checkpoint(model, FLAGS.tf1_ckpt, scope=FLAGS.scope,
                                                prefer_ema=FLAGS.use_ema)
    logging.info("%s", report.summary())
    with atomic_output(output, suffix=".keras") as tmp:
        model.save(tmp)
    logging.info("wrote %s (%s, %d classes, %dx%d input)", output, model_name, num_classes, size, size)
    return output


def keras_to_tf1() -> str:
    import keras

    if not FLAGS.keras_model:
        raise UserError("--keras_model is required with --to_tf1: the .keras file to convert")
    if not os.path.isfile(FLAGS.keras_model):
        raise UserError(f"--keras_model={FLAGS.keras_model!r}: no such file")
    output = FLAGS.output or FLAGS.tf1_ckpt
    if not output:
        raise UserError("--output (or --tf1_ckpt) is required with --to_tf1: the checkpoint prefix to write, "
                        "e.g. ckpt/converted/model.ckpt-0")
    try:
        model = keras.saving.load_model(FLAGS.keras_model, compile=False)
    except (ValueError, OSError) as e:
        raise UserError(f"cannot load Keras model {FLAGS.keras_model!r}: {e}") from None
    model_name = FLAGS.model_name or model.name
    if model_name not in MODEL_TABLE:
        raise UserError(f"the model is named {model_name!r}, not one of {', '.join(MODEL_TABLE)}; "
                        "pass --model_name")
    scope = "student" if FLAGS.scope == "auto" else FLAGS.scope
    tf1_checkpoint.save_tf1_checkpoint(model, output, model_name=model_name, scope=scope,
                                       global_step=FLAGS.global_step)
    logging.info("wrote TF1 checkpoint %s (%s names, scope %s)", output, model_name, scope)
    return output


def main(argv) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; flags are written --name=value")
    if FLAGS.to_tf1:
        keras_to_tf1()
    else:
        tf1_to_keras()
