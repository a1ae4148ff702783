"""A trained network for inference: built from its config, filled from any checkpoint a user may hand us."""

from __future__ import annotations

from noisy_student_tf import derivations
from noisy_student_tf.config import ModelConfig
from noisy_student_tf.models.inference import model_from_config
from noisy_student_tf.training import checkpoints


def restore_model(cfg: ModelConfig, checkpoint: str, *, use_ema: bool = True, what: str = "checkpoint"):
    """The network of `cfg` with the weights of `checkpoint` (a model_dir, a prefix or an original TF1
    checkpoint), EMA shadows first when `use_ema`.

    Returns:
        (keras.Model, a one-line description of what was read).
    """
    derivations.require_model_name(cfg.model_name)
    model = model_from_config(cfg)
    description = checkpoints.load_inference_weights(model, checkpoint, prefer_ema=use_ema, what=what,
                                                     model_name=cfg.model_name)
    return model, description
