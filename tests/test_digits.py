"""The bundled digits task: deterministic under a seed, the documented split sizes, and task facts that match
the data (tasks.py's constants are recomputed here)."""

import hashlib
import os

import numpy as np
import tensorflow as tf

from noisy_student_tf.data.sources import digits
from noisy_student_tf.tasks import get_task

SPEC = {"image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/class/label": tf.io.FixedLenFeature([], tf.int64)}


def digest(directory):
    out = {}
    for base, _, names in os.walk(directory):
        for name in sorted(names):
            with open(os.path.join(base, name), "rb") as f:
                out[os.path.relpath(os.path.join(base, name), directory)] = hashlib.sha256(f.read()).hexdigest()
    return out


def labels_of(paths):
    return [int(tf.io.parse_single_example(r, SPEC)["image/class/label"]) for p in paths
            for r in tf.data.TFRecordDataset(p)]


def test_preparation_is_seeded_and_matches_the_task_facts(tmp_path):
    counts = digits.prepare(str(tmp_path / "a"), seed=0)
    digits.prepare(str(tmp_path / "b"), seed=0)
    digits.prepare(str(tmp_path / "c"), seed=1)
    a, b, c = (digest(tmp_path / x) for x in "abc")
    assert a == b and a != c
    assert sorted(a) == ["dev-00000-of-00001", "test-00000-of-00001", "train-00000-of-00002",
                         "train-00001-of-00002"] + [f"unlabeled/extra-{i:05d}-of-00004" for i in range(4)]
    task = get_task("digits")
    assert counts == {"train": task.num_train_images, "dev": task.num_eval_images, "test": task.num_test_images,
                      "extra": 1797 - 800}
    train = labels_of([tmp_path / "a" / f"train-0000{i}-of-00002" for i in range(2)])
    assert np.bincount(train).tolist() == [0] + [10] * 10  # 1-based labels, 10 per class
    extra = labels_of([tmp_path / "a" / "unlabeled" / f"extra-0000{i}-of-00004" for i in range(4)])
    assert len(extra) == 997 and min(extra) == 1 and max(extra) == 10
    # A re-run over existing files writes nothing new.
    before = {p: os.stat(os.path.join(tmp_path / "a", p)).st_mtime_ns for p in a}
    digits.prepare(str(tmp_path / "a"), seed=0)
    assert before == {p: os.stat(os.path.join(tmp_path / "a", p)).st_mtime_ns for p in a}


def test_task_normalisation_constants_are_the_data_statistics():
    mean, std = digits.channel_statistics()
    task = get_task("digits")
    np.testing.assert_allclose(task.mean, mean, atol=1e-3)
    np.testing.assert_allclose(task.std, std, atol=1e-3)
    assert (task.num_classes, task.image_size, task.small_image_model, task.flip) == (10, 32, True, False)
