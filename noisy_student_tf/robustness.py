"""Top-1 under common corruptions and under FGSM (the paper's robustness results, §4.3-4.4), for
`eval.py --robustness`.

Corruptions act on the clean eval view (float32 in 0..255, the model input before normalisation), in TF ops,
with stateless randomness keyed by (seed, corruption, severity, batch), so every model evaluated with the same
seed sees exactly the same corrupted images. The five severities of each corruption are the CIFAR-10-C tables
(Hendrycks & Dietterich, ICLR 2019), which were made for 32x32 images; the blur radius grows with the image size
so that a larger input is blurred as much relative to its size. FGSM (Goodfellow et al., 2015) moves every pixel
by epsilon (in 0..255 units) along the sign of the gradient of the cross entropy with the true label.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from noisy_student_tf.errors import UserError
from noisy_student_tf.models.inference import clean_logits, normalize
from noisy_student_tf.robustness_names import CORRUPTIONS, DEFAULT_EPSILONS  # noqa: F401 - robustness.CORRUPTIONS

# CIFAR-10-C severity parameters, severity 1..5 (in 0..1 image units unless said otherwise).
SEVERITIES = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),  # standard deviation of the added noise
    "shot_noise": (500, 250, 100, 75, 50),  # photons per unit intensity (Poisson); fewer is noisier
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),  # fraction of values set to 0 or 1 (salt and pepper)
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),  # sigma in pixels of a 32x32 image
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),  # factor towards each channel's mean
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),  # added to the HSV value
    "jpeg_compression": (80, 65, 58, 50, 40),  # JPEG quality
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),  # side of the coarse image, as a fraction
}
# CORRUPTIONS (the names of SEVERITIES) and DEFAULT_EPSILONS live in robustness_names.py: flags.py needs them
# without TensorFlow.


def _gaussian_noise(x, c, seed):
    return x + c * tf.random.stateless_normal(tf.shape(x), seed)


def _shot_noise(x, c, seed):
    return tf.random.stateless_poisson(tf.shape(x), seed, lam=x * c, dtype=tf.float32) / c


def _impulse_noise(x, c, seed):
    u = tf.random.stateless_uniform(tf.shape(x), seed)
    return tf.where(u < c / 2, 0.0, tf.where(u < c, 1.0, x))


def gaussian_kernel(sigma: float) -> np.ndarray:
    """The 1-D kernel scipy.ndimage.gaussian_filter uses (radius = int(4 sigma + 0.5))."""
    radius = int(4.0 * sigma + 0.5)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (t / sigma) ** 2)
    return (kernel / kernel.sum()).astype(np.float32)


def _gaussian_blur(x, sigma, seed):
    del seed
    sigma = sigma * x.shape[1] / 32.0
    kernel = gaussian_kernel(sigma)
    radius = len(kernel) // 2
    channels = x.shape[-1]
    # Symmetric padding repeats the edge pixel: scipy's 'reflect' mode, which CIFAR-10-C used.
    x = tf.pad(x, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="SYMMETRIC")
    rows = tf.tile(tf.constant(kernel)[:, None, None, None], [1, 1, channels, 1])
    cols = tf.tile(tf.constant(kernel)[None, :, None, None], [1, 1, channels, 1])
    x = tf.nn.depthwise_conv2d(x, rows, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(x, cols, [1, 1, 1, 1], "VALID")


def _contrast(x, c, seed):
    del seed
    mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
    return (x - mean) * c + mean


def _brightness(x, c, seed):
    del seed
    hsv = tf.image.rgb_to_hsv(tf.clip_by_value(x, 0.0, 1.0))
    value = tf.clip_by_value(hsv[..., 2:] + c, 0.0, 1.0)
    return tf.image.hsv_to_rgb(tf.concat([hsv[..., :2], value], axis=-1))


def _jpeg_compression(x, quality, seed):
    del seed
    pixels = tf.cast(tf.round(tf.clip_by_value(x, 0.0, 1.0) * 255.0), tf.uint8)
    compressed = tf.map_fn(lambda image: tf.io.decode_jpeg(tf.io.encode_jpeg(image, quality=int(quality))),
                           pixels, fn_output_signature=tf.TensorSpec(pixels.shape[1:], tf.uint8))
    return tf.cast(compressed, tf.float32) / 255.0


def _pixelate(x, c, seed):
    del seed
    height, width = x.shape[1], x.shape[2]
    size = [max(1, int(height * c)), max(1, int(width * c))]
    # A box filter over each coarse pixel's footprint (PIL's BOX resize, which CIFAR-10-C used), then blocks.
    coarse = tf.raw_ops.ScaleAndTranslate(
        images=x, size=size, scale=[size[0] / height, size[1] / width], translation=[0.0, 0.0],
        kernel_type="box", antialias=True)
    return tf.image.resize(coarse, [height, width], method="nearest")


_FUNCTIONS = {
    "gaussian_noise": _gaussian_noise, "shot_noise": _shot_noise, "impulse_noise": _impulse_noise,
    "gaussian_blur": _gaussian_blur, "contrast": _contrast, "brightness": _brightness,
    "jpeg_compression": _jpeg_compression, "pixelate": _pixelate,
}


def corrupt(images, name: str, severity: int, seed) -> tf.Tensor:
    """`images`: [B, H, W, 3] float in 0..255; severity 1..5; seed: 2 ints (stateless randomness).
    Returns the corrupted images, float32 in 0..255."""
    if name not in SEVERITIES:
        raise UserError(f"unknown corruption {name!r}: choose from {', '.join(CORRUPTIONS)}")
    if not 1 <= severity <= 5:
        raise UserError(f"corruption severity must be 1..5, got {severity}")
    x = tf.cast(images, tf.float32) / 255.0
    x = _FUNCTIONS[name](x, SEVERITIES[name][severity - 1], tf.constant(seed, tf.int64))
    return tf.clip_by_value(x, 0.0, 1.0) * 255.0


def fgsm(loss_gradient, images, labels, epsilon: float) -> tf.Tensor:
    """One signed-gradient step of size `epsilon` (0..255 units) that raises the loss, clipped to 0..255."""
    gradient = loss_gradient(images, labels)
    return tf.clip_by_value(images + epsilon * tf.sign(gradient), 0.0, 255.0)


def parse_epsilons(values) -> list[float]:
    try:
        epsilons = [float(v) for v in values]
    except ValueError:
        raise UserError(f"--fgsm_epsilons={','.join(values)}: expected numbers in 0..255 units, e.g. 1,2,4,8") \
            from None
    if any(not math.isfinite(e) or e < 0 for e in epsilons):
        raise UserError(f"--fgsm_epsilons={','.join(values)}: epsilons must be finite and >= 0")
    return epsilons


def check_corruptions(names) -> list[str]:
    unknown = [n for n in names if n not in SEVERITIES]
    if unknown:
        raise UserError(f"--corruptions: unknown {', '.join(unknown)}; choose from {', '.join(CORRUPTIONS)}")
    return list(names)


def evaluate(model, dataset, *, mean, std, corruptions=CORRUPTIONS, epsilons=(), seed: int = 0,
             log=lambda message: None) -> dict:
    """Top-1 of `model` on `dataset` ((images 0..255, 0-based labels) batches): clean, under every corruption at
    severities 1..5, and under FGSM at each epsilon."""

    @tf.function(reduce_retracing=True, autograph=False)
    def correct(images, labels):
        logits = clean_logits(model, images, mean, std)
        return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.int32))

    @tf.function(reduce_retracing=True, autograph=False)
    def loss_gradient(images, labels):
        with tf.GradientTape() as tape:
            tape.watch(images)
            logits = tf.cast(model(normalize(images, mean, std), training=False), tf.float32)
            loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        return tape.gradient(loss, images)

    def count_correct(transform) -> tuple[int, int]:
        # The data is read again for every pass: a validation set need not fit in memory.
        hits = seen = 0
        for index, (images, labels) in enumerate(dataset):
            images, labels = tf.cast(images, tf.float32), tf.cast(labels, tf.int32)
            hits += int(correct(transform(index, images, labels), labels))
            seen += int(labels.shape[0])
        return hits, seen

    clean_hits, count = count_correct(lambda i, x, y: x)
    if not count:
        raise UserError("no images to evaluate")

    def top1(transform) -> float:
        return count_correct(transform)[0] / count

    results = {"num_images": count, "clean_top1": clean_hits / count, "corruptions": {}, "fgsm": {}}
    log(f"clean: top-1 {results['clean_top1']:.4f}")
    for k, name in enumerate(corruptions):
        by_severity = {}
        for severity in range(1, 6):
            # One key per (corruption, severity, batch): the same images for every model and every run.
            by_severity[str(severity)] = top1(
                lambda i, x, y, k=k, s=severity: corrupt(x, name, s, [seed, (k * 10 + s) * 100000 + i]))
        results["corruptions"][name] = by_severity
        log(f"{name}: top-1 by severity 1..5: " + " ".join(f"{v:.4f}" for v in by_severity.values()))
    if corruptions:
        every = [v for by_severity in results["corruptions"].values() for v in by_severity.values()]
        results["corruption_mean_top1"] = float(np.mean(every))
        log(f"mean over {len(corruptions)} corruptions x 5 severities: top-1 {results['corruption_mean_top1']:.4f}")
    for epsilon in epsilons:
        results["fgsm"][f"{epsilon:g}"] = top1(lambda i, x, y, e=epsilon: fgsm(loss_gradient, x, y, e))
        log(f"FGSM epsilon {epsilon:g}/255: top-1 {results['fgsm'][f'{epsilon:g}']:.4f}")
    return results
