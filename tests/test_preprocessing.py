"""Preprocessing paths of upstream `preprocessing.py`, `preprocess_image`, and `data_input.py`: crops, resizes,
flips, the small-image recipe, augment names."""

import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.data import preprocessing as pp
from noisy_student_tf.errors import UserError

RNG = np.random.RandomState(0)
PHOTO = RNG.randint(0, 256, (300, 400, 3)).astype(np.uint8)
SMALL = RNG.randint(0, 256, (32, 32, 3)).astype(np.uint8)


def legacy_bicubic(image, size):
    """TF1's resize_bicubic, the function upstream called (legacy sampling grid)."""
    return tf.compat.v1.image.resize_bicubic(image[None], [size, size], align_corners=False,
                                              half_pixel_centers=False)[0].numpy()


def test_eval_center_crop_is_s_over_s_plus_32_of_the_short_side():
    out = pp.preprocess_image(tf.io.encode_jpeg(PHOTO), is_training=False, image_size=224,
                              small_image_model=False)
    decoded = tf.io.decode_jpeg(tf.io.encode_jpeg(PHOTO)).numpy()
    side = int(224 / 256 * 300)  # 262
    top, left = (300 - side + 1) // 2, (400 - side + 1) // 2  # 19, 69
    expected = legacy_bicubic(decoded[top:top + side, left:left + side], 224)
    assert out.dtype == tf.float32 and out.shape == (224, 224, 3)
    np.testing.assert_allclose(out, expected, atol=1e-4)
    # The legacy grid is not TF2's default bicubic resize.
    modern = tf.image.resize(decoded[top:top + side, left:left + side], [224, 224], method="bicubic")
    assert np.abs(out - modern).max() > 1


def test_random_crop_falls_back_to_the_center_crop_when_sampling_fails():
    # 10 x 1000: a square-ish box covering >= 8% of the area cannot fit, so the sampler returns the whole image.
    strip = RNG.randint(0, 256, (10, 1000, 3)).astype(np.uint8)
    for i in range(5):
        np.testing.assert_allclose(pp.random_crop(strip, 64, seed=tf.constant([i, 0])),
                                   pp.center_crop(strip, 64), atol=1e-4)


def test_random_crop_boxes_follow_the_sampling_parameters():
    areas, ratios = [], []
    for i in range(300):
        begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
            PHOTO.shape, tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]), seed=[i, 1],
            min_object_covered=pp.CROP_MIN_OBJECT_COVERED, aspect_ratio_range=pp.CROP_ASPECT_RATIO_RANGE,
            area_range=pp.CROP_AREA_RANGE, max_attempts=pp.CROP_MAX_ATTEMPTS, use_image_if_no_bounding_boxes=True)
        h, w = int(size[0]), int(size[1])
        areas.append(h * w / (300 * 400))
        ratios.append(w / h)
        out = pp.random_crop(PHOTO, 96, seed=tf.constant([i, 1]))
        assert out.shape == (96, 96, 3)
    assert min(areas) >= 0.08 - 0.01 and max(areas) <= 1.0
    assert 0.75 - 0.02 <= min(ratios) and max(ratios) <= 4 / 3 + 0.02
    assert np.std(areas) > 0.1  # genuinely random crops


def test_training_view_is_reproducible_from_a_seed():
    kwargs = dict(is_training=True, image_size=128, small_image_model=False, augment_name="v1", randaug_mag=15)
    a = pp.preprocess_image(PHOTO, seed=tf.constant([3, 4]), **kwargs)
    b = pp.preprocess_image(PHOTO, seed=tf.constant([3, 4]), **kwargs)
    c = pp.preprocess_image(PHOTO, seed=tf.constant([3, 5]), **kwargs)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == tf.float32 and a.shape == (128, 128, 3)
    assert np.array_equal(a, np.floor(a))  # RandAugment output is whole grey levels, cast back to float


