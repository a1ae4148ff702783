"""RandAugment ops against Pillow and independent references; the magnitude table; the policy's statistics."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageEnhance, ImageFilter, ImageOps, ImageStat
from scipy import stats
from sklearn.datasets import load_sample_images

from noisy_student_tf.data import randaugment as ra


def natural_images():
    """The two photographs shipped with scikit-learn, downscaled (no download)."""
    return [np.asarray(Image.fromarray(img).resize((160, 107), Image.BILINEAR)) for img in load_sample_images().images]


def make_images():
    rng = np.random.RandomState(0)
    noise = rng.randint(0, 256, (48, 64, 3)).astype(np.uint8)
    low_contrast = rng.randint(90, 140, (40, 40, 3)).astype(np.uint8)
    return [noise, low_contrast] + natural_images()


IMAGES = make_images()


def assert_close_to_pil(ours, pil, exact=False):
    """Equal, or (where grey conversion / filter rounding differs) within 1 level on >= 99% of pixels."""
    ours, pil = np.asarray(ours).astype(int), np.asarray(pil).astype(int)
    assert ours.shape == pil.shape
    if exact:
        np.testing.assert_array_equal(ours, pil)
    else:
        within_one = (np.abs(ours - pil) <= 1).mean()
        assert within_one >= 0.99, f"only {within_one:.4f} of pixels within 1 level"


@pytest.mark.parametrize("index", range(len(IMAGES)))
def test_parameterless_ops_match_pillow(index):
    image = IMAGES[index]
    pil = Image.fromarray(image)
    # Upstream scales in float32 and Pillow in double: the truncated result may differ by 1 at a boundary.
    assert_close_to_pil(ra.autocontrast(image), ImageOps.autocontrast(pil))
    assert_close_to_pil(ra.equalize(image), ImageOps.equalize(pil), exact=True)
    assert_close_to_pil(ra.invert(image), ImageOps.invert(pil), exact=True)


@pytest.mark.parametrize("index", range(len(IMAGES)))
def test_posterize_and_solarize_match_pillow_exactly(index):
    image = IMAGES[index]
    pil = Image.fromarray(image)
    for bits in range(1, 9):
        assert_close_to_pil(ra.posterize(image, bits), ImageOps.posterize(pil, bits), exact=True)
    for threshold in (0, 1, 51, 128, 179, 255):
        assert_close_to_pil(ra.solarize(image, threshold), ImageOps.solarize(pil, threshold), exact=True)


ENHANCERS = {"Color": (ra.color, ImageEnhance.Color), "Contrast": (ra.contrast, ImageEnhance.Contrast),
             "Brightness": (ra.brightness, ImageEnhance.Brightness),
             "Sharpness": (ra.sharpness, ImageEnhance.Sharpness)}


@pytest.mark.parametrize("name", list(ENHANCERS))
@pytest.mark.parametrize("factor", [0.0, 0.1, 0.5, 1.0, 1.18])
def test_enhance_ops_match_pillow(name, factor):
    ours_fn, pil_cls = ENHANCERS[name]
    for image in IMAGES:
        expected = pil_cls(Image.fromarray(image)).enhance(factor)
        # Brightness blends with black: no grey conversion or filter rounding, so it is exact.
        assert_close_to_pil(ours_fn(image, factor), expected, exact=name == "Brightness")


def pil_degenerate(name, pil):
    """The image Pillow's ImageEnhance blends with (its ImageEnhance sources, written out)."""
    if name == "Color":
        return pil.convert("L").convert("RGB")
    if name == "Contrast":
        mean = int(ImageStat.Stat(pil.convert("L")).mean[0] + 0.5)
        return Image.new("L", pil.size, mean).convert("RGB")
    if name == "Sharpness":
        return pil.filter(ImageFilter.SMOOTH)
    return Image.new("RGB", pil.size, 0)


OUR_DEGENERATE = {"Color": ra.grey_image, "Contrast": ra.mean_grey_image, "Sharpness": ra.smoothed_image,
                  "Brightness": tf.zeros_like}


