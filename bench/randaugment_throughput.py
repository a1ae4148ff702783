"""RandAugment throughput inside tf.data: ours (faithful to upstream) vs keras.layers.RandAugment.

Both run in the same process on the same images, in a parallel `Dataset.map` (AUTOTUNE), one image per call,
as a training input pipeline does. Prints a table and writes it to bench/results/randaugment_throughput.md.

    python bench/randaugment_throughput.py [--repeats=3]
"""

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.datasets import load_sample_images  # noqa: E402

from noisy_student_tf.data import randaugment  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "randaugment_throughput.md")

# (label, image size, N, M, translate/cutout const, images per timed run)
CASES = [
    ("ImageNet recipe (B7)", 224, 2, 27, 100, 1500),
    ("SVHN recipe", 32, 2, 5, 4, 20000),
]


def source_images(size, count=64):
    """Natural-looking images: random crops of scikit-learn's two sample photographs, resized."""
    rng = np.random.RandomState(0)
    photos = load_sample_images().images
    out = []
    for i in range(count):
        photo = photos[i % 2]
        side = rng.randint(size, min(photo.shape[:2]))
        y, x = rng.randint(0, photo.shape[0] - side + 1), rng.randint(0, photo.shape[1] - side + 1)
        crop = Image.fromarray(photo[y:y + side, x:x + side]).resize((size, size), Image.BILINEAR)
        out.append(np.asarray(crop))
    return np.stack(out)


def throughput(images, augment, count, batched=False):
    """Images/s of a tf.data pipeline applying `augment` per image (or, batched, per batch of 64)."""
    dataset = tf.data.Dataset.from_tensor_slices(images).repeat().take(count).enumerate()
    if batched:
        dataset = dataset.batch(64).map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        dataset = dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE).batch(64)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    for _ in dataset.take(2):  # warm-up: tracing and thread start
        pass
    start = time.perf_counter()
    seen = 0
    for batch in dataset:
        seen += int(batch.shape[0])
    return seen / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rows = []
    for label, size, layers, magnitude, const, count in CASES:
        images = source_images(size)

        def ours(index, image, layers=layers, magnitude=magnitude, const=const):
            seed = tf.stack([tf.constant(0, tf.int64), index])
            return randaugment.distort_image_with_randaugment(
                image, layers, magnitude, cutout_const=const, translate_const=const, seed=seed)

        # Keras' factor is the magnitude as a fraction of its maximum (M / 10, capped at 1).
        keras_layer = keras.layers.RandAugment(value_range=(0, 255), num_ops=layers,
                                               factor=min(magnitude / 10.0, 1.0), seed=0)

        def builtin(index, image):
            return tf.cast(keras_layer(tf.cast(image, tf.float32)), tf.uint8)

        ours_runs, keras_runs, keras_batched_runs = [], [], []
        for _ in range(args.repeats):  # alternate, so all see the same machine state
            ours_runs.append(throughput(images, ours, count))
            keras_runs.append(throughput(images, builtin, count))
            keras_batched_runs.append(throughput(images, builtin, count, batched=True))
        rows.append((label, f"{size}x{size}", layers, magnitude, np.median(ours_runs), np.median(keras_runs),
                     np.median(keras_batched_runs)))

    header = ("| case | image | N | M | ours, per image (img/s) | keras.layers.RandAugment, per image (img/s) "
              "| keras, per batch of 64 (img/s) | ours / best keras |\n|---|---|---|---|---|---|---|---|\n")
    body = "".join(f"| {l} | {s} | {n} | {m} | {o:,.0f} | {k:,.0f} | {kb:,.0f} | {o / max(k, kb):.2f}x |\n"
                   for l, s, n, m, o, k, kb in rows)
    note = (f"\nMedian of {args.repeats} alternating runs; tf.data parallel map (AUTOTUNE); ours maps one image per "
            "call with a per-example seed; Keras' layer is timed both per image and per batch of 64; "
            f"{os.cpu_count()} CPU cores, TF {tf.__version__}, Keras {keras.__version__}, "
            f"Python {platform.python_version()}.\n"
            "keras.layers.RandAugment is a different algorithm (its own op list and magnitude mapping, "
            "bilinear sampling); it is here only as the speed reference. Absolute figures on this shared "
            "2-core machine vary by up to ~1.7x between runs; the ratio measured in one run is the figure to read.\n")
    table = "# RandAugment throughput\n\n" + header + body + note
    print(table)
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w", encoding="utf-8") as f:
        f.write(table)


if __name__ == "__main__":
    main()
