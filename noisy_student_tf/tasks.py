"""Per-task facts (upstream `task_info.py`, and the svhn overrides of `main.py`, `main`): classes, sizes,
normalisation, flips.

`--task_name` is one of the built-in tasks below, or the path of a `task_info.json` describing your own data
(prepro_images.py writes one; `TaskInfo` fields as keys).
"""

from __future__ import annotations

import dataclasses
import json
import posixpath

from noisy_student_tf.errors import UserError


@dataclasses.dataclass(frozen=True)
class TaskInfo:
    name: str
    mean: tuple[float, float, float]  # per channel, in 0..255 units
    std: tuple[float, float, float]
    num_train_images: int | None
    num_eval_images: int | None
    num_test_images: int | None
    num_classes: int | None = None  # None: --num_label_classes decides
    small_image_model: bool = False  # forced on (svhn) or left to the flag
    image_size: int | None = None  # forced input size, or None for the model's resolution
    flip: bool = True  # random horizontal flip in training (never for digits)


def _x255(values):
    return tuple(v * 255.0 for v in values)


TASKS = {
    # Upstream task_info.py: ImageNet statistics; 1281167 train / 50000 eval images, no test size.
    "imagenet": TaskInfo("imagenet", _x255((0.485, 0.456, 0.406)), _x255((0.229, 0.224, 0.225)),
                         num_train_images=1281167, num_eval_images=50000, num_test_images=None),
    # Upstream: SVHN statistics, 73257 - 4000 train, 4000 dev, 26032 test; svhn forces 10 classes, the
    # small-image model and 32x32 input, and is never flipped (`main.py`, `main`;
    # `preprocessing.py`, `_cifar10_preprocess_for_train`).
    "svhn": TaskInfo("svhn", _x255((0.4376821, 0.4437697, 0.47280442)),
                     _x255((0.19803012, 0.20101562, 0.19703614)),
                     num_train_images=69257, num_eval_images=4000, num_test_images=26032,
                     num_classes=10, small_image_model=True, image_size=32, flip=False),
    # scikit-learn's digits as prepared by prepro_digits.py (data/sources/digits.py): 100 labeled train, 200 dev,
    # 500 test images (997 unlabeled); mean/std over all 1,797 converted 32x32 images (channel_statistics()).
    "digits": TaskInfo("digits", (77.9112, 77.9112, 77.9112), (82.4931, 82.4931, 82.4931),
                       num_train_images=100, num_eval_images=200, num_test_images=500,
                       num_classes=10, small_image_model=True, image_size=32, flip=False),
}


def get_task(name: str) -> TaskInfo:
    if name in TASKS:
        return TASKS[name]
    from noisy_student_tf import storage  # TensorFlow's file layer: imported only when a file is named

    if name.endswith(".json") or storage.isfile(name):
        return load_task_file(name)
    raise UserError(f"unknown --task_name={name!r}: choose one of {', '.join(TASKS)}, or give the path of a "
                    "task_info.json (prepro_images.py writes one)")


def load_task_file(path: str) -> TaskInfo:
    from noisy_student_tf import storage

    text = storage.read_text(path, "--task_name: task file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"--task_name: {path} is not valid JSON ({e})") from None
    fields = {f.name for f in dataclasses.fields(TaskInfo)}
    unknown = set(data) - fields
    missing = {"mean", "std"} - set(data)
    if unknown or missing or not isinstance(data, dict):
        raise UserError(f"--task_name: {path} must be a JSON object with keys from {sorted(fields)} "
                        f"(unknown: {sorted(unknown)}, missing: {sorted(missing)})")
    data.setdefault("name", posixpath.splitext(storage.basename(path))[0])
    for key in ("num_train_images", "num_eval_images", "num_test_images"):
        data.setdefault(key, None)
    try:
        task = TaskInfo(**{**data, "mean": tuple(map(float, data["mean"])), "std": tuple(map(float, data["std"]))})
    except (TypeError, ValueError) as e:
        raise UserError(f"--task_name: {path}: {e}") from None
    if len(task.mean) != 3 or len(task.std) != 3 or min(task.std) <= 0:
        raise UserError(f"--task_name: {path}: mean and std need three values per channel, std > 0")
    return task


def write_task_file(path: str, task: TaskInfo) -> None:
    from noisy_student_tf import storage

    storage.write_text(path, json.dumps(dataclasses.asdict(task), indent=2) + "\n")
