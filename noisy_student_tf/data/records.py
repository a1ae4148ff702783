"""TFRecord formats of the original code (spec §4): feature specs, example builders, shard names, atomic writes.

All files are uncompressed TFRecords of serialized `tf.train.Example`s; images are encoded JPEG bytes.
"""

from __future__ import annotations

import os

import tensorflow as tf

from noisy_student_tf.errors import UserError
from noisy_student_tf.io_utils import atomic_output

# Spec §4.1: labeled records. Labels are 1-based on disk.
LABELED_FEATURES = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string, ""),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64, -1),
}


def unlabeled_features(num_classes: int) -> dict:
    """Spec §4.2: unlabeled records read in training; `probabilities` and `prob` are required."""
    return {
        "image/encoded": tf.io.FixedLenFeature((), tf.string, ""),
        "probabilities": tf.io.FixedLenFeature([num_classes], tf.float32),
        "label": tf.io.FixedLenFeature([], tf.int64, -1),
        "prob": tf.io.FixedLenFeature([], tf.float32),
    }


def shard_name(prefix: str, index: int, num_shards: int) -> str:
    """'%s-%05d-of-%05d', e.g. train-00003-of-00128 (spec §4.8)."""
    return "%s-%05d-of-%05d" % (prefix, index, num_shards)


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def _floats(values) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


def labeled_example(image_bytes: bytes, label_1_based: int) -> bytes:
    features = {"image/encoded": _bytes(image_bytes), "image/class/label": _int64(label_1_based)}
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def unlabeled_example(image_bytes: bytes, probabilities, label: int, prob: float,
                      class_label_1_based: int | None = None) -> bytes:
    """Spec §4.2/§4.5 record: teacher `probabilities`, 0-based `label`, top-1 `prob`."""
    features = {"image/encoded": _bytes(image_bytes), "probabilities": _floats(probabilities),
                "label": _int64(label), "prob": _floats([prob])}
    if class_label_1_based is not None:
        features["image/class/label"] = _int64(class_label_1_based)
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def write_records(path: str, serialized_records) -> int:
    """Writes records atomically (temporary name, then rename); returns how many were written."""
    count = 0
    with atomic_output(path) as tmp:
        with tf.io.TFRecordWriter(tmp) as writer:
            for record in serialized_records:
                writer.write(record)
                count += 1
    return count


def find_files(data_dirs: str, prefixes, flag: str = "--label_data_dir") -> list[str]:
    """Sorted files named `<prefix>*` in every `;`-separated directory; a clear error when there are none."""
    if not data_dirs:
        raise UserError(f"{flag} is empty: give the directory holding the TFRecord shards")
    files = []
    for directory in data_dirs.split(";"):
        if not tf.io.gfile.isdir(directory):
            raise UserError(f"{flag}: directory {directory!r} does not exist")
        for prefix in prefixes:
            files += tf.io.gfile.glob(os.path.join(directory, f"{prefix}*"))
    files = sorted(f for f in files if not os.path.basename(f).startswith("."))
    if not files:
        patterns = ", ".join(f"{p}*" for p in prefixes)
        raise UserError(f"{flag}={data_dirs!r}: no files matching {patterns}")
    return files
