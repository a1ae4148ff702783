"""Training input from Python data: arrays or `tf.data` datasets instead of TFRecord shards.

The batches have the structure of the command line's input (`data.inputs.train_dataset`), made with the same
preprocessing (RandAugment and the rest of the student's noise from `data/preprocessing.py`) and the same seeded,
per-example augmentation, so `NoisyStudent` trains on them as the command-line trainer trains on shards.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from noisy_student_tf.config import AugmentConfig, unlabeled_batch_size
from noisy_student_tf.data import preprocessing
from noisy_student_tf.data.inputs import (CACHED_SHUFFLE_BUFFER, LABELED_STREAM, UNCACHED_SHUFFLE_BUFFER,
                                          UNLABELED_STREAM, assemble_batches, no_autograph, stream_seed,
                                          train_view)

# Upstream trains 32x32 images (SVHN, CIFAR) with the small-image recipe; anything larger takes the ImageNet path.
SMALL_IMAGE_MAX = 64


def _fail(argument: str, message: str):
    raise ValueError(f"noisy_student_dataset: `{argument}` {message}")


def _as_dataset(data, argument: str) -> tuple[tf.data.Dataset, int | None]:
    """(a dataset of single examples, its size when known)."""
    if isinstance(data, tf.data.Dataset):
        return data, None
    if isinstance(data, (tuple, list)):
        arrays = tuple(np.asarray(part) for part in data)
        sizes = {len(a) for a in arrays}
        if len(sizes) != 1:
            _fail(argument, f"holds arrays of different lengths {[len(a) for a in arrays]}; they must match")
        size = sizes.pop()
        if size == 0:
            _fail(argument, "holds no images (for pseudo labels: did the selection keep any?)")
        return tf.data.Dataset.from_tensor_slices(arrays), size
    array = np.asarray(data)
    if len(array) == 0:
        _fail(argument, "holds no images (for pseudo labels: did the selection keep any?)")
    return tf.data.Dataset.from_tensor_slices(array), len(array)


def _check_image_spec(spec, argument: str) -> tuple[int | None, int | None]:
    if isinstance(spec, tf.TensorSpec) and spec.shape.rank is None:
        _fail(argument, "gives images of unknown shape (e.g. from tf.py_function): set it in your map function, "
                        "e.g. image.set_shape([height, width, 3])")
    if not isinstance(spec, tf.TensorSpec) or spec.shape.rank != 3:
        shape = getattr(spec, "shape", spec)
        _fail(argument, f"must give images [height, width, 3] one by one (arrays: [N, height, width, 3]); got "
                        f"{shape}")
    if spec.shape[-1] != 3:
        _fail(argument, f"images must have 3 channels (RGB), got {spec.shape[-1]}; for grey images repeat the "
                        "channel, e.g. np.repeat(x, 3, axis=-1)")
    if not (spec.dtype.is_integer or spec.dtype.is_floating):
        _fail(argument, f"images must be numbers 0..255, got dtype {spec.dtype.name}")
    return spec.shape[0], spec.shape[1]


def _labeled(labeled) -> tuple[tf.data.Dataset, int | None]:
    dataset, size = _as_dataset(labeled, "labeled")
    spec = dataset.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2):
        _fail("labeled", f"must be (images, labels) (arrays, or a dataset of (image, label) pairs); got {spec}")
    _check_image_spec(spec[0], "labeled")
    if spec[1].shape.rank != 0 or not spec[1].dtype.is_integer:
        _fail("labeled", f"labels must be integer class indices, one per image (0-based); got {spec[1].dtype.name}"
                         f" of shape {spec[1].shape} per image")
    return dataset.map(lambda image, label: (image, tf.cast(label, tf.int32))), size


def _unlabeled(unlabeled) -> tuple[tf.data.Dataset, int | None, bool]:
    """(dataset of (image,) or (image, probs), size, holds probabilities)."""
    dataset, size = _as_dataset(unlabeled, "unlabeled")
    spec = dataset.element_spec
    if isinstance(spec, tf.TensorSpec):
        _check_image_spec(spec, "unlabeled")
        return dataset.map(lambda image: (image,)), size, False
    if isinstance(spec, tuple) and len(spec) == 2:
        _check_image_spec(spec[0], "unlabeled")
        second = spec[1]
        if second.shape.rank == 0 and second.dtype.is_integer:
            _fail("unlabeled", "yields (image, label) pairs, but unlabeled data has no labels: pass the images only "
                               "(e.g. dataset.map(lambda x, y: x)), or (image, probabilities) pairs from "
                               "pseudo_label()")
        if second.shape.rank != 1 or not second.dtype.is_floating:
            _fail("unlabeled", f"must be images, or (images, probabilities) with probabilities [N, classes]; got "
                               f"{second.dtype.name} of shape {second.shape} per image as the second part")
        return dataset.map(lambda image, probs: (image, tf.cast(probs, tf.float32))), size, True
    _fail("unlabeled", f"must be images, or (images, probabilities); got {spec}")


def _stream(dataset: tf.data.Dataset, size: int | None, seed: int, shuffle: bool) -> tf.data.Dataset:
    """Repeated forever in an order fixed by `seed` (upstream shuffles and repeats its training streams)."""
    if shuffle:
        if size is not None:
            # Arrays: a full shuffle each epoch (upstream's cached buffer holds 16384 records).
            dataset = dataset.shuffle(min(size, CACHED_SHUFFLE_BUFFER), seed=seed, reshuffle_each_iteration=True)
            return dataset.repeat()
        return dataset.repeat().shuffle(UNCACHED_SHUFFLE_BUFFER, seed=seed)
    return dataset.repeat()


def noisy_student_dataset(labeled, unlabeled=None, *, batch_size: int, unlabel_ratio: float = 1.0,
                          label_data_sample_prob: float = 1.0, image_size: int | None = None,
                          small_image_model: bool | None = None,
                          augment: AugmentConfig | None = None, teacher_image_size: int | None = None,
                          shuffle: bool = True, seed: int = 0) -> tf.data.Dataset:
    """Endless training batches for `NoisyStudent` from arrays or datasets.

    Each batch holds `batch_size` labeled images and ceil(batch_size * label_data_sample_prob * unlabel_ratio)
    unlabeled ones (upstream `data_input.py`; the command line's batches are assembled by the same code), both with
    the student's noise (`augment`: RandAugment, crop, flip, cutout as upstream), each example's noise seeded by
    (seed, position in the stream). Unlabeled images without probabilities also get their clean view
    ("teacher_image") for an online teacher; with probabilities (from `pseudo_label`), those are the targets.

    Args:
        labeled: `(images, labels)`: images [N, H, W, 3] (uint8 or float, 0..255) and 0-based integer labels [N];
            or a `tf.data.Dataset` of single (image, label) pairs.
        unlabeled: images [M, H, W, 3], or `(images, probabilities)` with probabilities [M, classes]; or a
            dataset of single images or (image, probabilities) pairs. None: labeled batches only.
        batch_size: labeled images per batch (over all replicas: `fit()` splits a batch across them).
        unlabel_ratio: unlabeled images per labeled image (upstream `--unlabel_ratio`; use the same value in
            `NoisyStudent`).
        label_data_sample_prob: the share of labeled images that enter the loss (upstream
            `--label_data_sample_prob`; use the same value in `NoisyStudent`): the unlabeled batch is sized for
            the labeled images kept.
        image_size: the student's input size; default: the images' height.
        small_image_model: the small-image recipe (RandAugment, extra cutout, reflect-pad-4 crop, flip; the
            images must already be `image_size` square) instead of the ImageNet one (random crop resized to
            `image_size`, flip, RandAugment; clean view: the centre crop). Default: small when the images are
            square, `image_size` and at most 64 pixels.
        augment: the noise (`AugmentConfig`); default: RandAugment ('v1', 2 layers, magnitude 27), flip on.
            `AugmentConfig(remove_aug=True)` gives clean views.
        teacher_image_size: the online teacher's input size; default `image_size`.
        shuffle: shuffle the examples (with `seed`).
        seed: the order and every augmentation are a function of it.

    Returns:
        A `tf.data.Dataset` of `{"labeled": {"image", "label"}, "unlabeled": {"image", "teacher_image"}}` or, with
        probabilities, `"unlabeled": {"image", "probs", "label"}` (label: the most probable class); images float32
        0..255. It never ends: pass `steps_per_epoch` to `fit()`.
    """
    if not isinstance(batch_size, int) or batch_size <= 0:
        _fail("batch_size", f"must be a positive integer, got {batch_size!r}")
    lab_data, lab_size = _labeled(labeled)
    height, width = _check_image_spec(lab_data.element_spec[0], "labeled")
    image_size = image_size or height
    if image_size is None:
        _fail("image_size", "is needed: the images' size is not known from the data")
    if small_image_model is None:
        small_image_model = height == width == image_size and image_size <= SMALL_IMAGE_MAX
    if small_image_model and height is not None and (height, width) != (image_size, image_size):
        _fail("labeled", f"images are {height}x{width}, but the small-image recipe takes them as they are: resize "
                         f"them to {image_size}x{image_size}, or pass small_image_model=False")
    augment = augment or AugmentConfig(augment_name="v1", unl_augment_name="v1")
    if augment.flip is None:
        augment = dataclasses.replace(augment, flip=True)
    teacher_image_size = teacher_image_size or image_size
    size = dict(image_size=image_size, small_image_model=small_image_model)

    lab_seed = stream_seed(seed, LABELED_STREAM, 0)

    def labeled_example(index, example):
        image, label = example
        view = train_view(augment, image, augment.augment_name, tf.stack([lab_seed, index]), **size)
        return {"image": view, "label": label}

    lab_stream = _stream(lab_data, lab_size, lab_seed, shuffle)
    unl_stream = unlabeled_example = None
    unl_batch = 0
    if unlabeled is not None:
        if unlabel_ratio <= 0:
            _fail("unlabel_ratio", f"must be positive when unlabeled data is given, got {unlabel_ratio}")
        if not 0 < label_data_sample_prob <= 1:
            _fail("label_data_sample_prob", f"must be in (0, 1], got {label_data_sample_prob}")
        unl_data, unl_size, with_probs = _unlabeled(unlabeled)
        unl_height, unl_width = _check_image_spec(unl_data.element_spec[0], "unlabeled")
        if small_image_model and unl_height is not None and (unl_height, unl_width) != (image_size, image_size):
            _fail("unlabeled", f"images are {unl_height}x{unl_width}; the labeled ones are {image_size}x{image_size}")
        unl_seed = stream_seed(seed, UNLABELED_STREAM, 0)

        def unlabeled_example(index, example):
            image = example[0]
            view = train_view(augment, image, augment.unl_augment_name, tf.stack([unl_seed, index]), **size)
            if with_probs:
                probs = example[1]
                return {"image": view, "probs": probs, "label": tf.argmax(probs, output_type=tf.int32)}
            clean = preprocessing.preprocess_image(image, is_training=False, image_size=teacher_image_size,
                                                   small_image_model=small_image_model)
            return {"image": view, "teacher_image": clean}

        unl_batch = unlabeled_batch_size(batch_size, unlabel_ratio, label_data_sample_prob)
        unl_stream = _stream(unl_data, unl_size, unl_seed, shuffle)
    return assemble_batches(lab_stream, labeled_example, batch_size, unl_stream, unlabeled_example, unl_batch)


def clean_dataset(images, labels=None, *, batch_size: int = 64, image_size: int | None = None,
                  small_image_model: bool | None = None) -> tf.data.Dataset:
    """Batches of the clean view (as evaluation and the teacher see images), for `evaluate()` or `predict()`.

    Args:
        images: [N, H, W, 3] 0..255, or a dataset of single images.
        labels: 0-based labels [N], or None (a dataset of (image, label) pairs carries its own).
        batch_size: images per batch (the last one may be smaller).
        image_size, small_image_model: as in `noisy_student_dataset`.

    Returns:
        A `tf.data.Dataset` of float32 image batches, or (images, labels) batches.
    """
    data, _ = _as_dataset(images if labels is None else (images, labels), "images")
    spec = data.element_spec
    image_spec = spec[0] if isinstance(spec, tuple) else spec
    height, width = _check_image_spec(image_spec, "images")
    image_size = image_size or height
    if small_image_model is None:
        small_image_model = height == width == image_size and image_size <= SMALL_IMAGE_MAX

    def view(image):
        return preprocessing.preprocess_image(image, is_training=False, image_size=image_size,
                                              small_image_model=small_image_model)

    if isinstance(spec, tuple):
        data = data.map(no_autograph(lambda image, label: (view(image), tf.cast(label, tf.int32))),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        data = data.map(no_autograph(view), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)