@pytest.mark.parametrize("name", list(ENHANCERS))
def test_enhance_ops_blend_like_pillow_at_every_factor(name):
    """At extrapolating factors a 1-level rounding difference of the grey/smoothed image is amplified by
    (factor - 1), so the two parts are checked separately: the degenerate image against Pillow's within
    rounding, and the blend exactly against Image.blend on Pillow's own degenerate image."""
    for image in IMAGES:
        pil = Image.fromarray(image)
        degenerate = pil_degenerate(name, pil)
        assert_close_to_pil(OUR_DEGENERATE[name](image), degenerate, exact=name in ("Brightness", "Contrast"))
        for factor in (0.0, 0.5, 1.0, 1.18, 2.26, 2.8, 4.96):
            expected = Image.blend(degenerate, pil, factor)
            assert_close_to_pil(ra.blend(np.asarray(degenerate), image, factor), expected, exact=True)


def test_solarize_add_matches_its_definition():
    image = IMAGES[0]
    for addition in (0, 55, 110, 297):
        expected = np.where(image < 128, np.clip(image.astype(int) + addition, 0, 255), image)
        np.testing.assert_array_equal(ra.solarize_add(image, addition), expected)


def assert_equal_except_ties(ours, reference, matrix):
    """Exactly equal wherever the source coordinate is not a rounding tie (x.5).

    Nearest sampling rounds the source coordinate; at an exact .5 TF (float32, half away from zero) and Pillow
    (double, floor of x + 0.5) may pick different neighbours, so those pixels are left out.
    """
    ours, reference = np.asarray(ours), np.asarray(reference)
    h, w = ours.shape[:2]
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    a, b, c, d, e, f = matrix
    src_x, src_y = a * x + b * y + c, d * x + e * y + f
    ties = (np.abs(np.abs(src_x % 1) - 0.5) < 1e-3) | (np.abs(np.abs(src_y % 1) - 0.5) < 1e-3)
    assert ties.mean() < 0.06
    np.testing.assert_array_equal(ours[~ties], reference[~ties])


def pil_affine(image, a, b, c, d, e, f):
    """Pillow's AFFINE transform for a TF-convention matrix (pixel centres at integers).

    Pillow puts pixel centres at +0.5, so the same mapping needs c' = c + 0.5 - (a + b) / 2 (and alike for f).
    """
    data = (a, b, c + 0.5 - 0.5 * (a + b), d, e, f + 0.5 - 0.5 * (d + e))
    return Image.fromarray(image).transform(image.shape[1::-1], Image.AFFINE, data, resample=Image.NEAREST,
                                            fillcolor=(128, 128, 128))


@pytest.mark.parametrize("level", [0.15, -0.36, 0.81])
def test_shear_matches_pillow(level):
    for image in IMAGES:
        for matrix, op in [((1, level, 0, 0, 1, 0), ra.shear_x), ((1, 0, 0, level, 1, 0), ra.shear_y)]:
            assert_equal_except_ties(op(image, level, 128), pil_affine(image, *matrix), matrix)


@pytest.mark.parametrize("pixels", [2.0, -10.0, 10.8, -4.8, 50.0])
def test_translate_matches_pillow(pixels):
    for image in IMAGES:
        for matrix, op in [((1, 0, pixels, 0, 1, 0), ra.translate_x), ((1, 0, 0, 0, 1, pixels), ra.translate_y)]:
            assert_equal_except_ties(op(image, pixels, 128), pil_affine(image, *matrix), matrix)


@pytest.mark.parametrize("degrees", [15.0, -18.0, 45.0, -81.0])
def test_rotate_matches_pillow_counter_clockwise(degrees):
    for image in IMAGES:
        expected = Image.fromarray(image).rotate(degrees, resample=Image.NEAREST, fillcolor=(128, 128, 128))
        # Source of output (x, y): rotation by -degrees about ((W-1)/2, (H-1)/2), only to find the ties.
        h, w = image.shape[:2]
        t = np.deg2rad(degrees)
        cx, cy = (w - 1) / 2, (h - 1) / 2
        matrix = (np.cos(t), -np.sin(t), cx - np.cos(t) * cx + np.sin(t) * cy,
                  np.sin(t), np.cos(t), cy - np.sin(t) * cx - np.cos(t) * cy)
        assert_equal_except_ties(ra.rotate(image, degrees, [128] * 3), expected, matrix)


