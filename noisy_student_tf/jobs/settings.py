"""From absl flags to the library's configuration objects, with upstream main()'s derived values (spec §1.1)."""

from __future__ import annotations

import dataclasses

from absl import logging

from noisy_student_tf.data import pipeline, preprocessing
from noisy_student_tf.errors import UserError
from noisy_student_tf.flags import IGNORED_FLAGS
from noisy_student_tf.models import MODEL_TABLE, default_image_size
from noisy_student_tf.tasks import TaskInfo, get_task
from noisy_student_tf.training.schedule import make_schedule
from noisy_student_tf.training.trainer import ModelConfig, TrainConfig


@dataclasses.dataclass(frozen=True)
class Settings:
    task: TaskInfo
    model: ModelConfig
    num_train_images: int
    num_eval_images: int | None
    num_test_images: int | None
    teacher_image_size: int | None


def _require_model_name(name: str, flag: str) -> str:
    if name not in MODEL_TABLE:
        raise UserError(f"--{flag}={name!r} is not a model: choose one of {', '.join(MODEL_TABLE)}")
    return name


def report_ignored_flags(flag_values) -> None:
    for name in IGNORED_FLAGS:
        flag = flag_values[name]
        if flag.present and flag.value != flag.default:
            logging.warning("--%s=%s only configured TPUs upstream (or was never read); ignored", name, flag.value)


def resolve(F) -> Settings:
    """Upstream main(): svhn overrides, data set sizes from the task, input size from the model table."""
    task = get_task(F.task_name)
    _require_model_name(F.model_name, "model_name")
    num_classes = task.num_classes or F.num_label_classes
    small = task.small_image_model or F.small_image_model
    image_size = task.image_size or F.input_image_size or default_image_size(F.model_name, small)
    if num_classes < 1:
        raise UserError(f"--num_label_classes must be positive, got {num_classes}")
    model = ModelConfig(F.model_name, num_classes, image_size, small_image_model=small,
                        dropout_rate=F.dropout_rate, stochastic_depth_rate=F.stochastic_depth_rate,
                        width_coefficient=F.width_coefficient, depth_coefficient=F.depth_coefficient)
    teacher_size = None
    if F.teacher_model_name:
        _require_model_name(F.teacher_model_name, "teacher_model_name")
        # Spec §9.4: the teacher's own resolution, except for small-image models (input_image_size).
        teacher_size = image_size if small else MODEL_TABLE[F.teacher_model_name][2]
    return Settings(task=task, model=model,
                    num_train_images=F.num_train_images or task.num_train_images,
                    num_eval_images=F.num_eval_images or task.num_eval_images,
                    num_test_images=F.num_test_images or (task.num_test_images if task.name != "imagenet" else None),
                    teacher_image_size=teacher_size)


def _positive(F, *names):
    for name in names:
        if getattr(F, name) is None or getattr(F, name) <= 0:
            raise UserError(f"--{name} must be positive, got {getattr(F, name)}")


def train_config(F, settings: Settings, seed: int) -> TrainConfig:
    _positive(F, "train_batch_size", "train_steps", "save_checkpoints_steps", "iterations_per_loop",
              "keep_checkpoint_max")
    if not F.model_dir:
        raise UserError("--model_dir is required: where checkpoints and summaries go")
    if not settings.num_train_images:
        raise UserError("--num_train_images is required for this task (it defines an epoch)")
    if not 0 < F.label_data_sample_prob <= 1:
        raise UserError(f"--label_data_sample_prob must be in (0, 1], got {F.label_data_sample_prob}")
    if F.unlabel_ratio < 0:
        raise UserError(f"--unlabel_ratio must be >= 0, got {F.unlabel_ratio}")
    if F.unlabel_ratio and not F.unlabel_data_dir:
        raise UserError("--unlabel_ratio > 0 needs --unlabel_data_dir")
    if F.teacher_softmax_temp != -1 and F.teacher_softmax_temp <= 0:
        raise UserError(f"--teacher_softmax_temp must be -1 (hard labels) or positive, got {F.teacher_softmax_temp}")
    if F.teacher_model_name and not F.unlabel_ratio:
        logging.warning("--teacher_model_name without --unlabel_ratio: the teacher is never used")
    if F.init_model and F.teacher_model_name:
        logging.warning("--init_model is ignored with a teacher (as upstream): the student starts from scratch")
    schedule = make_schedule(base_learning_rate=F.base_learning_rate, train_batch_size=F.train_batch_size,
                             num_train_images=settings.num_train_images, train_steps=F.train_steps,
                             train_last_step_num=F.train_last_step_num, train_ratio=F.train_ratio,
                             final_base_lr=F.final_base_lr, label_data_sample_prob=F.label_data_sample_prob)
    return TrainConfig(
        model=settings.model, schedule=schedule, model_dir=F.model_dir, train_batch_size=F.train_batch_size,
        mean=settings.task.mean, std=settings.task.std, base_learning_rate=F.base_learning_rate,
        unlabel_ratio=F.unlabel_ratio, teacher_softmax_temp=F.teacher_softmax_temp,
        label_smoothing=F.label_smoothing, label_data_sample_prob=F.label_data_sample_prob,
        weight_decay=F.weight_decay, moving_average_decay=F.moving_average_decay,
        teacher_model_name=F.teacher_model_name if F.unlabel_ratio else None,
        teacher_model_path=F.teacher_model_path, teacher_image_size=settings.teacher_image_size,
        init_model=F.init_model and not F.teacher_model_name, init_model_path=F.init_model_path,
        fix_layer_num=F.fix_layer_num, save_checkpoints_steps=F.save_checkpoints_steps,
        keep_checkpoint_max=F.keep_checkpoint_max, iterations_per_loop=F.iterations_per_loop,
        log_step_count_steps=F.log_step_count_steps, skip_host_call=F.skip_host_call,
        jit_compile=F.jit_compile, seed=seed)


def input_config(F, settings: Settings, seed: int) -> pipeline.TrainInputConfig:
    if not F.label_data_dir:
        raise UserError("--label_data_dir is required: the directory of the labeled train* shards")
    online = bool(F.teacher_model_name and F.unlabel_ratio)
    return pipeline.TrainInputConfig(
        label_data_dir=F.label_data_dir, num_classes=settings.model.num_classes,
        image_size=settings.model.image_size, small_image_model=settings.model.small_image_model,
        unlabel_data_dir=F.unlabel_data_dir, unlabel_ratio=F.unlabel_ratio,
        label_data_sample_prob=F.label_data_sample_prob,
        teacher_image_size=settings.teacher_image_size if online else None,
        stored_predictions=bool(F.unlabel_ratio) and not online,
        augment_name=preprocessing.check_augment_name(F.augment_name),
        unl_augment_name=preprocessing.unlabeled_augment_name(F.augment_name, F.unl_aug),
        randaug_layer=F.randaug_layer, randaug_mag=F.randaug_mag, cutout_op=F.cutout_op,
        contrast_mode=F.randaug_contrast, remove_aug=F.remove_aug, flip=settings.task.flip,
        use_cache=F.use_cache, num_train_shards=F.num_train_shards, seed=seed)
