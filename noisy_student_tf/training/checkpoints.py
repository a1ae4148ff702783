"""Loading inference weights (EMA first) from any checkpoint a user may hand us (spec §5.9, §5.10).

Accepted: a model_dir (its latest checkpoint), a checkpoint prefix, or a checkpoint file. Our own training
checkpoints are object-based (`model`, `ema`, ... entries); original TF1 checkpoints are name-based and go
through `models.tf1_checkpoint`.
"""

from __future__ import annotations

import tensorflow as tf

from noisy_student_tf.errors import CheckpointError, first_line
from noisy_student_tf.models import tf1_checkpoint
from noisy_student_tf.training.ema import checkpoint_key

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def is_object_checkpoint(prefix: str) -> bool:
    _, shapes = tf1_checkpoint.read_checkpoint_shapes(prefix)
    return OBJECT_GRAPH_KEY in shapes


def load_inference_weights(model, path: str, *, prefer_ema: bool = True, what: str = "checkpoint",
                           model_name: str | None = None) -> str:
    """Fills `model` with the weights a checkpoint holds for inference; returns a one-line description.

    Every model weight must be found with its shape, or a CheckpointError names what is wrong.
    """
    prefix = tf1_checkpoint.resolve_checkpoint_path(path)
    if not is_object_checkpoint(prefix):
        report = tf1_checkpoint.load_tf1_checkpoint(model, prefix, model_name=model_name, prefer_ema=prefer_ema)
        return f"{what}: original TF1 checkpoint, {report.summary()}"

    try:
        status = tf.train.Checkpoint(model=model).read(prefix)
        status.assert_existing_objects_matched().expect_partial()  # optimizer, EMA etc. are read below
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        raise CheckpointError(
            f"{what} {prefix!r} does not fit the model ({model.name}, {model.output_shape[-1]} classes): "
            f"{first_line(e)[:300]}. Check --model_name, --num_label_classes, --width_coefficient "
            "and --depth_coefficient against the run that wrote it.") from None
    if not prefer_ema:
        return f"{what}: {prefix} (raw weights)"
    # Upstream restores each averaged variable from its shadow and the others (frozen ones) as they are.
    reader, shapes = tf1_checkpoint.read_checkpoint_shapes(prefix)
    from_ema = 0
    for variable in model.weights:
        key = checkpoint_key(variable.path)
        if key in shapes and tuple(shapes[key]) == tuple(variable.shape):
            variable.assign(reader.get_tensor(key))
            from_ema += 1
    return f"{what}: {prefix} ({from_ema} of {len(model.weights)} weights from EMA shadows)"
