"""The EfficientNet family exactly as the original Noisy Student code builds it.

One builder, `build_model`, turns a model name from `MODEL_TABLE` into a functional Keras model that maps a
*normalised* image batch (NHWC, float) to logits. Normalisation with the task's mean/std happens outside the
network, as it does upstream (`main.py`, `model_fn`'s `normalize_image`).

Layer names follow the upstream variable scopes so the TF1 checkpoint mapping is one small table
(`tf1_checkpoint.py`): block `N` of the network (counted over all blocks after repeats, like upstream's
`blocks_N`) owns the layers `blocks_N_expand_conv`, `blocks_N_expand_bn`, `blocks_N_depthwise_conv`,
`blocks_N_depthwise_bn`, `blocks_N_se_reduce`, `blocks_N_se_expand`, `blocks_N_project_conv`, `blocks_N_project_bn`
and `blocks_N_stochastic_depth`; the stem owns `stem_conv`/`stem_bn`; the head `head_conv`, `head_bn`,
`head_dropout` and `head_dense`.

Only built-in Keras layers are used, so a saved `.keras` file loads with plain `keras.saving.load_model(path)`
without importing this package. Stochastic depth (upstream utils.drop_connect) is a `layers.Dropout` with
`noise_shape=(batch, 1, 1, 1)` (whole examples dropped, survivors scaled by 1 / keep, as keras.applications
does); the head dropout is a plain `layers.Dropout`. `build_model` gives both a `ReplicaSeedGenerator` so
tf.distribute replicas draw different masks (not part of the saved config).
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys

import keras
import tensorflow as tf
from keras import layers

from noisy_student_tf.errors import UserError

# Upstream `efficientnet_builder.py`, `efficientnet_params`:
# name -> (width_coefficient, depth_coefficient, resolution, dropout_rate). There is no l0/l1 upstream.
MODEL_TABLE: dict[str, tuple[float, float, int, float]] = {
    "efficientnet-b0": (1.0, 1.0, 224, 0.2),
    "efficientnet-b1": (1.0, 1.1, 240, 0.2),
    "efficientnet-b2": (1.1, 1.2, 260, 0.3),
    "efficientnet-b3": (1.2, 1.4, 300, 0.3),
    "efficientnet-b4": (1.4, 1.8, 380, 0.4),
    "efficientnet-b5": (1.6, 2.2, 456, 0.4),
    "efficientnet-b6": (1.8, 2.6, 528, 0.5),
    "efficientnet-b7": (2.0, 3.1, 600, 0.5),
    "efficientnet-l2": (4.3, 5.3, 800, 0.5),
}

# Upstream `efficientnet_builder.py`, `efficientnet`: the B0 stages before scaling, in upstream's block-string notation
# (r=repeats, k=kernel, s=strides, e=expand ratio, i/o=in/out filters, se=squeeze-excite ratio).
BASE_BLOCK_STRINGS: tuple[str, ...] = (
    "r1_k3_s11_e1_i32_o16_se0.25",
    "r2_k3_s22_e6_i16_o24_se0.25",
    "r2_k5_s22_e6_i24_o40_se0.25",
    "r3_k3_s22_e6_i40_o80_se0.25",
    "r3_k5_s11_e6_i80_o112_se0.25",
    "r4_k5_s22_e6_i112_o192_se0.25",
    "r1_k3_s11_e6_i192_o320_se0.25",
)

# Upstream `efficientnet_builder.py`, `efficientnet`, with `small_image_model`: the 32x32 variant keeps full
# resolution through stages 2 and 3 (0-based stage indices 1 and 2).
SMALL_IMAGE_STRIDE_ONE_STAGES = (1, 2)

# Global parameters of upstream `efficientnet_builder.py`, `efficientnet`.
BATCH_NORM_MOMENTUM = 0.99
BATCH_NORM_EPSILON = 1e-3
DEPTH_DIVISOR = 8
DEFAULT_STOCHASTIC_DEPTH_RATE = 0.2
STEM_FILTERS = 32
HEAD_FILTERS = 1280
SMALL_IMAGE_SIZE = 32  # upstream `main.py`, `main`: svhn forces input_image_size=32 with small_image_model


@dataclasses.dataclass(frozen=True)
class BlockArgs:
    """One stage of MBConv blocks (upstream BlockArgs, conv_type 0, id_skip on)."""

    num_repeat: int
    kernel_size: int
    strides: tuple[int, int]
    expand_ratio: int
    input_filters: int
    output_filters: int
    se_ratio: float | None
    id_skip: bool = True


@dataclasses.dataclass(frozen=True)
class GlobalParams:
    """Network-wide settings (upstream GlobalParams, the fields that matter off-TPU)."""

    width_coefficient: float
    depth_coefficient: float
    resolution: int
    dropout_rate: float
    stochastic_depth_rate: float
    num_classes: int
    small_image_model: bool
    batch_norm_momentum: float = BATCH_NORM_MOMENTUM
    batch_norm_epsilon: float = BATCH_NORM_EPSILON
    depth_divisor: int = DEPTH_DIVISOR
    min_depth: int | None = None
    data_format: str = "channels_last"


def decode_block_string(block_string: str) -> BlockArgs:
    """Parses an upstream block string such as 'r1_k3_s11_e1_i32_o16_se0.25'."""
    options = {}
    for part in block_string.split("_"):
        match = re.fullmatch(r"([a-z]+)(\d.*)", part)
        if not match:
            raise ValueError(f"malformed block string {block_string!r}: cannot parse {part!r}")
        options[match.group(1)] = match.group(2)
    strides = options["s"]
    if len(strides) != 2:
        raise ValueError(f"malformed block string {block_string!r}: strides must be two digits")
    return BlockArgs(
        num_repeat=int(options["r"]),
        kernel_size=int(options["k"]),
        strides=(int(strides[0]), int(strides[1])),
        expand_ratio=int(options["e"]),
        input_filters=int(options["i"]),
        output_filters=int(options["o"]),
        se_ratio=float(options["se"]) if "se" in options else None,
        id_skip="noskip" not in block_string,
    )


def round_filters(filters: int, params: GlobalParams) -> int:
    """Upstream `efficientnet_model.py`, `round_filters`: scale by width, round to a multiple of 8, never lose > 10%."""
    if not params.width_coefficient:
        return filters
    divisor = params.depth_divisor
    min_depth = params.min_depth or divisor
    scaled = filters * params.width_coefficient
    new_filters = max(min_depth, int(scaled + divisor / 2) // divisor * divisor)
    if new_filters < 0.9 * scaled:
        new_filters += divisor
    return int(new_filters)


def round_repeats(repeats: int, params: GlobalParams) -> int:
    """Upstream `efficientnet_model.py`, `round_repeats`: ceil(depth_coefficient * repeats)."""
    if not params.depth_coefficient:
        return repeats
    return int(math.ceil(params.depth_coefficient * repeats))


def get_model_params(
    model_name: str,
    num_classes: int,
    *,
    small_image_model: bool = False,
    dropout_rate: float | None = None,
    stochastic_depth_rate: float | None = None,
    width_coefficient: float | None = None,
    depth_coefficient: float | None = None,
) -> tuple[GlobalParams, list[BlockArgs]]:
    """The global parameters and stage list for a model name, with upstream's flag overrides applied."""
    if model_name not in MODEL_TABLE:
        raise ValueError(
            f"unknown model_name {model_name!r}: choose one of {', '.join(MODEL_TABLE)}"
        )
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    width, depth, resolution, table_dropout = MODEL_TABLE[model_name]
    params = GlobalParams(
        width_coefficient=width if width_coefficient is None else float(width_coefficient),
        depth_coefficient=depth if depth_coefficient is None else float(depth_coefficient),
        resolution=resolution,
        dropout_rate=table_dropout if dropout_rate is None else float(dropout_rate),
        stochastic_depth_rate=(
            DEFAULT_STOCHASTIC_DEPTH_RATE if stochastic_depth_rate is None else float(stochastic_depth_rate)
        ),
        num_classes=num_classes,
        small_image_model=bool(small_image_model),
    )
    for flag, value in (("dropout_rate", params.dropout_rate),
                        ("stochastic_depth_rate", params.stochastic_depth_rate)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{flag} must be in [0, 1), got {value}")
    for flag, value in (("width_coefficient", params.width_coefficient),
                        ("depth_coefficient", params.depth_coefficient)):
        if value <= 0:
            raise ValueError(f"{flag} must be positive, got {value}")
    blocks = [decode_block_string(s) for s in BASE_BLOCK_STRINGS]
    if small_image_model:
        blocks = [
            dataclasses.replace(b, strides=(1, 1)) if i in SMALL_IMAGE_STRIDE_ONE_STAGES else b
            for i, b in enumerate(blocks)
        ]
    return params, blocks


def require_model_name(name: str, flag: str = "model_name") -> str:
    """`name` if `MODEL_TABLE` has it; otherwise a UserError naming `--<flag>` and the choices."""
    if name not in MODEL_TABLE:
        raise UserError(f"--{flag}={name!r} is not a model: choose one of {', '.join(MODEL_TABLE)}")
    return name


def default_image_size(model_name: str, small_image_model: bool = False) -> int:
    """Upstream's default input_image_size: 32 for the small-image variant, else the table resolution."""
    if small_image_model:
        return SMALL_IMAGE_SIZE
    if model_name not in MODEL_TABLE:
        raise ValueError(f"unknown model_name {model_name!r}: choose one of {', '.join(MODEL_TABLE)}")
    return MODEL_TABLE[model_name][2]


def conv_initializer(kernel_size: int, out_channels: int) -> keras.initializers.Initializer:
    """Upstream `efficientnet_model.py`, `conv_kernel_initializer`: normal(0, sqrt(2 / fan_out)) with
    fan_out = kh * kw * out_channels (no truncation)."""
    return keras.initializers.RandomNormal(stddev=math.sqrt(2.0 / (kernel_size * kernel_size * out_channels)))


def dense_initializer(num_classes: int) -> keras.initializers.Initializer:
    """Upstream `efficientnet_model.py`, `dense_kernel_initializer`: uniform(-1/sqrt(C), 1/sqrt(C)) with C the number
    of output units."""
    limit = 1.0 / math.sqrt(num_classes)
    return keras.initializers.RandomUniform(-limit, limit)


class ReplicaSeedGenerator(keras.random.SeedGenerator):
    """A Keras seed generator whose seeds are folded with the tf.distribute replica id.

    Under a tf.distribute strategy every replica reads the same seed-generator state; folding in the replica
    number gives each replica its own masks (the state still advances identically everywhere). Outside a
    strategy the seeds are those of a plain `SeedGenerator`.
    """

    def next(self, ordered=True):
        seed = super().next(ordered=ordered)
        context = tf.distribute.get_replica_context()
        if context is not None and tf.distribute.has_strategy():
            seed = tf.random.experimental.stateless_fold_in(
                tf.cast(seed, tf.int64), context.replica_id_in_sync_group)
            seed = tf.cast(seed, self.state.dtype)
        return seed


def _dropout(rate: float, name: str, noise_shape=None) -> layers.Dropout:
    """A built-in `layers.Dropout` (so a saved .keras file names only Keras classes) with per-replica masks.

    The layer's `seed_generator` is swapped for a `ReplicaSeedGenerator`. It is not part of the layer config,
    so a reloaded model gets a plain `SeedGenerator` (same distribution, replicas no longer decorrelated);
    its state variable (path `<layer name>_seed_generator/seed_generator_state`) is tracked by the layer like the
    original one, so `model.variables` still lists exactly one seed state per dropout layer. Named after its layer
    (not Keras' per-process counter), so a checkpoint's object graph is the same in every run.
    """
    layer = layers.Dropout(rate, noise_shape=noise_shape, name=name)
    old = layer.seed_generator
    new = ReplicaSeedGenerator(layer.seed, name=f"{name}_seed_generator")
    layer._tracker.replace_tracked_value("seed_generators", old, new)
    layer.seed_generator = new
    return layer


def _batch_norm(params: GlobalParams, name: str, synchronized: bool) -> layers.BatchNormalization:
    # Keras moments are biased like upstream's non-fused BN (`utils.py`, `TpuBatchNormalization`). Synchronized BN
    # computes the statistics over all replicas, i.e. over the same global batch as on one device.
    return layers.BatchNormalization(
        axis=-1, momentum=params.batch_norm_momentum, epsilon=params.batch_norm_epsilon, name=name,
        synchronized=synchronized,
    )


def _mbconv_block(x, block: BlockArgs, params: GlobalParams, index: int, drop_rate: float, sync_bn: bool):
    """One MBConv block (upstream `efficientnet_model.py`, `MBConvBlock`). `index` is the upstream blocks_N number."""
    prefix = f"blocks_{index}_"
    inputs = x
    filters = block.input_filters * block.expand_ratio
    if block.expand_ratio != 1:
        x = layers.Conv2D(filters, 1, padding="same", use_bias=False,
                          kernel_initializer=conv_initializer(1, filters), name=prefix + "expand_conv")(x)
        x = _batch_norm(params, prefix + "expand_bn", sync_bn)(x)
        x = layers.Activation("swish", name=prefix + "expand_swish")(x)

    k = block.kernel_size
    x = layers.DepthwiseConv2D(k, strides=block.strides, padding="same", use_bias=False,
                               depthwise_initializer=conv_initializer(k, 1), name=prefix + "depthwise_conv")(x)
    x = _batch_norm(params, prefix + "depthwise_bn", sync_bn)(x)
    x = layers.Activation("swish", name=prefix + "depthwise_swish")(x)

    if block.se_ratio is not None and 0 < block.se_ratio <= 1:
        # Upstream sizes the squeeze on the block's *input* filters, not the expanded ones (`MBConvBlock._build`).
        reduced = max(1, int(block.input_filters * block.se_ratio))
        se = layers.GlobalAveragePooling2D(keepdims=True, name=prefix + "se_squeeze")(x)
        se = layers.Conv2D(reduced, 1, padding="same", use_bias=True,
                           kernel_initializer=conv_initializer(1, reduced), name=prefix + "se_reduce")(se)
        se = layers.Activation("swish", name=prefix + "se_swish")(se)
        se = layers.Conv2D(filters, 1, padding="same", use_bias=True,
                           kernel_initializer=conv_initializer(1, filters), name=prefix + "se_expand")(se)
        se = layers.Activation("sigmoid", name=prefix + "se_sigmoid")(se)
        x = layers.Multiply(name=prefix + "se_excite")([x, se])

    x = layers.Conv2D(block.output_filters, 1, padding="same", use_bias=False,
                      kernel_initializer=conv_initializer(1, block.output_filters),
                      name=prefix + "project_conv")(x)
    x = _batch_norm(params, prefix + "project_bn", sync_bn)(x)

    if block.id_skip and block.strides == (1, 1) and block.input_filters == block.output_filters:
        if drop_rate > 0:
            # Upstream utils.drop_connect: keep = 1 - rate, mask = floor(keep + U[0, 1)) per example,
            # out = x / keep * mask. Dropout with noise_shape (batch, 1, 1, 1) drops the same whole examples
            # with the same probability and the same inverted scaling (keras.applications does the same).
            x = _dropout(drop_rate, prefix + "stochastic_depth", noise_shape=(None, 1, 1, 1))(x)
        x = layers.Add(name=prefix + "add")([x, inputs])
    return x


def expand_blocks(params: GlobalParams, stages: list[BlockArgs]) -> list[BlockArgs]:
    """All blocks after width/depth scaling and repeats, in network order (upstream's blocks_0..blocks_{n-1})."""
    blocks = []
    for stage in stages:
        stage = dataclasses.replace(
            stage,
            input_filters=round_filters(stage.input_filters, params),
            output_filters=round_filters(stage.output_filters, params),
            num_repeat=round_repeats(stage.num_repeat, params),
        )
        blocks.append(stage)
        # Repeats keep the output width and use stride 1.
        repeat = dataclasses.replace(stage, input_filters=stage.output_filters, strides=(1, 1))
        blocks.extend([repeat] * (stage.num_repeat - 1))
    return blocks


def build_model(
    model_name: str,
    num_classes: int,
    *,
    small_image_model: bool = False,
    dropout_rate: float | None = None,
    stochastic_depth_rate: float | None = None,
    width_coefficient: float | None = None,
    depth_coefficient: float | None = None,
    input_shape: tuple | None = None,
    name: str | None = None,
    synchronized_bn: bool = False,
) -> keras.Model:
    """Builds an upstream EfficientNet as a functional Keras model returning float32 logits.

    `input_shape` defaults to the table resolution (32x32 with `small_image_model`); use
    `(None, None, 3)` for a model that accepts any size. The input is the normalised image
    ((x - mean) / std, channels last). Dropout and stochastic depth act only with `training=True`.
    `name` defaults to the model name (the upstream variable scope). `synchronized_bn` computes BN batch
    statistics across the replicas of a tf.distribute strategy (needed for more than one replica).
    """
    params, stages = get_model_params(
        model_name, num_classes, small_image_model=small_image_model, dropout_rate=dropout_rate,
        stochastic_depth_rate=stochastic_depth_rate, width_coefficient=width_coefficient,
        depth_coefficient=depth_coefficient,
    )
    if input_shape is None:
        size = default_image_size(model_name, small_image_model)
        input_shape = (size, size, 3)
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"input_shape must be (height, width, 3) (channels last), got {input_shape}")

    inputs = keras.Input(shape=input_shape, name="image")
    stem_filters = round_filters(STEM_FILTERS, params)
    x = layers.Conv2D(stem_filters, 3, strides=2, padding="same", use_bias=False,
                      kernel_initializer=conv_initializer(3, stem_filters), name="stem_conv")(inputs)
    x = _batch_norm(params, "stem_bn", synchronized_bn)(x)
    x = layers.Activation("swish", name="stem_swish")(x)

    blocks = expand_blocks(params, stages)
    for index, block in enumerate(blocks):
        # Upstream `efficientnet_model.py`, `Model.call`: linear rule over all blocks, so block 0 never drops.
        drop_rate = params.stochastic_depth_rate * index / len(blocks)
        x = _mbconv_block(x, block, params, index, drop_rate, synchronized_bn)

    head_filters = round_filters(HEAD_FILTERS, params)
    x = layers.Conv2D(head_filters, 1, padding="same", use_bias=False,
                      kernel_initializer=conv_initializer(1, head_filters), name="head_conv")(x)
    x = _batch_norm(params, "head_bn", synchronized_bn)(x)
    x = layers.Activation("swish", name="head_swish")(x)
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    if params.dropout_rate > 0:
        # Upstream efficientnet_model.py, Model.call: tf.nn.dropout (inverted) before the classifier.
        x = _dropout(params.dropout_rate, "head_dropout")(x)
    x = layers.Dense(num_classes, kernel_initializer=dense_initializer(num_classes), name="head_dense")(x)
    # Logits stay float32 under a mixed-precision policy (as upstream `main.py`, `model_fn`).
    logits = layers.Activation("linear", dtype="float32", name="logits")(x)
    _allow_deep_graph_walks(len(blocks))
    return keras.Model(inputs, logits, name=name or model_name)


