"""The noisy-student objective of one step (upstream `main.py`, `model_fn`): the labeled loss plus `r` times the
unlabeled loss, and the metrics upstream summarises, as a function of the two parts' logits and targets.

The weight decay term is added by the step (it depends on the variables, not on the batch)."""

from __future__ import annotations

import tensorflow as tf

from noisy_student_tf.training import losses


def accuracy(logits, labels):
    """Share of argmax(logits) == labels."""
    return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32))


def noisy_student_loss(lab_logits, labels, *, num_classes: int, label_smoothing: float, mask=None,
                       unl_logits=None, targets=None, unlabel_ratio: float = 0.0, unl_labels=None,
                       soft_targets: bool = False):
    """The data loss of one step and its metrics.

    Args:
        lab_logits, labels: the labeled part: logits [b, C] and 0-based labels [b].
        num_classes, label_smoothing: the labeled loss is label-smoothed cross-entropy.
        mask: keep mask [b] of `--label_data_sample_prob` (None: every labeled example counts).
        unl_logits, targets: the unlabeled part: the student's logits [u, C] and the target distributions [u, C]
            (`losses.unlabeled_targets`); None for supervised training.
        unlabel_ratio: weight of the unlabeled loss (`--unlabel_ratio`).
        unl_labels: the teacher labels stored with the unlabeled images, for the `unl/acc_to_dump` metric (None:
            no such metric).
        soft_targets: whether `targets` are soft (adds the `unl/target_prob` metric, as upstream).

    Returns:
        (data_loss, metrics): `lab_loss + unlabel_ratio * unl_loss` and a dict of scalars under upstream's
        summary names.
    """
    lab_loss = losses.labeled_loss(lab_logits, labels, num_classes=num_classes, label_smoothing=label_smoothing,
                                   mask=mask)
    data_loss, metrics = lab_loss, {}
    if unl_logits is not None:
        unl_loss = tf.reduce_mean(losses.cross_entropy(targets, unl_logits))
        data_loss = lab_loss + unlabel_ratio * unl_loss  # upstream adds the two means, the unlabeled one weighted
        if unl_labels is not None:
            metrics["unl/acc_to_dump"] = accuracy(unl_logits, unl_labels)
        metrics.update({
            "unl/pred_prob": tf.reduce_mean(tf.reduce_max(tf.nn.softmax(unl_logits), -1)),
            "ext/loss": unl_loss,
        })
        if soft_targets:
            metrics["unl/target_prob"] = tf.reduce_mean(tf.reduce_max(targets, -1))
    metrics.update({
        "lab/acc": accuracy(lab_logits, labels),
        "lab/pred_prob": tf.reduce_mean(tf.reduce_max(tf.nn.softmax(lab_logits), -1)),
        "lab/loss": lab_loss,
        "train/data_loss": data_loss,
    })
    return data_loss, metrics
