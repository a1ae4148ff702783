"""eval.py --robustness: the corruptions against independent implementations (scipy, Pillow, matplotlib),
FGSM against its definition, the eval job with robustness on a tiny trained model, and the flags that ask for it."""

import io
import json
import os

import matplotlib.colors
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from scipy import ndimage

import flag_helper
import jobs_helper
import tiny_data
from noisy_student_tf.cli import adapters
from noisy_student_tf import robustness
from noisy_student_tf.config import RobustnessConfig
from noisy_student_tf.errors import UserError


def natural_images(n=3, size=32, seed=0):
    """Smooth random images spanning 0..255 (a flat or white-noise image would hide blur and pixelation)."""
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.uniform(0, 255, (n, size, size, 3)), sigma=(0, 2, 2, 0))
    return np.clip((smooth - smooth.mean()) * 4 + 128, 0, 255).round().astype(np.float32)


IMAGES = natural_images()


def corrupted(name, severity, images=IMAGES, seed=(0, 0)):
    return robustness.corrupt(images, name, severity, list(seed)).numpy()


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_gaussian_blur_is_scipy_gaussian_filter(severity):
    sigma = robustness.SEVERITIES["gaussian_blur"][severity - 1]
    expected = ndimage.gaussian_filter(IMAGES / 255.0, sigma=(0, sigma, sigma, 0), mode="reflect") * 255
    np.testing.assert_allclose(corrupted("gaussian_blur", severity), expected, atol=1e-3)


@pytest.mark.parametrize("severity", [1, 5])
def test_jpeg_matches_pillow(severity):
    quality = robustness.SEVERITIES["jpeg_compression"][severity - 1]
    expected = []
    for image in IMAGES.astype(np.uint8):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=quality)
        expected.append(np.asarray(Image.open(buffer), np.float32))
    difference = np.abs(corrupted("jpeg_compression", severity) - np.stack(expected))
    # Two JPEG codecs: the same quantisation, slightly different inverse DCTs.
    assert difference.mean() < 1.5 and difference.max() <= 6


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_pixelate_is_pillow_box_down_then_nearest_up(severity):
    c = robustness.SEVERITIES["pixelate"][severity - 1]
    side = int(32 * c)
    expected = np.stack([np.asarray(Image.fromarray(image).resize((side, side), Image.BOX)
                                    .resize((32, 32), Image.NEAREST), np.float32)
                         for image in IMAGES.astype(np.uint8)])
    # Pillow rounds its box averages to integers; we keep them as floats.
    np.testing.assert_allclose(corrupted("pixelate", severity), expected, atol=1.0 + 1e-3)


@pytest.mark.parametrize("severity", [1, 5])
def test_brightness_raises_the_hsv_value(severity):
    c = robustness.SEVERITIES["brightness"][severity - 1]
    hsv = matplotlib.colors.rgb_to_hsv(IMAGES / 255.0)
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    expected = matplotlib.colors.hsv_to_rgb(hsv) * 255
    np.testing.assert_allclose(corrupted("brightness", severity), expected, atol=0.05)


def test_contrast_pulls_every_channel_towards_its_mean():
    for severity, c in enumerate(robustness.SEVERITIES["contrast"], start=1):
        mean = IMAGES.mean(axis=(1, 2), keepdims=True)
        np.testing.assert_allclose(corrupted("contrast", severity), (IMAGES - mean) * c + mean, atol=1e-3)


def test_noises_have_their_statistics():
    grey = np.full((8, 32, 32, 3), 128.0, np.float32)
    x = 128 / 255.0
    for severity in (1, 5):
        c = robustness.SEVERITIES["gaussian_noise"][severity - 1]
        noise = (corrupted("gaussian_noise", severity, grey) - grey) / 255
        assert abs(noise.mean()) < 0.01 and noise.std() == pytest.approx(c, rel=0.05)
        c = robustness.SEVERITIES["shot_noise"][severity - 1]
        shot = corrupted("shot_noise", severity, grey) / 255
        # Poisson counts with mean x*c, divided by c: mean x, variance x / c.
        assert shot.mean() == pytest.approx(x, abs=0.01) and shot.var() == pytest.approx(x / c, rel=0.1)
        c = robustness.SEVERITIES["impulse_noise"][severity - 1]
        impulse = corrupted("impulse_noise", severity, grey)
        changed = impulse != grey
        assert changed.mean() == pytest.approx(c, rel=0.15)
        assert set(np.unique(impulse[changed])) <= {0.0, 255.0}


def test_same_seed_same_images_other_seed_other_images():
    for name in ("gaussian_noise", "shot_noise", "impulse_noise"):
        np.testing.assert_array_equal(corrupted(name, 3, seed=(7, 1)), corrupted(name, 3, seed=(7, 1)))
        assert not np.array_equal(corrupted(name, 3, seed=(7, 1)), corrupted(name, 3, seed=(7, 2)))


@pytest.mark.parametrize("name", robustness.CORRUPTIONS)
def test_severity_makes_it_worse_and_stays_in_range(name):
    distances = []
    for severity in range(1, 6):
        out = corrupted(name, severity)
        assert out.shape == IMAGES.shape and out.min() >= 0 and out.max() <= 255
        distances.append(np.abs(out - IMAGES).mean())
    assert distances[0] > 0 and distances[-1] > distances[0], distances
    assert all(b >= a * 0.9 for a, b in zip(distances, distances[1:])), distances


def test_bad_names_and_values_are_errors():
    with pytest.raises(UserError, match="fog"):
        robustness.check_corruptions(["contrast", "fog"])
    with pytest.raises(UserError, match="severity"):
        robustness.corrupt(IMAGES, "contrast", 6, [0, 0])
    with pytest.raises(UserError, match="--fgsm_epsilons"):
        robustness.parse_epsilons(["2", "big"])
    with pytest.raises(UserError, match=">= 0"):
        robustness.parse_epsilons(["-1"])


