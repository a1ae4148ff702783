"""The noisy-student training step and loop (spec §5.2-5.9, §5.11).

One `Trainer` owns the student (and an online teacher), the TF1 RMSProp optimizer, the weight EMA and the
checkpoint of a model_dir. `run()` trains from the latest checkpoint (or from scratch / the initial weights)
up to the last step of the schedule, saving checkpoints, TensorBoard scalars (upstream names) and a progress
line with images/s and ETA.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from noisy_student_tf.errors import CheckpointError, UserError, first_line
from noisy_student_tf.models import build_model, freeze_layers
from noisy_student_tf.progress import format_duration
from noisy_student_tf.training import checkpoints, losses, strategy as strategy_lib
from noisy_student_tf.training.ema import WeightEMA, ema_variables
from noisy_student_tf.training.optimizer import TF1RMSProp
from noisy_student_tf.training.schedule import Schedule

CHECKPOINT_NAME = "model.ckpt"  # upstream Estimator names: model.ckpt-<step>


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    model_name: str
    num_classes: int
    image_size: int
    small_image_model: bool = False
    dropout_rate: float | None = None
    stochastic_depth_rate: float | None = None
    width_coefficient: float | None = None
    depth_coefficient: float | None = None

    def build(self, name=None, image_size=None, synchronized_bn=False, model_name=None):
        size = image_size or self.image_size
        return build_model(model_name or self.model_name, self.num_classes,
                           small_image_model=self.small_image_model, dropout_rate=self.dropout_rate,
                           stochastic_depth_rate=self.stochastic_depth_rate,
                           width_coefficient=self.width_coefficient, depth_coefficient=self.depth_coefficient,
                           input_shape=(size, size, 3), name=name, synchronized_bn=synchronized_bn)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig
    schedule: Schedule
    model_dir: str
    train_batch_size: int
    mean: tuple
    std: tuple
    base_learning_rate: float = 0.016
    unlabel_ratio: float = 0.0
    teacher_softmax_temp: float = -1.0
    label_smoothing: float = 0.1
    label_data_sample_prob: float = 1.0
    weight_decay: float = 1e-5
    moving_average_decay: float = 0.9999
    teacher_model_name: str | None = None
    teacher_model_path: str | None = None
    teacher_image_size: int | None = None
    init_model: bool = False
    init_model_path: str | None = None
    fix_layer_num: int = -1
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 5
    iterations_per_loop: int = 1000
    log_step_count_steps: int = 64
    skip_host_call: bool = False
    jit_compile: bool = False
    seed: int = 0


class _UpstreamLR(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, schedule: Schedule):
        self.schedule = schedule

    def __call__(self, step):
        return self.schedule.learning_rate(step)

    def get_config(self):
        return {}


def normalize(images, mean, std):
    """Spec §5.2: (x - mean) / std per channel, in 0..255 units, on the device."""
    return (tf.cast(images, tf.float32) - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)


class Trainer:
    def __init__(self, cfg: TrainConfig, strategy: tf.distribute.Strategy | None = None):
        self.cfg = cfg
        self.strategy = strategy or tf.distribute.get_strategy()
        self.num_replicas = self.strategy.num_replicas_in_sync
        self.chief = strategy_lib.is_chief(self.strategy)
        if cfg.teacher_model_name and not cfg.teacher_model_path:
            raise UserError("--teacher_model_name is set but --teacher_model_path is empty: give the teacher's "
                            "checkpoint (a random teacher would teach nothing)")
        sync_bn = self.num_replicas > 1
        with self.strategy.scope():
            self.student = cfg.model.build(synchronized_bn=sync_bn)
            freeze_layers(self.student, cfg.fix_layer_num)
            self.teacher = None
            if cfg.teacher_model_name:
                # Upstream builds the teacher with the same overrides (width, depth, small_image_model, §11.2 #21).
                self.teacher = cfg.model.build(name="teacher_model", model_name=cfg.teacher_model_name,
                                               image_size=cfg.teacher_image_size, synchronized_bn=sync_bn)
                self.teacher.trainable = False
            optimizer = TF1RMSProp(learning_rate=_UpstreamLR(cfg.schedule))
            if keras.mixed_precision.global_policy().name == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            self.optimizer = optimizer
            self.optimizer.build(self.student.trainable_variables)
            self.seed = tf.Variable(int(cfg.seed), dtype=tf.int64, trainable=False, name="seed")
        self.ema = None
        self.checkpoint = None
        self._compiled_step = None

    # ------------------------------------------------------------------------------------------------
    # State: initial weights, EMA, checkpoint.

    @property
    def step(self) -> int:
        return int(self.optimizer.iterations.numpy())

    def _rng_states(self):
        """Keras seed-generator states (dropout, stochastic depth): tf.train.Checkpoint does not track them."""
        return [v.value for v in self.student.variables if "seed_generator_state" in v.path]

    def _write_dir(self) -> str:
        if self.chief:
            return self.cfg.model_dir
        # Under MultiWorkerMirrored every worker must save; only the chief's copy is kept.
        return os.path.join(self.cfg.model_dir, f".worker_{self.strategy.cluster_resolver.task_id}_tmp")

    def initialize(self) -> str:
        """Resumes from the latest checkpoint of model_dir, or sets the initial weights. Returns a description."""
        cfg = self.cfg
        if self.chief:
            checkpoints.remove_interrupted_saves(cfg.model_dir)
        latest = tf.train.latest_checkpoint(cfg.model_dir) if tf.io.gfile.isdir(cfg.model_dir) else None
        if latest and not checkpoints.is_object_checkpoint(latest):
            raise UserError(f"--model_dir={cfg.model_dir!r} holds an original TF1 checkpoint ({latest}); train "
                            "into a new model_dir and pass it as --init_model_path or --teacher_model_path")
        notes = []
        if not latest:
            if self.teacher is not None:
                notes.append(checkpoints.load_inference_weights(
                    self.teacher, cfg.teacher_model_path, what="teacher", model_name=cfg.teacher_model_name))
            elif cfg.init_model:
                if not cfg.init_model_path:
                    raise UserError("--init_model is set but --init_model_path is empty")
                notes.append(checkpoints.load_inference_weights(self.student, cfg.init_model_path,
                                                                what="initial weights"))
        with self.strategy.scope():
            if cfg.moving_average_decay > 0:
                self.ema = WeightEMA(ema_variables(self.student), cfg.moving_average_decay)
        parts = dict(model=self.student, optimizer=self.optimizer, seed=self.seed, rng=self._rng_states())
        if self.ema is not None:
            parts["ema"] = self.ema
        if self.teacher is not None:
            parts["teacher"] = self.teacher
        self.checkpoint = tf.train.Checkpoint(**parts)
        if latest:
            try:
                self.checkpoint.restore(latest).assert_existing_objects_matched()
            except (AssertionError, ValueError) as e:
                raise CheckpointError(f"cannot resume from {latest}: it does not fit this configuration "
                                      f"({str(e).splitlines()[0][:300]}); use a new --model_dir") from None
            notes.append(f"resumed from {latest} at step {self.step}")
        return "; ".join(notes) or "training from scratch"

    # ------------------------------------------------------------------------------------------------
    # The step.

    def _replica_step(self, batch):
        cfg = self.cfg
        ctx = tf.distribute.get_replica_context()
        lab_batch = cfg.train_batch_size // self.num_replicas
        num_classes = cfg.model.num_classes
        labels = batch["label"][:lab_batch]
        variables = self.student.trainable_variables
        with tf.GradientTape() as tape:
            # One forward pass over labeled + unlabeled images: BN statistics over both (spec §5.2, §11.2 #18).
            logits = tf.cast(self.student(normalize(batch["image"], cfg.mean, cfg.std), training=True), tf.float32)
            lab_logits, unl_logits = logits[:lab_batch], logits[lab_batch:]
            mask = None
            if cfg.label_data_sample_prob < 1:
                seed = tf.random.experimental.stateless_fold_in(
                    tf.stack([self.seed, tf.cast(self.optimizer.iterations, tf.int64)]),
                    ctx.replica_id_in_sync_group)
                mask = tf.floor(cfg.label_data_sample_prob + tf.random.stateless_uniform([lab_batch], seed))
            lab_loss = losses.labeled_loss(lab_logits, labels, num_classes=num_classes,
                                           label_smoothing=cfg.label_smoothing, mask=mask)
            data_loss, metrics = lab_loss, {}
            if cfg.unlabel_ratio:
                teacher_logits = None
                if self.teacher is not None:
                    # The teacher sees the clean view, in inference mode (spec §5.2 item 3).
                    teacher_logits = self.teacher(normalize(batch["unl_teacher_image"], cfg.mean, cfg.std),
                                                  training=False)
                targets = losses.unlabeled_targets(
                    num_classes=num_classes, temperature=cfg.teacher_softmax_temp,
                    label_smoothing=cfg.label_smoothing, teacher_logits=teacher_logits,
                    stored_probs=batch.get("unl_probs"), stored_labels=batch["label"][lab_batch:])
                unl_loss = tf.reduce_mean(losses.cross_entropy(targets, unl_logits))
                data_loss = lab_loss + cfg.unlabel_ratio * unl_loss  # spec §11.2 item 8
                unl_probs = tf.nn.softmax(unl_logits)
                metrics.update({
                    "unl/acc_to_dump": self._accuracy(unl_logits, batch["label"][lab_batch:]),
                    "unl/pred_prob": tf.reduce_mean(tf.reduce_max(unl_probs, -1)),
                    "ext/loss": unl_loss,
                })
                if cfg.teacher_softmax_temp != -1:
                    metrics["unl/target_prob"] = tf.reduce_mean(tf.reduce_max(targets, -1))
            loss = data_loss + losses.weight_decay_loss(variables, cfg.weight_decay)
            # Gradients are summed over replicas, so each replica contributes its share of the mean.
            scaled = loss / self.num_replicas
            if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
                scaled = self.optimizer.scale_loss(scaled)
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        if self.ema is not None:
            self.ema.update(self.optimizer.iterations)  # num_updates = the step just completed (spec §5.8)
        step = tf.cast(self.optimizer.iterations, tf.float32)
        metrics.update({
            "lab/acc": self._accuracy(lab_logits, labels),
            "lab/pred_prob": tf.reduce_mean(tf.reduce_max(tf.nn.softmax(lab_logits), -1)),
            "lab/loss": lab_loss,
            "train/data_loss": data_loss,
            "train/loss": loss,
            "train/lr": tf.cast(self.cfg.schedule.learning_rate(step - 1.0), tf.float32),
            "train/epoch": step / self.cfg.schedule.steps_per_epoch,
        })
        return metrics

    @staticmethod
    def _accuracy(logits, labels):
        return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32))

    def _step(self):
        """One training step over a distributed batch, traced once; returns the replica-mean metrics."""
        if self._compiled_step is None:
            replica_step = self._replica_step
            if self.cfg.jit_compile:
                replica_step = tf.function(replica_step, jit_compile=True)

            @tf.function
            def step(iterator):
                metrics = self.strategy.run(replica_step, args=(next(iterator),))
                return {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                        for k, v in metrics.items()}

            self._compiled_step = step
        return self._compiled_step

    def train_steps(self, iterator, num_steps: int) -> dict:
        """Runs `num_steps` steps from a distributed iterator; returns the last step's metrics."""
        step = self._step()
        for _ in range(num_steps):
            metrics = step(iterator)
        return {k: float(v) for k, v in metrics.items()}

    def distribute(self, dataset_fn):
        """A distributed dataset from `dataset_fn(input_context)` returning per-replica batches."""
        return self.strategy.distribute_datasets_from_function(dataset_fn)

    # ------------------------------------------------------------------------------------------------
    # The loop.

    def run(self, dataset_fn, input_description: str = "", on_started=None) -> dict:
        """Trains to the schedule's last step; `dataset_fn(input_context, start_step)` gives per-replica batches.

        `input_description` (e.g. the data flags) goes into the message when the input turns out to be bad.
        `on_started()` is called once the first step has succeeded (its input was readable): the caller writes
        its run files then, and nothing (no summary either) is written before it, so a run stopped by bad input
        leaves nothing behind."""
        cfg = self.cfg
        start, last = self.step, cfg.schedule.last_step
        if start >= last:
            logging.info("step %d: training already finished (last step %d)", start, last)
            return {}
        iterator = iter(self.distribute(lambda ctx: dataset_fn(ctx, start)))
        unl_batch = math.ceil(cfg.train_batch_size * cfg.label_data_sample_prob * cfg.unlabel_ratio)
        images_per_step = cfg.train_batch_size + unl_batch
        save_every = max(cfg.save_checkpoints_steps, cfg.iterations_per_loop)  # upstream (spec §5.11)
        writer = None
        step, metrics, started, rate = start, {}, time.time(), None
        logging.info("training steps %d -> %d, %d images per step (%d labeled + %d unlabeled), %d replica(s)",
                     start, last, images_per_step, cfg.train_batch_size, unl_batch, self.num_replicas)
        while step < last:
            stops = [last] + [(step // n + 1) * n for n in (cfg.iterations_per_loop, cfg.log_step_count_steps,
                                                             save_every) if n > 0]
            # The first step runs alone, so bad input is found before anything is written.
            target = step + 1 if step == start else min(stops)
            done, tick = target - step, time.time()
            try:
                metrics = self.train_steps(iterator, done)
            except (tf.errors.InvalidArgumentError, tf.errors.DataLossError, tf.errors.NotFoundError) as e:
                where = f" (reading {input_description})" if input_description else ""
                raise UserError(f"bad training input near step {step}{where}: {first_line(e)}") from None
            seconds = time.time() - tick
            first = step == start
            if first:
                if on_started is not None:
                    on_started()
                if self.chief and not cfg.skip_host_call:
                    writer = tf.summary.create_file_writer(cfg.model_dir)
            step = target
            bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
            if bad:
                raise UserError(
                    f"non-finite training values by step {step} ({bad}): training diverged. Nothing was "
                    f"saved for it; the last checkpoint is {tf.train.latest_checkpoint(cfg.model_dir)}. Lower "
                    "--base_learning_rate or check the data.")
            chunk_rate = images_per_step * done / max(seconds, 1e-9)
            if not first:  # the first step also traces the step function: not a speed
                rate = chunk_rate if rate is None else 0.7 * rate + 0.3 * chunk_rate
            if writer is not None and step % cfg.iterations_per_loop == 0:
                with writer.as_default(step=step):
                    for name, value in metrics.items():
                        tf.summary.scalar(name, value)
                writer.flush()
            if step % max(cfg.log_step_count_steps, 1) == 0 or step == last:
                shown = rate or chunk_rate
                remaining = (last - step) * images_per_step / max(shown, 1e-9)
                logging.info("step %d/%d (%.1f%%) loss %.4f lab/acc %.3f lr %.3g | %.1f images/s | ETA %s",
                             step, last, 100.0 * step / last, metrics["train/loss"], metrics["lab/acc"],
                             metrics["train/lr"], shown, format_duration(remaining))
            if step % save_every == 0 or step == last:
                self.save(step)
        logging.info("finished at step %d in %s", step, format_duration(time.time() - started))
        return metrics

    def save(self, step: int) -> str:
        if not self.chief:
            # Every MultiWorkerMirrored worker takes part in a save (the same ops); only the chief's copy is kept.
            self.checkpoint.save_counter.assign_add(1)
            path = self.checkpoint.write(os.path.join(self._write_dir(), f"{CHECKPOINT_NAME}-{step}"))
            shutil.rmtree(self._write_dir(), ignore_errors=True)
            return path
        return checkpoints.save_atomically(self.checkpoint, self.cfg.model_dir, CHECKPOINT_NAME, step,
                                           self.cfg.keep_checkpoint_max)

    def ema_weights(self) -> dict:
        """{variable path: value} of the EMA shadows (the raw weights when EMA is off)."""
        if self.ema is None:
            return {v.path: v.numpy() for v in ema_variables(self.student)}
        return self.ema.values()


def seed_or_random(seed) -> int:
    return int(seed) if seed is not None else int(np.random.SeedSequence().entropy % (2 ** 31))
