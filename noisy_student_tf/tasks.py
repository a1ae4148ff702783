"""Per-task facts (upstream task_info.py, spec §9.1, §1.1): classes, sizes, normalisation, flips."""

from __future__ import annotations

import dataclasses

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
    # small-image model and 32x32 input, and is never flipped (spec §1.1, §9.3).
    "svhn": TaskInfo("svhn", _x255((0.4376821, 0.4437697, 0.47280442)),
                     _x255((0.19803012, 0.20101562, 0.19703614)),
                     num_train_images=69257, num_eval_images=4000, num_test_images=26032,
                     num_classes=10, small_image_model=True, image_size=32, flip=False),
}


def get_task(name: str) -> TaskInfo:
    if name not in TASKS:
        raise UserError(f"unknown --task_name={name!r}: choose one of {', '.join(TASKS)}")
    return TASKS[name]
