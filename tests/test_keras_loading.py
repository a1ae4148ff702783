"""A saved .keras model loads with plain keras.saving.load_model in a fresh process (built-in layers only)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from noisy_student_tf.models import build_model, freeze_layers

_LOADER = """
import sys
import numpy as np
{imports}
model = keras.saving.load_model(sys.argv[1])
assert ('noisy_student_tf' in sys.modules) == {expect_package}, sorted(m for m in sys.modules if 'noisy' in m)
np.save(sys.argv[3], np.asarray(model(np.load(sys.argv[2]), training=False)))
print('classes:', sorted({{type(l).__module__.split('.')[0] for l in model.layers}}))
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("keras_loading")
    model = build_model("efficientnet-b0", 10, small_image_model=True, width_coefficient=0.25,
                        depth_coefficient=0.5, stochastic_depth_rate=0.5)
    freeze_layers(model, 3)  # a frozen model (stochastic-depth rate 0 in frozen blocks) must load too
    images = np.random.RandomState(0).normal(size=(4, 32, 32, 3)).astype(np.float32)
    path, image_path = str(tmp / "model.keras"), str(tmp / "images.npy")
    model.save(path)
    np.save(image_path, images)
    return tmp, path, image_path, np.asarray(model(images, training=False))


def _load_in_fresh_process(tmp, path, image_path, imports, expect_package):
    out = str(tmp / f"logits_{expect_package}.npy")
    code = _LOADER.format(imports=imports, expect_package=expect_package)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", code, path, image_path, out], capture_output=True,
                            text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "classes: ['keras']" in result.stdout, result.stdout
    return np.load(out)


def test_loads_with_plain_keras_without_the_package(saved):
    tmp, path, image_path, expected = saved
    logits = _load_in_fresh_process(tmp, path, image_path, "import keras", False)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


def test_loads_after_importing_the_package(saved):
    tmp, path, image_path, expected = saved
    logits = _load_in_fresh_process(tmp, path, image_path, "import keras\nimport noisy_student_tf", True)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


_NOISY_STUDENT_LOADER = """
import sys
import numpy as np
{imports}
for path, out in zip(sys.argv[1::3], sys.argv[3::3]):
    model = keras.saving.load_model(path)
    assert type(model).__name__ == "NoisyStudent" and model.optimizer.__class__.__name__ == "TF1RMSProp"
    assert type(model.optimizer._learning_rate).__name__ == "UpstreamLearningRate", model.optimizer._learning_rate
    np.save(out, np.asarray(model.predict(np.load(sys.argv[2]), verbose=0)))
"""


@pytest.fixture(scope="module")
def saved_noisy_student(tmp_path_factory):
    """A compiled NoisyStudent (upstream optimizer and schedule) after two fit() steps, as model.save and as a
    ModelCheckpoint file."""
    import keras
    import tensorflow as tf

    from noisy_student_tf import NoisyStudent, TF1RMSProp, UpstreamLearningRate

    tmp = tmp_path_factory.mktemp("noisy_student_loading")
    student = build_model("efficientnet-b0", 4, small_image_model=True, width_coefficient=0.25,
                          depth_coefficient=0.25)
    model = NoisyStudent(student, unlabel_ratio=0, mean=(120, 120, 120), std=(60, 60, 60))
    model.compile(optimizer=TF1RMSProp(UpstreamLearningRate(0.016, 8, 16, 4)))
    rng = np.random.RandomState(0)
    images = rng.uniform(0, 255, (8, 32, 32, 3)).astype(np.float32)
    labels = np.arange(8) % 4
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    checkpoint = str(tmp / "checkpoint.keras")
    model.fit(data, epochs=1, verbose=0, callbacks=[keras.callbacks.ModelCheckpoint(checkpoint)])
    path, image_path = str(tmp / "model.keras"), str(tmp / "images.npy")
    model.save(path)
    np.save(image_path, images)
    return tmp, {"save": path, "ModelCheckpoint": checkpoint}, image_path, np.asarray(model.predict(images, verbose=0))


@pytest.mark.parametrize("imports", ["import noisy_student_tf\nimport keras", "import keras\nimport noisy_student_tf"],
                         ids=["package-first", "keras-first"])
def test_a_saved_noisy_student_loads_with_plain_keras_after_importing_the_package(saved_noisy_student, imports):
    """Both files (model.save and ModelCheckpoint's) in one fresh process per import order."""
    tmp, paths, image_path, expected = saved_noisy_student
    args, outs = [], []
    for how, path in paths.items():
        outs.append(str(tmp / f"logits_{how}_{imports[7:12]}.npy"))
        args += [path, image_path, outs[-1]]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", _NOISY_STUDENT_LOADER.format(imports=imports), *args],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    for out in outs:
        np.testing.assert_allclose(np.load(out), expected, rtol=1e-5, atol=1e-5)


def test_without_the_package_keras_names_the_missing_class(saved_noisy_student):
    """The stand-ins are what makes the difference: without `import noisy_student_tf` the file does not load."""
    tmp, paths, image_path, _ = saved_noisy_student
    code = "import keras, sys\nkeras.saving.load_model(sys.argv[1])"
    result = subprocess.run([sys.executable, "-c", code, paths["save"]], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=600)
    assert result.returncode != 0 and "NoisyStudent" in result.stderr
