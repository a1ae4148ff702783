"""`fit_noisy_student` in its own process, so that a test can SIGKILL it in the middle of a stage.

    python self_training_worker.py OUT_DIR KILL_STAGE KILL_AFTER_EPOCH   (KILL_STAGE "-": never)

Runs a teacher and two students of a tiny CNN on a slice of the bundled digits, resumable in OUT_DIR/run; appends
"<stage> <optimizer step at the start of fit()>" to OUT_DIR/starts.txt and writes the final student's weights and
moving averages to OUT_DIR/final.npz.
"""

import os
import signal
import sys

import keras
import numpy as np

from noisy_student_tf import fit_noisy_student
from noisy_student_tf.data.sources import digits

TEACHER_STEPS, STEPS, STEPS_PER_EPOCH = 6, 9, 3


def tiny_cnn(width=4, classes=10, activation=None):
    """A user's own small Conv-BN-ReLU network (dropout included, so the resumed noise must match too)."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    for filters in (width, 2 * width):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    return keras.Model(inputs, keras.layers.Dense(classes, activation=activation)(x))


def tiny_data():
    splits = digits.load_splits(seed=0)
    (x, y), (x_unlabeled, _), dev = splits["train"], splits["extra"], splits["dev"]
    return (x[:40], y[:40]), x_unlabeled[:120], (dev[0][:40], dev[1][:40])


def arguments():
    """The call's settings, shared by the worker and the tests."""
    return dict(iterations=2, teacher_steps=TEACHER_STEPS, steps=STEPS, steps_per_epoch=STEPS_PER_EPOCH,
                teacher_batch_size=8, batch_size=4, num_image=6, min_threshold=0.0, flip=False, seed=3, verbose=0)


class KillAfter(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)


class RecordStart(keras.callbacks.Callback):
    def __init__(self, path, stage):
        super().__init__()
        self.path, self.stage = path, stage

    def on_train_begin(self, logs=None):  # after BackupAndRestore restored its backup
        with open(self.path, "a") as f:
            f.write(f"{self.stage} {int(self.model.optimizer.iterations.numpy())}\n")


def main(out_dir, kill_stage, kill_after):
    labeled, unlabeled, dev = tiny_data()

    def callbacks(stage):
        found = [RecordStart(os.path.join(out_dir, "starts.txt"), stage)]
        return found + ([KillAfter(kill_after)] if stage == kill_stage else [])

    keras.utils.set_random_seed(0)
    result = fit_noisy_student(labeled, unlabeled, teacher=tiny_cnn(), student=lambda k: tiny_cnn(4 + 2 * k),
                               validation_data=dev, callbacks=callbacks, directory=os.path.join(out_dir, "run"),
                               **arguments())
    arrays = {f"w{i}": w.numpy() for i, w in enumerate(result.model.student.weights)}
    # By position: a resumed process names its layers differently (it loaded the finished stages first).
    arrays.update({f"ema:{i}": v for i, v in enumerate(result.model.ema.values().values())})
    np.savez(os.path.join(out_dir, "final.npz"), **arrays)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
