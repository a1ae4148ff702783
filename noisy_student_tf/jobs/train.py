"""`--mode=train`: set up the strategy and precision, write the run files, train from the latest checkpoint."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from noisy_student_tf import derivations, storage
from noisy_student_tf.config import TrainConfig
from noisy_student_tf.data import records
from noisy_student_tf.data.inputs import TFDS_PREFIX, train_dataset
from noisy_student_tf.errors import CheckpointError, UserError
from noisy_student_tf.models import describe_model, require_model_name, restore, tf1_checkpoint
from noisy_student_tf.training import strategy as strategy_lib
from noisy_student_tf.training.trainer import Trainer

SEED_KEY = "seed/.ATTRIBUTES/VARIABLE_VALUE"  # the run's seed in our training checkpoints


def validate(cfg: TrainConfig) -> TrainConfig:
    """Checks `cfg` before any work; returns it with what it leaves to the task and the model table filled in:
    the training-set size, the flips, the online teacher's input size."""
    for name, value in (("train_batch_size", cfg.input.train_batch_size), ("train_steps", cfg.optim.train_steps),
                        ("save_checkpoints_steps", cfg.loop.save_checkpoints_steps),
                        ("iterations_per_loop", cfg.loop.iterations_per_loop),
                        ("keep_checkpoint_max", cfg.loop.keep_checkpoint_max)):
        if value is None or value <= 0:
            raise UserError(f"--{name} must be positive, got {value}")
    if not cfg.model_dir:
        raise UserError("--model_dir is required: where checkpoints and summaries go")
    require_model_name(cfg.model.model_name)
    if cfg.teacher.model_name:
        require_model_name(cfg.teacher.model_name, "teacher_model_name")
    num_train_images = cfg.optim.num_train_images or cfg.task.num_train_images
    if not num_train_images:
        raise UserError("--num_train_images is required for this task (it defines an epoch)")
    inputs = cfg.input
    if not 0 < inputs.label_data_sample_prob <= 1:
        raise UserError(f"--label_data_sample_prob must be in (0, 1], got {inputs.label_data_sample_prob}")
    if inputs.unlabel_ratio < 0:
        raise UserError(f"--unlabel_ratio must be >= 0, got {inputs.unlabel_ratio}")
    if inputs.unlabel_ratio and not inputs.unlabel_data_dir:
        raise UserError("--unlabel_ratio > 0 needs --unlabel_data_dir")
    temp = cfg.teacher.softmax_temp
    if temp != -1 and temp <= 0:
        raise UserError(f"--teacher_softmax_temp must be -1 (hard labels) or positive, got {temp}")
    if cfg.teacher.model_name and not inputs.unlabel_ratio:
        logging.warning("--teacher_model_name without --unlabel_ratio: the teacher is never used")
    if not inputs.label_data_dir:
        raise UserError("--label_data_dir is required: the directory of the labeled train* shards")
    if cfg.teacher.model_name:
        # Upstream restores the teacher even when no unlabeled data uses it: a missing checkpoint is an error,
        # never a random teacher.
        if not cfg.teacher.checkpoint:
            raise UserError("--teacher_model_name is set but --teacher_model_path is empty: give the teacher's "
                            "checkpoint, or drop --teacher_model_name")
        if not inputs.unlabel_ratio:
            try:
                tf1_checkpoint.resolve_checkpoint_path(cfg.teacher.checkpoint)
            except CheckpointError as e:
                raise CheckpointError(f"--teacher_model_path: {e}") from None
    teacher = cfg.teacher
    if cfg.online_teacher and teacher.image_size is None:
        teacher = dataclasses.replace(teacher, image_size=derivations.teacher_image_size(cfg.model, teacher.model_name))
    flip = cfg.task.flip if cfg.augment.flip is None else cfg.augment.flip
    return dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, num_train_images=num_train_images),
                               augment=dataclasses.replace(cfg.augment, flip=flip), teacher=teacher)


def resolve_seed(cfg: TrainConfig) -> int:
    """The run's seed: a resumed run keeps the one stored in its checkpoint; otherwise `cfg.seed`, or one drawn
    now (and stored with the first checkpoint and in FLAGS.json or config.json)."""
    latest = tf.train.latest_checkpoint(cfg.model_dir) if storage.isdir(cfg.model_dir) else None
    if latest and restore.is_object_checkpoint(latest):
        reader = tf.compat.v1.train.NewCheckpointReader(latest)
        if reader.has_tensor(SEED_KEY):
            stored = int(reader.get_tensor(SEED_KEY))
            if cfg.seed is not None and stored != cfg.seed:
                logging.warning("--seed=%d ignored: resuming a run that started with seed %d", cfg.seed, stored)
            return stored
    if cfg.seed is not None:
        return int(cfg.seed)
    return int(np.random.SeedSequence().entropy % (2 ** 31))


