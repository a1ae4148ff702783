"""Exponential moving average of the weights, as upstream's tf.train.ExponentialMovingAverage in
`main.py`, `model_fn`, over `utils.py`, `get_all_variable`.

decay = min(moving_average_decay, (1 + n) / (10 + n)) with n the global step after the update;
shadow <- shadow - (1 - decay) * (shadow - variable). Shadows cover the trainable weights and the BN moving
statistics and start at the variables' values when the EMA is created (after any checkpoint initialisation),
as TF1's shadows started at the variables' initial values. They are keyed by the variable's path, so a
checkpoint's shadows can be matched to any model of the same architecture (frozen or not;
`models.restore.ema_shadow_key`).
"""

from __future__ import annotations

import keras
import tensorflow as tf


def ema_variables(model) -> list:
    """Trainable weights plus BN moving statistics (upstream get_ema_vars), in model order."""
    return [v for v in model.weights
            if v.trainable or v.path.endswith(("moving_mean", "moving_variance"))]


class WeightEMA(tf.Module):
    """Shadow copies of `variables`; create it inside the strategy scope of the model."""

    def __init__(self, variables, decay: float, name: str = "ema"):
        super().__init__(name=name)
        self.decay = float(decay)
        variables = tuple(variables)
        # A function, not an attribute, so the model's variables are not checkpointed a second time here.
        self._tracked = lambda: variables
        # Every replica computes the same update from identical (mirrored, synchronised) values. Keras variables,
        # so that a Keras model holding them saves them (save_weights, BackupAndRestore); in a tf.train.Checkpoint
        # they are stored as tf.Variables are.
        self.shadows = {v.path: keras.Variable(tf.convert_to_tensor(v), trainable=False,
                                               aggregation="only_first_replica",
                                               name=v.path.replace("/", "_") + "_ema")
                        for v in variables}

    def reset(self) -> None:
        """Sets every shadow to its variable's current value."""
        for variable in self._tracked():
            self.shadows[variable.path].assign(tf.cast(variable, self.shadows[variable.path].dtype))

    def update(self, num_updates):
        n = tf.cast(num_updates, tf.float32)
        decay = tf.minimum(self.decay, (1.0 + n) / (10.0 + n))
        for variable in self._tracked():
            shadow = self.shadows[variable.path]
            shadow.assign_sub((1.0 - decay) * (shadow - tf.cast(variable, shadow.dtype)))

    def values(self) -> dict:
        """{Keras variable path: shadow value} of the tracked variables."""
        return {path: shadow.numpy() for path, shadow in self.shadows.items()}
