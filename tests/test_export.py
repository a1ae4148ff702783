"""export.py on a tiny trained checkpoint: the SavedModel signatures and model.keras against the checkpoint's
EMA model applied directly to the images, export_info.json, and clear failures that leave --output alone."""

import json
import os
import subprocess

import keras
import numpy as np
import pytest
import tensorflow as tf

import flag_helper
import jobs_helper
import prewarmed
import tiny_data
from noisy_student_tf.cli import adapters
from noisy_student_tf import storage
from noisy_student_tf.errors import UserError
from noisy_student_tf.models.inference import model_from_config
from noisy_student_tf.tasks import get_task
from noisy_student_tf.models import restore
from noisy_student_tf.models.restore import ema_shadow_key

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = jobs_helper.TINY_SIZE
TASK = get_task("imagenet")
MEAN = np.asarray(TASK.mean, np.float32)
STD = np.asarray(TASK.std, np.float32)
# Keras' own saving code trips NumPy 2's __array__ deprecation once per weight; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    tiny_data.write_labeled(root / "lab", "train", tiny_data.balanced_labels(4), num_shards=2, size=SIZE)
    model_dir = str(root / "student")
    jobs_helper.train_job(model_dir, root / "lab", seed=1, input__train_batch_size=8, optim__train_steps=2,
                          optim__num_train_images=40)
    return root, model_dir


@pytest.fixture(scope="module")
def exported(trained):
    """The export as a user runs it: the root entry point, in its own process."""
    root, model_dir = trained
    out = root / "served"
    result = prewarmed.run([os.path.join(ROOT, "export.py"), *jobs_helper.TINY_FLAGS, f"--model_dir={model_dir}",
                            f"--output={out}"], cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    return out


def oracle_model(model_dir, *, small=True, size=SIZE):
    """The checkpoint's EMA weights in a freshly built network, outside the export code."""
    model = model_from_config(jobs_helper.changed(jobs_helper.TINY, small_image_model=small, image_size=size))
    restore.load_inference_weights(model, model_dir)
    return model


def oracle_probabilities(model, images):
    x = (np.asarray(images, np.float32) - MEAN) / STD
    return tf.nn.softmax(model(x, training=False)).numpy()


def assert_same_predictions(result, expected):
    probabilities = result["probabilities"].numpy()
    assert result["probabilities"].dtype == tf.float32 and result["classes"].dtype == tf.int64
    np.testing.assert_allclose(probabilities, expected, atol=1e-5, rtol=0)
    # A 2-step model is nearly uniform, so compare the log-probabilities too: they are the logits up to a
    # per-image constant, and differ between images by far more than this tolerance.
    np.testing.assert_allclose(np.log(probabilities), np.log(expected), atol=1e-4, rtol=0)
    np.testing.assert_array_equal(result["classes"].numpy(), np.argmax(probabilities, axis=-1))


def test_saved_model_signatures_match_the_checkpoint(trained, exported):
    _, model_dir = trained
    serving = tf.saved_model.load(str(exported / "saved_model"))
    assert set(serving.signatures) == {"serving_default", "serve_images"}
    for signature in serving.signatures.values():
        outputs = signature.structured_outputs
        assert outputs["probabilities"].shape.as_list() == [None, 10] and outputs["classes"].shape.as_list() == [None]
    model = oracle_model(model_dir)
    images = tiny_data.class_images([0, 3, 7, 9], np.random.RandomState(5), SIZE)

    encoded = [tiny_data.jpeg(image) for image in images[:3]] + [tf.io.encode_png(images[3]).numpy()]
    decoded = np.stack([tf.io.decode_image(data, channels=3).numpy() for data in encoded])
    result = serving.signatures["serving_default"](image_bytes=tf.constant(encoded))
    assert_same_predictions(result, oracle_probabilities(model, decoded))

    result = serving.signatures["serve_images"](images=tf.constant(images))
    assert_same_predictions(result, oracle_probabilities(model, images))
    assert not np.allclose(np.log(result["probabilities"].numpy()[0]), np.log(result["probabilities"].numpy()[1]),
                           atol=1e-4)  # the images are told apart: the comparison above means something

    empty = serving.signatures["serving_default"](image_bytes=tf.constant([], tf.string))
    assert empty["probabilities"].shape == (0, 10) and empty["classes"].shape == (0,)


def test_small_image_signatures_reject_other_sizes(exported):
    serving = tf.saved_model.load(str(exported / "saved_model"))
    assert serving.signatures["serve_images"].structured_input_signature[1]["images"].shape.as_list() == [
        None, SIZE, SIZE, 3]  # the required size is part of the signature
    wrong = tiny_data.class_images([1], np.random.RandomState(0), SIZE + 4)
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        serving.signatures["serve_images"](images=tf.constant(wrong))
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"expects {SIZE}x{SIZE} images"):
        serving.signatures["serving_default"](image_bytes=tf.constant([tiny_data.jpeg(wrong[0])]))


