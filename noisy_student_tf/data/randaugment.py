"""RandAugment exactly as the original Noisy Student code applies it (upstream `randaugment.py`,
`distort_image_with_randaugment`), in core TF ops.

The public names mirror the original `randaugment.py`, so ported code changes one import:
`NAME_TO_FUNC` maps each upstream op name to a function of a uint8 HWC image and the op's already-computed
parameter, and `distort_image_with_randaugment` applies the whole policy. Everything works inside `tf.data`
(graph mode). Pass `seed` (an int32/int64 tensor of shape [2]) for reproducible draws; without it the ops use
TF's stateful random generator, as upstream did.

Deliberate choices (see MIGRATION.md):
* Magnitudes above 10 give Solarize thresholds above 255 and Posterize bit counts above 8. Upstream's TF1 code
  converted those Python ints to uint8 (wrapping modulo 256) and TF's shift kernels clamp shift amounts to
  [0, 7]; we reproduce exactly that, because it is what every upstream recipe with M > 10 trained with.
* Contrast: upstream's degenerate image is the grey level `H*W/256` (the pixel count divided by 256, a bug);
  the default here is PIL's mean grey level (`contrast_mode='pil'`), `contrast_mode='upstream'` keeps the bug.
"""

from __future__ import annotations

import math

import tensorflow as tf

# Upstream constants (randaugment.py / preprocessing.py).
MAX_LEVEL = 10.0  # magnitudes are fractions of this level; M > 10 extrapolates
FILL_VALUE = 128  # grey fill for geometric ops and Cutout (upstream replace_value = [128] * 3)
DEFAULT_CUTOUT_CONST = 40
DEFAULT_TRANSLATE_CONST = 100
# The op list in upstream's order; 'Cutout' is appended when cutout_op is on.
AVAILABLE_OPS = (
    "AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "Color", "Contrast",
    "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateX", "TranslateY", "SolarizeAdd",
)
CUTOUT_OP = "Cutout"
# Ops whose parameter gets a random sign (upstream _randomly_negate_tensor).
SIGNED_OPS = frozenset({"Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"})
CONTRAST_MODES = ("pil", "upstream")


# ----------------------------------------------------------------------------------------------------------
# Randomness: stateless (per-example seed) when a seed is given, TF's stateful generator otherwise.

def split_seed(seed, num: int):
    """`num` independent seeds derived from `seed` (or `num` Nones)."""
    if seed is None:
        return [None] * num
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=num)
    return [seeds[i] for i in range(num)]


def _uniform(shape, seed, minval=0.0, maxval=1.0, dtype=tf.float32):
    if seed is None:
        return tf.random.uniform(shape, minval=minval, maxval=maxval, dtype=dtype)
    return tf.random.stateless_uniform(shape, seed=seed, minval=minval, maxval=maxval, dtype=dtype)


def _random_sign(seed):
    """+1 or -1 with probability 1/2 each, drawn as upstream did: floor(U + 0.5)."""
    keep = tf.floor(_uniform([], seed) + 0.5)
    return 2.0 * keep - 1.0


# ----------------------------------------------------------------------------------------------------------
# Input checks.

def check_image(image) -> tf.Tensor:
    """Returns `image` as a tensor after checking it is a uint8 [height, width, 3] image."""
    image = tf.convert_to_tensor(image)
    if image.dtype != tf.uint8:
        raise ValueError(f"RandAugment ops take uint8 images, got dtype {image.dtype.name}; "
                         "clip to [0, 255] and cast to uint8 first")
    if image.shape.rank is not None and image.shape.rank != 3:
        raise ValueError(f"RandAugment ops take one [height, width, 3] image, got shape {image.shape}")
    if image.shape.rank == 3 and image.shape[-1] is not None and image.shape[-1] != 3:
        raise ValueError(f"RandAugment ops take RGB images with 3 channels, got shape {image.shape}")
    return image


def _uniform_fill(replace) -> float:
    """The single grey level of `replace` (a number, or a list of equal numbers as upstream passes)."""
    values = [replace] if isinstance(replace, (int, float)) else list(replace)
    if not values or any(v != values[0] for v in values):
        raise ValueError(f"replace must be one value or equal values per channel, got {replace!r}")
    return float(values[0])


# ----------------------------------------------------------------------------------------------------------
# Colour ops (PIL's definitions, as in upstream `randaugment.py`).

