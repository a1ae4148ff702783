"""Upstream main()'s derived values, from plain values to configs: the task's overrides, the input size from the
model table, the teacher's input size. The flag adapters and the iterative driver both use these."""

from __future__ import annotations

from noisy_student_tf.config import ModelConfig, ModelOptions
from noisy_student_tf.errors import UserError
from noisy_student_tf.models import MODEL_TABLE, default_image_size, require_model_name
from noisy_student_tf.tasks import TaskInfo


def model_config(task: TaskInfo, model_name: str, num_label_classes: int,
                 options: ModelOptions = ModelOptions(), flag: str = "model_name") -> ModelConfig:
    """Upstream `main.py`, `main`: svhn-like tasks force the class count, the small-image model and the input
    size; otherwise `--input_image_size`, else the model table's resolution (32 for small-image models)."""
    require_model_name(model_name, flag)
    num_classes = task.num_classes or num_label_classes
    if num_classes < 1:
        raise UserError(f"--num_label_classes must be positive, got {num_classes}")
    small = task.small_image_model or options.small_image_model
    image_size = task.image_size or options.input_image_size or default_image_size(model_name, small)
    return ModelConfig(model_name, num_classes, image_size, small_image_model=small,
                       dropout_rate=options.dropout_rate, stochastic_depth_rate=options.stochastic_depth_rate,
                       width_coefficient=options.width_coefficient, depth_coefficient=options.depth_coefficient)


def teacher_image_size(model: ModelConfig, teacher_model_name: str) -> int:
    """Upstream `data_input.py`: the online teacher gets its own table resolution, except small-image models,
    whose teacher reads the student's input size."""
    require_model_name(teacher_model_name, "teacher_model_name")
    return model.image_size if model.small_image_model else MODEL_TABLE[teacher_model_name][2]

