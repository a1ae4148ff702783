"""The losses of the original main.py (`model_fn`): labeled CE, the four unlabeled target modes, L2."""

from __future__ import annotations

import tensorflow as tf


def smoothed_one_hot(labels, num_classes: int, label_smoothing: float):
    """onehot * (1 - ls) + ls / C, as tf.losses.softmax_cross_entropy smooths."""
    one_hot = tf.one_hot(labels, num_classes, dtype=tf.float32)
    return one_hot * (1.0 - label_smoothing) + label_smoothing / num_classes


def cross_entropy(targets, logits):
    """Per-example sum_c -target_c * log_softmax(logits)_c."""
    return tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=tf.cast(logits, tf.float32))


def labeled_loss(logits, labels, *, num_classes: int, label_smoothing: float, mask=None):
    """Mean smoothed CE over the labeled batch. With a keep mask (label_data_sample_prob < 1) upstream divides
    the masked sum by the full batch size, not by the number kept (upstream `main.py`, `model_fn`)."""
    per_example = cross_entropy(smoothed_one_hot(labels, num_classes, label_smoothing), logits)
    if mask is None:
        return tf.reduce_mean(per_example)
    return tf.reduce_sum(per_example * mask) / tf.cast(tf.shape(per_example)[0], tf.float32)


def unlabeled_targets(*, num_classes: int, temperature: float, label_smoothing: float,
                      teacher_logits=None, stored_probs=None, stored_labels=None):
    """Upstream `main.py`, `model_fn`. Hard (T = -1): smoothed one-hot of the teacher's argmax (online) or of the
    stored label (offline). Soft: softmax(teacher_logits / T) (online) or probs^(1/T) renormalised (offline)."""
    hard = temperature == -1
    if teacher_logits is not None:
        teacher_logits = tf.stop_gradient(tf.cast(teacher_logits, tf.float32))
        if hard:
            return smoothed_one_hot(tf.argmax(teacher_logits, axis=-1), num_classes, label_smoothing)
        return tf.nn.softmax(teacher_logits / temperature, axis=-1)
    if hard:
        return smoothed_one_hot(stored_labels, num_classes, label_smoothing)
    sharpened = tf.pow(tf.cast(stored_probs, tf.float32), 1.0 / temperature)
    return sharpened / tf.reduce_sum(sharpened, axis=-1, keepdims=True)


def is_decayed(variable) -> bool:
    """Upstream `main.py`, `model_fn`: every trainable weight except batch-norm gamma/beta (dense and SE
    biases included)."""
    return variable.trainable and not variable.path.endswith(("gamma", "beta"))


def weight_decay_loss(variables, weight_decay: float):
    """weight_decay * sum(v^2) / 2 over the decayed variables (an L2 term in the loss, not decoupled)."""
    decayed = [v for v in variables if is_decayed(v)]
    if not decayed or not weight_decay:
        return tf.constant(0.0)
    return weight_decay * tf.add_n([tf.nn.l2_loss(tf.cast(v, tf.float32)) for v in decayed])