def blend(image1, image2, factor):
    """image1 + factor * (image2 - image1) in float32, clipped to [0, 255] and truncated to uint8.

    factor 0 gives image1 and factor 1 gives image2 exactly; inside (0, 1) the value stays in range, so the
    clip only matters when extrapolating (factor > 1), as in upstream's three-branch version.
    """
    image1 = tf.cast(image1, tf.float32)
    image2 = tf.cast(image2, tf.float32)
    blended = image1 + tf.cast(factor, tf.float32) * (image2 - image1)
    return tf.cast(tf.clip_by_value(blended, 0.0, 255.0), tf.uint8)


def grey_image(image):
    """RGB image of the grey levels from TF's rgb_to_grayscale on uint8 (weights 0.2989, 0.5870, 0.1140),
    which upstream used for Color (Pillow's convert('L') rounds slightly differently)."""
    return tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(image))


def mean_grey_image(image):
    """Constant image at the rounded mean grey level: Pillow's degenerate image for Contrast."""
    mean = tf.reduce_mean(tf.cast(tf.image.rgb_to_grayscale(image), tf.float32))
    return tf.fill(tf.shape(image), tf.cast(tf.floor(mean + 0.5), tf.uint8))


def smoothed_image(image):
    """Pillow's SMOOTH filter ([[1,1,1],[1,5,1],[1,1,1]] / 13) inside, original pixels on the border;
    truncated to uint8 as upstream did."""
    kernel = tf.constant([[1, 1, 1], [1, 5, 1], [1, 1, 1]], tf.float32) / 13.0
    kernel = tf.tile(tf.reshape(kernel, [3, 3, 1, 1]), [1, 1, 3, 1])
    smooth = tf.nn.depthwise_conv2d(tf.cast(image, tf.float32)[None], kernel, [1, 1, 1, 1], "VALID")[0]
    smooth = tf.cast(tf.clip_by_value(smooth, 0.0, 255.0), tf.uint8)
    inner = tf.pad(tf.ones_like(smooth, tf.bool), [[1, 1], [1, 1], [0, 0]])
    return tf.where(inner, tf.pad(smooth, [[1, 1], [1, 1], [0, 0]]), image)


def autocontrast(image):
    """Per channel, stretch [min, max] to [0, 255] (truncating); constant channels stay as they are."""
    image = check_image(image)
    lo = tf.cast(tf.reduce_min(image, axis=[0, 1]), tf.float32)
    hi = tf.cast(tf.reduce_max(image, axis=[0, 1]), tf.float32)
    scale = 255.0 / tf.where(hi > lo, hi - lo, 1.0)
    stretched = tf.clip_by_value(tf.cast(image, tf.float32) * scale - lo * scale, 0.0, 255.0)
    return tf.where(hi > lo, tf.cast(stretched, tf.uint8), image)


def equalize(image):
    """PIL's ImageOps.equalize per channel."""
    image = check_image(image)

    def equalize_channel(channel):
        channel = tf.cast(channel, tf.int32)
        histogram = tf.math.bincount(tf.reshape(channel, [-1]), minlength=256, maxlength=256)
        nonzero = tf.boolean_mask(histogram, histogram > 0)
        step = (tf.reduce_sum(nonzero) - nonzero[-1]) // 255

        def lookup():
            lut = (tf.cumsum(histogram) + step // 2) // tf.maximum(step, 1)
            lut = tf.clip_by_value(tf.concat([[0], lut[:-1]], 0), 0, 255)
            return tf.gather(lut, channel)

        return tf.cast(tf.cond(step > 0, lookup, lambda: channel), tf.uint8)

    return tf.stack([equalize_channel(image[:, :, c]) for c in range(3)], axis=2)


def invert(image):
    image = check_image(image)
    return 255 - image


def _wrap_to_uint8(value):
    """Upstream passed Python ints to uint8 ops (`randaugment.py`, `solarize` and `posterize`); TF1 converted them
    modulo 256."""
    if isinstance(value, int):
        return tf.constant(value % 256, tf.uint8)
    return tf.cast(tf.math.floormod(tf.cast(value, tf.int32), 256), tf.uint8)


def posterize(image, bits):
    """Keep the top `bits` bits. Shift 8 - bits wraps to uint8 and TF clamps shifts to [0, 7]
    (upstream `randaugment.py`, `posterize`)."""
    image = check_image(image)
    shift = _wrap_to_uint8(8 - bits)
    return tf.bitwise.left_shift(tf.bitwise.right_shift(image, shift), shift)


def solarize(image, threshold=128):
    """Invert pixels at or above `threshold` (wrapped modulo 256 like upstream `randaugment.py`, `solarize`)."""
    image = check_image(image)
    return tf.where(image < _wrap_to_uint8(threshold), image, 255 - image)


def solarize_add(image, addition=0, threshold=128):
    """Add `addition` (clipped to [0, 255]) to the pixels below `threshold`."""
    image = check_image(image)
    added = tf.clip_by_value(tf.cast(image, tf.int64) + tf.cast(addition, tf.int64), 0, 255)
    return tf.where(image < threshold, tf.cast(added, tf.uint8), image)


def color(image, factor):
    """PIL's ImageEnhance.Color: blend with the grey version of the image."""
    image = check_image(image)
    return blend(grey_image(image), image, factor)


def contrast(image, factor):
    """PIL's ImageEnhance.Contrast: blend with a constant image at the rounded mean grey level."""
    image = check_image(image)
    return blend(mean_grey_image(image), image, factor)


def contrast_upstream(image, factor):
    """Upstream's Contrast (`randaugment.py`, `contrast`), bug included: the grey level is the pixel count / 256,
    clipped."""
    image = check_image(image)
    pixels = tf.cast(tf.shape(image)[0] * tf.shape(image)[1], tf.float32)
    level = tf.cast(tf.clip_by_value(pixels / 256.0, 0.0, 255.0), tf.uint8)
    return blend(tf.fill(tf.shape(image), level), image, factor)


def brightness(image, factor):
    """PIL's ImageEnhance.Brightness: blend with black."""
    image = check_image(image)
    return blend(tf.zeros_like(image), image, factor)


def sharpness(image, factor):
    """PIL's ImageEnhance.Sharpness: blend with the SMOOTH-filtered image."""
    image = check_image(image)
    return blend(smoothed_image(image), image, factor)


# ----------------------------------------------------------------------------------------------------------
# Geometric ops: output pixel (x, y) takes the input pixel nearest to transform(x, y), with pixel centres at
# integer coordinates; pixels that fall outside the image get the fill value.

def _transform(image, transform, replace):
    """Applies an 8-parameter projective transform (TF convention) with nearest sampling."""
    image = check_image(image)
    transform = tf.reshape(tf.cast(tf.stack(transform), tf.float32), [1, 8])
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform, output_shape=tf.shape(image)[:2],
        fill_value=_uniform_fill(replace), interpolation="NEAREST", fill_mode="CONSTANT")
    return tf.ensure_shape(out[0], image.shape)


