"""`fit_noisy_student`, the one call, on the bundled digits with its default settings, for three kinds of models:

* efficientnet: the package's EfficientNet-B0 at half width and depth, teacher and student (the digits recipe's
  network; the one call then defaults to upstream's optimizer and schedule), with the digits task's mean/std;
* cnn: a user's own small Conv-BN-ReLU network, the student wider than the teacher;
* mobilenetv3: keras.applications MobileNetV3Small teacher -> MobileNetV3Large student, from scratch, as a user
  adapts ImageNet networks to 32x32 images: the images resized to 64x64 inside the model (at 32x32 the networks'
  32x downsampling leaves a single pixel), batch-norm momentum 0.9 instead of 0.999 (whose moving statistics
  would still be mostly their initial values after a few hundred steps);
* efficientnetv2: keras.applications EfficientNetV2-B0 teacher -> EfficientNetV2-B1 student, from scratch, at
  32x32 as they come (the student does not catch up with its teacher: see the README).

Defaults everywhere (teacher 400 steps of 32 labeled images, one student of 600 steps of 16 labeled + 32
pseudo-labelled images, RandAugment N=2 M=5, soft targets, threshold 0.3, balanced to the pool's images per
class) but flip=False (digits are not mirror-symmetric). One student iteration per seed. Dev is the validation
data; the table reports test top-1. Writes experiments/results/fit_noisy_student_digits.{json,md}.

    python experiments/fit_noisy_student_digits.py [--pairs=cnn,mobilenetv3,efficientnetv2,efficientnet]
        [--seeds=0,1,2]

Not run in CI (about an hour on a 2-core machine).
"""

from __future__ import annotations

import json
import os
import sys
import time

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
RESULTS = os.path.join(ROOT, "experiments", "results")

flags.DEFINE_list("pairs", ["cnn", "mobilenetv3", "efficientnetv2", "efficientnet"], "Model pairs to run.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (each one a data split and a run).")
flags.DEFINE_string("name", "fit_noisy_student_digits", "Results file name under experiments/results.")
FLAGS = flags.FLAGS


def small_cnn(width: int):
    """A user's own network: three Conv-BN-ReLU-pool blocks, dropout, logits."""
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    for filters in (width, 2 * width, 4 * width):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.3)(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def models(pair: str):
    """(teacher, student factory, NoisyStudent normalisation) of a pair."""
    import keras

    from noisy_student_tf import build_model
    from noisy_student_tf.tasks import get_task

    if pair == "cnn":
        return small_cnn(32), lambda k: small_cnn(48), {}
    if pair == "mobilenetv3":
        def mobilenet(make):
            network = make(input_shape=(64, 64, 3), weights=None, classes=10, classifier_activation=None)
            for layer in network.layers:
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.momentum = 0.9
            images = keras.Input((32, 32, 3))
            return keras.Model(images, network(keras.layers.Resizing(64, 64)(images)))

        return (mobilenet(keras.applications.MobileNetV3Small),
                lambda k: mobilenet(keras.applications.MobileNetV3Large), {})
    if pair == "efficientnetv2":
        def v2(make):
            return make(input_shape=(32, 32, 3), weights=None, classes=10, classifier_activation=None)

        return (v2(keras.applications.EfficientNetV2B0), lambda k: v2(keras.applications.EfficientNetV2B1), {})
    if pair == "efficientnet":
        def b0(name):
            return build_model("efficientnet-b0", 10, small_image_model=True, width_coefficient=0.5,
                               depth_coefficient=0.5, name=name)

        task = get_task("digits")
        return b0("teacher"), lambda k: b0(f"student_{k}"), {"mean": task.mean, "std": task.std}
    raise ValueError(f"unknown pair {pair!r}")


def one_run(pair: str, seed: int) -> dict:
    import keras
    import numpy as np

    from noisy_student_tf import fit_noisy_student
    from noisy_student_tf.data.sources import digits

    splits = digits.load_splits(seed=seed)
    keras.utils.set_random_seed(seed)
    teacher, student, normalization = models(pair)
    started = time.monotonic()
    result = fit_noisy_student(splits["train"], splits["extra"][0], teacher=teacher, student=student,
                               validation_data=splits["dev"], test_data=splits["test"], flip=False, seed=seed,
                               verbose=2, **normalization)
    seconds = time.monotonic() - started
    labels = result.pseudo_labels["student_1"]
    kept = labels["copies"] > 0
    right = labels["probabilities"].argmax(axis=1) == splits["extra"][1]
    return {"pair": pair, "seed": seed, "seconds": round(seconds, 1),
            "optimizer": type(result.model.optimizer).__name__,
            "stages": [{key: record[key] for key in ("stage", "seconds", "validation", "test", "pseudo_labels")
                        if key in record} for record in result.history],
            "pseudo_label_accuracy": float(np.mean(right[kept]))}


def table(runs: list) -> str:
    lines = ["| models | seed | optimizer (default) | teacher test top-1 | student test top-1 | gain | pseudo labels "
             "kept (right) | time |", "|---|---|---|---|---|---|---|---|"]
    for run in runs:
        teacher, student = (100 * stage["test"]["accuracy"] for stage in run["stages"])
        kept = run["stages"][1]["pseudo_labels"]["kept"]
        lines.append(f"| {run['pair']} | {run['seed']} | {run['optimizer']} | {teacher:.1f}% | {student:.1f}% | "
                     f"{student - teacher:+.1f} | {kept} ({100 * run['pseudo_label_accuracy']:.1f}%) | "
                     f"{run['seconds'] / 60:.1f} min |")
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    os.makedirs(RESULTS, exist_ok=True)
    json_path = os.path.join(RESULTS, f"{FLAGS.name}.json")
    runs = []
    if os.path.exists(json_path):
        with open(json_path) as f:
            runs = json.load(f)
    for pair in FLAGS.pairs:
        for seed in map(int, FLAGS.seeds):
            if any(r["pair"] == pair and r["seed"] == seed for r in runs):
                continue
            runs.append(one_run(pair, seed))
            with open(json_path, "w") as f:
                json.dump(runs, f, indent=1)
            with open(os.path.join(RESULTS, f"{FLAGS.name}.md"), "w") as f:
                f.write(table(runs))
            print(table(runs), flush=True)


if __name__ == "__main__":
    app.run(main)