def test_cutout_fills_the_clipped_square():
    image = IMAGES[0]
    for cy, cx, pad in [(10, 20, 4), (0, 0, 8), (47, 63, 5), (20, 30, 0)]:
        expected = image.copy()
        expected[max(0, cy - pad):min(48, cy + pad), max(0, cx - pad):min(64, cx + pad)] = 128
        np.testing.assert_array_equal(ra.cutout_at(image, cy, cx, pad, 128), expected)


def test_cutout_centre_is_uniform_over_the_image():
    image = np.zeros((8, 8, 3), np.uint8)
    centres = []
    for i in range(2000):
        out = np.asarray(ra.cutout(image, 1, 255, seed=tf.constant([i, 7])))[:, :, 0]
        ys, xs = np.nonzero(out)
        # pad 1 fills rows [cy - 1, cy + 1) and columns [cx - 1, cx + 1): the centre is the last filled pixel.
        assert len(ys) == (1 + (ys.max() > 0)) * (1 + (xs.max() > 0))
        centres.append(ys.max() * 8 + xs.max())
    counts = np.bincount(centres, minlength=64)
    assert stats.chisquare(counts).pvalue > 1e-3


# Worked out by hand from upstream `randaugment.py`, `level_to_arg`: M -> Rotate, Posterize bits, Solarize threshold,
# SolarizeAdd, enhance factor, shear, translate (const 100, const 4), cutout pad (const 40, const 4).
MAGNITUDE_TABLE = [
    (5, 15, 2, 128, 55, 1.0, 0.15, 50, 2.0, 20, 2),
    (6, 18, 2, 153, 66, 1.18, 0.18, 60, 2.4, 24, 2),
    (12, 36, 4, 307, 132, 2.26, 0.36, 120, 4.8, 48, 4),
    (15, 45, 6, 384, 165, 2.8, 0.45, 150, 6.0, 60, 6),
    (18, 54, 7, 460, 198, 3.34, 0.54, 180, 7.2, 72, 7),
    (24, 72, 9, 614, 264, 4.42, 0.72, 240, 9.6, 96, 9),
    (27, 81, 10, 691, 297, 4.96, 0.81, 270, 10.8, 108, 10),
]


@pytest.mark.parametrize("row", MAGNITUDE_TABLE, ids=lambda r: f"M{r[0]}")
def test_magnitude_table(row):
    m, rotate, bits, threshold, addition, factor, shear, t100, t4, c40, c4 = row
    big, small = ra.magnitude_to_params(m, 40, 100), ra.magnitude_to_params(m, 4, 4)
    assert big["Rotate"] == pytest.approx(rotate)
    assert (big["Posterize"], big["Solarize"], big["SolarizeAdd"]) == (bits, threshold, addition)
    for name in ("Color", "Contrast", "Brightness", "Sharpness"):
        assert big[name] == pytest.approx(factor)
    assert big["ShearX"] == big["ShearY"] == pytest.approx(shear)
    assert big["TranslateX"] == big["TranslateY"] == pytest.approx(t100)
    assert small["TranslateX"] == pytest.approx(t4)
    assert (big["Cutout"], small["Cutout"]) == (c40, c4)


def test_enhance_ops_are_exact_identities_at_magnitude_5():
    params = ra.magnitude_to_params(5)
    assert params["Color"] == 1.0  # exactly, so the SVHN recipe never changes colour/contrast/...
    for name in ("Color", "Contrast", "Brightness", "Sharpness"):
        for image in IMAGES:
            np.testing.assert_array_equal(ra.apply_op(image, name, params[name]), image)


def test_out_of_range_magnitudes_reproduce_upstream_uint8_arithmetic():
    image = IMAGES[2]
    pil = Image.fromarray(image)
    # Solarize thresholds wrap modulo 256 (TF1 converted the Python int to uint8).
    assert_close_to_pil(ra.solarize(image, 691), ImageOps.solarize(pil, 691 % 256), exact=True)
    np.testing.assert_array_equal(ra.solarize(image, 256), 255 - image)  # M = 10: full inversion
    # Posterize: shift 8 - bits wraps to uint8 and TF clamps shifts to 7, i.e. only the top bit survives.
    for bits in (9, 10, 0):
        assert_close_to_pil(ra.posterize(image, bits), ImageOps.posterize(pil, 1), exact=True)
    np.testing.assert_array_equal(ra.posterize(image, 8), image)