def rotate(image, degrees, replace):
    """Rotate counter-clockwise by `degrees` about the image centre ((W-1)/2, (H-1)/2)."""
    image = check_image(image)
    radians = tf.cast(degrees, tf.float32) * (math.pi / 180.0)
    height = tf.cast(tf.shape(image)[0], tf.float32)
    width = tf.cast(tf.shape(image)[1], tf.float32)
    cos, sin = tf.cos(radians), tf.sin(radians)
    x_offset = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2.0
    y_offset = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2.0
    return _transform(image, [cos, -sin, x_offset, sin, cos, y_offset, 0.0, 0.0], replace)


def translate_x(image, pixels, replace):
    """Output (x, y) samples input (x + pixels, y): positive `pixels` move the content left."""
    return _transform(image, [1.0, 0.0, pixels, 0.0, 1.0, 0.0, 0.0, 0.0], replace)


def translate_y(image, pixels, replace):
    """Output (x, y) samples input (x, y + pixels): positive `pixels` move the content up."""
    return _transform(image, [1.0, 0.0, 0.0, 0.0, 1.0, pixels, 0.0, 0.0], replace)


def shear_x(image, level, replace):
    """Output (x, y) samples input (x + level * y, y)."""
    return _transform(image, [1.0, level, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0], replace)


def shear_y(image, level, replace):
    """Output (x, y) samples input (x, level * x + y)."""
    return _transform(image, [1.0, 0.0, 0.0, level, 1.0, 0.0, 0.0, 0.0], replace)


def cutout_at(image, center_y, center_x, pad_size, replace=0):
    """Fill rows [cy - pad, cy + pad) x columns [cx - pad, cx + pad) (clipped to the image) with `replace`."""
    image = check_image(image)
    rows = tf.range(tf.shape(image)[0])
    cols = tf.range(tf.shape(image)[1])
    in_rows = (rows >= center_y - pad_size) & (rows < center_y + pad_size)
    in_cols = (cols >= center_x - pad_size) & (cols < center_x + pad_size)
    mask = (in_rows[:, None] & in_cols[None, :])[:, :, None]
    return tf.where(mask, tf.cast(_uniform_fill(replace), tf.uint8), image)


def cutout(image, pad_size, replace=0, seed=None):
    """Cutout with a centre drawn uniformly over the image (upstream randaugment.cutout)."""
    image = check_image(image)
    seed_y, seed_x = split_seed(seed, 2)
    center_y = _uniform([], seed_y, 0, tf.shape(image)[0], tf.int32)
    center_x = _uniform([], seed_x, 0, tf.shape(image)[1], tf.int32)
    return cutout_at(image, center_y, center_x, tf.cast(pad_size, tf.int32), replace)


