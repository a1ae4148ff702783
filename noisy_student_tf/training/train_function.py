"""What the command-line trainer trains, in the shape Keras trains (`keras/src/trainers/`): the `NoisyStudent`
model of a `TrainConfig` (student, clean online teacher, weight EMA; its `step` is the math of one step, upstream
`main.py`, `model_fn`), compiled with the TF1 RMSProp optimizer on the upstream schedule; and the train function
that runs `n` of its steps over a distributed iterator inside one trace, as Keras runs `steps_per_execution`
steps and TPUEstimator ran `iterations_per_loop` steps per host call. The loop around it is `training/loop.py`."""

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


def build_noisy_student(cfg: TrainConfig, strategy: tf.distribute.Strategy) -> NoisyStudent:
    """The `NoisyStudent` of `cfg`, built and compiled in `strategy`'s scope.

    Args:
        cfg: a validated training config.
        strategy: where the variables live (batch norm is synchronised over its replicas when there are several).

    Returns:
        The model: `student`, `teacher` (None without an online teacher), `ema` (None when
        `moving_average_decay <= 0`), `run_seed` (the run's seed as a variable, so that it is checkpointed) and
        `optimizer` (TF1-semantics RMSProp on the upstream schedule; in a LossScaleOptimizer under
        mixed_float16).
    """
    if cfg.online_teacher and not cfg.teacher.checkpoint:
        raise UserError("--teacher_model_name is set but --teacher_model_path is empty: give the teacher's "
                        "checkpoint (a random teacher would teach nothing)")
    sync_bn = strategy.num_replicas_in_sync > 1
    with strategy.scope():
        student = model_from_config(cfg.model, synchronized_bn=sync_bn)
        freeze_layers(student, cfg.fix_layer_num)
        teacher = None
        if cfg.online_teacher:
            # Upstream builds the teacher with the student's overrides (width, depth, small_image_model).
            teacher = model_from_config(cfg.model, name="teacher_model", model_name=cfg.teacher.model_name,
                                        image_size=cfg.teacher.image_size, synchronized_bn=sync_bn)
        model = NoisyStudent(
            student, teacher, num_classes=cfg.model.num_classes, unlabel_ratio=cfg.input.unlabel_ratio,
            teacher_softmax_temp=cfg.teacher.softmax_temp, label_smoothing=cfg.optim.label_smoothing,
            weight_decay=cfg.optim.weight_decay, moving_average_decay=cfg.optim.moving_average_decay,
            label_data_sample_prob=cfg.input.label_data_sample_prob, mean=cfg.task.mean, std=cfg.task.std,
            seed=int(cfg.seed or 0))
        # compile() wraps the optimizer in a LossScaleOptimizer under mixed_float16 and builds its slots.
        model.compile(optimizer=TF1RMSProp(learning_rate=UpstreamLearningRate(**schedule_arguments(cfg))))
    return model


def make_train_function(model: NoisyStudent, strategy: tf.distribute.Strategy, schedule: Schedule, *,
                        jit_compile: bool = False):
    """The function that trains `model` for `n` steps in one call (Keras's `make_train_function`).

    Args:
        model: a compiled `NoisyStudent` built in `strategy`'s scope.
        strategy: its distribution strategy.
        schedule: the run's schedule, for the `train/lr` and `train/epoch` scalars.
        jit_compile: compile one replica's step with XLA.

    Returns:
        `train_function(iterator, n)`: runs `n` steps over a distributed iterator of per-replica batches
        (`data.inputs.train_dataset`) and returns the last step's replica-mean metrics as floats, under
        upstream's summary names. Traced once, for every `n`.
    """

    def replica_step(batch):
        metrics = model.step(batch)
        step = tf.cast(model.optimizer.iterations, tf.float32)
        metrics.update({
            "train/lr": tf.cast(schedule.learning_rate(step - 1.0), tf.float32),
            "train/epoch": step / schedule.steps_per_epoch,
        })
        return metrics

    if jit_compile:
        replica_step = tf.function(replica_step, jit_compile=True, autograph=False)

    def one_step(iterator):
        metrics = strategy.run(replica_step, args=(next(iterator),))
        return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in metrics.items()}

    @tf.function(autograph=False)
    def steps(iterator, num_steps):
        # Every step, the first included, runs in the loop's body, so that a step is the same graph whatever the
        # loop length (bit-equal results). The metrics' structure is known only once the body is traced: the
        # loop carries an Optional whose spec is filled in then, as Keras's `steps_per_execution` loop does.
        empty = tf.experimental.Optional.empty(None)

        def body(i, _):
            metrics = tf.experimental.Optional.from_value(one_step(iterator))
            empty._element_spec = metrics.element_spec
            return i + 1, metrics

        _, last = tf.while_loop(lambda i, _: i < num_steps, body, [tf.constant(0, tf.int64), empty])
        last._element_spec = empty.element_spec
        return last.get_value()

    def train_function(iterator, num_steps: int) -> dict:
        metrics = steps(iterator, tf.constant(num_steps, tf.int64))
        return {k: float(v) for k, v in metrics.items()}

    return train_function
