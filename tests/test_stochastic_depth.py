"""Stochastic depth (upstream utils.drop_connect): per-example drops with the linear rate rule, deterministic
inference, built-in Keras Dropout layers with per-replica seeds, and no drops in blocks frozen by
--fix_layer_num (upstream efficientnet_model.py, Model.call: training=training and idx >= fix_layer_num)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.models import ReplicaSeedGenerator, build_model, freeze_layers
from noisy_student_tf.models.efficientnet import _dropout

# B0: 16 blocks; blocks with identity skip (stride 1, in == out) are the non-first blocks of each stage.
# Block 0 (stage 1) has in 32 != out 16.
B0_RESIDUAL = [2, 4, 6, 7, 9, 10, 12, 13, 14]


def _sd_layers(model):
    return {l.name: l for l in model.layers if l.name.endswith("_stochastic_depth")}


def test_layer_drops_each_example_with_its_rate_and_rescales_survivors():
    layer = _dropout(0.3, "sd", noise_shape=(None, 1, 1, 1))
    x = np.ones((20000, 2, 2, 3), np.float32)
    y = np.asarray(layer(x, training=True))
    per_example = y.reshape(len(y), -1)
    # Whole examples are dropped or kept, never single pixels.
    assert np.all((per_example == 0).all(axis=1) | np.isclose(per_example, 1 / 0.7).all(axis=1))
    dropped = (per_example == 0).all(axis=1).mean()
    # 20000 Bernoulli(0.3) draws: std 0.0032, so +-0.015 is ~5 sigma.
    assert dropped == pytest.approx(0.3, abs=0.015)
    np.testing.assert_array_equal(layer(x, training=False), x)


def test_model_uses_builtin_dropout_layers_with_replica_seed_generators():
    model = build_model("efficientnet-b0", 10, small_image_model=True)
    dropouts = [l for l in model.layers if isinstance(l, keras.layers.Dropout)]
    assert {type(l) for l in dropouts} == {keras.layers.Dropout}
    assert sorted(l.name for l in dropouts) == sorted(
        ["head_dropout"] + [f"blocks_{i}_stochastic_depth" for i in B0_RESIDUAL])
    assert all(isinstance(l.seed_generator, ReplicaSeedGenerator) for l in dropouts)
    assert model.get_layer("head_dropout").noise_shape is None
    assert all(l.noise_shape == (None, 1, 1, 1) for l in _sd_layers(model).values())
    # One tracked seed state per dropout layer, the generator actually used (the trainer checkpoints these).
    states = [v for v in model.variables if "seed_generator_state" in v.path]
    assert len(states) == len(dropouts)
    assert {id(v) for v in states} == {id(l.seed_generator.state) for l in dropouts}
    # The config names only built-in classes.
    assert "noisy_student_tf" not in str(model.get_config())


def test_model_uses_linear_rule_over_all_blocks_only_on_residual_blocks():
    model = build_model("efficientnet-b0", 10, small_image_model=True, stochastic_depth_rate=0.2)
    rates = {name: l.rate for name, l in _sd_layers(model).items()}
    assert sorted(rates) == sorted(f"blocks_{i}_stochastic_depth" for i in B0_RESIDUAL)
    for i in B0_RESIDUAL:
        assert rates[f"blocks_{i}_stochastic_depth"] == pytest.approx(0.2 * i / 16)


def _probe(model, name):
    layer = model.get_layer(name)
    return keras.Model(model.input, [layer.input, layer.output])


def test_residual_branch_is_dropped_per_example_inside_the_model():
    model = build_model("efficientnet-b0", 10, small_image_model=True, stochastic_depth_rate=0.8)
    probe = _probe(model, "blocks_14_stochastic_depth")  # rate 0.8 * 14 / 16 = 0.7
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
    model = build_model("efficientnet-b0", 10, small_image_model=True, width_coefficient=0.25)
    x = np.random.RandomState(1).normal(size=(4, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))
    assert not np.allclose(model(x, training=True), model(x, training=True))


def _small_frozen_model(fix_layer_num):
    model = build_model("efficientnet-b0", 10, small_image_model=True, width_coefficient=0.25,
                        stochastic_depth_rate=0.8)
    freeze_layers(model, fix_layer_num)
    return model


def test_frozen_blocks_never_drop_their_residual_branch():
    # Freeze blocks 0..9: block 9 (rate 0.8 * 9 / 16 = 0.45 before freezing) is frozen.
    model = _small_frozen_model(10)
    probe = _probe(model, "blocks_9_stochastic_depth")
    x = np.random.RandomState(2).normal(size=(64, 32, 32, 3)).astype(np.float32)
    for _ in range(3):
        branch, out = (np.asarray(t) for t in probe(x, training=True))
        # Every example passes unchanged (neither dropped nor rescaled), as in inference mode.
        np.testing.assert_array_equal(out, branch)
    # The whole frozen block (BN in inference mode, no drop) gives its inference-mode output in training.
    add = model.get_layer("blocks_9_add")
    block_out = keras.Model(model.input, add.output)
    np.testing.assert_allclose(block_out(x, training=True), block_out(x, training=False), rtol=1e-5, atol=1e-5)


def test_trainable_blocks_still_drop_after_freezing():
    model = _small_frozen_model(10)
    probe = _probe(model, "blocks_14_stochastic_depth")  # unfrozen, rate 0.7
    x = np.random.RandomState(3).normal(size=(200, 32, 32, 3)).astype(np.float32)
    branch, out = (np.asarray(t).reshape(len(x), -1) for t in probe(x, training=True))
    gone = (out == 0).all(axis=1)
    assert 0.5 < gone.mean() < 0.9  # 200 Bernoulli(0.7) draws: std 0.032
    np.testing.assert_allclose(out[~gone], branch[~gone] / 0.3, rtol=1e-5, atol=1e-5)
    assert model.get_layer("blocks_14_stochastic_depth").rate == pytest.approx(0.8 * 14 / 16)


def test_fix_layer_num_minus_one_keeps_every_rate():
    model = _small_frozen_model(-1)
    for i in B0_RESIDUAL:
        assert model.get_layer(f"blocks_{i}_stochastic_depth").rate == pytest.approx(0.8 * i / 16)


def test_replicas_draw_different_masks_from_the_same_state():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])  # conftest: two logical CPUs
    with strategy.scope():
        layer = _dropout(0.5, "sd", noise_shape=(None, 1, 1, 1))
    x = tf.ones((256, 1, 1, 1))

    @tf.function
    def step():
        return strategy.run(lambda: layer(x, training=True))

    masks = [np.asarray(o).ravel() for o in strategy.experimental_local_results(step())]
    assert len(masks) == 2
    assert not np.array_equal(masks[0], masks[1])
    # Each replica still drops about half the examples.
    assert all(0.35 < (m == 0).mean() < 0.65 for m in masks)


def test_replica_seed_generator_is_a_plain_generator_outside_a_strategy():
    a, b = ReplicaSeedGenerator(5), keras.random.SeedGenerator(5)
    for _ in range(3):
        np.testing.assert_array_equal(a.next(), b.next())
