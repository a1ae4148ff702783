"""The learning-rate schedule of the original main.py (`model_fn`, with `utils.py`, `build_learning_rate`), with
its step and epoch arithmetic (`main`)."""

from __future__ import annotations

import dataclasses
import math

import keras
import tensorflow as tf

# Upstream constants: the LR is given for a batch of 256, warms up linearly for 5 epochs, and decays by 0.97
# per decay interval (staircase); without final_base_lr the interval is 2.4 epochs (times train_ratio).
LR_BATCH_REFERENCE = 256
WARMUP_EPOCHS = 5
DECAY_RATE = 0.97
DEFAULT_DECAY_EPOCHS = 2.4


@dataclasses.dataclass(frozen=True)
class Schedule:
    """All numbers derived from the flags; `learning_rate(step)` is the TF function used in training."""

    scaled_lr: float
    steps_per_epoch: float
    decay_steps: float
    warmup_steps: int
    train_steps: int  # schedule length (after train_ratio)
    last_step: int  # training stops here (train_last_step_num after train_ratio)

    @property
    def step_offset(self) -> int:
        """Fine-tuning the tail: step s uses the LR of step s + (train_steps - last_step) (upstream
        `utils.py`, `build_learning_rate`'s `start_from_step`)."""
        return self.train_steps - self.last_step

    def learning_rate(self, step):
        lr_step = tf.cast(step, tf.float32) + float(self.step_offset)
        decayed = self.scaled_lr * tf.pow(DECAY_RATE, tf.floor(lr_step / self.decay_steps))
        warmup = self.scaled_lr * lr_step / float(max(self.warmup_steps, 1))
        return tf.where(lr_step < float(self.warmup_steps), warmup, decayed)

    def learning_rate_at(self, step: int) -> float:
        """The same in plain Python (for logs and tests)."""
        lr_step = step + self.step_offset
        if lr_step < self.warmup_steps:
            return self.scaled_lr * lr_step / max(self.warmup_steps, 1)
        return self.scaled_lr * DECAY_RATE ** math.floor(lr_step / self.decay_steps)


def make_schedule(*, base_learning_rate: float, train_batch_size: int, num_train_images: int,
                  train_steps: int, train_last_step_num: int = -1, train_ratio: float = 1.0,
                  final_base_lr: float | None = None, label_data_sample_prob: float = 1.0) -> Schedule:
    """Upstream `main.py`, `model_fn` (and the derived values of `main`): batch scaling, warmup,
    staircase decay, train_ratio, tail."""
    if train_last_step_num == -1:
        train_last_step_num = train_steps
    if train_ratio != 1:
        train_steps = int(train_steps * train_ratio)
        train_last_step_num = int(train_last_step_num * train_ratio)
    real_batch = train_batch_size * label_data_sample_prob
    steps_per_epoch = num_train_images / real_batch
    scaled_lr = base_learning_rate * real_batch / LR_BATCH_REFERENCE
    if final_base_lr:
        # Upstream counts epochs without p here and subtracts the warmup although decay starts at step 0,
        # so the last LR undershoots final_base_lr slightly (upstream `main.py`, `model_fn`; kept for parity).
        total_epochs = train_steps * train_batch_size / num_train_images - WARMUP_EPOCHS
        decay_times = math.log(final_base_lr / base_learning_rate) / math.log(DECAY_RATE)
        decay_epochs = total_epochs / decay_times
    else:
        decay_epochs = DEFAULT_DECAY_EPOCHS * train_ratio
    return Schedule(scaled_lr=scaled_lr, steps_per_epoch=steps_per_epoch,
                    decay_steps=steps_per_epoch * decay_epochs, warmup_steps=int(WARMUP_EPOCHS * steps_per_epoch),
                    train_steps=train_steps, last_step=train_last_step_num)


@keras.saving.register_keras_serializable(package="noisy_student_tf")
class UpstreamLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """The original code's learning rate as a Keras schedule (pass it to `TF1RMSProp(learning_rate=...)`).

    Linear warmup over 5 epochs, then a staircase decay by 0.97 every 2.4 epochs (or so that the last step reaches
    `final_base_lr`), with the base rate given for a batch of 256 (upstream `main.py`, `model_fn`, and `utils.py`,
    `build_learning_rate`). The optimizer's step counter is the step: call it with the optimizer's `iterations`.

    Args:
        base_learning_rate: the rate for a batch of 256 (upstream `--base_learning_rate`, 0.016).
        train_batch_size: labeled images per step (`--train_batch_size`).
        num_train_images: labeled images in one epoch (`--num_train_images`).
        train_steps: the schedule's length (`--train_steps`).
        train_last_step_num, train_ratio, final_base_lr, label_data_sample_prob: as the upstream flags.
    """

    def __init__(self, base_learning_rate: float, train_batch_size: int, num_train_images: int, train_steps: int,
                 train_last_step_num: int = -1, train_ratio: float = 1.0, final_base_lr: float | None = None,
                 label_data_sample_prob: float = 1.0):
        self.arguments = dict(base_learning_rate=base_learning_rate, train_batch_size=train_batch_size,
                              num_train_images=num_train_images, train_steps=train_steps,
                              train_last_step_num=train_last_step_num, train_ratio=train_ratio,
                              final_base_lr=final_base_lr, label_data_sample_prob=label_data_sample_prob)
        self.schedule = make_schedule(**self.arguments)

    def __call__(self, step):
        return self.schedule.learning_rate(step)

    def get_config(self):
        return dict(self.arguments)
