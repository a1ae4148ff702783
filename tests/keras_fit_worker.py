"""A NoisyStudent fit() with the usual Keras callbacks, in its own process (so a test can SIGKILL it).

    python keras_fit_worker.py OUT_DIR KILL_AFTER_EPOCH   (-1: never)

Trains 4 epochs of the same 3 batches (online teacher, RandAugment, dropout and stochastic depth on) with
BackupAndRestore, TensorBoard, ModelCheckpoint and EarlyStopping; appends the optimizer's step at the start of
fit() to OUT_DIR/starts.txt and writes the final weights and EMA to OUT_DIR/final.npz.
"""

import os
import signal
import sys

import keras
import numpy as np

from noisy_student_tf import NoisyStudent, TF1RMSProp, UpstreamLearningRate, build_model, noisy_student_dataset

EPOCHS, STEPS, B = 4, 3, 4


class KillAfter(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)


class RecordStart(keras.callbacks.Callback):
    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_train_begin(self, logs=None):  # runs after BackupAndRestore restored the backup
        with open(self.path, "a") as f:
            f.write(f"{int(self.model.optimizer.iterations.numpy())}\n")


def tiny(name):
    return build_model("efficientnet-b0", 10, small_image_model=True, width_coefficient=0.25,
                       depth_coefficient=0.25, input_shape=(16, 16, 3), name=name)


def main(out_dir, kill_after):
    keras.utils.set_random_seed(0)
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, (24, 16, 16, 3)).astype(np.uint8)
    labels = np.arange(24) % 10
    data = noisy_student_dataset((images[:12], labels[:12]), images[12:], batch_size=B, unlabel_ratio=1.0,
                                 seed=1).take(STEPS).cache()
    model = NoisyStudent(tiny("student"), tiny("teacher"), unlabel_ratio=1.0, mean=[128.0] * 3, std=[64.0] * 3,
                         moving_average_decay=0.9, seed=5)
    model.compile(optimizer=TF1RMSProp(UpstreamLearningRate(0.5, B, 12, EPOCHS * STEPS)))
    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(out_dir, "backup")),
        keras.callbacks.TensorBoard(os.path.join(out_dir, "logs")),
        keras.callbacks.ModelCheckpoint(os.path.join(out_dir, "model.keras")),
        keras.callbacks.EarlyStopping(monitor="loss", patience=EPOCHS),
        RecordStart(os.path.join(out_dir, "starts.txt")),
        KillAfter(kill_after),
    ]
    model.fit(data, epochs=EPOCHS, callbacks=callbacks, verbose=2)
    arrays = {f"w{i}": w.numpy() for i, w in enumerate(model.student.weights)}
    arrays.update({"ema:" + k: v for k, v in model.ema.values().items()})
    np.savez(os.path.join(out_dir, "final.npz"), **arrays)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
