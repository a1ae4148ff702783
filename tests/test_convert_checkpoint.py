"""convert_checkpoint.py as a user runs it: TF1 -> .keras -> TF1, and clear failures on bad input."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import prewarmed
from noisy_student_tf.models.tf1_checkpoint import tf1_weight_names
from reference_efficientnet import reference_variables
from tf1_writer import write_tf1_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def convert(*args):
    return prewarmed.run([os.path.join(ROOT, "convert_checkpoint.py"), *args], cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory):
    """An SVHN-like teacher checkpoint as the original code wrote it: B0, 10 classes, EMA shadows."""
    rng = np.random.RandomState(0)
    raw = {f"efficientnet-b0/{n}": rng.normal(size=s).astype(np.float32)
           for n, s in reference_variables("efficientnet-b0", 10)}
    shadows = {n: v * 0.5 for n, v in raw.items()}
    directory = tmp_path_factory.mktemp("teacher_ckpt")
    write_tf1_checkpoint(str(directory / "model.ckpt"), raw, shadows=shadows, global_step=100)
    return str(directory / "model.ckpt"), shadows


def test_tf1_to_keras_and_back(tmp_path, teacher_ckpt):
    prefix, shadows = teacher_ckpt
    out = tmp_path / "teacher.keras"
    result = convert(f"--tf1_ckpt={prefix}", "--small_image_model", f"--output={out}")
    assert result.returncode == 0, result.stderr
    assert "loaded 311 tensors of efficientnet-b0/" in result.stderr  # model name and classes inferred

    model = keras.saving.load_model(str(out), compile=False)
    assert model.name == "efficientnet-b0" and model.output_shape == (None, 10)
    assert model.input_shape == (None, 32, 32, 3)
    for variable, name in tf1_weight_names(model):
        np.testing.assert_array_equal(variable.numpy(), shadows[f"efficientnet-b0/{name}"])

    back = tmp_path / "back" / "model.ckpt-0"
    result = convert("--to_tf1", f"--keras_model={out}", f"--output={back}", "--global_step=5")
    assert result.returncode == 0, result.stderr
    reader = tf.train.load_checkpoint(str(back.parent))  # the directory's 'checkpoint' file names it
    for name, value in shadows.items():
        np.testing.assert_array_equal(reader.get_tensor(f"{name}/ExponentialMovingAverage"), value)
    assert reader.get_tensor("global_step") == 5


@pytest.mark.parametrize("args, message", [
    (["--tf1_ckpt={missing}", "--output={out}"], "checkpoint '{missing}' not found"),
    (["--tf1_ckpt={ckpt}", "--num_label_classes=1000", "--output={out}"], "--num_label_classes=10"),
    (["--tf1_ckpt={ckpt}", "--model_name=resnet-50", "--output={out}"], "--model_name='resnet-50' is not one of"),
    (["--tf1_ckpt={ckpt}", "--output={tmp}/model.h5"], "--output must name a .keras file"),
    (["--to_tf1", "--keras_model={tmp}/none.keras", "--output={tmp}/x/model.ckpt"], "no such file"),
])
def test_bad_input_fails_clearly_and_writes_nothing(tmp_path, teacher_ckpt, args, message):
    values = {"missing": str(tmp_path / "no_ckpt" / "model.ckpt"), "out": str(tmp_path / "out.keras"),
              "ckpt": teacher_ckpt[0], "tmp": str(tmp_path)}
    result = convert(*(a.format(**values) for a in args))
    assert result.returncode != 0
    assert message.format(**values) in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(tmp_path)) == []  # no output, no temporary file
