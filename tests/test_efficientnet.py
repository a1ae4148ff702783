"""The EfficientNet family: structure, sizes, initialisers and noise, checked against tables written by hand
from upstream `efficientnet_builder.py` (reference_efficientnet.py) and keras.applications."""

import math

import keras
import numpy as np
import pytest

from noisy_student_tf.models import build_model, efficientnet
from reference_efficientnet import SPEC_TABLE, reference_param_count, reference_trainable_count

B_MODELS = [f"efficientnet-b{i}" for i in range(8)]
KERAS_APPS = {f"efficientnet-b{i}": getattr(keras.applications, f"EfficientNetB{i}") for i in range(8)}


def trainable_count(model):
    return sum(math.prod(w.shape) for w in model.trainable_weights)


@pytest.mark.parametrize("name", B_MODELS)
def test_param_counts_match_spec_table_and_keras_applications(name):
    model = build_model(name, 1000, input_shape=(32, 32, 3))
    assert model.count_params() == reference_param_count(name, 1000)
    assert trainable_count(model) == reference_trainable_count(name, 1000)
    app = KERAS_APPS[name](weights=None, input_shape=(32, 32, 3), classifier_activation=None)
    # Keras' input Normalization layer (mean, variance, count) has no counterpart: we normalise outside.
    normalization = sum(l.count_params() for l in app.layers if isinstance(l, keras.layers.Normalization))
    assert model.count_params() == app.count_params() - normalization


@pytest.mark.xdist_group("memory")  # 2 GB of weights
def test_l2_builds_with_spec_parameter_count_and_runs():
    model = build_model("efficientnet-l2", 1000, input_shape=(32, 32, 3))
    assert model.count_params() == reference_param_count("efficientnet-l2", 1000)
    logits = model(np.zeros((1, 32, 32, 3), np.float32), training=False)
    assert logits.shape == (1, 1000)
    assert np.all(np.isfinite(logits))


@pytest.mark.parametrize("name", list(SPEC_TABLE))
def test_stage_widths_and_block_count_follow_the_rounding_rules(name):
    params, stages = efficientnet.get_model_params(name, 10)
    blocks = efficientnet.expand_blocks(params, stages)
    stem, head, total, repeats, outs = SPEC_TABLE[name]
    assert efficientnet.round_filters(32, params) == stem
    assert efficientnet.round_filters(1280, params) == head
    assert len(blocks) == total
    assert [efficientnet.round_repeats(s.num_repeat, params) for s in stages] == list(repeats)
    assert [efficientnet.round_filters(s.output_filters, params) for s in stages] == list(outs)


def test_block_strings_decode_to_the_spec_table():
    stage = efficientnet.decode_block_string("r2_k5_s22_e6_i24_o40_se0.25")
    assert stage == efficientnet.BlockArgs(2, 5, (2, 2), 6, 24, 40, 0.25, True)


@pytest.mark.parametrize("small, size, head_hw", [(False, 224, 7), (True, 32, 4)])
def test_small_image_model_keeps_resolution_in_stages_two_and_three(small, size, head_hw):
    model = build_model("efficientnet-b0", 10, small_image_model=small)
    assert model.input_shape == (None, size, size, 3)
    # Spatial sizes for 32x32 with upstream's small-image strides (`efficientnet_builder.py`, `efficientnet`):
    # stem 16, stages 1-3 16, 4-5 8, 6-7 4.
    expected = {0: 16, 2: 16, 4: 16, 5: 8, 10: 8, 11: 4, 15: 4} if small else {0: 112, 2: 56, 4: 28, 15: 7}
    for index, hw in expected.items():
        assert model.get_layer(f"blocks_{index}_project_bn").output.shape[1:3] == (hw, hw)
    assert model.get_layer("head_bn").output.shape[1:3] == (head_hw, head_hw)


