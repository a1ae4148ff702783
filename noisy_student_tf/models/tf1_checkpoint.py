"""Reading and writing checkpoints of the original TF1 code (name-based: the EMA shadows of upstream `main.py`,
`model_fn`, the mapping of `utils.py`, `get_assignment_map_from_checkpoint`, the scopes of `efficientnet_model.py`).

Upstream stores every variable under `<model_name>/...` (student) or `teacher_model/<model_name>/...`
(online teacher), with `<var>/ExponentialMovingAverage` shadows of all trainable variables and BN statistics.
`load_tf1_checkpoint` fills a model from built by `efficientnet.build_model` from such a checkpoint (EMA
shadows preferred, raw variables as a fallback: the released L2 checkpoints hold only EMA tensors);
`save_tf1_checkpoint` writes a model's weights back under those names so the original tools can read them.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import tensorflow as tf

from noisy_student_tf import storage
from noisy_student_tf.errors import CheckpointError

EMA_SUFFIX = "ExponentialMovingAverage"
OPTIMIZER_SUFFIXES = ("RMSProp", "RMSProp_1")  # TF1 RMSProp slots (upstream `utils.py`, `build_optimizer`)
TEACHER_SCOPE = "teacher_model"
GLOBAL_STEP = "global_step"

_BLOCK_LAYER = re.compile(r"blocks_(\d+)_(\w+)")


def tf1_layer_scope(layer_name: str, block_has_expand: bool) -> str | None:
    """Upstream variable scope (relative to the model scope) of one of our layers; None for weightless ones.

    TF1 uniquifies layer names per scope in call order, so inside a block the n-th conv is `conv2d_<n-1>` and
    the n-th BN `tpu_batch_normalization_<n-1>`; a block without expansion has one conv and one BN fewer.
    """
    fixed = {
        "stem_conv": "stem/conv2d",
        "stem_bn": "stem/tpu_batch_normalization",
        "head_conv": "head/conv2d",
        "head_bn": "head/tpu_batch_normalization",
        "head_dense": "head/dense",
    }
    if layer_name in fixed:
        return fixed[layer_name]
    match = _BLOCK_LAYER.fullmatch(layer_name)
    if not match:
        return None
    index, part = match.groups()
    shift = 1 if block_has_expand else 0
    relative = {
        "expand_conv": "conv2d",
        "expand_bn": "tpu_batch_normalization",
        "depthwise_conv": "depthwise_conv2d",
        "depthwise_bn": _numbered("tpu_batch_normalization", shift),
        "se_reduce": "se/conv2d",
        "se_expand": "se/conv2d_1",
        "project_conv": _numbered("conv2d", shift),
        "project_bn": _numbered("tpu_batch_normalization", 1 + shift),
    }.get(part)
    return None if relative is None else f"blocks_{index}/{relative}"


def _numbered(name: str, n: int) -> str:
    """TF1's uniquified layer name: the first is `name`, later ones `name_1`, `name_2`, ..."""
    return f"{name}_{n}" if n else name


def tf1_weight_names(model) -> list[tuple[object, str]]:
    """(Keras variable, upstream name relative to the model scope) for every weight of the model."""
    layer_names = {layer.name for layer in model.layers}
    pairs = []
    for layer in model.layers:
        if not layer.weights:
            continue
        match = _BLOCK_LAYER.fullmatch(layer.name)
        has_expand = bool(match) and f"blocks_{match.group(1)}_expand_conv" in layer_names
        scope = tf1_layer_scope(layer.name, has_expand)
        if scope is None:
            raise ValueError(f"layer {layer.name!r} has weights but no upstream name; is this an EfficientNet "
                             "built by noisy_student_tf.models.build_model?")
        for variable in layer.weights:
            leaf = variable.name
            if scope.endswith("depthwise_conv2d") and leaf == "kernel":
                leaf = "depthwise_kernel"
            pairs.append((variable, f"{scope}/{leaf}"))
    return pairs


def resolve_checkpoint_path(path: str) -> str:
    """Accepts a checkpoint prefix, one of its files, or a directory with a `checkpoint` index file."""
    if not path:
        raise CheckpointError("no checkpoint path given")
    path = re.sub(r"\.(index|meta|data-\d{5}-of-\d{5})$", "", path)
    if storage.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            # The original SVHN teacher tarball unpacks to teacher_ckpt/model.ckpt.* without an index file.
            prefixes = [name[:-len(".index")] for name in storage.glob(storage.join(path, "*.index"))]
            if len(prefixes) == 1:
                return prefixes[0]
            raise CheckpointError(
                f"checkpoint directory {path!r} holds no usable checkpoint (no 'checkpoint' file naming an "
                "existing model.ckpt-*). Pass the checkpoint prefix itself, e.g. DIR/model.ckpt-1000.")
        return latest
    if storage.exists(path + ".index"):
        return path
    raise CheckpointError(
        f"checkpoint {path!r} not found: expected the file {path}.index. Give a checkpoint prefix "
        "(e.g. ckpt/teacher_ckpt/model.ckpt) or a directory holding a 'checkpoint' file.")