def run_record(cfg: TrainConfig) -> tuple[str, dict]:
    """What the run records of how it was configured, with the seed it used: a command-line run writes its flag
    values as upstream `main.py` does (`json.dump(flag_values_dict())`, FLAGS.json); a run configured in Python
    has no flags and writes its resolved config (config.json).

    Returns:
        (file name, JSON-able value).
    """
    if cfg.flag_values is None:
        record = dataclasses.asdict(cfg)
        del record["flag_values"]
        return "config.json", record
    values = {k: v for k, v in cfg.flag_values.items() if isinstance(v, (str, int, float, bool, list, type(None)))}
    values["seed"] = cfg.seed
    return "FLAGS.json", values


def write_run_files(cfg: TrainConfig) -> None:
    """FLAGS.json (compact, list-valued flags included, as upstream) or config.json, and model_params.txt (only
    if absent)."""
    name, record = run_record(cfg)
    storage.write_json(storage.join(cfg.model_dir, name), record, indent=1 if name == "config.json" else None)
    params_path = storage.join(cfg.model_dir, "model_params.txt")
    if not storage.exists(params_path):
        m = cfg.model
        storage.write_text(params_path, describe_model(
            m.model_name, m.num_classes, small_image_model=m.small_image_model, dropout_rate=m.dropout_rate,
            stochastic_depth_rate=m.stochastic_depth_rate, width_coefficient=m.width_coefficient,
            depth_coefficient=m.depth_coefficient))


def run(cfg: TrainConfig) -> dict:
    """Trains `cfg.model_dir` from its latest checkpoint (or from scratch, or `cfg.init_model_path`) to the
    schedule's last step.

    Returns:
        The last step's metrics (upstream's summary names), or {} when training had already finished.
    """
    cfg = validate(cfg)
    # The seed is settled before anything is built from the config, so every part sees the same one.
    cfg = dataclasses.replace(cfg, seed=resolve_seed(cfg))
    if cfg.runtime.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = strategy_lib.make_strategy(cfg.runtime.strategy, tpu=cfg.runtime.tpu,
                                          cpu_replicas=cfg.runtime.cpu_replicas)
    keras.mixed_precision.set_global_policy(cfg.runtime.precision)
    keras.utils.set_random_seed(cfg.seed)
    trainer = Trainer(cfg, strategy)
    logging.info("%s", trainer.initialize())
    logging.info("model %s (%d classes, %dx%d input), precision %s, %d trainable parameters",
                 cfg.model.model_name, cfg.model.num_classes, cfg.model.image_size, cfg.model.image_size,
                 cfg.runtime.precision, sum(int(tf.size(v)) for v in trainer.model.student.trainable_variables))
    inputs = f"--label_data_dir={cfg.input.label_data_dir}"
    if cfg.input.unlabel_ratio:
        inputs += f", --unlabel_data_dir={cfg.input.unlabel_data_dir}"
    # The run files are written once the first step has read real input: a run stopped by bad input leaves
    # nothing behind.
    return trainer.run(dataset_fn(cfg, trainer.num_replicas), input_description=inputs,
                       on_started=lambda: write_run_files(cfg) if trainer.chief else None,
                       input_files=lambda: input_files(cfg))


def input_files(cfg: TrainConfig) -> list[str]:
    """The TFRecord files training reads (a TFDS data set has none of ours)."""
    files = []
    if not cfg.input.label_data_dir.startswith(TFDS_PREFIX):
        files += records.find_files(cfg.input.label_data_dir, ["train"])
    if cfg.input.unlabel_ratio:
        files += records.find_files(cfg.input.unlabel_data_dir, ["train", "extra"], flag="--unlabel_data_dir")
    return files


def dataset_fn(cfg: TrainConfig, num_replicas: int):
    """`(input_context, start_step) -> per-replica batches` of a validated `cfg` (`Trainer.run`'s input)."""
    online = cfg.online_teacher

    def make(input_context, start_step):
        return train_dataset(cfg.input, cfg.augment, cfg.model, seed=cfg.seed,
                             teacher_image_size=cfg.teacher.image_size if online else None,
                             stored_predictions=bool(cfg.input.unlabel_ratio) and not online,
                             num_replicas=num_replicas, input_context=input_context, start_step=start_step)

    return make