def test_upstream_contrast_blends_towards_pixel_count_over_256():
    large = np.random.RandomState(1).randint(0, 256, (300, 300, 3)).astype(np.uint8)
    for image, level in [(IMAGES[1], 6), (IMAGES[2], 66), (large, 255)]:  # 1600/256, 17120/256, 90000/256
        degenerate = np.full(image.shape, level, np.float32)
        expected = np.clip(degenerate + np.float32(1.18) * (image - degenerate), 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(ra.contrast_upstream(image, 1.18), expected)
        np.testing.assert_array_equal(ra.apply_op(image, "Contrast", 1.18, contrast_mode="upstream"), expected)


def test_name_to_func_covers_the_upstream_op_names():
    assert set(ra.NAME_TO_FUNC) == set(ra.AVAILABLE_OPS) | {"Cutout"}
    assert ra.available_ops(cutout_op=False) == ra.AVAILABLE_OPS and len(ra.AVAILABLE_OPS) == 15


def draws(num, num_layers=2, num_ops=16):
    """Op indices and signs for `num` seeds, computed in graph mode inside tf.data."""
    def one(i):
        indices, signs, _ = ra.choose_ops(num_layers, num_ops, tf.stack([tf.constant(11, tf.int64), i]))
        return tf.stack(indices), tf.stack(signs)
    dataset = tf.data.Dataset.range(num).map(one).batch(num)
    indices, signs = next(iter(dataset))
    return indices.numpy(), signs.numpy()


def test_ops_are_drawn_uniformly_and_signs_are_fair():
    indices, signs = draws(8000)
    for layer in range(2):
        counts = np.bincount(indices[:, layer], minlength=16)
        assert len(counts) == 16
        assert stats.chisquare(counts).pvalue > 1e-3
        assert stats.binomtest(int((signs[:, layer] > 0).sum()), len(signs)).pvalue > 1e-3
    assert set(np.unique(signs)) == {-1.0, 1.0}
    # The two layers draw independently.
    table = np.histogram2d(indices[:, 0], indices[:, 1], bins=16)[0]
    assert stats.chi2_contingency(table).pvalue > 1e-3


def test_each_layer_applies_the_drawn_op_with_its_sign():
    image = IMAGES[0]
    names = ra.available_ops()
    params = ra.magnitude_to_params(27, 40, 100)
    for i in range(40):
        seed = tf.constant([5, i], tf.int64)
        (index,), (sign,), (op_seed,) = ra.choose_ops(1, len(names), seed)
        expected = ra.apply_op(image, names[int(index)], params[names[int(index)]], sign=sign, seed=op_seed)
        got = ra.distort_image_with_randaugment(image, 1, 27, seed=seed)
        np.testing.assert_array_equal(got, expected)


def test_seeded_policy_is_reproducible_and_seeds_matter():
    image = IMAGES[3]
    a = ra.distort_image_with_randaugment(image, 2, 15, seed=tf.constant([1, 2]))
    b = ra.distort_image_with_randaugment(image, 2, 15, seed=tf.constant([1, 2]))
    np.testing.assert_array_equal(a, b)
    outputs = {ra.distort_image_with_randaugment(image, 2, 15, seed=tf.constant([1, i])).numpy().tobytes()
               for i in range(10)}
    assert len(outputs) > 5


def test_bad_images_are_clear_errors():
    with pytest.raises(ValueError, match="uint8 images, got dtype float32"):
        ra.distort_image_with_randaugment(np.zeros((8, 8, 3), np.float32), 2, 5)
    with pytest.raises(ValueError, match=r"one \[height, width, 3\] image"):
        ra.equalize(np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="3 channels"):
        ra.invert(np.zeros((8, 8, 4), np.uint8))
    with pytest.raises(ValueError, match="contrast_mode"):
        ra.distort_image_with_randaugment(IMAGES[0], 2, 5, contrast_mode="fancy")