def test_fgsm_steps_every_pixel_by_epsilon_along_the_loss_gradient():
    model = tf.keras.Sequential([tf.keras.Input((4, 4, 3)), tf.keras.layers.Rescaling(1 / 255.0),
                                 tf.keras.layers.Flatten(), tf.keras.layers.Dense(3)])
    images = tf.constant(np.random.default_rng(1).uniform(20, 235, (5, 4, 4, 3)), tf.float32)
    labels = tf.constant([0, 1, 2, 0, 1])

    def loss(x):
        return tf.keras.losses.sparse_categorical_crossentropy(labels, model(x), from_logits=True)

    def gradient(x, y):
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = tf.reduce_sum(loss(x))
        return tape.gradient(value, x)

    adversarial = robustness.fgsm(gradient, images, labels, 8.0).numpy()
    step = adversarial - images.numpy()
    np.testing.assert_allclose(np.abs(step), 8.0, atol=1e-4)  # no pixel near 0 or 255: none clipped
    np.testing.assert_array_equal(np.sign(step), np.sign(gradient(images, labels).numpy()))
    assert np.all(loss(tf.constant(adversarial)).numpy() > loss(images).numpy())
    clipped = robustness.fgsm(gradient, images, labels, 300.0).numpy()
    assert set(np.unique(clipped)) <= {0.0, 255.0}


@pytest.fixture(scope="module")
def trained_tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("robust")
    rng = np.random.RandomState(0)
    tiny_data.write_labeled(str(root / "data"), "train", rng.randint(0, 10, 40), num_shards=1,
                            size=jobs_helper.TINY_SIZE)
    tiny_data.write_labeled(str(root / "data"), "test", np.arange(30) % 10, num_shards=1, seed=3,
                            size=jobs_helper.TINY_SIZE)
    model_dir = str(root / "model")
    jobs_helper.train_job(model_dir, root / "data", seed=1, input__train_batch_size=8, optim__train_steps=4,
                          loop__iterations_per_loop=4, loop__save_checkpoints_steps=4)
    return root, model_dir


def test_eval_robustness_writes_its_results_beside_eval_results(trained_tiny):
    root, model_dir = trained_tiny
    settings = dict(eval_batch_size=7, robustness=dict(corruptions=("contrast", "pixelate"), fgsm_epsilons=(0.0, 64.0)))
    results = jobs_helper.eval_job(model_dir, root / "data", **settings)
    with open(os.path.join(model_dir, "robustness_results.json")) as f:
        written = json.load(f)
    with open(os.path.join(model_dir, "eval_results.json")) as f:
        assert "robustness" not in json.load(f)  # upstream's file keeps its shape
    assert written == results["robustness"]
    assert written["subset"] == "test" and written["num_images"] == 30
    assert written["clean_top1"] == pytest.approx(results["test"]["top_1_accuracy"])
    assert sorted(written["corruptions"]) == ["contrast", "pixelate"]
    assert all(sorted(v) == ["1", "2", "3", "4", "5"] for v in written["corruptions"].values())
    assert written["corruption_mean_top1"] == pytest.approx(
        np.mean([a for v in written["corruptions"].values() for a in v.values()]))
    assert written["fgsm"]["0"] == written["clean_top1"]  # a zero step changes nothing
    assert written["fgsm"]["64"] <= written["clean_top1"]
    assert jobs_helper.eval_job(model_dir, root / "data", **settings)["robustness"] == written  # the same images


def test_eval_robustness_bad_flags_stop_before_writing(trained_tiny):
    root, model_dir = trained_tiny
    epsilons = tuple(float(e) for e in robustness.DEFAULT_EPSILONS)
    before = sorted(os.listdir(model_dir))
    mtime = os.path.getmtime(os.path.join(model_dir, "eval_results.json")) \
        if os.path.exists(os.path.join(model_dir, "eval_results.json")) else None
    with pytest.raises(UserError, match="fog"):
        jobs_helper.eval_job(model_dir, root / "data", robustness=dict(corruptions=("fog",), fgsm_epsilons=epsilons))
    with pytest.raises(UserError, match="--robustness_subset='dev'"):
        jobs_helper.eval_job(model_dir, root / "data", robustness=dict(corruptions=("contrast",), fgsm_epsilons=(),
                                                                       subset="dev"))
    assert sorted(os.listdir(model_dir)) == before
    if mtime is not None:
        assert os.path.getmtime(os.path.join(model_dir, "eval_results.json")) == mtime


# Tests the command line's adapter: eval.py's robustness flags become the config the tests above run.
def test_robustness_flags_give_the_robustness_config(tmp_path):
    def robustness_of(*args):
        return adapters.eval_config(flag_helper.main_flags(
            *jobs_helper.TINY_FLAGS, f"--model_dir={tmp_path}", f"--label_data_dir={tmp_path}", *args)).robustness

    assert robustness_of() is None
    assert robustness_of("--robustness", "--corruptions=contrast,pixelate", "--fgsm_epsilons=0,64") == \
        RobustnessConfig(corruptions=("contrast", "pixelate"), fgsm_epsilons=(0.0, 64.0))
    assert robustness_of("--robustness", "--robustness_subset=dev", "--fgsm_epsilons=", "--seed=3") == \
        RobustnessConfig(corruptions=robustness.CORRUPTIONS, fgsm_epsilons=(), subset="dev", seed=3)
    with pytest.raises(UserError, match="fog"):
        robustness_of("--robustness", "--corruptions=fog")
