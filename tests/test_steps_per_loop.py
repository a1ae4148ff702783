"""Steps run inside one traced loop (a `tf.while_loop` around `strategy.run`, TPUEstimator's `iterations_per_loop`):
the same run with loop lengths 1, 3 and 10 ends with identical checkpoints and metrics (deterministic ops), on
one device and on MirroredStrategy over two logical CPUs."""

import numpy as np
import pytest
import tensorflow as tf

import jobs_helper
import tiny_data

STEPS = 10


@pytest.fixture(scope="module")
def labeled(tmp_path_factory):
    root = tmp_path_factory.mktemp("loop_data")
    tiny_data.write_labeled(root, "train", tiny_data.balanced_labels(4), num_shards=2, size=jobs_helper.TINY_SIZE)
    return root


def train(model_dir, data, strategy, iterations_per_loop):
    # RandAugment, dropout and stochastic depth on: every random stream must advance the same way in the loop.
    metrics = jobs_helper.train_job(
        model_dir, data, seed=3, input__train_batch_size=8, optim__train_steps=STEPS, optim__num_train_images=40,
        augment__augment_name="v1", augment__randaug_mag=5, model__dropout_rate=0.3,
        model__stochastic_depth_rate=0.2, runtime__strategy=strategy, runtime__deterministic=True,
        loop__iterations_per_loop=iterations_per_loop, loop__log_step_count_steps=STEPS,
        loop__save_checkpoints_steps=STEPS)
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(model_dir)))
    # Every variable (the object graph's proto is metadata, not a value).
    tensors = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
               if name != "_CHECKPOINTABLE_OBJECT_GRAPH"}
    return metrics, tensors


@pytest.mark.parametrize("strategy", ["one_device", "mirrored"])
def test_loop_lengths_1_3_and_10_give_identical_checkpoints_and_metrics(labeled, tmp_path, strategy):
    metrics, tensors = {}, {}
    for length in (1, 3, 10):
        metrics[length], tensors[length] = train(tmp_path / f"loop_{length}", labeled, strategy, length)
    assert tensors[1]["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"] == STEPS
    for length in (3, 10):
        assert metrics[length] == metrics[1], length
        assert sorted(tensors[length]) == sorted(tensors[1])
        differing = [name for name in tensors[1] if not np.array_equal(tensors[length][name], tensors[1][name])]
        assert differing == [], (length, differing[:5])
    # The weights did train (the comparison is not between untouched initial values).
    assert np.isfinite(metrics[1]["train/loss"])
