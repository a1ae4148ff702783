"""Image preprocessing of the original code (upstream `preprocessing.py`, `preprocess_image`, and `data_input.py`):
the student's noisy view and the clean view.

Two paths, chosen by `small_image_model`:
* ImageNet style: random distorted-box crop + bicubic resize + flip for training; centre crop `S/(S+32)` +
  bicubic resize for eval, the teacher and prediction.
* Small images (32x32, SVHN): RandAugment + an extra cutout + reflect-pad-4 random crop (+ flip unless SVHN) for
  training; the image as it is for eval.

Outputs are float32 in 0..255 (not normalised; the training code normalises, as upstream did on the device).
Pass a `seed` (int tensor of shape [2], e.g. one per example) for reproducible randomness.
"""

from __future__ import annotations

import tensorflow as tf

# The augmentation names are checked where configs are made; preprocess_image checks again for direct callers.
from noisy_student_tf.config import AUGMENT_NAMES, check_augment_name, unlabeled_augment_name  # noqa: F401
from noisy_student_tf.data import randaugment

CROP_PADDING = 32  # upstream preprocessing.CROP_PADDING: eval crops S/(S+32) of the short side
SMALL_IMAGE_PAD = 4  # upstream small_image_crop: reflect-pad 4 pixels, then crop back to S
# Upstream `preprocessing.py`, `_random_crop` parameters.
CROP_MIN_OBJECT_COVERED = 0.1
CROP_ASPECT_RATIO_RANGE = (3.0 / 4.0, 4.0 / 3.0)
CROP_AREA_RANGE = (0.08, 1.0)
CROP_MAX_ATTEMPTS = 10


def decode_image(image_bytes):
    """JPEG bytes -> uint8 [height, width, 3] (upstream decodes with 3 channels)."""
    return tf.io.decode_jpeg(image_bytes, channels=3)


def resize_bicubic(image, size: int):
    """TF1's resize_bicubic (align_corners=False, no half-pixel centres), which upstream used; float32 out."""
    resized = tf.raw_ops.ResizeBicubic(images=image[None], size=[size, size], align_corners=False,
                                       half_pixel_centers=False)
    return resized[0]


def center_crop(image, image_size: int):
    """Centre crop of side int(S / (S + 32) * min(h, w)), bicubic-resized to S x S (upstream `preprocessing.py`,
    `center_crop`)."""
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    side = tf.cast(image_size / (image_size + CROP_PADDING) * tf.cast(tf.minimum(height, width), tf.float32),
                   tf.int32)
    top = ((height - side) + 1) // 2
    left = ((width - side) + 1) // 2
    crop = tf.slice(image, [top, left, 0], [side, side, -1])
    return resize_bicubic(crop, image_size)


def random_crop(image, image_size: int, seed=None):
    """Distorted-bounding-box crop resized to S; the centre crop when sampling returned the whole image."""
    shape = tf.shape(image)
    whole = tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, shape=[1, 1, 4])
    options = dict(bounding_boxes=whole, min_object_covered=CROP_MIN_OBJECT_COVERED,
                   aspect_ratio_range=CROP_ASPECT_RATIO_RANGE, area_range=CROP_AREA_RANGE,
                   max_attempts=CROP_MAX_ATTEMPTS, use_image_if_no_bounding_boxes=True)
    if seed is None:
        begin, size, _ = tf.image.sample_distorted_bounding_box(shape, **options)
    else:
        begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(shape, seed=seed, **options)
    crop = tf.slice(image, begin, size)
    # Upstream's "bad crop" test: at least 3 of (h, w, c) unchanged means the sampler gave up.
    failed = tf.reduce_sum(tf.cast(tf.equal(shape, tf.shape(crop)), tf.int32)) >= 3
    return tf.cond(failed, lambda: center_crop(image, image_size), lambda: resize_bicubic(crop, image_size))


def random_flip(image, seed=None):
    if seed is None:
        return tf.image.random_flip_left_right(image)
    return tf.image.stateless_random_flip_left_right(image, seed=seed)


def small_image_crop(image, seed=None):
    """Reflect-pad 4 pixels on each side and take a random crop of the original size."""
    pad = SMALL_IMAGE_PAD
    padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    if seed is None:
        return tf.image.random_crop(padded, tf.shape(image))
    return tf.image.stateless_random_crop(padded, tf.shape(image), seed=seed)


