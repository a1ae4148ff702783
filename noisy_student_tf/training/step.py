"""The noisy-student training step (upstream `main.py`, `model_fn`): the student (and a clean online teacher),
the TF1 RMSProp optimizer with the upstream schedule, the weight EMA, and one traced step over a distributed
batch."""

from __future__ import annotations

import keras
import tensorflow as tf

from noisy_student_tf.config import TrainConfig
from noisy_student_tf.errors import UserError
from noisy_student_tf.models import freeze_layers
from noisy_student_tf.models.inference import model_from_config, normalize
from noisy_student_tf.training import losses, objective
from noisy_student_tf.training.ema import WeightEMA, ema_variables
from noisy_student_tf.training.optimizer import TF1RMSProp
from noisy_student_tf.training.schedule import Schedule, make_schedule


class _UpstreamLR(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, schedule: Schedule):
        self.schedule = schedule

    def __call__(self, step):
        return self.schedule.learning_rate(step)

    def get_config(self):
        return {}


def schedule_of(cfg: TrainConfig) -> Schedule:
    """The learning-rate schedule and epoch arithmetic of `cfg` (upstream `main.py`)."""
    o = cfg.optim
    return make_schedule(base_learning_rate=o.base_learning_rate, train_batch_size=cfg.input.train_batch_size,
                         num_train_images=o.num_train_images or cfg.task.num_train_images, train_steps=o.train_steps,
                         train_last_step_num=o.train_last_step_num, train_ratio=o.train_ratio,
                         final_base_lr=o.final_base_lr, label_data_sample_prob=cfg.input.label_data_sample_prob)


