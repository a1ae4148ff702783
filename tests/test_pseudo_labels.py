"""The in-memory pseudo-labelling API (`offline.pseudo_labels`) against the filter job and a direct forward pass.

The selection is compared with what `filter_unlabel.py` (`jobs.filter_unlabel.run`, --all_shards) writes for the
same predictions in files: every image is distinct, so the written records' image bytes tell which source image
each record is and how many copies of it were kept.
"""

import dataclasses
import inspect
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import offline_data
import tiny_data
from noisy_student_tf.jobs import filter_unlabel
from noisy_student_tf.offline import pseudo_labels
from noisy_student_tf.config import FilterConfig

C = 4
SHARD_SIZES = [37, 52, 41, 60]
NUM_SHARDS = len(SHARD_SIZES)
PREFIX = "extra"


def predictions():
    """float64 rows whose top-1 confidences spread over 0.3..0.99, half of them on the 0.01 grid (where float32,
    as the prediction files hold them, can fall into the bin below), and classes of unequal size, so that
    balancing both drops and repeats images."""
    rng = np.random.RandomState(0)
    labels = rng.choice(C, size=sum(SHARD_SIZES), p=[0.45, 0.3, 0.15, 0.1])
    confidences = rng.uniform(0.3, 0.99, size=len(labels))
    confidences[::2] = np.round(confidences[::2], 2)
    rows = np.repeat(((1.0 - confidences) / (C - 1))[:, None], C, axis=1)
    rows[np.arange(len(labels)), labels] = confidences
    return rows


@pytest.fixture(scope="module")
def unlabeled(tmp_path_factory):
    """Image shards (every image distinct) and their prediction files; (root, probabilities, bytes -> row)."""
    root = str(tmp_path_factory.mktemp("in_memory"))
    probabilities = predictions()
    images = np.random.RandomState(1).randint(0, 256, size=(len(probabilities), 8, 8, 3)).astype(np.uint8)
    encoded = [tiny_data.jpeg(image) for image in images]
    assert len(set(encoded)) == len(encoded)
    start = 0
    for shard, size in enumerate(SHARD_SIZES):
        rows = range(start, start + size)
        offline_data.write(os.path.join(root, "unl", "%s-%05d-of-%05d" % (PREFIX, shard, NUM_SHARDS)),
                           (offline_data.example(image__encoded=encoded[i]) for i in rows))
        offline_data.write_predictions(root, shard, NUM_SHARDS, probabilities[start:start + size])
        start += size
    return root, probabilities, {image: row for row, image in enumerate(encoded)}


def filter_job_copies(root, probabilities, row_of, name, **flags):
    """Runs filter_unlabel over all shards; returns the copies of each source row in its written records."""
    cfg = FilterConfig(input_dir=f"{root}/unl", prediction_dir=f"{root}/predict_label", info_dir=f"{root}/info",
                       prelim_stats_dir=f"{root}/{name}/prelim_stats", output_dir=f"{root}/{name}/filter_data",
                       num_classes=C, num_shards=NUM_SHARDS, file_prefix=PREFIX, all_shards=True, num_workers=2,
                       **flags)
    filter_unlabel.run(cfg)
    features = {"image/encoded": tf.io.FixedLenFeature([], tf.string),
                "label": tf.io.FixedLenFeature([], tf.int64),
                "probabilities": tf.io.FixedLenFeature([C], tf.float32)}
    copies = np.zeros(len(probabilities), np.int64)
    shard_of_row = np.repeat(np.arange(NUM_SHARDS), SHARD_SIZES)
    for shard in range(NUM_SHARDS):
        if not os.path.exists(cfg.data_path(shard)):  # the job writes no file for a shard it keeps nothing of
            continue
        for record in offline_data.read_records(cfg.data_path(shard), features):
            row = row_of[record["image/encoded"].numpy()]
            assert shard_of_row[row] == shard
            np.testing.assert_array_equal(record["probabilities"].numpy(), probabilities[row].astype(np.float32))
            assert int(record["label"]) == int(np.argmax(probabilities[row]))
            copies[row] += 1
    return copies


@pytest.mark.parametrize("name, flags", [
    ("defaults_seed12345", dict(num_image=40)),
    ("defaults_seed7", dict(num_image=40, seed=7)),
    ("min_threshold", dict(num_image=25, min_threshold=0.6, max_prob=0.95, seed=3)),
    ("no_upsample", dict(num_image=30, upsample=False, seed=11)),
    ("use_all", dict(num_image=30, min_threshold=0.5, use_all=True, seed=5)),
])
def test_selection_equals_what_the_filter_job_writes(unlabeled, name, flags):
    root, probabilities, row_of = unlabeled
    expected = filter_job_copies(root, probabilities, row_of, name, **flags)
    copies = pseudo_labels.select_pseudo_labels(probabilities, shard_sizes=SHARD_SIZES, **flags)
    assert copies.dtype == np.int64 and copies.shape == (len(probabilities),)
    np.testing.assert_array_equal(copies, expected)
    # Not a degenerate case: some images are dropped, and with balancing some are repeated.
    assert (expected == 0).any() and (expected > 0).any()
    if flags.get("use_all") or not flags.get("upsample", True):
        assert expected.max() == 1
    else:
        assert (expected >= 2).any()


