"""RMSProp with the TF1 semantics the original code trained with (upstream `utils.py`, `build_optimizer`).

Keras' RMSprop differs in three ways: its mean-square slot starts at zero, epsilon is added outside the
square root, and the learning rate is applied outside the momentum buffer. TF1's kernel:

    ms  <- ms + (g^2 - ms) * (1 - decay)          # ms starts at ONE
    mom <- momentum * mom + lr * g / sqrt(ms + epsilon)
    var <- var - mom

Each variable's update is that kernel itself (`ResourceApplyRMSProp`, which TF1's optimizer ran), so the
results are bit-equal to TF1's, in one op per variable instead of the dozen the formula spells.
"""

import keras
import tensorflow as tf

# Upstream utils.build_optimizer: RMSPropOptimizer(lr, decay=0.9, momentum=0.9, epsilon=1e-3).
RMSPROP_DECAY = 0.9
RMSPROP_MOMENTUM = 0.9
RMSPROP_EPSILON = 1e-3


@keras.saving.register_keras_serializable(package="noisy_student_tf")
class TF1RMSProp(keras.optimizers.Optimizer):
    """tf.compat.v1.train.RMSPropOptimizer as a Keras 3 optimizer (works under any tf.distribute strategy)."""

    def __init__(self, learning_rate=0.016, decay=RMSPROP_DECAY, momentum=RMSPROP_MOMENTUM,
                 epsilon=RMSPROP_EPSILON, name="RMSProp", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.decay = decay
        self.momentum = momentum
        self.epsilon = epsilon

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._mean_squares = [self.add_variable_from_reference(v, "rms", initializer="ones") for v in variables]
        self._moments = [self.add_variable_from_reference(v, "momentum", initializer="zeros") for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        ms, mom = self._mean_squares[index], self._moments[index]
        dtype = variable.dtype
        tf.raw_ops.ResourceApplyRMSProp(
            var=_handle(variable), ms=_handle(ms), mom=_handle(mom), lr=tf.cast(learning_rate, dtype),
            rho=tf.constant(self.decay, dtype), momentum=tf.constant(self.momentum, dtype),
            epsilon=tf.constant(self.epsilon, dtype), grad=tf.cast(gradient, dtype))

    def get_config(self):
        config = super().get_config()
        config.update({"decay": self.decay, "momentum": self.momentum, "epsilon": self.epsilon})
        return config


def _handle(variable):
    """The resource handle of a Keras or tf variable (under a distribution strategy's update, the local copy's)."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle
