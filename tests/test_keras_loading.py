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