def read_checkpoint_shapes(prefix: str) -> tuple[object, dict[str, list[int]]]:
    try:
        # The reader of a prefix itself: tf.train.load_checkpoint first asks whether the prefix is a directory,
        # which TensorFlow's ram:// filesystem answers yes for any name prefix.
        reader = tf.compat.v1.train.NewCheckpointReader(prefix)
        return reader, reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as e:
        raise CheckpointError(f"cannot read checkpoint {prefix!r}: {e}") from None


def model_scopes(names) -> list[str]:
    """Scopes of EfficientNet models in a checkpoint, e.g. ['efficientnet-b0', 'teacher_model/efficientnet-b0']."""
    scopes = set()
    for name in names:
        match = re.match(r"^(.*?)/stem/conv2d/kernel(/|$)", name)
        if match:
            scopes.add(match.group(1))
    return sorted(scopes)


def _choose_scope(names, model_name: str, scope: str, prefix: str) -> str:
    student, teacher = model_name, f"{TEACHER_SCOPE}/{model_name}"
    present = model_scopes(names)
    wanted = {"student": [student], "teacher": [teacher], "auto": [student, teacher]}.get(scope)
    if wanted is None:
        raise ValueError(f"scope must be 'student', 'teacher' or 'auto', got {scope!r}")
    for candidate in wanted:
        if candidate in present:
            return candidate
    found = ", ".join(present) if present else "no EfficientNet weights at all"
    raise CheckpointError(
        f"checkpoint {prefix!r} holds no {' or '.join(wanted)} weights (it holds: {found}). "
        "Use the --model_name the checkpoint was trained with.")


@dataclasses.dataclass
class LoadReport:
    checkpoint: str
    scope: str
    loaded: int
    from_ema: int
    from_raw: int
    leftover: list[str]  # tensors under the scope that no model weight used (other than EMA/optimizer copies)

    def summary(self) -> str:
        text = (f"loaded {self.loaded} tensors of {self.scope}/ from {self.checkpoint} "
                f"({self.from_ema} EMA shadows, {self.from_raw} raw variables)")
        if self.leftover:
            shown = ", ".join(self.leftover[:10]) + (" ..." if len(self.leftover) > 10 else "")
            text += f"; {len(self.leftover)} checkpoint tensors unused: {shown}"
        return text


def infer_num_classes(path: str, model_name: str | None = None, scope: str = "auto") -> int:
    """Number of classes of the classifier stored in a TF1 checkpoint."""
    prefix = resolve_checkpoint_path(path)
    _, shapes = read_checkpoint_shapes(prefix)
    if model_name is None:
        model_name = infer_model_name(path)
    base = _choose_scope(shapes, model_name, scope, prefix) + "/head/dense/bias"
    for name in (f"{base}/{EMA_SUFFIX}", base):
        if name in shapes:
            return int(shapes[name][0])
    raise CheckpointError(f"checkpoint {prefix!r} has no classifier tensor {base}")


def infer_model_name(path: str) -> str:
    """The model name of the (single) EfficientNet in a TF1 checkpoint, ignoring a teacher scope."""
    prefix = resolve_checkpoint_path(path)
    _, shapes = read_checkpoint_shapes(prefix)
    names = sorted({s.split("/")[-1] for s in model_scopes(shapes)})
    students = [s for s in model_scopes(shapes) if not s.startswith(TEACHER_SCOPE + "/")]
    if len(students) == 1:
        return students[0]
    if len(names) == 1:
        return names[0]
    raise CheckpointError(
        f"cannot tell the model name of checkpoint {prefix!r} (it holds: {', '.join(names) or 'none'}); "
        "pass --model_name")


def load_tf1_checkpoint(model, path: str, *, model_name: str | None = None, scope: str = "auto",
                        prefer_ema: bool = True) -> LoadReport:
    """Fills `model` from an original TF1 checkpoint; every model weight must be found with its shape.

    scope: 'student' (`<model_name>/...`), 'teacher' (`teacher_model/<model_name>/...`) or 'auto' (student if
    present, else teacher). With prefer_ema each weight comes from its `/ExponentialMovingAverage` shadow when
    the checkpoint has one, else from the raw variable (and the reverse without prefer_ema).
    """
    model_name = model_name or model.name
    prefix = resolve_checkpoint_path(path)
    reader, shapes = read_checkpoint_shapes(prefix)
    chosen = _choose_scope(shapes, model_name, scope, prefix)

    missing, mismatched, plan, used = [], [], [], set()
    from_ema = 0
    for variable, relative in tf1_weight_names(model):
        base = f"{chosen}/{relative}"
        ema = f"{base}/{EMA_SUFFIX}"
        candidates = (ema, base) if prefer_ema else (base, ema)
        name = next((c for c in candidates if c in shapes), None)
        if name is None:
            missing.append(base)
            continue
        if tuple(shapes[name]) != tuple(variable.shape):
            mismatched.append((name, tuple(shapes[name]), tuple(variable.shape)))
            continue
        used.add(base)
        from_ema += name == ema
        plan.append((variable, name))

    if mismatched:
        raise CheckpointError(_mismatch_message(prefix, mismatched))
    if missing:
        shown = "\n  ".join(missing[:10]) + ("\n  ..." if len(missing) > 10 else "")
        raise CheckpointError(
            f"checkpoint {prefix!r} lacks {len(missing)} tensor(s) the model needs (neither the raw variable "
            f"nor its /{EMA_SUFFIX} shadow):\n  {shown}\nIs it a checkpoint of another architecture "
            "(check --model_name, --width_coefficient, --depth_coefficient)?")

    for variable, name in plan:
        variable.assign(np.asarray(reader.get_tensor(name), dtype=variable.dtype))

    derived = {f"{b}/{s}" for b in used for s in (EMA_SUFFIX, *OPTIMIZER_SUFFIXES)}
    leftover = sorted(n for n in shapes if n.startswith(chosen + "/") and n not in used and n not in derived)
    return LoadReport(prefix, chosen, len(plan), from_ema, len(plan) - from_ema, leftover)


