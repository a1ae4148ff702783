"""Converts original TF1 checkpoints to Keras model files and back."""

from __future__ import annotations

from absl import logging

from noisy_student_tf import storage
from noisy_student_tf.config import ConvertConfig
from noisy_student_tf.errors import UserError
from noisy_student_tf.models import MODEL_TABLE, build_model, default_image_size
from noisy_student_tf.models import tf1_checkpoint



def tf1_to_keras(cfg: ConvertConfig) -> str:
    if not cfg.tf1_ckpt:
        raise UserError("--tf1_ckpt is required: the TF1 checkpoint to convert")
    output = cfg.output
    if not output or not output.endswith(".keras"):
        raise UserError(f"--output must name a .keras file, got {output!r}")
    model_name = cfg.model_name or tf1_checkpoint.infer_model_name(cfg.tf1_ckpt)
    if model_name not in MODEL_TABLE:
        raise UserError(f"--model_name={model_name!r} is not one of {', '.join(MODEL_TABLE)}")
    num_classes = cfg.num_label_classes or tf1_checkpoint.infer_num_classes(
        cfg.tf1_ckpt, model_name, cfg.scope)
    size = cfg.input_image_size or default_image_size(model_name, cfg.small_image_model)
    model = build_model(model_name, num_classes, small_image_model=cfg.small_image_model,
                        input_shape=(size, size, 3))
    report = tf1_checkpoint.load_tf1_checkpoint(model, cfg.tf1_ckpt, scope=cfg.scope,
                                                prefer_ema=cfg.use_ema)
    logging.info("%s", report.summary())
    with storage.atomic_output(output, suffix=".keras") as tmp:
        model.save(tmp)
    logging.info("wrote %s (%s, %d classes, %dx%d input)", output, model_name, num_classes, size, size)
    return output


def keras_to_tf1(cfg: ConvertConfig) -> str:
    import keras

    if not cfg.keras_model:
        raise UserError("--keras_model is required with --to_tf1: the .keras file to convert")
    if not storage.isfile(cfg.keras_model):
        raise UserError(f"--keras_model={cfg.keras_model!r}: no such file")
    output = cfg.output or cfg.tf1_ckpt
    if not output:
        raise UserError("--output (or --tf1_ckpt) is required with --to_tf1: the checkpoint prefix to write, "
                        "e.g. ckpt/converted/model.ckpt-0")
    try:
        model = keras.saving.load_model(cfg.keras_model, compile=False)
    except (ValueError, OSError) as e:
        raise UserError(f"cannot load Keras model {cfg.keras_model!r}: {e}") from None
    model_name = cfg.model_name or model.name
    if model_name not in MODEL_TABLE:
        raise UserError(f"the model is named {model_name!r}, not one of {', '.join(MODEL_TABLE)}; "
                        "pass --model_name")
    scope = "student" if cfg.scope == "auto" else cfg.scope
    tf1_checkpoint.save_tf1_checkpoint(model, output, model_name=model_name, scope=scope,
                                       global_step=cfg.global_step)
    logging.info("wrote TF1 checkpoint %s (%s names, scope %s)", output, model_name, scope)
    return output



def run(cfg: ConvertConfig) -> str:
    """Converts as `cfg` says (`cfg.to_tf1`: Keras -> TF1, else TF1 -> Keras); returns the output path."""
    return keras_to_tf1(cfg) if cfg.to_tf1 else tf1_to_keras(cfg)
