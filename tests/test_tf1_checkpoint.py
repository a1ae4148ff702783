"""Original TF1 checkpoints: the name mapping, EMA-aware loading, export, and clear errors (upstream `utils.py`,
`get_assignment_map_from_checkpoint`, and the variable scopes of `efficientnet_model.py`)."""

import os

import keras
import numpy as np
import pytest

from noisy_student_tf.errors import CheckpointError
from noisy_student_tf.models import build_model, load_tf1_checkpoint, save_tf1_checkpoint
from noisy_student_tf.models.tf1_checkpoint import tf1_weight_names
from reference_efficientnet import keras_application_scopes, reference_variables
from tf1_writer import read_with_tf1_saver, write_tf1_checkpoint


def random_bn_statistics(model, rng):
    """Non-trivial BN parameters so that a wrongly mapped tensor changes the output."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c),
                               rng.normal(0, 0.1, c), rng.uniform(0.5, 1.5, c)])


def keras_application_as_tf1(app, scope):
    """{upstream name: value} of a keras.applications EfficientNet, via upstream's variable scopes
    (`efficientnet_model.py`)."""
    tensors = {}
    for layer_name, upstream in keras_application_scopes(app).items():
        layer = app.get_layer(layer_name)
        for weight in layer.weights:
            leaf = "depthwise_kernel" if isinstance(layer, keras.layers.DepthwiseConv2D) else weight.name
            tensors[f"{scope}/{upstream}/{leaf}"] = weight.numpy()
    return tensors


@pytest.mark.parametrize("app_fn, name, size", [
    (keras.applications.EfficientNetB0, "efficientnet-b0", 224),
    (keras.applications.EfficientNetB3, "efficientnet-b3", 101),  # odd sizes exercise 'same' padding
])
def test_logits_match_keras_application_through_tf1_names(tmp_path, app_fn, name, size):
    rng = np.random.RandomState(0)
    app = app_fn(weights=None, input_shape=(size, size, 3), classifier_activation=None, classes=1000)
    random_bn_statistics(app, rng)
    norm = next(l for l in app.layers if isinstance(l, keras.layers.Normalization))
    norm.set_weights([np.zeros(3), np.ones(3), np.zeros(())])  # identity: we feed an already normalised image

    ema = keras_application_as_tf1(app, name)
    assert sorted(ema) == sorted(f"{name}/{n}" for n, _ in reference_variables(name, 1000))
    raw = {n: rng.normal(size=v.shape).astype(np.float32) for n, v in ema.items()}  # must not be used
    write_tf1_checkpoint(str(tmp_path / "model.ckpt"), raw, shadows=ema, global_step=1000)

    model = build_model(name, 1000, input_shape=(size, size, 3))
    report = load_tf1_checkpoint(model, str(tmp_path))
    assert (report.loaded, report.from_ema, report.leftover) == (len(ema), len(ema), [])

    x = rng.normal(size=(2, size, size, 3)).astype(np.float32)
    expected = np.asarray(app(x * 255.0, training=False))  # the app rescales by 1/255 first
    got = np.asarray(model(x, training=False))
    assert np.abs(expected).max() > 1e-2  # a meaningful comparison, not two near-zero outputs
    assert np.abs(got - expected).max() <= 1e-4


@pytest.fixture(scope="module")
def small_model():
    keras.utils.set_random_seed(3)
    model = build_model("efficientnet-b0", 10, small_image_model=True)
    random_bn_statistics(model, np.random.RandomState(3))
    return model


def test_mapping_covers_the_spec_names_exactly(small_model):
    names = [name for _, name in tf1_weight_names(small_model)]
    assert sorted(names) == sorted(n for n, _ in reference_variables("efficientnet-b0", 10))
    shapes = dict(reference_variables("efficientnet-b0", 10))
    assert all(list(v.shape) == shapes[n] for v, n in tf1_weight_names(small_model))


def test_round_trip_keras_tf1_keras_is_exact(tmp_path, small_model):
    save_tf1_checkpoint(small_model, str(tmp_path / "model.ckpt-7"), global_step=7)
    assert os.path.exists(tmp_path / "checkpoint")
    fresh = build_model("efficientnet-b0", 10, small_image_model=True)
    load_tf1_checkpoint(fresh, str(tmp_path / "model.ckpt-7"))
    for a, b in zip(small_model.weights, fresh.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not any(name.startswith(".") for name in os.listdir(tmp_path))  # no temporary files left


def test_export_writes_ema_shadows_that_a_tf1_saver_restores(tmp_path, small_model):
    ema_values = {v.path: v.numpy() + 1.0 for v in small_model.weights}
    prefix = save_tf1_checkpoint(small_model, str(tmp_path / "model.ckpt-0"), ema_values=ema_values,
                                 scope="teacher")
    pairs = tf1_weight_names(small_model)
    wanted = [(f"teacher_model/efficientnet-b0/{n}/ExponentialMovingAverage", list(v.shape)) for v, n in pairs]
    restored = read_with_tf1_saver(prefix, wanted + [(f"teacher_model/efficientnet-b0/{n}", list(v.shape))
                                                     for v, n in pairs[:3]])
    for (variable, name), (full, _) in zip(pairs, wanted):
        np.testing.assert_array_equal(restored[full], ema_values[variable.path])
    for variable, name in pairs[:3]:
        np.testing.assert_array_equal(restored[f"teacher_model/efficientnet-b0/{name}"], variable.numpy())

    fresh = build_model("efficientnet-b0", 10, small_image_model=True)
    load_tf1_checkpoint(fresh, prefix, scope="teacher", prefer_ema=False)
    np.testing.assert_array_equal(fresh.get_layer("head_dense").kernel.numpy(),
                                  small_model.get_layer("head_dense").kernel.numpy())
    load_tf1_checkpoint(fresh, prefix, scope="teacher")
    np.testing.assert_array_equal(fresh.get_layer("head_dense").kernel.numpy(),
                                  small_model.get_layer("head_dense").kernel.numpy() + 1.0)


def reference_tensors(scope, rng, num_classes=10, drop=(), reshape=()):
    tensors = {}
    for name, shape in reference_variables("efficientnet-b0", num_classes):
        if name in drop:
            continue
        if name in reshape:
            shape = [s + 1 for s in shape]
        tensors[f"{scope}/{name}"] = rng.normal(size=shape).astype(np.float32)
    return tensors


@pytest.mark.parametrize("scope", ["efficientnet-b0", "teacher_model/efficientnet-b0"])
def test_tf1_written_checkpoint_loads_ema_values(tmp_path, scope):
    rng = np.random.RandomState(5)
    raw = reference_tensors(scope, rng)
    shadows = {n: v + 10.0 for n, v in raw.items()}
    prefix = write_tf1_checkpoint(str(tmp_path / "model.ckpt"), raw, shadows=shadows, global_step=3)
    model = build_model("efficientnet-b0", 10, small_image_model=True)
    report = load_tf1_checkpoint(model, prefix)
    assert report.scope == scope and report.from_ema == report.loaded == len(raw)
    for variable, name in tf1_weight_names(model):
        np.testing.assert_array_equal(variable.numpy(), shadows[f"{scope}/{name}"])


def test_raw_variables_are_the_fallback_and_student_is_preferred_over_teacher(tmp_path):
    rng = np.random.RandomState(6)
    student, teacher = reference_tensors("efficientnet-b0", rng), reference_tensors(
        "teacher_model/efficientnet-b0", rng)
    prefix = write_tf1_checkpoint(str(tmp_path / "model.ckpt"), {**student, **teacher})  # no EMA at all
    model = build_model("efficientnet-b0", 10, small_image_model=True)
    report = load_tf1_checkpoint(model, prefix)
    assert report.scope == "efficientnet-b0" and report.from_raw == len(student)
    kernel = model.get_layer("stem_conv").kernel.numpy()
    np.testing.assert_array_equal(kernel, student["efficientnet-b0/stem/conv2d/kernel"])
    load_tf1_checkpoint(model, prefix, scope="teacher")
    np.testing.assert_array_equal(model.get_layer("stem_conv").kernel.numpy(),
                                  teacher["teacher_model/efficientnet-b0/stem/conv2d/kernel"])


def test_leftover_tensors_are_reported(tmp_path):
    rng = np.random.RandomState(7)
    tensors = reference_tensors("efficientnet-b0", rng)
    tensors["efficientnet-b0/head/extra/kernel"] = np.zeros([2], np.float32)
    prefix = write_tf1_checkpoint(str(tmp_path / "model.ckpt"), tensors)
    model = build_model("efficientnet-b0", 10, small_image_model=True)
    report = load_tf1_checkpoint(model, prefix)
    assert report.leftover == ["efficientnet-b0/head/extra/kernel"]
    assert "1 checkpoint tensors unused: efficientnet-b0/head/extra/kernel" in report.summary()


def test_missing_tensor_is_named(tmp_path):
    tensors = reference_tensors("efficientnet-b0", np.random.RandomState(8),
                                drop={"blocks_7/se/conv2d_1/bias"})
    prefix = write_tf1_checkpoint(str(tmp_path / "model.ckpt"), tensors)
    model = build_model("efficientnet-b0", 10, small_image_model=True)
    with pytest.raises(CheckpointError, match=r"(?s)lacks 1 tensor.*efficientnet-b0/blocks_7/se/conv2d_1/bias"):
        load_tf1_checkpoint(model, prefix)


def test_wrong_shape_is_named(tmp_path):
    tensors = reference_tensors("efficientnet-b0", np.random.RandomState(9),
                                reshape={"blocks_4/depthwise_conv2d/depthwise_kernel"})
    prefix = write_tf1_checkpoint(str(tmp_path / "model.ckpt"), tensors)
    model = build_model("efficientnet-b0", 10, small_image_model=True)
    with pytest.raises(CheckpointError,
                       match=r"blocks_4/depthwise_conv2d/depthwise_kernel: checkpoint \[6, 6, 241, 2\], "
                             r"model \[5, 5, 240, 1\]"):
        load_tf1_checkpoint(model, prefix)


def test_class_count_mismatch_says_which_flag_to_set(tmp_path):
    prefix = write_tf1_checkpoint(str(tmp_path / "model.ckpt"),
                                  reference_tensors("efficientnet-b0", np.random.RandomState(10)))
    model = build_model("efficientnet-b0", 1000, input_shape=(32, 32, 3))
    with pytest.raises(CheckpointError, match=r"(?s)trained with 10 classes.*--num_label_classes=10"):
        load_tf1_checkpoint(model, prefix)


def test_other_architecture_and_missing_paths_are_clear_errors(tmp_path):
    prefix = write_tf1_checkpoint(str(tmp_path / "model.ckpt"),
                                  reference_tensors("efficientnet-b0", np.random.RandomState(11)))
    b1 = build_model("efficientnet-b1", 10, small_image_model=True)
    with pytest.raises(CheckpointError, match=r"holds no efficientnet-b1 or teacher_model/efficientnet-b1 weights "
                                              r"\(it holds: efficientnet-b0\)"):
        load_tf1_checkpoint(b1, prefix)
    model = build_model("efficientnet-b0", 10, small_image_model=True)
    with pytest.raises(CheckpointError, match=r"checkpoint '.*nowhere/model.ckpt' not found"):
        load_tf1_checkpoint(model, str(tmp_path / "nowhere" / "model.ckpt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="holds no usable checkpoint"):
        load_tf1_checkpoint(model, str(tmp_path / "empty"))
    with pytest.raises(CheckpointError, match="already exists"):
        save_tf1_checkpoint(model, prefix)
    (tmp_path / "broken.ckpt.index").write_bytes(b"not a checkpoint index")
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint '.*broken.ckpt'"):
        load_tf1_checkpoint(model, str(tmp_path / "broken.ckpt"))
