"""The noisy-student objective of one step (upstream `main.py`, `model_fn`): the labeled loss plus `r` times the
unlabeled loss, and the metrics upstream summarises, as a function of the two parts' logits and targets.

The weight decay term is added by the step (it depends on the variables, not on the batch). `eval_sums` is
evaluation's part (upstream `main.py`, `model_fn` in eval mode), shared by the eval job and `NoisyStudent.test_step`."""

from __future__ import annotations

import tensorflow as tf

from noisy_student_tf.training import losses


def accuracy(logits, labels):
    """Share of argmax(logits) == labels."""
    return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32))


def eval_sums(logits, labels, *, num_classes: int, label_smoothing: float) -> dict:
    """One evaluation batch's sums: smoothed cross-entropy ("loss"), top-1 and top-5 hits, and the image count.
    Sums, so that batches of any size (the last one smaller) average to the per-image mean. Upstream's eval loss
    also has the weight decay term, which the caller adds once (it does not depend on the batch)."""
    targets = losses.smoothed_one_hot(labels, num_classes, label_smoothing)
    top1 = tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels)
    top5 = tf.math.in_top_k(labels, logits, min(5, num_classes))
    return {"loss": tf.reduce_sum(losses.cross_entropy(targets, logits)),
            "top_1": tf.reduce_sum(tf.cast(top1, tf.float32)), "top_5": tf.reduce_sum(tf.cast(top5, tf.float32)),
            "count": tf.shape(labels)[0]}


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
