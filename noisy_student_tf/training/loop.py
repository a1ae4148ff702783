"""The training loop: steps in chunks up to the next periodic block, then the blocks themselves (upstream
TPUEstimator's cadence): summaries every `iterations_per_loop` steps, a progress line every
`log_step_count_steps`, a checkpoint every max(save_checkpoints_steps, iterations_per_loop), and a divergence
check after every chunk. Each chunk is one call: its steps run inside one traced loop
(`train_function.make_train_function`), as TPUEstimator ran `iterations_per_loop` steps per host call."""

from __future__ import annotations

import math
import time

import tensorflow as tf
from absl import logging

from noisy_student_tf.config import LoopConfig
from noisy_student_tf.data import records
from noisy_student_tf.errors import UserError, first_line
from noisy_student_tf.progress import format_duration


class Throughput:
    """Images per second over the chunks of the loop, smoothed; the first chunk also traces, so it is not a
    speed and is only shown until a real one exists."""

    def __init__(self, images_per_step: int):
        self.images_per_step = images_per_step
        self.rate = None
        self.last = None

    def add(self, steps: int, seconds: float, first: bool) -> None:
        self.last = self.images_per_step * steps / max(seconds, 1e-9)
        if not first:
            self.rate = self.last if self.rate is None else 0.7 * self.rate + 0.3 * self.last

    @property
    def shown(self) -> float:
        return self.rate or self.last


def next_stop(step: int, start: int, last: int, loop: LoopConfig) -> int:
    """The step where the loop stops next: the first step alone (bad input is found before anything is
    written), else the next periodic block or the end."""
    if step == start:
        return step + 1
    periods = (loop.iterations_per_loop, loop.log_step_count_steps, loop.save_every)
    return min([last] + [(step // n + 1) * n for n in periods if n > 0])


def bad_input_error(error: Exception, step: int, input_description: str = "", input_files=None) -> UserError:
    """The message for input that failed at `step`. TensorFlow's read errors do not name the file, and a training
    stream interleaves many: for a corrupt or truncated record, `input_files()` are read one by one to name it."""
    where = f" (reading {input_description})" if input_description else ""
    if isinstance(error, tf.errors.DataLossError) and input_files is not None:
        files = input_files()
        logging.info("training input is damaged; reading its %d files one by one to find which", len(files))
        found = records.first_unreadable(files)
        if found is not None:
            return UserError(f"bad training input near step {step}{where}: {found[0]} is corrupt or truncated "
                             f"({found[1]}); write it again, or move it out of the data directory")
    return UserError(f"bad training input near step {step}{where}: {first_line(error)}")


def run_loop(train_function, iterator, *, start: int, last: int, loop: LoopConfig, images_per_step: int,
             model_dir: str, write_summaries: bool, save, on_started=None, input_description: str = "",
             input_files=None) -> dict:
    """Trains from step `start` to `last`.

    Args:
        train_function: `(iterator, n) -> metrics` runs n steps (`train_function.make_train_function`).
        iterator: the distributed input.
        start, last: the first step to run from and the step to stop at.
        loop: the periods.
        images_per_step: labeled + unlabeled images of one step, for the speed.
        model_dir: where summaries go (and whose latest checkpoint a divergence message names).
        write_summaries: this worker writes TensorBoard scalars.
        save: `save(step)` writes a checkpoint.
        on_started: called once the first step has succeeded (its input was readable); nothing is written before.
        input_description: named in the message when the input turns out to be bad.
        input_files: `() -> paths` of the input's files, to name the damaged one (`bad_input_error`).

    Returns:
        The last step's metrics.
    """
    writer = None
    step, metrics, started = start, {}, time.time()
    speed = Throughput(images_per_step)
    while step < last:
        target = next_stop(step, start, last, loop)
        done, tick = target - step, time.time()
        try:
            metrics = train_function(iterator, done)
        except (tf.errors.InvalidArgumentError, tf.errors.DataLossError, tf.errors.NotFoundError) as e:
            raise bad_input_error(e, step, input_description, input_files) from None
        first = step == start
        speed.add(done, time.time() - tick, first)
        if first:
            if on_started is not None:
                on_started()
            if write_summaries:
                writer = tf.summary.create_file_writer(model_dir)
        step = target
        bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
        if bad:
            raise UserError(
                f"non-finite training values by step {step} ({bad}): training diverged. Nothing was "
                f"saved for it; the last checkpoint is {tf.train.latest_checkpoint(model_dir)}. Lower "
                "--base_learning_rate or check the data.")
        if writer is not None and step % loop.iterations_per_loop == 0:
            with writer.as_default(step=step):
                for name, value in metrics.items():
                    tf.summary.scalar(name, value)
            writer.flush()
        if step % max(loop.log_step_count_steps, 1) == 0 or step == last:
            remaining = (last - step) * images_per_step / max(speed.shown, 1e-9)
            logging.info("step %d/%d (%.1f%%) loss %.4f lab/acc %.3f lr %.3g | %.1f images/s | ETA %s",
                         step, last, 100.0 * step / last, metrics["train/loss"], metrics["lab/acc"],
                         metrics["train/lr"], speed.shown, format_duration(remaining))
        if step % loop.save_every == 0 or step == last:
            save(step)
    logging.info("finished at step %d in %s", step, format_duration(time.time() - started))
    return metrics
