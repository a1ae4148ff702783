"""A trained network for inference, from any checkpoint a user may hand us: a model_dir (its latest
checkpoint), a checkpoint prefix or file, our own training checkpoints (object-based: `model`, `ema`, ...
entries) or the original TF1 ones (name-based, through `models.tf1_checkpoint`). EMA shadows come first, as
upstream (`utils.py`, `init_from_ckpt`; `main.py`, `model_fn` for eval). Eval, predict, export, the Beam
pipeline and the trainer (teacher and init weights) all load through here."""

from __future__ import annotations

import tensorflow as tf

from noisy_student_tf.config import ModelConfig
from noisy_student_tf.errors import CheckpointError, first_line
from noisy_student_tf.models import tf1_checkpoint
from noisy_student_tf.models.efficientnet import require_model_name
from noisy_student_tf.models.inference import model_from_config


def restore_model(cfg: ModelConfig, checkpoint: str, *, use_ema: bool = True, what: str = "checkpoint"):
    """The network of `cfg` with the weights of `checkpoint`, EMA shadows first when `use_ema`.

    Args:
        cfg: the network.
        checkpoint: a model_dir, a checkpoint prefix or an original TF1 checkpoint.
        use_ema: read the averaged weights where the checkpoint has them.
        what: how errors name the checkpoint (e.g. the flag that gave it).

    Returns:
        (keras.Model, a one-line description of what was read).
    """
    require_model_name(cfg.model_name)
    model = model_from_config(cfg)
    description = load_inference_weights(model, checkpoint, prefer_ema=use_ema, what=what,
                                         model_name=cfg.model_name)
    return model, description


def ema_shadow_key(variable_path: str) -> str:
    """The name under which `training.ema.WeightEMA`'s shadow of a variable appears in a training checkpoint
    (TF escapes '.' as '..' and '/' as '.S')."""
    escaped = variable_path.replace(".", "..").replace("/", ".S")
    return f"ema/shadows/{escaped}/.ATTRIBUTES/VARIABLE_VALUE"


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
        key = ema_shadow_key(variable.path)
        if key in shapes and tuple(shapes[key]) == tuple(variable.shape):
            variable.assign(reader.get_tensor(key))
            from_ema += 1
    return f"{what}: {prefix} ({from_ema} of {len(model.weights)} weights from EMA shadows)"
