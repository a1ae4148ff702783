"""Optimisation against TF1 oracles: RMSProp (upstream `utils.py`, `build_optimizer`), EMA (`main.py`, `model_fn`),
and the LR schedule's numbers (`model_fn` with `utils.py`, `build_learning_rate`)."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.models import build_model
from noisy_student_tf.training.ema import WeightEMA, ema_variables
from noisy_student_tf.training.optimizer import TF1RMSProp
from noisy_student_tf.training.schedule import make_schedule


def test_rmsprop_matches_tf1_rmsprop_optimizer():
    rng = np.random.RandomState(0)
    shapes = [(3, 4), (7,), (2, 2, 5)]
    init = [rng.normal(size=s).astype(np.float32) for s in shapes]
    ours_vars = [tf.Variable(v) for v in init]
    oracle_vars = [tf.Variable(v) for v in init]
    lr = tf.Variable(0.01)
    ours = TF1RMSProp(learning_rate=0.01)
    oracle = tf.compat.v1.train.RMSPropOptimizer(lambda: lr.read_value(), decay=0.9, momentum=0.9, epsilon=1e-3)
    for step in range(60):
        lr.assign(0.01 * (0.97 ** (step // 7)))  # a changing learning rate, as in training
        ours.learning_rate = float(lr.numpy())
        grads = [tf.constant(rng.normal(scale=2.0, size=s).astype(np.float32)) for s in shapes]
        ours.apply_gradients(zip(grads, ours_vars))
        oracle.apply_gradients(zip(grads, oracle_vars))
    for a, b in zip(ours_vars, oracle_vars):
        np.testing.assert_array_equal(a.numpy(), b.numpy())  # the same kernel as TF1's, so bit-equal
    assert not np.allclose(ours_vars[0].numpy(), init[0])  # it did move


# 0.9999: the warm-up cap (1 + n) / (10 + n) decides for all 60 steps; 0.5: the decay itself from step 8 on.
@pytest.mark.parametrize("decay", [0.9999, 0.5])
def test_ema_matches_tf1_exponential_moving_average_including_bn_statistics(decay):
    keras.utils.set_random_seed(0)
    model = build_model("efficientnet-b0", 10, small_image_model=True, width_coefficient=0.25,
                        depth_coefficient=0.25)
    variables = ema_variables(model)
    assert any(v.path.endswith("moving_mean") for v in variables)
    step = tf.Variable(0, dtype=tf.int64)
    ours = WeightEMA(variables, decay)
    oracle = tf.train.ExponentialMovingAverage(decay, num_updates=step)
    oracle.apply([v.value for v in variables])  # shadows start at the current values, as ours
    rng = np.random.RandomState(1)
    forward = tf.function(lambda x: model(x, training=True))
    for i in range(1, 61):
        forward(rng.normal(size=(4, 32, 32, 3)).astype(np.float32))  # moves the BN statistics
        for v in model.trainable_variables:
            v.assign_add(rng.normal(scale=0.01, size=v.shape).astype(np.float32))
        step.assign(i)
        ours.update(step)
        oracle.apply([v.value for v in variables])
    for variable in variables:
        np.testing.assert_allclose(ours.shadows[variable.path].numpy(), oracle.average(variable.value).numpy(),
                                   rtol=1e-5, atol=1e-6)
    # The averages differ from the variables (the test would be empty otherwise).
    assert max(np.abs(ours.shadows[v.path].numpy() - v.numpy()).max() for v in variables) > 1e-3


def test_svhn_schedule_reproduces_the_spec_numbers():
    # local_scripts/svhn/run.sh: batch 128, final_base_lr 2e-4, defaults otherwise.
    s = make_schedule(base_learning_rate=0.016, train_batch_size=128, num_train_images=69257, train_steps=109474,
                      final_base_lr=0.0002)
    assert s.scaled_lr == pytest.approx(0.008)
    assert s.steps_per_epoch == pytest.approx(541.07, abs=0.01)
    assert s.warmup_steps == 2705
    assert s.decay_steps == pytest.approx(742.14, abs=0.01)
    assert s.learning_rate_at(109474) == pytest.approx(9.09e-5, rel=2e-3)
    assert math.floor(109474 / s.decay_steps) == 147
    # Linear warmup from 0, then staircase decay counted from step 0.
    assert s.learning_rate_at(0) == 0.0
    assert s.learning_rate_at(1352) == pytest.approx(0.008 * 1352 / 2705)
    assert s.learning_rate_at(2705) == pytest.approx(0.008 * 0.97 ** 3)
    for step in (0, 100, 2704, 2705, 3000, 50000, 109473):
        assert float(s.learning_rate(step)) == pytest.approx(s.learning_rate_at(step), rel=1e-5, abs=1e-9)


def test_imagenet_schedule_with_train_ratio_and_tail_fine_tuning():
    s = make_schedule(base_learning_rate=0.016, train_batch_size=4096, num_train_images=1281167,
                      train_steps=109474, train_ratio=2)
    assert s.scaled_lr == pytest.approx(0.256)
    assert s.train_steps == s.last_step == 218948
    assert s.decay_steps == pytest.approx(1501.4, abs=0.1)  # 4.8 epochs
    assert math.floor(s.train_steps / s.decay_steps) == 145
    assert s.learning_rate_at(s.train_steps) == pytest.approx(3.09e-3, rel=5e-3)
    # train_last_step_num: train 1000 steps positioned at the end of the schedule.
    tail = make_schedule(base_learning_rate=0.016, train_batch_size=4096, num_train_images=1281167,
                         train_steps=109474, train_last_step_num=1000)
    assert tail.last_step == 1000
    assert tail.learning_rate_at(0) == pytest.approx(s.scaled_lr * 0.97 ** math.floor(108474 / (
        tail.steps_per_epoch * 2.4)))


def test_label_data_sample_prob_scales_epochs_and_lr():
    s = make_schedule(base_learning_rate=0.016, train_batch_size=128, num_train_images=69257, train_steps=1000,
                      label_data_sample_prob=0.5)
    assert s.scaled_lr == pytest.approx(0.004)
    assert s.steps_per_epoch == pytest.approx(69257 / 64)