def test_the_seed_and_the_shard_split_change_the_draws(unlabeled):
    _, probabilities, _ = unlabeled
    base = pseudo_labels.select_pseudo_labels(probabilities, num_image=40, shard_sizes=SHARD_SIZES)
    assert (base != pseudo_labels.select_pseudo_labels(probabilities, num_image=40, shard_sizes=SHARD_SIZES,
                                                   seed=7)).any()
    assert (base != pseudo_labels.select_pseudo_labels(probabilities, num_image=40)).any()


def test_indices_from_copies_repeats_each_row():
    np.testing.assert_array_equal(pseudo_labels.indices_from_copies(np.array([2, 0, 1, 3])), [0, 0, 2, 3, 3, 3])
    with pytest.raises(ValueError, match="`copies`"):
        pseudo_labels.indices_from_copies(np.array([1, -1]))


def test_defaults_are_the_filter_flag_defaults():
    defaults = {f.name: f.default for f in dataclasses.fields(FilterConfig)}
    parameters = inspect.signature(pseudo_labels.select_pseudo_labels).parameters
    for name in ("min_threshold", "max_prob", "use_top", "use_all", "upsample", "seed"):
        assert parameters[name].default == defaults[name], name
    assert parameters["num_image"].default is inspect.Parameter.empty


def small_teacher(output_rank=2):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Flatten()(inputs) if output_rank == 2 else inputs
    x = keras.layers.Dropout(0.5)(x)  # differs between training and inference
    return keras.Model(inputs, keras.layers.Dense(5)(x))


def test_pseudo_label_is_the_softmax_of_the_teachers_logits_in_inference_mode():
    keras.utils.set_random_seed(0)
    teacher = small_teacher()
    images = np.random.RandomState(2).randint(0, 256, size=(37, 8, 8, 3)).astype(np.uint8)
    mean, std = np.array([120.0, 110.0, 100.0]), np.array([60.0, 55.0, 50.0])
    cases = [((), images.astype(np.float32)), ((mean, std), (images - mean) / std)]
    for normalization, model_input in cases:
        expected = tf.nn.softmax(teacher(model_input.astype(np.float32), training=False)).numpy()
        kwargs = dict(zip(("mean", "std"), normalization))
        for data in (images, tf.data.Dataset.from_tensor_slices(images)):
            result = pseudo_labels.pseudo_label(teacher, data, batch_size=16, **kwargs)
            assert result.dtype == np.float32 and result.shape == (37, 5)
            np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)
    # The normalisation matters, so the comparison above can tell the two cases apart.
    assert not np.allclose(pseudo_labels.pseudo_label(teacher, images), pseudo_labels.pseudo_label(teacher, images,
                                                                                           mean=mean, std=std))


def test_bad_inputs_are_refused_naming_the_argument():
    teacher = small_teacher()
    with pytest.raises(ValueError, match=r"`images` must be \[N, H, W, 3\].*got shape \(4, 8, 8\)"):
        pseudo_labels.pseudo_label(teacher, np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"`images` must be a dataset of single images"):
        pseudo_labels.pseudo_label(teacher, tf.data.Dataset.from_tensor_slices(np.zeros((4, 8, 8, 3))).batch(2))
    with pytest.raises(ValueError, match=r"teacher's output must be logits \[batch, classes\]"):
        pseudo_labels.pseudo_label(small_teacher(output_rank=4), np.zeros((4, 8, 8, 3), np.uint8))
    broken = small_teacher()
    broken.layers[-1].set_weights([np.full((192, 5), np.nan, np.float32), np.zeros(5, np.float32)])
    with pytest.raises(ValueError, match=r"teacher's logits for image 0 are NaN"):
        pseudo_labels.pseudo_label(broken, np.ones((3, 8, 8, 3), np.uint8))

    probabilities = predictions()
    nan = probabilities.copy()
    nan[5, 1] = np.nan
    with pytest.raises(ValueError, match=r"`probabilities` row 5 has NaN"):
        pseudo_labels.select_pseudo_labels(nan, num_image=10)
    with pytest.raises(ValueError, match=r"`probabilities` must lie in \[0, 1\]"):
        pseudo_labels.select_pseudo_labels(probabilities * 2, num_image=10)
    with pytest.raises(ValueError, match=r"`probabilities` must be a float array \[N, classes\]"):
        pseudo_labels.select_pseudo_labels(probabilities[0], num_image=10)
    with pytest.raises(ValueError, match=r"`shard_sizes` must be counts summing to the 190 rows"):
        pseudo_labels.select_pseudo_labels(probabilities, num_image=10, shard_sizes=[100, 80])
    with pytest.raises(ValueError, match=r"`max_prob`=0.5 must be above `min_threshold`=0.6"):
        pseudo_labels.select_pseudo_labels(probabilities, num_image=10, min_threshold=0.6, max_prob=0.5)