def test_keras_file_holds_the_ema_weights_and_gives_the_same_logits(trained, exported):
    _, model_dir = trained
    model = keras.saving.load_model(str(exported / "model.keras"), compile=False)
    assert model.input_shape == (None, SIZE, SIZE, 3) and model.output_shape == (None, 10)
    # Read the shadows straight from the checkpoint: every weight must be the EMA value, not the raw one.
    reader = tf.train.load_checkpoint(model_dir)
    shadows = 0
    for weight in model.weights:
        key = ema_shadow_key(weight.path)
        if reader.has_tensor(key):
            np.testing.assert_array_equal(weight.value.numpy(), reader.get_tensor(key))
            shadows += 1
    assert shadows == len(model.weights) > 0  # upstream also averages the BN moving statistics

    images = tiny_data.class_images([2, 5], np.random.RandomState(1), SIZE)
    x = (images.astype(np.float32) - MEAN) / STD
    np.testing.assert_allclose(model(x, training=False).numpy(), oracle_model(model_dir)(x, training=False).numpy(),
                               atol=1e-5, rtol=0)


def test_export_info(trained, exported):
    _, model_dir = trained
    assert sorted(os.listdir(exported)) == ["export_info.json", "model.keras", "saved_model"]
    info = json.loads((exported / "export_info.json").read_text())
    assert info["model_name"] == "efficientnet-b0" and info["num_classes"] == 10
    assert info["image_size"] == SIZE and info["small_image_model"] is True
    np.testing.assert_allclose(info["mean"], TASK.mean)
    np.testing.assert_allclose(info["std"], TASK.std)
    assert info["checkpoint"] == os.path.join(model_dir, "model.ckpt-2")
    assert "from EMA shadows" in info["weights"]
    # No temporary directory is left beside the export.
    assert [name for name in os.listdir(exported.parent) if name.startswith(".")] == []


def center_crop_resize(image, size):
    """Upstream `preprocessing.py`, `center_crop`, written out here: centre square of side
    int(S / (S + 32) * short side), TF1 bicubic."""
    height, width = image.shape[:2]
    side = int(np.float32(size / (size + 32)) * np.float32(min(height, width)))
    top, left = (height - side + 1) // 2, (width - side + 1) // 2
    crop = image[top:top + side, left:left + side][None].astype(np.float32)
    return tf.raw_ops.ResizeBicubic(images=crop, size=[size, size], align_corners=False,
                                    half_pixel_centers=False)[0].numpy()


def imagenet_style(size):
    """The tiny network without the small-image strides, at `size` (--nosmall_image_model --input_image_size)."""
    return jobs_helper.changed(jobs_helper.TINY, small_image_model=False, image_size=size)


def imagenet_style_checkpoint(directory, size):
    """An ImageNet-style network (other strides and head width than the small-image one trained above),
    written as our object checkpoint without EMA shadows: the export then takes the raw weights."""
    keras.utils.set_random_seed(3)
    model = model_from_config(imagenet_style(size))
    prefix = os.path.join(directory, "model.ckpt-0")
    tf.train.Checkpoint(model=model).write(prefix)
    return prefix


