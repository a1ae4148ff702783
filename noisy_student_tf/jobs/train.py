"""`--mode=train`: set up the strategy and precision, write the run files, train from the latest checkpoint."""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf
from absl import logging

from noisy_student_tf.data import pipeline
from noisy_student_tf.errors import CheckpointError, UserError
from noisy_student_tf.io_utils import atomic_write_text
from noisy_student_tf.jobs import settings as settings_lib
from noisy_student_tf.models import describe_model, tf1_checkpoint
from noisy_student_tf.training import strategy as strategy_lib
from noisy_student_tf.training.trainer import Trainer, seed_or_random


def write_run_files(F, settings, seed: int) -> None:
    """FLAGS.json (every flag value, as upstream main.py's `json.dump(flag_values_dict())`: compact, list-valued
    flags included, plus the seed actually used) and model_params.txt (only if absent)."""
    os.makedirs(F.model_dir, exist_ok=True)
    values = {k: v for k, v in F.flag_values_dict().items()
              if isinstance(v, (str, int, float, bool, list, type(None)))}
    values["seed"] = seed
    atomic_write_text(os.path.join(F.model_dir, "FLAGS.json"), json.dumps(values))
    params_path = os.path.join(F.model_dir, "model_params.txt")
    if not os.path.exists(params_path):
        m = settings.model
        atomic_write_text(params_path, describe_model(
            m.model_name, m.num_classes, small_image_model=m.small_image_model, dropout_rate=m.dropout_rate,
            stochastic_depth_rate=m.stochastic_depth_rate, width_coefficient=m.width_coefficient,
            depth_coefficient=m.depth_coefficient))


def run(F) -> dict:
    settings = settings_lib.resolve(F)
    if F.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = strategy_lib.make_strategy(F.strategy, tpu=F.tpu, cpu_replicas=F.cpu_replicas)
    policy = strategy_lib.set_precision(F.use_bfloat16, F.mixed_precision)
    seed = seed_or_random(F.seed)
    keras.utils.set_random_seed(seed)
    train_cfg = settings_lib.train_config(F, settings, seed)
    input_cfg = settings_lib.input_config(F, settings, seed)
    if F.teacher_model_name and not train_cfg.unlabel_ratio:
        # Upstream restores the teacher even when no unlabeled data uses it: a missing checkpoint is an error.
        if not F.teacher_model_path:
            raise UserError("--teacher_model_name is set but --teacher_model_path is empty: give the teacher's "
                            "checkpoint, or drop --teacher_model_name")
        try:
            tf1_checkpoint.resolve_checkpoint_path(F.teacher_model_path)
        except CheckpointError as e:
            raise CheckpointError(f"--teacher_model_path: {e}") from None
    trainer = Trainer(train_cfg, strategy)
    logging.info("%s", trainer.initialize())
    seed = int(trainer.seed.numpy())  # a resumed run keeps the seed it started with
    if F.seed is not None and seed != F.seed:
        logging.warning("--seed=%d ignored: resuming a run that started with seed %d", F.seed, seed)
    logging.info("model %s (%d classes, %dx%d input), precision %s, %d trainable parameters",
                 train_cfg.model.model_name, train_cfg.model.num_classes, train_cfg.model.image_size,
                 train_cfg.model.image_size, policy,
                 sum(int(tf.size(v)) for v in trainer.student.trainable_variables))
    input_cfg = pipeline.TrainInputConfig(**{**input_cfg.__dict__, "seed": seed})
    inputs = f"--label_data_dir={F.label_data_dir}"
    if train_cfg.unlabel_ratio:
        inputs += f", --unlabel_data_dir={F.unlabel_data_dir}"
    # The run files are written once the first step has read real input: a run stopped by bad input leaves
    # nothing behind.
    return trainer.run(lambda ctx, start: pipeline.train_dataset(
        input_cfg, F.train_batch_size, num_replicas=trainer.num_replicas, input_context=ctx, start_step=start),
        input_description=inputs, on_started=lambda: write_run_files(F, settings, seed) if trainer.chief else None)