def _check_small_image(image, image_size: int):
    check = tf.debugging.assert_equal(
        tf.shape(image)[:2], [image_size, image_size],
        message=f"small_image_model expects {image_size}x{image_size} images; resize the data or use the "
                "ImageNet-style path (small_image_model=False)")
    with tf.control_dependencies([check] if check is not None else []):  # report this, not a reshape error
        return tf.reshape(image, [image_size, image_size, 3])


def _randaugment(image, randaug_layer, randaug_mag, *, cutout_const, translate_const, cutout_op,
                 contrast_mode, seed):
    """float image -> clip -> uint8 (truncating, as upstream) -> RandAugment."""
    image = tf.cast(tf.clip_by_value(image, 0.0, 255.0), tf.uint8)
    return randaugment.distort_image_with_randaugment(
        image, randaug_layer, randaug_mag, cutout_const=cutout_const, translate_const=translate_const,
        seed=seed, cutout_op=cutout_op, contrast_mode=contrast_mode)


def preprocess_for_train(image, image_size: int, *, small_image_model: bool, augment_name=None,
                         randaug_layer: int = 2, randaug_mag: float = 27, cutout_op: bool = True,
                         flip: bool = True, contrast_mode: str = "pil", seed=None):
    """The noisy student view of a uint8 image (upstream `preprocessing.py`, `_preprocess_for_train`; small images:
    `_cifar10_preprocess_for_train`). `flip=False` for SVHN."""
    augment_name = check_augment_name(augment_name)
    crop_seed, flip_seed, randaug_seed, cutout_seed = randaugment.split_seed(seed, 4)
    if small_image_model:
        image = tf.cast(_check_small_image(image, image_size), tf.float32)
        if augment_name:
            image = _randaugment(image, randaug_layer, randaug_mag, cutout_const=image_size // 8,
                                 translate_const=image_size // 8, cutout_op=cutout_op,
                                 contrast_mode=contrast_mode, seed=randaug_seed)
            # The extra cutout of the small-image recipe: up to (S/2) x (S/2), grey.
            image = randaugment.cutout(image, image_size // 4, randaugment.FILL_VALUE, seed=cutout_seed)
            image = tf.cast(image, tf.float32)
        image = small_image_crop(image, crop_seed)
        if flip:
            image = random_flip(image, flip_seed)
        return tf.ensure_shape(image, [image_size, image_size, 3])

    image = random_crop(image, image_size, crop_seed)
    image = random_flip(image, flip_seed)
    image = tf.reshape(tf.cast(image, tf.float32), [image_size, image_size, 3])
    if augment_name:
        image = _randaugment(image, randaug_layer, randaug_mag, cutout_const=randaugment.DEFAULT_CUTOUT_CONST,
                             translate_const=randaugment.DEFAULT_TRANSLATE_CONST, cutout_op=cutout_op,
                             contrast_mode=contrast_mode, seed=randaug_seed)
        image = tf.cast(image, tf.float32)
    return image


def preprocess_for_eval(image, image_size: int, *, small_image_model: bool):
    """The clean view used by eval, the teacher and prediction (upstream `preprocessing.py`, `_preprocess_for_eval`)."""
    if small_image_model:
        return tf.cast(_check_small_image(image, image_size), tf.float32)
    return tf.reshape(center_crop(image, image_size), [image_size, image_size, 3])


def preprocess_image(image, *, is_training: bool, image_size: int, small_image_model: bool,
                     augment_name=None, randaug_layer: int = 2, randaug_mag: float = 27,
                     cutout_op: bool = True, flip: bool = True, contrast_mode: str = "pil", seed=None):
    """Upstream preprocess_image: JPEG bytes (a string tensor) or a decoded uint8 image in, float32 out.

    `is_training=False` gives the clean view; callers pass `is_training and not remove_aug` as upstream did.
    """
    image = tf.convert_to_tensor(image)
    if image.dtype == tf.string:
        image = decode_image(image)
    if is_training:
        return preprocess_for_train(image, image_size, small_image_model=small_image_model,
                                    augment_name=augment_name, randaug_layer=randaug_layer,
                                    randaug_mag=randaug_mag, cutout_op=cutout_op, flip=flip,
                                    contrast_mode=contrast_mode, seed=seed)
    return preprocess_for_eval(image, image_size, small_image_model=small_image_model)
