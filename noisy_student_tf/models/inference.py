"""A `ModelConfig` as a Keras model, and the clean forward pass every inference job shares (eval, predict,
export, robustness): normalise the 0..255 image, run the network in inference mode, float32 logits."""

from __future__ import annotations

import tensorflow as tf

from noisy_student_tf.config import ModelConfig
from noisy_student_tf.models.efficientnet import build_model


def normalize(images, mean, std):
    """(x - mean) / std per channel, in 0..255 units, on the device (upstream `main.py`, `model_fn`)."""
    return (tf.cast(images, tf.float32) - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)


def model_from_config(cfg: ModelConfig, *, name: str | None = None, model_name: str | None = None,
                      image_size: int | None = None, synchronized_bn: bool = False):
    """The network of `cfg` (`models.build_model`).

    Args:
        cfg: the network.
        name: the Keras model's name (default: the model name).
        model_name: another architecture with the same overrides (upstream builds an online teacher so).
        image_size: another input size (an online teacher's).
        synchronized_bn: batch statistics over all replicas.

    Returns:
        A functional `keras.Model` from normalised images to float32 logits.
    """
    size = image_size or cfg.image_size
    return build_model(model_name or cfg.model_name, cfg.num_classes, small_image_model=cfg.small_image_model,
                       dropout_rate=cfg.dropout_rate, stochastic_depth_rate=cfg.stochastic_depth_rate,
                       width_coefficient=cfg.width_coefficient, depth_coefficient=cfg.depth_coefficient,
                       input_shape=(size, size, 3), name=name, synchronized_bn=synchronized_bn)


def clean_logits(model, images, mean, std):
    """float32 logits of `model` in inference mode on 0..255 `images` (the clean view)."""
    return tf.cast(model(normalize(images, mean, std), training=False), tf.float32)
