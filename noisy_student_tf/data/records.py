"""TFRecord formats of the original code (as upstream `data_input.py`, `proc_svhn.py`, `predict_label.py` and
`filter_unlabel.py` read and write them): feature specs, example builders, shard names, atomic writes.

All files are uncompressed TFRecords of serialized `tf.train.Example`s; images are encoded JPEG bytes.
"""

from __future__ import annotations

import tensorflow as tf

from noisy_student_tf import storage
from noisy_student_tf.errors import UserError, first_line

# Labeled records, as upstream `data_input.py`, `TFExampleInput.dataset_parser` reads them. Labels are 1-based on disk.
LABELED_FEATURES = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string, ""),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64, -1),
}


def unlabeled_features(num_classes: int) -> dict:
    """Upstream `data_input.py`, `TFExampleInput.unl_dst_parser`: unlabeled records read in training;
    `probabilities` and `prob` are required."""
    return {
        "image/encoded": tf.io.FixedLenFeature((), tf.string, ""),
        "probabilities": tf.io.FixedLenFeature([num_classes], tf.float32),
        "label": tf.io.FixedLenFeature([], tf.int64, -1),
        "prob": tf.io.FixedLenFeature([], tf.float32),
    }


# Upstream `utils.py`, `parse_tfrecord`: predict and filter read only the image bytes of their input shards.
IMAGE_FEATURES = {"image/encoded": tf.io.FixedLenFeature((), tf.string)}


def prediction_features(num_classes: int) -> dict:
    """Upstream `utils.py`, `label_dataset`: one prediction record per input image, no defaults."""
    return {
        "probabilities": tf.io.FixedLenFeature([num_classes], tf.float32),
        "classes": tf.io.FixedLenFeature([], tf.int64),
    }


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def _floats(values) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))  # a list or a float32 array


def _serialize(features: dict) -> bytes:
    # deterministic=True sorts the feature map; otherwise its order varies from process to process, and the
    # same inputs must give the same file bytes (resumed and repeated runs are compared byte for byte).
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString(deterministic=True)


def labeled_example(image_bytes: bytes, label_1_based: int) -> bytes:
    features = {"image/encoded": _bytes(image_bytes), "image/class/label": _int64(label_1_based)}
    return _serialize(features)


def unlabeled_example(image_bytes: bytes, probabilities, label: int, prob: float,
                      class_label_1_based: int | None = None) -> bytes:
    """Record of upstream `filter_unlabel.py`, `filter_image_by_idx` (read by `data_input.py`, `unl_dst_parser`):
    teacher `probabilities`, 0-based `label`, top-1 `prob`."""
    features = {"image/encoded": _bytes(image_bytes), "probabilities": _floats(probabilities),
                "label": _int64(label), "prob": _floats([prob])}
    if class_label_1_based is not None:
        features["image/class/label"] = _int64(class_label_1_based)
    return _serialize(features)


def prediction_example(probabilities, predicted_class: int) -> bytes:
    """Record of upstream `predict_label.py`, `run_prediction`: the softmax and its argmax."""
    features = {"probabilities": _floats(probabilities), "classes": _int64(predicted_class)}
    return _serialize(features)


def write_records(path: str, serialized_records) -> int:
    """Writes records atomically (temporary name, then rename); returns how many were written."""
    count = 0
    with storage.atomic_output(path) as tmp:
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
        if not storage.isdir(directory):
            raise UserError(f"{flag}: directory {directory!r} does not exist")
        for prefix in prefixes:
            files += storage.glob(storage.join(directory, f"{prefix}*"))
    files = sorted(f for f in files if not storage.basename(f).startswith("."))
    if not files:
        patterns = ", ".join(f"{p}*" for p in prefixes)
        raise UserError(f"{flag}={data_dirs!r}: no files matching {patterns}")
    return files


READ_ERRORS = (tf.errors.DataLossError, tf.errors.InvalidArgumentError, tf.errors.NotFoundError)


def first_unreadable(files, features: dict | None = None) -> tuple[str, str] | None:
    """(file, reason) for the first of `files` whose records cannot be read (corrupt or truncated, or, with
    `features`, not parseable with them), or None. A training stream interleaves many files and TensorFlow's read
    errors do not say which one failed; this reads them one by one to name it."""
    for path in files:
        dataset = tf.data.TFRecordDataset(path).batch(1024)
        if features is not None:
            dataset = dataset.map(tf.autograph.experimental.do_not_convert(
                lambda batch: tf.io.parse_example(batch, features)))
        try:
            for _ in dataset:
                pass
        except READ_ERRORS as e:
            return path, first_line(e)
    return None


# --- A fast writer for the pseudo-labelled records of filter_unlabel and reassign ---
# (upstream `filter_unlabel.py`, `filter_image_by_idx`, and `predict_label.py`, `run_prediction`)
#
# Building a tf.train.Example per record cost more than reading and writing it, so these records are
# encoded directly in protobuf wire format, with the keys in sorted order (so equal inputs give equal
# bytes). tests/test_records.py checks that TensorFlow parses them exactly like a built Example.

def _slow_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL_VARINTS = [_slow_varint(n) for n in range(1 << 14)]  # every length up to 16 KiB: a table lookup


def _varint(value: int) -> bytes:
    return _SMALL_VARINTS[value] if value < 16384 else _slow_varint(value)


def _delimited(field_number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(field_number << 3 | 2) + _varint(len(payload)) + payload


def _map_entry(key: bytes, feature: bytes) -> bytes:
    """One entry of Features.feature (map<string, Feature>, field 1): key = 1, value = 2."""
    return _delimited(1, _delimited(1, key) + _delimited(2, feature))


# Feature's oneof: bytes_list = 1, float_list = 2, int64_list = 3; each list's values are field 1 (packed).
_BYTES_LIST, _FLOAT_LIST, _INT64_LIST = 1, 2, 3


class PseudoLabelEncoder:
    """Serialized Examples with `image/encoded`, `label` (int64), `prob` (float) and `probabilities` (C floats)."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        # Everything but the image is known up to the label and the float32 bytes: precompute it.
        self._label_entries = [_map_entry(b"label", _delimited(_INT64_LIST, _delimited(1, _varint(c))))
                               for c in range(num_classes)]
        self._prob_prefix = _map_entry(b"prob", _delimited(_FLOAT_LIST, _delimited(1, b"\0" * 4)))[:-4]
        size = 4 * num_classes
        self._probs_prefix = _map_entry(b"probabilities",
                                        _delimited(_FLOAT_LIST, _delimited(1, b"\0" * size)))[:-size]
        self._fixed_size = len(self._prob_prefix) + 4 + len(self._probs_prefix) + size
        self._image_key = _delimited(1, b"image/encoded") + b"\x12"  # entry key, then the value's tag

    def encode(self, image: bytes, label: int, prob_f32: bytes, probabilities_f32: bytes) -> bytes:
        """`prob_f32`/`probabilities_f32`: little-endian float32 bytes (numpy `astype('<f4').tobytes()`)."""
        values = b"\n" + _varint(len(image)) + image  # BytesList.value
        feature = b"\n" + _varint(len(values)) + values  # Feature.bytes_list
        entry = self._image_key + _varint(len(feature)) + feature
        label_entry = self._label_entries[label]
        size = len(entry) + 1 + len(_varint(len(entry))) + len(label_entry) + self._fixed_size
        return b"".join((b"\n", _varint(size), b"\n", _varint(len(entry)), entry, label_entry,
                         self._prob_prefix, prob_f32, self._probs_prefix, probabilities_f32))
