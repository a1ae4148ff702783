"""A training run of a model_dir: the `NoisyStudent` of its config and the function that runs its steps
(training/train_function.py), the run's checkpoint (resumed from the latest one, or the initial weights set),
and the loop (training/loop.py) to the schedule's last step."""

from __future__ import annotations

import tensorflow as tf
from absl import logging

from noisy_student_tf import storage
from noisy_student_tf.config import TrainConfig
from noisy_student_tf.errors import CheckpointError, UserError
from noisy_student_tf.models import restore
from noisy_student_tf.training import checkpoints, strategy as strategy_lib
from noisy_student_tf.training.loop import run_loop
from noisy_student_tf.training.train_function import build_noisy_student, make_train_function, schedule_of

CHECKPOINT_NAME = "model.ckpt"  # upstream Estimator names: model.ckpt-<step>


class Trainer:
    """The training run of `cfg` under `strategy`.

    `initialize()` resumes or sets the initial weights; `run(dataset_fn)` trains to the last step.

    Attributes:
        cfg: the run's config.
        strategy: its distribution strategy; `num_replicas` replicas, and `chief` when this worker keeps files.
        model: the `NoisyStudent` (`student`, `teacher`, `ema`, `optimizer`, `run_seed`).
        schedule: the learning-rate schedule and epoch arithmetic.
        train_function: `(iterator, n) -> metrics`, n steps in one traced call.
        checkpoint: what a checkpoint holds (set by `initialize()`).
    """

    def __init__(self, cfg: TrainConfig, strategy: tf.distribute.Strategy | None = None):
        self.cfg = cfg
        self.strategy = strategy or tf.distribute.get_strategy()
        self.num_replicas = self.strategy.num_replicas_in_sync
        self.chief = strategy_lib.is_chief(self.strategy)
        self.schedule = schedule_of(cfg)
        self.model = build_noisy_student(cfg, self.strategy)
        self.train_function = make_train_function(self.model, self.strategy, self.schedule,
                                                  jit_compile=cfg.runtime.jit_compile)
        self.checkpoint = None

    @property
    def global_step(self) -> int:
        """Steps trained so far (the optimizer's iterations)."""
        return int(self.model.optimizer.iterations.numpy())

    def _write_dir(self) -> str:
        if self.chief:
            return self.cfg.model_dir
        # Under MultiWorkerMirrored every worker must save; only the chief's copy is kept.
        return storage.join(self.cfg.model_dir, f".worker_{self.strategy.cluster_resolver.task_id}_tmp")

    def initialize(self) -> str:
        """Resumes from the latest checkpoint of model_dir, or sets the initial weights. Returns a description."""
        cfg = self.cfg
        if self.chief:
            checkpoints.remove_interrupted_saves(cfg.model_dir)
        latest = tf.train.latest_checkpoint(cfg.model_dir) if storage.isdir(cfg.model_dir) else None
        if latest and not restore.is_object_checkpoint(latest):
            raise UserError(f"--model_dir={cfg.model_dir!r} holds an original TF1 checkpoint ({latest}); train "
                            "into a new model_dir and pass it as --init_model_path or --teacher_model_path")
        model, notes = self.model, []
        if not latest:
            if model.teacher is not None:
                notes.append(restore.load_inference_weights(
                    model.teacher, cfg.teacher.checkpoint, what="teacher", model_name=cfg.teacher.model_name))
            elif cfg.init_model_path is not None:
                notes.append(restore.load_inference_weights(model.student, cfg.init_model_path,
                                                            what="initial weights"))
        # Upstream's shadows start at the initial weights, after any checkpoint initialisation (`main.py`).
        model.reset_ema()
        # The noise's generator states too (tf.train.Checkpoint does not track them), under their old keys.
        rng = [v.value for v in model.seed_generator_states()]
        parts = dict(model=model.student, optimizer=model.optimizer, seed=model.run_seed, rng=rng)
        if model.ema is not None:
            parts["ema"] = model.ema
        if model.teacher is not None:
            parts["teacher"] = model.teacher
        self.checkpoint = tf.train.Checkpoint(**parts)
        if latest:
            try:
                self.checkpoint.restore(latest).assert_existing_objects_matched()
            except (AssertionError, ValueError) as e:
                raise CheckpointError(f"cannot resume from {latest}: it does not fit this configuration "
                                      f"({str(e).splitlines()[0][:300]}); use a new --model_dir") from None
            notes.append(f"resumed from {latest} at step {self.global_step}")
        return "; ".join(notes) or "training from scratch"

    def run(self, dataset_fn, input_description: str = "", on_started=None, input_files=None) -> dict:
        """Trains to the schedule's last step; `dataset_fn(input_context, start_step)` gives per-replica batches.

        `input_description` (e.g. the data flags) goes into the message when the input turns out to be bad;
        `input_files()` lists the input's files, to name a damaged one.
        `on_started()` is called once the first step has succeeded (its input was readable): the caller writes
        its run files then, and nothing (no summary either) is written before it, so a run stopped by bad input
        leaves nothing behind."""
        cfg = self.cfg
        start, last = self.global_step, self.schedule.last_step
        if start >= last:
            logging.info("step %d: training already finished (last step %d)", start, last)
            return {}
        iterator = iter(self.strategy.distribute_datasets_from_function(lambda ctx: dataset_fn(ctx, start)))
        unl_batch = cfg.input.unlabeled_batch_size
        logging.info("training steps %d -> %d, %d images per step (%d labeled + %d unlabeled), %d replica(s)",
                     start, last, cfg.input.train_batch_size + unl_batch, cfg.input.train_batch_size, unl_batch,
                     self.num_replicas)
        return run_loop(self.train_function, iterator, start=start, last=last, loop=cfg.loop,
                        images_per_step=cfg.input.train_batch_size + unl_batch, model_dir=cfg.model_dir,
                        write_summaries=self.chief and not cfg.loop.skip_host_call, save=self.save,
                        on_started=on_started, input_description=input_description, input_files=input_files)

    def save(self, step: int) -> str:
        if not self.chief:
            # Every MultiWorkerMirrored worker takes part in a save (the same ops); only the chief's copy is kept.
            self.checkpoint.save_counter.assign_add(1)
            path = self.checkpoint.write(storage.join(self._write_dir(), f"{CHECKPOINT_NAME}-{step}"))
            storage.remove_tree(self._write_dir())
            return path
        return checkpoints.save_atomically(self.checkpoint, self.cfg.model_dir, CHECKPOINT_NAME, step,
                                           self.cfg.loop.keep_checkpoint_max)
