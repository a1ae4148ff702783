"""Tiny, separable image data written in the upstream TFRecord formats (`data_input.py`, `dataset_parser`
and `unl_dst_parser`)."""

import os

import numpy as np
import tensorflow as tf

from noisy_student_tf import file_names
from noisy_student_tf.data import records

# One distinct colour per class; images are that colour plus noise, so a small net separates them quickly.
PALETTE = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [128, 128, 128]], np.float32)


def class_images(labels, rng, size=32):
    base = PALETTE[np.asarray(labels) % len(PALETTE)][:, None, None, :]
    noise = rng.normal(0, 25, (len(labels), size, size, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def jpeg(image) -> bytes:
    return tf.io.encode_jpeg(image, quality=95).numpy()


def write_labeled(directory, prefix, labels, num_shards=2, seed=0, size=32):
    """Labeled shards `<prefix>-%05d-of-%05d` with 1-based labels; returns the file paths."""
    rng = np.random.RandomState(seed)
    images = class_images(labels, rng, size)
    os.makedirs(directory, exist_ok=True)
    paths = []
    for shard, indices in enumerate(np.array_split(np.arange(len(labels)), num_shards)):
        path = os.path.join(directory, file_names.shard_name(prefix, shard, num_shards))
        records.write_records(path, (records.labeled_example(jpeg(images[i]), int(labels[i]) + 1) for i in indices))
        paths.append(path)
    return paths


def write_unlabeled(directory, labels, prefix="extra", num_shards=2, seed=1, num_classes=10, size=32,
                    probabilities=None):
    """Unlabeled shards as proc_svhn writes `extra`: dummy teacher fields unless `probabilities` are given."""
    rng = np.random.RandomState(seed)
    images = class_images(labels, rng, size)
    os.makedirs(directory, exist_ok=True)
    paths = []
    for shard, indices in enumerate(np.array_split(np.arange(len(labels)), num_shards)):
        path = os.path.join(directory, file_names.shard_name(prefix, shard, num_shards))

        def examples():
            for i in indices:
                if probabilities is None:
                    yield records.unlabeled_example(jpeg(images[i]), np.zeros(num_classes), 0, 0.0,
                                                    class_label_1_based=int(labels[i]) + 1)
                else:
                    p = probabilities[i]
                    yield records.unlabeled_example(jpeg(images[i]), p, int(np.argmax(p)), float(np.max(p)))

        records.write_records(path, examples())
        paths.append(path)
    return paths


def balanced_labels(per_class, num_classes=10, seed=0):
    labels = np.repeat(np.arange(num_classes), per_class)
    np.random.RandomState(seed).shuffle(labels)
    return labels