def test_imagenet_style_export_crops_any_size_and_replaces_with_overwrite(tmp_path):
    size = 24
    prefix = imagenet_style_checkpoint(str(tmp_path / "ckpt"), size)
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("previous export")
    # The checkpoint given as --predict_ckpt_path (test_command_line_exports_predict_ckpt_path_over_model_dir).
    jobs_helper.export_job(prefix, out, model=imagenet_style(size), checkpoint_flag="--predict_ckpt_path",
                           overwrite=True)
    assert sorted(os.listdir(out)) == ["export_info.json", "model.keras", "saved_model"]
    info = json.loads((out / "export_info.json").read_text())
    assert info["small_image_model"] is False and info["image_size"] == size and info["checkpoint"] == prefix
    assert sorted(os.listdir(tmp_path)) == ["ckpt", "out"]  # the old export went, no temporaries are left

    serving = tf.saved_model.load(str(out / "saved_model"))
    model = oracle_model(prefix, small=False, size=size)
    rng = np.random.RandomState(2)
    images = tiny_data.class_images([1, 4, 8], rng, 40)[:, :, 5:35]  # 40 x 30, a crop of the short side
    result = serving.signatures["serve_images"](images=tf.constant(images))
    assert_same_predictions(result, oracle_probabilities(model, [center_crop_resize(i, size) for i in images]))

    # Encoded images of different sizes in one batch.
    mixed = [images[0], tiny_data.class_images([6], rng, 28)[0], tiny_data.class_images([3], rng, 64)[0, :50]]
    encoded = [tiny_data.jpeg(image) for image in mixed]
    decoded = [tf.io.decode_jpeg(data, channels=3).numpy() for data in encoded]
    result = serving.signatures["serving_default"](image_bytes=tf.constant(encoded))
    assert_same_predictions(result, oracle_probabilities(model, [center_crop_resize(i, size) for i in decoded]))


def test_missing_checkpoint_is_a_user_error(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(UserError, match="missing"):
        jobs_helper.export_job(tmp_path / "missing", out)
    assert not out.exists() and os.listdir(tmp_path) == []


# Tests the command line's adapter: which flag names the checkpoint to export.
def test_command_line_exports_predict_ckpt_path_over_model_dir(tmp_path):
    out = tmp_path / "out"

    def config(*args):
        return adapters.export_config(flag_helper.main_flags(*jobs_helper.TINY_FLAGS, *args, export=True))

    # --predict_ckpt_path wins over --model_dir (which does not exist here).
    prefix = str(tmp_path / "ckpt" / "model.ckpt-0")
    assert config("--nosmall_image_model", "--input_image_size=24", f"--model_dir={tmp_path / 'missing'}",
                  f"--predict_ckpt_path={prefix}", f"--output={out}", "--overwrite") == jobs_helper.export_config(
        prefix, out, model=imagenet_style(24), checkpoint_flag="--predict_ckpt_path", overwrite=True)
    assert config(f"--model_dir={tmp_path}", f"--output={out}") == jobs_helper.export_config(tmp_path, out)
    with pytest.raises(UserError, match="--model_dir"):
        config(f"--output={out}")


def test_non_empty_output_without_overwrite_is_left_untouched(trained, tmp_path):
    _, model_dir = trained
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="--overwrite"):
        jobs_helper.export_job(model_dir, out)
    assert os.listdir(out) == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"
    assert os.listdir(tmp_path) == ["out"]
    with pytest.raises(UserError, match="--output is required"):
        jobs_helper.export_job(model_dir, "")


def test_a_failed_export_leaves_the_old_output_and_no_temporaries(trained, tmp_path, monkeypatch):
    _, model_dir = trained
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("previous export")
    # A directory left by a killed export (its process is gone) is cleaned up by the next export.
    child = subprocess.Popen(["true"])
    child.wait()
    dead_pid = child.pid
    leftover = tmp_path / f".out.tmp-{storage.HOST}-{dead_pid}-abc"
    leftover.mkdir()

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        jobs_helper.export_job(model_dir, out, overwrite=True)
    assert os.listdir(out) == ["keep.txt"] and (out / "keep.txt").read_text() == "previous export"
    assert os.listdir(tmp_path) == ["out"]
