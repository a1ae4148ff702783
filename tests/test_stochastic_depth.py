"""Stochastic depth (spec §8.5): per-example drops with the linear rate rule, deterministic inference."""

import keras
import numpy as np
import pytest

from noisy_student_tf.models import StochasticDepth, build_model


def test_layer_drops_each_example_with_its_rate_and_rescales_survivors():
    layer = StochasticDepth(0.3, seed=7)
    x = np.ones((20000, 2, 2, 3), np.float32)
    y = np.asarray(layer(x, training=True))
    per_example = y.reshape(len(y), -1)
    # Whole examples are dropped or kept, never single pixels.
    assert np.all((per_example == 0).all(axis=1) | np.isclose(per_example, 1 / 0.7).all(axis=1))
    dropped = (per_example == 0).all(axis=1).mean()
    # 20000 Bernoulli(0.3) draws: std 0.0032, so +-0.015 is ~5 sigma.
    assert dropped == pytest.approx(0.3, abs=0.015)
    np.testing.assert_array_equal(layer(x, training=False), x)


def test_model_uses_linear_rule_over_all_blocks_only_on_residual_blocks():
    model = build_model("efficientnet-b0", 10, small_image_model=True, stochastic_depth_rate=0.2)
    rates = {l.name: l.drop_rate for l in model.layers if isinstance(l, StochasticDepth)}
    # B0: 16 blocks; blocks with identity skip (stride 1, in == out) are the non-first blocks of each stage,
    # plus none of the first ones (their in != out). Block 0 (stage 1) has in 32 != out 16.
    residual = [2, 4, 6, 7, 9, 10, 12, 13, 14]
    assert sorted(rates) == sorted(f"blocks_{i}_stochastic_depth" for i in residual)
    for i in residual:
        assert rates[f"blocks_{i}_stochastic_depth"] == pytest.approx(0.2 * i / 16)


def test_residual_branch_is_dropped_per_example_inside_the_model():
    model = build_model("efficientnet-b0", 10, small_image_model=True, stochastic_depth_rate=0.8)
    layer = model.get_layer("blocks_14_stochastic_depth")  # rate 0.8 * 14 / 16 = 0.7
    probe = keras.Model(model.input, [layer.input, layer.output])
    rng = np.random.RandomState(0)
    dropped = []
    for _ in range(5):  # 1000 examples in batches that fit in memory
        x = rng.normal(size=(200, 32, 32, 3)).astype(np.float32)
        branch, out = (np.asarray(t).reshape(len(x), -1) for t in probe(x, training=True))
        gone = (out == 0).all(axis=1)
        np.testing.assert_allclose(out[~gone], branch[~gone] / 0.3, rtol=1e-5, atol=1e-5)
        dropped.append(gone)
    assert np.concatenate(dropped).mean() == pytest.approx(0.7, abs=0.06)  # 1000 draws: std 0.0145


def test_inference_is_deterministic_and_training_is_not():
    model = build_model("efficientnet-b0", 10, small_image_model=True)
    x = np.random.RandomState(1).normal(size=(4, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))
    assert not np.allclose(model(x, training=True), model(x, training=True))


def test_layer_round_trips_through_keras_serialization():
    layer = StochasticDepth(0.25, seed=3, name="sd")
    clone = StochasticDepth.from_config(layer.get_config())
    assert (clone.drop_rate, clone.seed, clone.name) == (0.25, 3, "sd")
