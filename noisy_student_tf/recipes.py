"""Named recipes of the whole method: `DriverConfig`s that `iterate.py --recipe=NAME`, the shell scripts and
`experiments/` all start from, in one place.

    from noisy_student_tf import recipes
    from noisy_student_tf.jobs import iterate

    summary = iterate.run(recipes.get("digits", output_dir="/tmp/digits", seed=1))

Change any field with keyword arguments (or `dataclasses.replace` on the result). On the command line, a flag
given next to `--recipe` wins over the recipe's value; `--train_flags` change the recipe's network, input and
runtime options.
"""

from __future__ import annotations

import dataclasses

from noisy_student_tf.config import AugmentConfig, DriverConfig, ModelOptions, OptimConfig
from noisy_student_tf.errors import UserError


def digits() -> DriverConfig:
    """The main job: scikit-learn's digits (100 labeled images, 997 unlabeled), on a CPU in minutes.

    EfficientNet-B0 at half width and depth (the CPU budget), teacher and students of the same size. The teacher
    sees 32 labeled images per step for 400 steps; each student trains from scratch for 600 steps on 16 labeled
    + 32 pseudo-labelled images per step (more steps of smaller batches beat fewer large ones in the same time
    here), with RandAugment (M=5), dropout and stochastic depth; three iterations.
    """
    return DriverConfig(
        task_name="digits", label_data_dir="data/digits/proc", unlabel_data_dir="data/digits/proc/unlabeled",
        output_dir="ckpt/digits", iterations=3, unlabel_ratio=2.0, train_batch_size=16, teacher_train_batch_size=32,
        teacher_train_steps=400, student_train_steps=600,
        model_options=ModelOptions(width_coefficient=0.5, depth_coefficient=0.5))


# Upstream local_scripts/svhn/run.sh and svhn_offline.sh: b0 -> b0, 128 labeled + 640 unlabeled images per
# step, soft targets (T = 1), RandAugment M=5, final_base_lr 2e-4, weight decay 1e-4; filter_unlabel.sh keeps
# predictions >= 0.3 and balances to 53113 images per class; main.py's 109474 steps.
SVHN_STEPS = 109474


def svhn() -> DriverConfig:
    """The original SVHN recipe (upstream `local_scripts/svhn/`), offline pseudo-labels, one iteration.

    Upstream downloaded its teacher; here the teacher is trained with the students' settings
    (local_scripts/svhn/train_teacher.sh). Expect days on a GPU, not minutes.
    """
    return DriverConfig(
        task_name="svhn", label_data_dir="data/svhn/proc", unlabel_data_dir="data/svhn/proc/unlabeled",
        output_dir="ckpt/svhn", iterations=1, num_label_classes=10, train_batch_size=128,
        teacher_train_steps=SVHN_STEPS, student_train_steps=SVHN_STEPS, unlabel_ratio=5.0, teacher_softmax_temp=1.0,
        num_image=53113, min_threshold=0.3,
        augment=AugmentConfig(augment_name="v1", unl_augment_name="v1", randaug_mag=5),
        optim=OptimConfig(final_base_lr=0.0002, weight_decay=1e-4))


# Upstream local_scripts/imagenet/train.sh's per-student rows: (unlabel_ratio, train_ratio, augment_name,
# randaug_mag); filter_unlabel.sh keeps predictions >= 0.3 and balances to 130000 images per class.
IMAGENET_STUDENTS = {
    "efficientnet-b0": (1, 2, None, 27), "efficientnet-b1": (3, 2, None, 27), "efficientnet-b2": (3, 2, "v1", 6),
    "efficientnet-b3": (3, 2, "v1", 12), "efficientnet-b4": (3, 2, "v1", 15), "efficientnet-b5": (3, 1, "v1", 18),
    "efficientnet-b6": (3, 1, "v1", 24), "efficientnet-b7": (3, 1, "v1", 27),
}


def imagenet(student: str = "efficientnet-b0") -> DriverConfig:
    """The original ImageNet recipe (upstream `local_scripts/imagenet/`) for one student size: main.py's
    defaults (4096 images per step, 109474 steps, weight decay 1e-5), soft targets, the student's row of
    train.sh, one iteration with a teacher of the same size. Fill in the data directories."""
    if student not in IMAGENET_STUDENTS:
        raise UserError(f"no ImageNet recipe for {student!r}: choose one of {', '.join(IMAGENET_STUDENTS)}")
    unlabel_ratio, train_ratio, augment_name, randaug_mag = IMAGENET_STUDENTS[student]
    return DriverConfig(
        task_name="imagenet", label_data_dir="data/imagenet/proc",
        unlabel_data_dir="data/imagenet/proc/unlabeled", output_dir="ckpt/imagenet", iterations=1,
        num_label_classes=1000, teacher_model_name=student, train_batch_size=4096, teacher_train_steps=109474,
        student_train_steps=109474, unlabel_ratio=float(unlabel_ratio), teacher_softmax_temp=1.0, num_image=130000,
        min_threshold=0.3,
        augment=AugmentConfig(augment_name=augment_name, unl_augment_name=augment_name, randaug_mag=randaug_mag),
        optim=OptimConfig(train_ratio=float(train_ratio), weight_decay=1e-5))


RECIPES = {"digits": digits, "svhn": svhn, "imagenet": imagenet}


def get(name: str, **changes) -> DriverConfig:
    """The recipe `name` (digits, svhn or imagenet), with `changes` applied to its top-level fields.

    Args:
        name: a key of `RECIPES`.
        **changes: `DriverConfig` fields to replace, e.g. `output_dir`, `seed`, `iterations`.

    Returns:
        The `DriverConfig` to pass to `noisy_student_tf.jobs.iterate.run`.
    """
    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r}: choose one of {', '.join(RECIPES)}")
    return dataclasses.replace(RECIPES[name](), **changes)
