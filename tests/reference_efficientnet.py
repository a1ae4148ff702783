"""Test oracle: upstream variable names and shapes written by hand from upstream `efficientnet_builder.py`
(`efficientnet`, `efficientnet_params`) and the variable scopes of `efficientnet_model.py` (`MBConvBlock`, `Model`).

Independent of the package: it uses columns worked out by hand (stem/head channels, repeats, output channels
per stage) as data instead of the rounding rules, and lists names in upstream's order.
"""

import math

# Upstream `efficientnet_builder.py`, `efficientnet`: per-stage kernel size and expand ratio (same for every model).
KERNELS = (3, 3, 5, 3, 5, 5, 3)
EXPANDS = (1, 6, 6, 6, 6, 6, 6)

# From upstream `efficientnet_builder.py`, `efficientnet_params`: name -> (stem ch, head ch, total blocks, repeats
# per stage, out ch per stage).
SPEC_TABLE = {
    "efficientnet-b0": (32, 1280, 16, (1, 2, 2, 3, 3, 4, 1), (16, 24, 40, 80, 112, 192, 320)),
    "efficientnet-b1": (32, 1280, 23, (2, 3, 3, 4, 4, 5, 2), (16, 24, 40, 80, 112, 192, 320)),
    "efficientnet-b2": (32, 1408, 23, (2, 3, 3, 4, 4, 5, 2), (16, 24, 48, 88, 120, 208, 352)),
    "efficientnet-b3": (40, 1536, 26, (2, 3, 3, 5, 5, 6, 2), (24, 32, 48, 96, 136, 232, 384)),
    "efficientnet-b4": (48, 1792, 32, (2, 4, 4, 6, 6, 8, 2), (24, 32, 56, 112, 160, 272, 448)),
    "efficientnet-b5": (48, 2048, 39, (3, 5, 5, 7, 7, 9, 3), (24, 40, 64, 128, 176, 304, 512)),
    "efficientnet-b6": (56, 2304, 45, (3, 6, 6, 8, 8, 11, 3), (32, 40, 72, 144, 200, 344, 576)),
    "efficientnet-b7": (64, 2560, 55, (4, 7, 7, 10, 10, 13, 4), (32, 48, 80, 160, 224, 384, 640)),
    "efficientnet-l2": (136, 5504, 88, (6, 11, 11, 16, 16, 22, 6), (72, 104, 176, 344, 480, 824, 1376)),
}

BN_LEAVES = ("gamma", "beta", "moving_mean", "moving_variance")


def _bn(scope, channels):
    return [(f"{scope}/{leaf}", [channels]) for leaf in BN_LEAVES]


def reference_variables(model_name, num_classes):
    """[(name relative to the model scope, shape)] in upstream's creation order."""
    stem, head, total, repeats, outs = SPEC_TABLE[model_name]
    assert sum(repeats) == total
    variables = [("stem/conv2d/kernel", [3, 3, 3, stem])] + _bn("stem/tpu_batch_normalization", stem)
    index, channels = 0, stem
    for stage in range(7):
        for repeat in range(repeats[stage]):
            fi, fo, e, k = channels, outs[stage], EXPANDS[stage], KERNELS[stage]
            fe, se = fi * e, max(1, int(fi * 0.25))
            s = f"blocks_{index}"
            if e != 1:
                variables += [(f"{s}/conv2d/kernel", [1, 1, fi, fe])]
                variables += _bn(f"{s}/tpu_batch_normalization", fe)
                dw_bn, proj, proj_bn = "tpu_batch_normalization_1", "conv2d_1", "tpu_batch_normalization_2"
            else:
                dw_bn, proj, proj_bn = "tpu_batch_normalization", "conv2d", "tpu_batch_normalization_1"
            variables += [(f"{s}/depthwise_conv2d/depthwise_kernel", [k, k, fe, 1])]
            variables += _bn(f"{s}/{dw_bn}", fe)
            variables += [(f"{s}/se/conv2d/kernel", [1, 1, fe, se]), (f"{s}/se/conv2d/bias", [se]),
                          (f"{s}/se/conv2d_1/kernel", [1, 1, se, fe]), (f"{s}/se/conv2d_1/bias", [fe])]
            variables += [(f"{s}/{proj}/kernel", [1, 1, fe, fo])]
            variables += _bn(f"{s}/{proj_bn}", fo)
            index, channels = index + 1, fo
    variables += [("head/conv2d/kernel", [1, 1, channels, head])] + _bn("head/tpu_batch_normalization", head)
    variables += [("head/dense/kernel", [head, num_classes]), ("head/dense/bias", [num_classes])]
    return variables


def reference_param_count(model_name, num_classes):
    return sum(math.prod(shape) for _, shape in reference_variables(model_name, num_classes))


def reference_trainable_count(model_name, num_classes):
    return sum(math.prod(shape) for name, shape in reference_variables(model_name, num_classes)
               if not name.endswith(("moving_mean", "moving_variance")))


def keras_application_scopes(app):
    """{keras.applications EfficientNet layer name: upstream variable scope} for layers with weights.

    Keras names blocks by stage and letter ('block2a_expand_conv'); upstream counts them ('blocks_1/conv2d').
    """
    names = [layer.name for layer in app.layers]
    prefixes = []
    for name in names:
        prefix = name.split("_", 1)[0]
        if prefix.startswith("block") and prefix not in prefixes:
            prefixes.append(prefix)
    fixed = {"stem_conv": "stem/conv2d", "stem_bn": "stem/tpu_batch_normalization",
             "top_conv": "head/conv2d", "top_bn": "head/tpu_batch_normalization", "predictions": "head/dense"}
    scopes = {}
    for layer in app.layers:
        if not layer.weights or layer.name.startswith("normalization"):
            continue
        if layer.name in fixed:
            scopes[layer.name] = fixed[layer.name]
            continue
        prefix, part = layer.name.split("_", 1)
        expands = f"{prefix}_expand_conv" in names
        upstream = {
            "expand_conv": "conv2d",
            "expand_bn": "tpu_batch_normalization",
            "dwconv": "depthwise_conv2d",
            "bn": "tpu_batch_normalization_1" if expands else "tpu_batch_normalization",
            "se_reduce": "se/conv2d",
            "se_expand": "se/conv2d_1",
            "project_conv": "conv2d_1" if expands else "conv2d",
            "project_bn": "tpu_batch_normalization_2" if expands else "tpu_batch_normalization_1",
        }[part]
        scopes[layer.name] = f"blocks_{prefixes.index(prefix)}/{upstream}"
    return scopes
