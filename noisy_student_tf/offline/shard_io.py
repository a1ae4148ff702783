"""Reading the shards of the offline stages, with errors that name the file: image shards, prediction shards
(upstream `predict_label.py`, `run_prediction`), info files (`get_num_image`)."""

from __future__ import annotations

import json

import numpy as np
import tensorflow as tf

from noisy_student_tf import storage
from noisy_student_tf.data import records
from noisy_student_tf.errors import UserError, first_line

READ_BUFFER_BYTES = 8 * 1024 * 1024  # upstream's TFRecord read buffer
READ_BATCH = 4096  # records parsed per call: per-record Python work is what costs here
COUNT_BATCH = 1024  # records held at once while counting: ~100 MB of ImageNet-size JPEGs


def require_file(path: str, what: str, hint: str = "") -> None:
    if not storage.isfile(path):
        raise UserError(f"{what} {path} does not exist" + (f": {hint}" if hint else ""))


def _bad_records(path: str, error) -> UserError:
    if isinstance(error, tf.errors.DataLossError):
        return UserError(f"{path} is corrupt or truncated ({first_line(error)}); rewrite it")
    return UserError(f"{path}: {first_line(error)}")


def record_batches(path: str, features: dict, *, total_replicas: int = 1, worker_id: int = 0):
    """Yields dicts of numpy arrays, READ_BATCH parsed records at a time, in file order; with
    total_replicas > 1 only the records i with i % total_replicas == worker_id (upstream's round-robin)."""
    dataset = tf.data.TFRecordDataset(path, buffer_size=READ_BUFFER_BYTES)
    if total_replicas > 1:
        dataset = dataset.shard(total_replicas, worker_id)
    # No autograph: a plain op has nothing to convert, and conversion leaves generated code in the temp directory.
    parse = tf.autograph.experimental.do_not_convert(lambda r: tf.io.parse_example(r, features))
    dataset = dataset.batch(READ_BATCH).map(parse,
                                            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    try:
        for batch in dataset.prefetch(2).as_numpy_iterator():
            yield batch
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as e:
        raise _bad_records(path, e) from None


def count_records(path: str, *, total_replicas: int = 1, worker_id: int = 0) -> int:
    """Records in `path` (with total_replicas > 1, those i with i % total_replicas == worker_id)."""
    dataset = tf.data.TFRecordDataset(path, buffer_size=READ_BUFFER_BYTES)
    if total_replicas > 1:
        dataset = dataset.shard(total_replicas, worker_id)
    try:
        # Eager batches, not Dataset.reduce: reduce traces a function on every call, which cost 3x the read
        # itself on a shard of a thousand small records (bench/offline_throughput.py counts every shard).
        return sum(int(batch.shape[0]) for batch in dataset.batch(COUNT_BATCH))
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as e:
        raise _bad_records(path, e) from None


def replica_counts(path: str, total_replicas: int) -> list[int]:
    """`count_records` of every replica of `path`, from one read: replica w has the records i with
    i % total_replicas == w, so ceil((n - w) / total_replicas) of the file's n."""
    total = count_records(path)
    return [len(range(worker, total, total_replicas)) for worker in range(total_replicas)]


def read_info(path: str) -> int:
    """Upstream `predict_label.py`, `get_num_image`: {"image_num": n}."""
    text = storage.read_text(path, "info file", "run predict for this shard first")
    try:
        value = json.loads(text)["image_num"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise UserError(f"info file {path} is not JSON of the form {{\"image_num\": N}}") from None
    if not isinstance(value, int) or value < 0:
        raise UserError(f"info file {path}: image_num must be a count, got {value!r}")
    return value


def write_info(path: str, image_num: int) -> None:
    storage.write_json(path, {"image_num": int(image_num)})


def read_predictions(path: str, num_classes: int, expected: int,
                     info_path: str = "its info file") -> tuple[np.ndarray, np.ndarray]:
    """(classes [n] int64, probabilities [n, C] float32) of a prediction shard, checked as upstream
    `utils.py`, `label_dataset` reads it."""
    require_file(path, "prediction file", "run predict for this shard first")
    classes, probabilities = [], []
    try:
        for batch in record_batches(path, records.prediction_features(num_classes)):
            classes.append(batch["classes"])
            probabilities.append(batch["probabilities"])
    except UserError as e:
        raise UserError(f"{e} (prediction records hold 'probabilities' of --num_label_classes={num_classes} "
                        "floats and 'classes')") from None
    classes = np.concatenate(classes) if classes else np.zeros([0], np.int64)
    probabilities = np.concatenate(probabilities) if probabilities else np.zeros([0, num_classes], np.float32)
    if len(classes) != expected:
        raise UserError(f"{path} holds {len(classes)} predictions but {info_path} says {expected} images: "
                        "the two come from different runs; predict this shard again")
    bad = np.nonzero((classes < 0) | (classes >= num_classes))[0]
    if len(bad):
        raise UserError(f"{path}: record {bad[0]} has class {classes[bad[0]]}, outside 0..{num_classes - 1}")
    bad = np.nonzero(~np.isfinite(probabilities).all(axis=1))[0]
    if len(bad):
        raise UserError(f"{path}: record {bad[0]} has NaN or infinite probabilities")
    return classes, probabilities