NAME_TO_FUNC = {
    "AutoContrast": autocontrast,
    "Equalize": equalize,
    "Invert": invert,
    "Rotate": rotate,
    "Posterize": posterize,
    "Solarize": solarize,
    "SolarizeAdd": solarize_add,
    "Color": color,
    "Contrast": contrast,
    "Brightness": brightness,
    "Sharpness": sharpness,
    "ShearX": shear_x,
    "ShearY": shear_y,
    "TranslateX": translate_x,
    "TranslateY": translate_y,
    "Cutout": cutout,
}


# ----------------------------------------------------------------------------------------------------------
# Magnitude -> parameter (upstream level_to_arg), before the random sign.

def magnitude_to_params(magnitude, cutout_const=DEFAULT_CUTOUT_CONST,
                        translate_const=DEFAULT_TRANSLATE_CONST) -> dict:
    """Each op's parameter at magnitude M (upstream `randaugment.py`, `level_to_arg`); signed ops get their sign
    later."""
    level = float(magnitude) / MAX_LEVEL
    enhance = level * 1.8 + 0.1
    return {
        "AutoContrast": None, "Equalize": None, "Invert": None,
        "Rotate": level * 30.0,
        "Posterize": int(level * 4),
        "Solarize": int(level * 256),
        "SolarizeAdd": int(level * 110),
        "Color": enhance, "Contrast": enhance, "Brightness": enhance, "Sharpness": enhance,
        "ShearX": level * 0.3, "ShearY": level * 0.3,
        "TranslateX": level * float(translate_const), "TranslateY": level * float(translate_const),
        "Cutout": int(level * cutout_const),
    }


def available_ops(cutout_op: bool = True) -> tuple[str, ...]:
    return AVAILABLE_OPS + ((CUTOUT_OP,) if cutout_op else ())


def apply_op(image, name, param, *, sign=1.0, replace=FILL_VALUE, seed=None, contrast_mode="pil"):
    """One RandAugment op with its (unsigned) parameter; `sign` multiplies the parameter of signed ops."""
    if name in SIGNED_OPS:
        return NAME_TO_FUNC[name](image, sign * param, replace)
    if name == CUTOUT_OP:
        return cutout(image, param, replace, seed=seed)
    if name == "Contrast":
        return (contrast if contrast_mode == "pil" else contrast_upstream)(image, param)
    if param is None:
        return NAME_TO_FUNC[name](image)
    return NAME_TO_FUNC[name](image, param)


def choose_ops(num_layers: int, num_ops: int, seed=None):
    """The op index and parameter sign of each layer: (index [N] int32, sign [N] float32), plus op seeds."""
    indices, signs, op_seeds = [], [], []
    for layer_seed in split_seed(seed, num_layers):
        index_seed, sign_seed, op_seed = split_seed(layer_seed, 3)
        indices.append(_uniform([], index_seed, 0, num_ops, tf.int32))
        signs.append(_random_sign(sign_seed))
        op_seeds.append(op_seed)
    return indices, signs, op_seeds


def distort_image_with_randaugment(image, num_layers, magnitude, *, cutout_const=DEFAULT_CUTOUT_CONST,
                                   translate_const=DEFAULT_TRANSLATE_CONST, seed=None, cutout_op=True,
                                   contrast_mode="pil"):
    """Applies `num_layers` ops, each drawn uniformly from the op list and always applied (upstream `randaugment.py`,
    `distort_image_with_randaugment`).

    Every op uses the constant magnitude `magnitude`; signed ops flip the sign with probability 1/2.
    """
    image = check_image(image)
    if contrast_mode not in CONTRAST_MODES:
        raise ValueError(f"contrast_mode must be one of {CONTRAST_MODES}, got {contrast_mode!r}")
    if int(num_layers) < 0:
        raise ValueError(f"num_layers (randaug_layer) must be >= 0, got {num_layers}")
    names = available_ops(cutout_op)
    params = magnitude_to_params(magnitude, cutout_const, translate_const)
    static_shape = image.shape
    indices, signs, op_seeds = choose_ops(int(num_layers), len(names), seed)
    for index, sign, op_seed in zip(indices, signs, op_seeds):
        def branch(name, current=image, sign=sign, op_seed=op_seed):
            return lambda: apply_op(current, name, params[name], sign=sign, seed=op_seed,
                                    contrast_mode=contrast_mode)
        image = tf.switch_case(index, [branch(name) for name in names])
        image = tf.ensure_shape(image, static_shape)
    return image
