"""Pseudo labels for images held in memory: the teacher's probabilities (upstream `predict_label.py`,
`run_prediction`) and filter_unlabel's choice of which images the student sees how often (upstream
`filter_unlabel.py`, `get_threshold` and `get_keep_image_idx`), without shards or files.

    probabilities = pseudo_label(teacher, unlabeled_images)
    copies = select_pseudo_labels(probabilities, num_image=500)
    keep = indices_from_copies(copies)
    student_images, student_targets = unlabeled_images[keep], probabilities[keep]

The selection calls the arithmetic the filter job runs (`offline.filtering`), so on the same predictions, shard
split and seed it keeps the same images the same number of times as `filter_unlabel.py` does.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from noisy_student_tf.config import FILTER_SEED
from noisy_student_tf.errors import UserError
from noisy_student_tf.models.inference import clean_logits
from noisy_student_tf.offline import filtering


def _as_batches(images, batch_size: int):
    """Batches of images [b, H, W, 3] as tensors, in order; checks the shape before any work."""
    if isinstance(images, tf.data.Dataset):
        spec = images.element_spec
        if not isinstance(spec, tf.TensorSpec) or spec.shape.rank != 3 or spec.shape[-1] not in (3, None):
            raise ValueError(f"pseudo_label: `images` must be a dataset of single images [H, W, 3] (unbatched, "
                             f"no labels), got elements {spec}")
        if not (spec.dtype.is_integer or spec.dtype.is_floating):
            raise TypeError(f"pseudo_label: `images` must hold numbers 0..255, got dtype {spec.dtype.name}")
        return iter(images.batch(batch_size).prefetch(tf.data.AUTOTUNE))
    array = np.asarray(images)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"pseudo_label: `images` must be [N, H, W, 3] (RGB, 0..255), got shape {array.shape}")
    if array.dtype.kind not in "uif":
        raise TypeError(f"pseudo_label: `images` must hold numbers 0..255, got dtype {array.dtype}")
    return (tf.convert_to_tensor(array[i:i + batch_size]) for i in range(0, len(array), batch_size))


def pseudo_label(teacher, images, *, batch_size: int = 64, mean=None, std=None) -> np.ndarray:
    """The teacher's class probabilities for unlabeled images (upstream `predict_label.py`, `run_prediction`).

    The teacher runs in inference mode (`training=False`) and its float32 logits go through a softmax, as the
    predict job does (`offline.label_shards.Classifier`). Images are used as given: unlike the predict job, nothing
    decodes, crops or resizes them, so they must already have the teacher's input size.

    Args:
        teacher: a Keras model (or callable taking `training=`) from images [b, H, W, 3] to logits [b, C]; a
            trained `NoisyStudent` labels with its averaged weights and its own `mean`/`std`.
        images: numpy array [N, H, W, 3], or a `tf.data.Dataset` of single images [H, W, 3], values 0..255.
        batch_size: images per forward pass.
        mean: per-channel mean in 0..255 units; with `std`, images become (x - mean) / std before the teacher
            (`models.inference.normalize`, upstream `main.py`, `model_fn`). Without them images are passed as
            float32 0..255, as `keras.applications` models expect (they carry their own preprocessing).
        std: per-channel standard deviation in 0..255 units, given together with `mean`.

    Returns:
        float32 numpy array [N, C]: each image's class probabilities.
    """
    if not callable(teacher):
        raise TypeError(f"pseudo_label: `teacher` must be a Keras model, got {type(teacher).__name__}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"pseudo_label: `batch_size` must be a positive integer, got {batch_size!r}")
    if (mean is None) != (std is None):
        raise ValueError("pseudo_label: give both `mean` and `std` (per channel, 0..255 units) or neither")
    if mean is not None:
        for name, value in (("mean", mean), ("std", std)):
            if np.shape(value) not in ((), (1,), (3,)):
                raise ValueError(f"pseudo_label: `{name}` must be one number or one per channel (3), got shape "
                                 f"{np.shape(value)}")
        if not np.all(np.asarray(std, np.float64) > 0):
            raise ValueError(f"pseudo_label: `std` must be positive, got {std}")

    @tf.function(reduce_retracing=True)
    def probabilities(batch):
        if hasattr(teacher, "inference_logits"):
            logits = teacher.inference_logits(batch)  # a NoisyStudent: averaged weights, its own normalisation
        elif mean is None:
            logits = teacher(tf.cast(batch, tf.float32), training=False)
        else:
            logits = clean_logits(teacher, batch, mean, std)
        if not tf.is_tensor(logits) or logits.shape.rank != 2:
            shape = logits.shape if tf.is_tensor(logits) else type(logits).__name__
            raise ValueError(f"pseudo_label: the teacher's output must be logits [batch, classes], got {shape}")
        return tf.nn.softmax(tf.cast(logits, tf.float32))

    results, seen = [], 0
    for batch in _as_batches(images, int(batch_size)):
        rows = probabilities(batch).numpy()
        if len(rows) != len(batch) or (results and rows.shape[1] != results[0].shape[1]):
            raise ValueError(f"pseudo_label: the teacher's output must be logits [batch, classes]: {len(batch)} "
                             f"images gave output of shape {rows.shape}")
        # A stable softmax of finite logits is finite: anything else comes from NaN or infinite logits.
        bad = np.nonzero(~np.isfinite(rows).all(axis=1))[0]
        if len(bad):
            raise ValueError(f"pseudo_label: the teacher's logits for image {seen + bad[0]} are NaN or infinite")
        results.append(rows)
        seen += len(rows)
    if not results:
        raise ValueError("pseudo_label: `images` holds no images")
    return np.concatenate(results)


def select_pseudo_labels(probabilities, *, num_image: int, min_threshold: float = 0.0, max_prob: float = 2.0,
                         use_top: bool = True, use_all: bool = False, upsample: bool = True, seed: int = FILTER_SEED,
                         shard_sizes=None) -> np.ndarray:
    """How many times each unlabeled image goes into the student's data: the balancing of upstream
    `filter_unlabel.py` (`get_threshold`, then `get_keep_image_idx` per shard), on predictions in memory.

    An image's pseudo label is its most probable class and its confidence that class's probability, both of the
    float32 probabilities, as the predict job stores them. Per class, a confidence threshold is chosen over all
    images so that about `num_image` images pass; images with `threshold <= confidence <= max_prob` are kept
    `num_image / passing` times on average (stochastic rounding), so every class ends up near `num_image`.
    Defaults are the flag defaults of `filter_unlabel.py` (`config.FilterConfig`), except that
    `num_image` is required: upstream's 1300 is ImageNet's images per class, a target only the caller knows.

    Args:
        probabilities: float array [N, C], one row of class probabilities per image (e.g. `pseudo_label`).
        num_image: target number of images per class (`--num_image`).
        min_threshold: lowest confidence threshold a class may get; on the 0.01 grid (`--min_threshold`).
        max_prob: images more confident than this are dropped (`--max_prob`; the default keeps all).
        use_top: a class's threshold is the highest one reaching `num_image` images; if False, always
            `min_threshold` (`--use_top`).
        use_all: keep every image above its threshold once, no balancing (`--use_all`).
        upsample: classes with fewer than `num_image` eligible images repeat them (`--upsample`); if False, an
            image is kept at most once.
        seed: the random draws' seed (`--seed`).
        shard_sizes: how many consecutive rows belong to each prediction shard, summing to N, to reproduce a
            run of `filter_unlabel.py` whose shards hold these rows in this order (one prediction worker,
            default `--task=-1`): the draws are made per shard. None: all rows are one shard.

    Returns:
        int64 numpy array [N]: copies of each image, 0 for images filtered out. `indices_from_copies` turns it
        into row indices.
    """
    probs = np.asarray(probabilities)
    if probs.ndim != 2 or probs.shape[1] == 0 or probs.dtype.kind != "f":
        raise ValueError(f"select_pseudo_labels: `probabilities` must be a float array [N, classes], got "
                         f"{probs.dtype} of shape {probs.shape}")
    # The predict job writes float32 probabilities; classes and confidences come from those values.
    probs = probs.astype(np.float32)
    bad = np.nonzero(~np.isfinite(probs).all(axis=1))[0]
    if len(bad):
        raise ValueError(f"select_pseudo_labels: `probabilities` row {bad[0]} has NaN or infinite values")
    bad = np.nonzero(((probs < 0) | (probs > 1)).any(axis=1))[0]
    if len(bad):
        raise ValueError(f"select_pseudo_labels: `probabilities` must lie in [0, 1]; row {bad[0]} is {probs[bad[0]]}")
    if not isinstance(num_image, (int, np.integer)) or num_image <= 0:
        raise ValueError(f"select_pseudo_labels: `num_image` must be a positive integer, got {num_image!r}")
    if max_prob <= min_threshold:
        raise ValueError(f"select_pseudo_labels: `max_prob`={max_prob} must be above `min_threshold`={min_threshold}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"select_pseudo_labels: `seed` must be a non-negative integer, got {seed!r}")
    total = len(probs)
    sizes = [total] if shard_sizes is None else list(shard_sizes)
    if not all(isinstance(n, (int, np.integer)) and n >= 0 for n in sizes) or sum(sizes) != total:
        raise ValueError(f"select_pseudo_labels: `shard_sizes` must be counts summing to the {total} rows of "
                         f"`probabilities`, got {shard_sizes!r} (sum {sum(sizes) if sizes else 0})")

    # As `shard_io.read_predictions` and `filter_shards.ShardPredictions.top_probs` see the predict job's files.
    classes = probs.argmax(axis=1)
    top_probs = probs[np.arange(total), classes]
    # filter_shards sums the shards' histograms: the histogram of all rows at once is the same integer counts.
    counts = filtering.histogram(classes, top_probs, probs.shape[1])
    try:
        selected = filtering.select_thresholds(counts, num_image=int(num_image), min_threshold=min_threshold,
                                               max_prob=max_prob, use_top=use_top, use_all=use_all)
    except UserError as e:
        raise ValueError(f"select_pseudo_labels: {e}") from None
    copies = np.zeros(total, np.int64)
    start = 0
    for shard, size in enumerate(sizes):
        rng, _ = filtering.shard_rngs(seed, shard, task=-1)  # the filter job's draws with its default --task
        part = slice(start, start + size)
        copies[part] = filtering.select_copies(classes[part], top_probs[part], selected, num_image=int(num_image),
                                               max_prob=max_prob, use_all=use_all, upsample=upsample, rng=rng)
        start += size
    return copies


def indices_from_copies(copies) -> np.ndarray:
    """Row indices of the student's unlabeled data: row i repeated `copies[i]` times, in row order.

    Args:
        copies: non-negative integers [N], e.g. from `select_pseudo_labels`.

    Returns:
        int64 numpy array [sum(copies)], for `images[indices]` and `probabilities[indices]`. Upstream writes the
        kept records shuffled; shuffle these (or the dataset made from them) before training.
    """
    copies = np.asarray(copies)
    if copies.ndim != 1 or copies.dtype.kind not in "iu" or (copies < 0).any():
        raise ValueError(f"indices_from_copies: `copies` must be non-negative integers [N], got {copies.dtype} of "
                         f"shape {copies.shape}")
    return np.repeat(np.arange(len(copies), dtype=np.int64), copies)
