"""The command-line trainer's step (upstream `main.py`, `model_fn`): the `NoisyStudent` Keras model of a
`TrainConfig` (student, clean online teacher, weight EMA), the TF1 RMSProp optimizer on the upstream schedule,
and the step traced over a distributed iterator."""

from __future__ import annotations

import tensorflow as tf

from noisy_student_tf.config import TrainConfig
from noisy_student_tf.errors import UserError
from noisy_student_tf.models import freeze_layers
from noisy_student_tf.models.inference import model_from_config
from noisy_student_tf.training.noisy_student import NoisyStudent
from noisy_student_tf.training.optimizer import TF1RMSProp
from noisy_student_tf.training.schedule import Schedule, UpstreamLearningRate, make_schedule


def schedule_arguments(cfg: TrainConfig) -> dict:
    """The arguments of `make_schedule` / `UpstreamLearningRate` of `cfg` (upstream `main.py`)."""
    o = cfg.optim
    return dict(base_learning_rate=o.base_learning_rate, train_batch_size=cfg.input.train_batch_size,
                num_train_images=o.num_train_images or cfg.task.num_train_images, train_steps=o.train_steps,
                train_last_step_num=o.train_last_step_num, train_ratio=o.train_ratio,
                final_base_lr=o.final_base_lr, label_data_sample_prob=cfg.input.label_data_sample_prob)


def schedule_of(cfg: TrainConfig) -> Schedule:
    """The learning-rate schedule and epoch arithmetic of `cfg` (upstream `main.py`)."""
    return make_schedule(**schedule_arguments(cfg))


class NoisyStudentStep:
    """The `NoisyStudent` Keras model of `cfg`, built under `strategy`'s scope, and the step over a distributed
    iterator. The math of the step is `NoisyStudent.step`; this adds the schedule's scalars and the tracing.

    Attributes:
        model: the `NoisyStudent` (student, online teacher, EMA, seed), compiled with the optimizer.
        student, teacher: the Keras models (`teacher` is None without an online teacher).
        optimizer: TF1-semantics RMSProp on the upstream schedule (in a LossScaleOptimizer under mixed_float16).
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
            student = model_from_config(cfg.model, synchronized_bn=sync_bn)
            freeze_layers(student, cfg.fix_layer_num)
            teacher = None
            if cfg.online_teacher:
                # Upstream builds the teacher with the student's overrides (width, depth, small_image_model).
                teacher = model_from_config(cfg.model, name="teacher_model", model_name=cfg.teacher.model_name,
                                            image_size=cfg.teacher.image_size, synchronized_bn=sync_bn)
            self.model = NoisyStudent(
                student, teacher, num_classes=cfg.model.num_classes, unlabel_ratio=cfg.input.unlabel_ratio,
                teacher_softmax_temp=cfg.teacher.softmax_temp, label_smoothing=cfg.optim.label_smoothing,
                weight_decay=cfg.optim.weight_decay, moving_average_decay=cfg.optim.moving_average_decay,
                label_data_sample_prob=cfg.input.label_data_sample_prob, mean=cfg.task.mean, std=cfg.task.std,
                seed=int(cfg.seed or 0))
            # compile() wraps the optimizer in a LossScaleOptimizer under mixed_float16 and builds its slots.
            self.model.compile(optimizer=TF1RMSProp(learning_rate=UpstreamLearningRate(**schedule_arguments(cfg))))
        self.student, self.teacher = student, teacher
        self.optimizer, self.seed = self.model.optimizer, self.model.run_seed
        self._traced = None

    @property
    def ema(self):
        """The weight EMA (None when `moving_average_decay <= 0`)."""
        return self.model.ema

    def make_ema(self) -> None:
        """Starts the EMA of the student's weights at their current values (upstream `main.py`: the shadows
        start at the initial weights, after any checkpoint initialisation)."""
        self.model.reset_ema()

    @property
    def iterations(self) -> int:
        return int(self.optimizer.iterations.numpy())

    def replica_step(self, batch):
        """One step on one replica's batch ({"labeled": ..., "unlabeled": ...} of `data.inputs.train_dataset`);
        returns the step's metrics."""
        metrics = self.model.step(batch)
        step = tf.cast(self.optimizer.iterations, tf.float32)
        metrics.update({
            "train/lr": tf.cast(self.schedule.learning_rate(step - 1.0), tf.float32),
            "train/epoch": step / self.schedule.steps_per_epoch,
        })
        return metrics

    def traced(self):
        """`steps(iterator, num_steps)`: `num_steps` steps over a distributed iterator inside one traced function
        (a `tf.while_loop` around `strategy.run`, as TPUEstimator ran `iterations_per_loop` steps per host call
        and Keras runs `steps_per_execution`); returns the last step's replica-mean metrics. Traced once, for
        every loop length."""
        if self._traced is None:
            replica_step = self.replica_step
            if self.cfg.runtime.jit_compile:
                replica_step = tf.function(replica_step, jit_compile=True, autograph=False)

            def one_step(iterator):
                metrics = self.strategy.run(replica_step, args=(next(iterator),))
                return {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                        for k, v in metrics.items()}

            @tf.function(autograph=False)
            def steps(iterator, num_steps):
                # Every step, the first included, runs in the loop's body, so that a step is the same graph
                # whatever the loop length (bit-equal results). The metrics' structure is known only once the
                # body is traced: the loop carries an Optional whose spec is filled in then, as Keras's
                # `steps_per_execution` loop does.
                empty = tf.experimental.Optional.empty(None)

                def body(i, _):
                    metrics = tf.experimental.Optional.from_value(one_step(iterator))
                    empty._element_spec = metrics.element_spec
                    return i + 1, metrics

                _, last = tf.while_loop(lambda i, _: i < num_steps, body, [tf.constant(0, tf.int64), empty])
                last._element_spec = empty.element_spec
                return last.get_value()

            self._traced = steps
        return self._traced

    def train_steps(self, iterator, num_steps: int) -> dict:
        """Runs `num_steps` steps from a distributed iterator in one call; returns the last step's metrics."""
        metrics = self.traced()(iterator, tf.constant(num_steps, tf.int64))
        return {k: float(v) for k, v in metrics.items()}