# Layers every network of build_model has, under these names (upstream's variable scopes).
_SIGNATURE_LAYERS = ("stem_conv", "stem_bn", "head_conv", "head_bn", "head_dense", "logits")


def is_package_efficientnet(model) -> bool:
    """Whether `model` was built by `build_model` (or is a clone or reload of one): it then takes normalised
    images and trains with upstream's optimizer and schedule by default.

    Args:
        model: any Keras model.

    Returns:
        True when the model has build_model's stem, blocks and head, by their layer names.
    """
    names = {layer.name for layer in getattr(model, "layers", [])}
    return all(name in names for name in _SIGNATURE_LAYERS) and any(n.startswith("blocks_0_") for n in names)


# Keras walks a functional graph recursively, one Python frame per layer. EfficientNet-L2 has 88 blocks of
# ~15 layers, deeper than Python's default limit of 1000 frames (some environments raise it at start-up, a
# fresh virtualenv does not). The limit stays raised so later walks (clone, serialise) also work.
_FRAMES_PER_BLOCK = 20
_FRAME_MARGIN = 1000


def _allow_deep_graph_walks(num_blocks: int) -> None:
    needed = num_blocks * _FRAMES_PER_BLOCK + _FRAME_MARGIN
    if sys.getrecursionlimit() < needed:
        sys.setrecursionlimit(needed)