def _mismatch_message(prefix: str, mismatched) -> str:
    lines = [f"checkpoint {prefix!r} does not fit the model: {len(mismatched)} tensor(s) have another shape:"]
    lines += [f"  {name}: checkpoint {list(got)}, model {list(want)}" for name, got, want in mismatched[:10]]
    for name, got, want in mismatched:
        if "head/dense/" in name and got[-1] != want[-1]:
            lines.append(f"The checkpoint was trained with {got[-1]} classes and the model has {want[-1]}: "
                         f"set --num_label_classes={got[-1]}.")
            break
    else:
        lines.append("Is it a checkpoint of another architecture (check --model_name, --width_coefficient, "
                     "--depth_coefficient)?")
    return "\n".join(lines)


def save_tf1_checkpoint(model, prefix: str, *, model_name: str | None = None, scope: str = "student",
                        ema_values: dict | None = None, global_step: int = 0,
                        overwrite: bool = False) -> str:
    """Writes the model's weights as an upstream TF1 checkpoint at `prefix` (e.g. DIR/model.ckpt-0).

    Every weight is written under its raw name and as `/ExponentialMovingAverage` (the values in `ema_values`,
    keyed by Keras variable path, or the weights themselves), plus `global_step`, so upstream eval/predict
    (which read EMA shadows) and teacher initialisation accept it. The directory's `checkpoint` file is
    updated to name it. Files appear atomically: the `.index` file, written last, marks a complete checkpoint.
    """
    model_name = model_name or model.name
    scopes = {"student": model_name, "teacher": f"{TEACHER_SCOPE}/{model_name}"}
    if scope not in scopes:
        raise ValueError(f"scope must be 'student' or 'teacher', got {scope!r}")
    final_index, final_data = prefix + ".index", prefix + ".data-00000-of-00001"
    if not overwrite and (storage.exists(final_index) or storage.exists(final_data)):
        raise CheckpointError(f"checkpoint {prefix!r} already exists; choose another output path")

    names, tensors = [], []
    for variable, relative in tf1_weight_names(model):
        name = f"{scopes[scope]}/{relative}"
        value = np.asarray(variable.numpy())
        shadow = value if ema_values is None else np.asarray(ema_values[variable.path], dtype=value.dtype)
        names += [name, f"{name}/{EMA_SUFFIX}"]
        tensors += [value, shadow]
    names.append(GLOBAL_STEP)
    tensors.append(np.asarray(global_step, dtype=np.int64))

    directory = storage.parent(storage.absolute(prefix))
    tmp = storage.temp_path_for(prefix)
    try:
        tf.raw_ops.SaveV2(prefix=tmp, tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors)
        storage.remove(final_index)  # never leave an old index beside new data
        storage.rename(tmp + ".data-00000-of-00001", final_data)
        storage.rename(tmp + ".index", final_index)
    finally:
        for leftover in storage.glob(tmp + ".*"):
            storage.remove(leftover)

    state = tf.train.get_checkpoint_state(directory)
    base = storage.basename(prefix)
    previous = [storage.relative(p, directory) for p in (state.all_model_checkpoint_paths if state else [])]
    write_checkpoint_state(directory, base, [p for p in previous if p != base] + [base])
    return prefix


def write_checkpoint_state(directory: str, latest: str, kept: list[str]) -> None:
    """The directory's `checkpoint` file (a CheckpointState text proto) naming `latest` and `kept`, relative to
    `directory` as Estimator writes them (so the directory can be moved), written atomically. TF's own
    `update_checkpoint_state` makes URLs relative with local-path rules (`ram://d/../../model.ckpt-0`)."""
    lines = [f'model_checkpoint_path: "{latest}"'] + [f'all_model_checkpoint_paths: "{name}"' for name in kept]
    storage.write_text(storage.join(directory, "checkpoint"), "".join(line + "\n" for line in lines))