def is_reflect_crop(out, image):
    padded = np.pad(image, [(4, 4), (4, 4), (0, 0)], mode="reflect")
    return any(np.array_equal(out, padded[y:y + 32, x:x + 32]) for y in range(9) for x in range(9))


def test_small_image_training_is_reflect_pad_crop_and_flip_unless_svhn():
    flipped = 0
    for i in range(40):
        svhn = pp.preprocess_image(SMALL, is_training=True, image_size=32, small_image_model=True,
                                   flip=False, seed=tf.constant([i, 9])).numpy()
        assert is_reflect_crop(svhn, SMALL)  # never flipped for SVHN
        other = pp.preprocess_image(SMALL, is_training=True, image_size=32, small_image_model=True,
                                    flip=True, seed=tf.constant([i, 9])).numpy()
        flipped += not is_reflect_crop(other, SMALL)
        assert is_reflect_crop(other, SMALL) or is_reflect_crop(other[:, ::-1], SMALL)
    assert 8 <= flipped <= 32  # about half of 40


def test_small_image_recipe_adds_a_grey_cutout_of_up_to_16_pixels():
    constant = np.full((32, 32, 3), 7, np.uint8)
    grey_counts = []
    for i in range(60):
        # No RandAugment layers: what changes the image is the extra cutout (pad S // 4 = 8), then the crop.
        out = pp.preprocess_for_train(constant, 32, small_image_model=True, augment_name="v1", randaug_layer=0,
                                      flip=False, seed=tf.constant([i, 2])).numpy()
        assert set(np.unique(out)) <= {7.0, 128.0}
        grey_counts.append(int((out[:, :, 0] == 128).sum()))
    assert max(grey_counts) >= 16 * 16 - 1  # a whole 16 x 16 square appears
    assert max(grey_counts) <= (16 + 4) * (16 + 4)  # reflection can repeat a border strip of at most 4


def test_eval_views():
    np.testing.assert_array_equal(pp.preprocess_image(SMALL, is_training=False, image_size=32,
                                                      small_image_model=True), SMALL.astype(np.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="small_image_model expects 32x32 images"):
        pp.preprocess_image(PHOTO, is_training=False, image_size=32, small_image_model=True)


def test_augment_names():
    assert pp.check_augment_name("v1") == "v1"
    assert pp.check_augment_name("") is None and pp.check_augment_name(None) is None
    with pytest.raises(UserError, match="unknown augment_name 'v2'"):
        pp.check_augment_name("v2")
    with pytest.raises(UserError, match="unknown augment_name 'autoaugment'"):
        pp.preprocess_image(SMALL, is_training=True, image_size=32, small_image_model=True,
                            augment_name="autoaugment")
    # Upstream `data_input.py`, `unl_dst_parser`: unl_aug 'default' follows augment_name; anything else
    # replaces it for unlabeled images.
    assert pp.unlabeled_augment_name("v1", "default") == "v1"
    assert pp.unlabeled_augment_name(None, "v1") == "v1"
    assert pp.unlabeled_augment_name("v1", "") is None
    with pytest.raises(UserError, match="unknown unl_aug 'strong'"):
        pp.unlabeled_augment_name("v1", "strong")


def test_preprocessing_runs_inside_tf_data_with_per_example_seeds():
    images = tf.data.Dataset.from_tensors(tf.io.encode_jpeg(PHOTO)).repeat(6)

    def train_view(index, image_bytes):
        seed = tf.stack([tf.constant(123, tf.int64), index])
        return pp.preprocess_image(image_bytes, is_training=True, image_size=64, small_image_model=False,
                                   augment_name="v1", randaug_mag=27, seed=seed)

    def run():
        ds = images.enumerate().map(train_view, num_parallel_calls=tf.data.AUTOTUNE).batch(6)
        return next(iter(ds)).numpy()

    first, second = run(), run()
    np.testing.assert_array_equal(first, second)  # parallel map, same seeds, same images
    assert len({first[i].tobytes() for i in range(6)}) == 6  # every example gets its own draw