def freeze_layers(model: keras.Model, fix_layer_num: int) -> None:
    """Upstream `--fix_layer_num` (`efficientnet_model.py`, `Model._build`): -1 trains everything; otherwise the
    stem and blocks 0 .. N-1 are frozen. The head always trains.

    Upstream (efficientnet_model.py, Model.call) calls each block with `training=training and
    idx >= FLAGS.fix_layer_num`, and MBConvBlock.call drops the residual branch (utils.drop_connect) only
    in training mode: a frozen block runs its BN in inference mode and never drops or rescales its residual
    branch. Here the frozen layers get `trainable=False` (Keras BN
    then uses its moving statistics) and each frozen block's stochastic-depth `Dropout` gets rate 0, so it is
    the identity in training too. Call this before the model is traced (compiled steps keep the old rate).
    """
    if fix_layer_num == -1:
        return
    for layer in model.layers:
        match = re.match(r"blocks_(\d+)_", layer.name)
        if layer.name.startswith("stem_") or (match and int(match.group(1)) < fix_layer_num):
            layer.trainable = False
            if isinstance(layer, layers.Dropout):
                # Upstream: training=training and idx >= FLAGS.fix_layer_num (no drop in frozen blocks).
                layer.rate = 0.0


def describe_model(model_name: str, num_classes: int, **overrides) -> str:
    """The text of model_params.txt, in upstream efficientnet_builder.build_model's layout.

    Args:
        model_name: A name from `MODEL_TABLE`.
        num_classes: Number of output classes.
        **overrides: The keyword overrides of `get_model_params` (dropout, stochastic depth, width, depth,
            small_image_model).

    Returns:
        `model_name= ...`, `global_params= ...` and `blocks_args= ...` (the stages), each followed by a blank
        line, as upstream writes them (the values are our dataclasses' reprs).
    """
    params, stages = get_model_params(model_name, num_classes, **overrides)
    return f"model_name= {model_name}\n\nglobal_params= {params}\n\nblocks_args= {stages}\n\n"