def test_batch_norm_and_activation_settings():
    model = build_model("efficientnet-b0", 10, small_image_model=True)
    bns = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert len(bns) == 49  # stem + 2 (block 0) + 3 x 15 + head
    assert {(l.momentum, l.epsilon, l.center, l.scale) for l in bns} == {(0.99, 1e-3, True, True)}
    x = np.linspace(-5, 5, 11).astype(np.float32)
    swish = model.get_layer("stem_swish")
    np.testing.assert_allclose(swish(x), x / (1 + np.exp(-x)), rtol=1e-6)


def test_initializers_follow_upstream():
    keras.utils.set_random_seed(1)
    model = build_model("efficientnet-b0", 10, input_shape=(32, 32, 3))
    # Conv kernels: normal(0, sqrt(2 / (kh * kw * out))). Big tensors give tight estimates.
    head = model.get_layer("head_conv").kernel.numpy()
    assert head.mean() == pytest.approx(0, abs=2e-3)
    assert head.std() == pytest.approx(math.sqrt(2 / 1280), rel=0.01)
    dw = model.get_layer("blocks_15_depthwise_conv").kernel.numpy()  # [3, 3, 1152, 1]: fan_out = 9
    assert dw.std() == pytest.approx(math.sqrt(2 / 9), rel=0.03)
    assert np.abs(dw).max() > 2 * math.sqrt(2 / 9)  # untruncated normal
    dense = model.get_layer("head_dense")
    assert np.abs(dense.kernel.numpy()).max() <= 1 / math.sqrt(10)
    assert dense.kernel.numpy().std() == pytest.approx(1 / math.sqrt(30), rel=0.05)  # uniform(-a, a): a/sqrt(3)
    assert not dense.bias.numpy().any()
    assert not model.get_layer("blocks_3_se_reduce").bias.numpy().any()


def test_dropout_only_when_positive_and_overrides_apply():
    assert "head_dropout" in [l.name for l in build_model("efficientnet-b0", 10, small_image_model=True).layers]
    model = build_model("efficientnet-b0", 10, small_image_model=True, dropout_rate=0.0,
                        stochastic_depth_rate=0.0)
    names = [l.name for l in model.layers]
    assert "head_dropout" not in names
    assert not any("stochastic_depth" in n for n in names)
    wide = build_model("efficientnet-b0", 10, small_image_model=True, width_coefficient=2.0)
    assert wide.get_layer("stem_conv").filters == 64


def test_mixed_precision_keeps_float32_logits():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_model("efficientnet-b0", 10, small_image_model=True)
        assert model.get_layer("blocks_3_project_conv").compute_dtype == "float16"
        assert model.get_layer("stem_conv").kernel.dtype == "float32"
        logits = model(np.random.rand(2, 32, 32, 3).astype(np.float32), training=True)
        assert logits.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_unknown_model_name_and_bad_values_are_clear_errors():
    with pytest.raises(ValueError, match=r"unknown model_name 'efficientnet-b9'.*efficientnet-l2"):
        build_model("efficientnet-b9", 10)
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        build_model("efficientnet-b0", 0)
    with pytest.raises(ValueError, match=r"dropout_rate must be in \[0, 1\)"):
        build_model("efficientnet-b0", 10, dropout_rate=1.5)
    with pytest.raises(ValueError, match="channels last"):
        build_model("efficientnet-b0", 10, input_shape=(3, 32, 32))


def test_model_description_lists_global_params_and_stages():
    text = efficientnet.describe_model("efficientnet-b0", 10, small_image_model=True, dropout_rate=0.5)
    # Upstream efficientnet_builder.build_model: model_name= / global_params= / blocks_args=, blank lines between.
    lines = text.split("\n")
    assert lines[0] == "model_name= efficientnet-b0" and lines[1] == "" and lines[3] == ""
    assert lines[2].startswith("global_params= ")
    assert "dropout_rate=0.5" in lines[2] and "small_image_model=True" in lines[2]
    assert lines[4].startswith("blocks_args= [") and lines[4].count("BlockArgs(") == 7
    stages = lines[4].split("BlockArgs(")[1:]
    assert "strides=(1, 1)" in stages[1] and "strides=(1, 1)" in stages[2]  # stages 2, 3 of the small variant
    assert text.endswith("\n\n")