class NoisyStudentStep:
    """What one training step needs, built under `strategy`'s scope, and the step itself.

    Attributes:
        student, teacher: the Keras models (`teacher` is None without an online teacher).
        optimizer: TF1-semantics RMSProp on the upstream schedule (in a LossScaleOptimizer under mixed_float16).
        ema: the weight EMA (None when `moving_average_decay <= 0`); made by `make_ema()` once the initial weights
            are in place.
        seed: the run's seed as a variable, so that it is checkpointed.
    """

    def __init__(self, cfg: TrainConfig, strategy: tf.distribute.Strategy):
        if cfg.online_teacher and not cfg.teacher.checkpoint:
            raise UserError("--teacher_model_name is set but --teacher_model_path is empty: give the teacher's "
                            "checkpoint (a random teacher would teach nothing)")
        self.cfg = cfg
        self.strategy = strategy
        self.num_replicas = strategy.num_replicas_in_sync
        self.schedule = schedule_of(cfg)
        sync_bn = self.num_replicas > 1
        with strategy.scope():
            self.student = model_from_config(cfg.model, synchronized_bn=sync_bn)
            freeze_layers(self.student, cfg.fix_layer_num)
            self.teacher = None
            if cfg.online_teacher:
                # Upstream builds the teacher with the student's overrides (width, depth, small_image_model).
                self.teacher = model_from_config(cfg.model, name="teacher_model", model_name=cfg.teacher.model_name,
                                                 image_size=cfg.teacher.image_size, synchronized_bn=sync_bn)
                self.teacher.trainable = False
            optimizer = TF1RMSProp(learning_rate=_UpstreamLR(self.schedule))
            if keras.mixed_precision.global_policy().name == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            self.optimizer = optimizer
            self.optimizer.build(self.student.trainable_variables)
            self.seed = tf.Variable(int(cfg.seed or 0), dtype=tf.int64, trainable=False, name="seed")
        self.ema = None
        self._traced = None

    def make_ema(self) -> None:
        """The EMA of the student's weights, starting from their current values (upstream `main.py`)."""
        if self.cfg.optim.moving_average_decay > 0:
            with self.strategy.scope():
                self.ema = WeightEMA(ema_variables(self.student), self.cfg.optim.moving_average_decay)

    @property
    def iterations(self) -> int:
        return int(self.optimizer.iterations.numpy())

    def _label_mask(self, lab_batch: int):
        """Upstream keeps each labeled example with probability p: floor(p + U[0, 1))."""
        ctx = tf.distribute.get_replica_context()
        seed = tf.random.experimental.stateless_fold_in(
            tf.stack([self.seed, tf.cast(self.optimizer.iterations, tf.int64)]), ctx.replica_id_in_sync_group)
        return tf.floor(self.cfg.input.label_data_sample_prob + tf.random.stateless_uniform([lab_batch], seed))

    def replica_step(self, batch):
        """One step on one replica's batch ({"labeled": ..., "unlabeled": ...} of `data.inputs.train_dataset`);
        returns the step's metrics."""
        cfg = self.cfg
        labeled, unlabeled = batch["labeled"], batch.get("unlabeled") if cfg.input.unlabel_ratio else None
        labels = labeled["label"]
        lab_batch = labels.shape[0] if labels.shape[0] is not None else tf.shape(labels)[0]
        images = labeled["image"] if unlabeled is None else tf.concat([labeled["image"], unlabeled["image"]], 0)
        mean, std = cfg.task.mean, cfg.task.std
        variables = self.student.trainable_variables
        with tf.GradientTape() as tape:
            # One forward pass over labeled + unlabeled images: batch-norm statistics over both, as upstream.
            logits = tf.cast(self.student(normalize(images, mean, std), training=True), tf.float32)
            lab_logits = logits[:lab_batch]
            mask = self._label_mask(lab_batch) if cfg.input.label_data_sample_prob < 1 else None
            unl_logits = targets = unl_labels = None
            if unlabeled is not None:
                unl_logits, unl_labels = logits[lab_batch:], unlabeled["label"]
                teacher_logits = None
                if self.teacher is not None:
                    # The teacher sees the clean view, in inference mode.
                    teacher_logits = self.teacher(normalize(unlabeled["teacher_image"], mean, std), training=False)
                targets = losses.unlabeled_targets(
                    num_classes=cfg.model.num_classes, temperature=cfg.teacher.softmax_temp,
                    label_smoothing=cfg.optim.label_smoothing, teacher_logits=teacher_logits,
                    stored_probs=unlabeled.get("probs"), stored_labels=unl_labels)
            data_loss, metrics = objective.noisy_student_loss(
                lab_logits, labels, num_classes=cfg.model.num_classes, label_smoothing=cfg.optim.label_smoothing,
                mask=mask, unl_logits=unl_logits, targets=targets, unlabel_ratio=cfg.input.unlabel_ratio,
                unl_labels=unl_labels, soft_targets=cfg.teacher.softmax_temp != -1)
            loss = data_loss + losses.weight_decay_loss(variables, cfg.optim.weight_decay)
            # Gradients are summed over replicas, so each replica contributes its share of the mean.
            scaled = loss / self.num_replicas
            if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
                scaled = self.optimizer.scale_loss(scaled)
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        if self.ema is not None:
            self.ema.update(self.optimizer.iterations)  # num_updates = the step just completed, as upstream
        step = tf.cast(self.optimizer.iterations, tf.float32)
        metrics.update({
            "train/loss": loss,
            "train/lr": tf.cast(self.schedule.learning_rate(step - 1.0), tf.float32),
            "train/epoch": step / self.schedule.steps_per_epoch,
        })
        return metrics

    def traced(self):
        """The step over a distributed iterator, traced once: returns the replica-mean metrics."""
        if self._traced is None:
            replica_step = self.replica_step
            if self.cfg.runtime.jit_compile:
                replica_step = tf.function(replica_step, jit_compile=True)

            @tf.function
            def step(iterator):
                metrics = self.strategy.run(replica_step, args=(next(iterator),))
                return {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                        for k, v in metrics.items()}

            self._traced = step
        return self._traced

    def train_steps(self, iterator, num_steps: int) -> dict:
        """Runs `num_steps` steps from a distributed iterator; returns the last step's metrics."""
        step = self.traced()
        for _ in range(num_steps):
            metrics = step(iterator)
        return {k: float(v) for k, v in metrics.items()}
