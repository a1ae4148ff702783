"""tf.data input functions (upstream `data_input.py`, `TFExampleInput`): the training stream (labeled +
unlabeled) and eval batches.

Training streams are infinite and their order is a function of the seed alone: files and records are shuffled
with seeded shuffles and interleaved deterministically, and every example's augmentation seed is
(seed, stream, position in the stream). Resuming at step `s` therefore means skipping `s * batch` serialized
records (cheap: nothing is decoded) and gives exactly the examples an uninterrupted run would have seen.

Labeled data comes from TFRecord shards (`train*`, 1-based labels) or, with `tfds:<name>`, from a TFDS data set
prepared locally (splits train / validation / test).
"""

from __future__ import annotations

import tensorflow as tf

from noisy_student_tf.config import AugmentConfig, InputConfig, ModelConfig
from noisy_student_tf.data import preprocessing, records
from noisy_student_tf.errors import UnreachableStorage, UserError

TFDS_PREFIX = "tfds:"
READ_BUFFER_BYTES = 8 * 1024 * 1024  # upstream: 8 MiB read buffer per file
MAX_INTERLEAVE = 64  # upstream cycle length
CACHED_SHUFFLE_BUFFER = 16384  # upstream shuffle buffer with use_cache
UNCACHED_SHUFFLE_BUFFER = 1024  # upstream shuffle buffer without cache
TFDS_SPLITS = {"train": "train", "dev": "validation", "test": "test", "validation": "validation"}
# The input functions branch on Python values only, so autograph has nothing to convert; converting them anyway
# (RandAugment's ops below them, and the traced training loop) added seconds to the start of every training job
# (bench/README.md has the paired runs).
no_autograph = tf.autograph.experimental.do_not_convert
LABELED_STREAM, UNLABELED_STREAM = 0, 1


def stream_seed(seed: int, stream: int, pipeline_id: int) -> int:
    """A distinct, fixed integer per (run seed, stream, input pipeline)."""
    return (int(seed) * 1_000_003 + stream * 1_009 + pipeline_id) % (2 ** 62)


def _record_stream(files, *, use_cache: bool, seed: int) -> tf.data.Dataset:
    """Serialized records of `files`, shuffled and repeated forever, in an order fixed by `seed`."""
    dataset = tf.data.Dataset.from_tensor_slices(files)
    read = no_autograph(lambda f: tf.data.TFRecordDataset(f, buffer_size=READ_BUFFER_BYTES))
    cycle = min(MAX_INTERLEAVE, len(files))
    if use_cache:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=False)
        dataset = dataset.interleave(read, cycle_length=cycle, num_parallel_calls=tf.data.AUTOTUNE,
                                     deterministic=True)
        return dataset.cache().shuffle(CACHED_SHUFFLE_BUFFER, seed=seed + 1).repeat()
    dataset = dataset.shuffle(len(files), seed=seed).repeat()
    dataset = dataset.interleave(read, cycle_length=cycle, num_parallel_calls=tf.data.AUTOTUNE,
                                 deterministic=True)
    return dataset.shuffle(UNCACHED_SHUFFLE_BUFFER, seed=seed + 1)


def _tfds_split(name: str, subset: str):
    import tensorflow_datasets as tfds

    split = TFDS_SPLITS.get(subset, subset)
    try:
        return tfds.load(name, split=split, shuffle_files=False, download=False)
    except Exception as e:  # TFDS raises several types for "not prepared" / "unknown split"
        raise UserError(f"cannot read split {split!r} of TFDS data set {name!r} (prepare it locally first, "
                        f"e.g. with `tfds build {name}`): {e}") from None


def _check_label(label, num_classes: int, what: str):
    message = f"{what} outside 0..{num_classes - 1} (check --num_label_classes; TFRecord labels are 1-based)"
    tf.debugging.assert_greater_equal(label, 0, message=message)
    tf.debugging.assert_less(label, num_classes, message=message)
    return label


def _parse_labeled(record, num_classes: int):
    parsed = tf.io.parse_single_example(record, records.LABELED_FEATURES)
    label = tf.cast(parsed["image/class/label"], tf.int32) - 1  # 1-based on disk, as upstream proc_svhn.py writes them
    return parsed["image/encoded"], _check_label(label, num_classes, "labeled record: image/class/label - 1")


def labeled_source(data_dir: str, subset: str, *, num_classes: int, training: bool, use_cache: bool = True,
                   num_train_shards=None, seed: int = 0, pipeline_id: int = 0, num_pipelines: int = 1):
    """(raw dataset, parse function raw -> (image bytes or uint8 image, 0-based label))."""
    if data_dir.startswith(TFDS_PREFIX):
        dataset = _tfds_split(data_dir[len(TFDS_PREFIX):], subset)
        if num_pipelines > 1:
            dataset = dataset.shard(num_pipelines, pipeline_id)
        if training:
            if use_cache:
                dataset = dataset.cache()
            dataset = dataset.shuffle(CACHED_SHUFFLE_BUFFER, seed=seed + 1).repeat()

        def parse_tfds(example):
            label = _check_label(tf.cast(example["label"], tf.int32), num_classes, "TFDS label")
            return example["image"], label

        return dataset, parse_tfds

    files = records.find_files(data_dir, [subset], flag="--label_data_dir")
    if training and num_train_shards:
        files = files[:num_train_shards]
    if num_pipelines > 1:
        if len(files) < num_pipelines:
            raise UserError(f"--label_data_dir: {len(files)} {subset} files cannot be split over "
                            f"{num_pipelines} input pipelines; write more shards")
        files = files[pipeline_id::num_pipelines]
    if training:
        dataset = _record_stream(files, use_cache=use_cache, seed=seed)
    else:
        dataset = tf.data.TFRecordDataset(files, buffer_size=READ_BUFFER_BYTES)
    return dataset, lambda record: _parse_labeled(record, num_classes)


def _unlabeled_source(inputs: InputConfig, seed: int, pipeline_id: int, num_pipelines: int):
    # Upstream `data_input.py` reads both train* (filtered output) and extra* (raw unlabeled shards).
    files = records.find_files(inputs.unlabel_data_dir, ["train", "extra"], flag="--unlabel_data_dir")
    if num_pipelines > 1:
        if len(files) < num_pipelines:
            raise UserError(f"--unlabel_data_dir: {len(files)} files cannot be split over {num_pipelines} "
                            "input pipelines; write more shards")
        files = files[pipeline_id::num_pipelines]
    return _record_stream(files, use_cache=inputs.use_cache, seed=seed)


def train_view(augment: AugmentConfig, image, augment_name, seed, *, image_size: int, small_image_model: bool):
    """The student's noised view of one image (`augment_name`: the labeled or the unlabeled one)."""
    return preprocessing.preprocess_image(
        image, is_training=not augment.remove_aug, image_size=image_size, small_image_model=small_image_model,
        augment_name=augment_name, randaug_layer=augment.randaug_layer, randaug_mag=augment.randaug_mag,
        cutout_op=augment.cutout_op, flip=augment.flip, contrast_mode=augment.contrast_mode, seed=seed)


def train_dataset(inputs: InputConfig, augment: AugmentConfig, model: ModelConfig, *, seed: int,
                  teacher_image_size: int | None = None, stored_predictions: bool = False, num_replicas: int = 1,
                  input_context: tf.distribute.InputContext | None = None, start_step: int = 0):
    """Per-replica training batches (upstream `data_input.py`), starting at `start_step` of the stream.

    Args:
        inputs: the data and batch sizes (global, over all replicas).
        augment: the noise of the training views.
        model: the network the images are for (its image size and small-image path).
        seed: the run's seed; the order and every augmentation are a function of it.
        teacher_image_size: an online teacher's input size: unlabeled images also get its clean view.
        stored_predictions: the targets come from the unlabeled records, which must hold predictions.
        num_replicas, input_context: tf.distribute's replicas and this input pipeline.
        start_step: skip the batches of the steps before it.

    Returns:
        A dataset of {"labeled": {"image" [b, S, S, 3] float32 0..255, "label" [b] int32}} and, with unlabeled
        data, "unlabeled": {"image" [u, S, S, 3], "label" [u] (the stored teacher labels), "probs" [u, C],
        and for an online teacher "teacher_image" [u, S_t, S_t, 3]}; b and u are the per-replica batch sizes.
    """
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    num_pipelines = input_context.num_input_pipelines if input_context else 1
    for name, size in (("train_batch_size", inputs.train_batch_size),
                       ("unlabeled batch ceil(B*p*r)", inputs.unlabeled_batch_size)):
        if size % num_replicas:
            raise UserError(f"{name} = {size} must divide evenly over {num_replicas} replicas")
    replicas_per_pipeline = num_replicas // num_pipelines
    lab_batch = inputs.train_batch_size // num_replicas
    unl_batch = inputs.unlabeled_batch_size // num_replicas

    lab_seed = stream_seed(seed, LABELED_STREAM, pipeline_id)
    size = dict(image_size=model.image_size, small_image_model=model.small_image_model)
    raw, parse = labeled_source(inputs.label_data_dir, "train", num_classes=model.num_classes, training=True,
                                use_cache=inputs.use_cache, num_train_shards=inputs.num_train_shards, seed=lab_seed,
                                pipeline_id=pipeline_id, num_pipelines=num_pipelines)

    def labeled_example(index, record):
        image, label = parse(record)
        view = train_view(augment, image, augment.augment_name, tf.stack([lab_seed, index]), **size)
        return {"image": view, "label": label}

    start = start_step * replicas_per_pipeline
    unlabeled = unlabeled_example = None
    if inputs.unlabel_ratio:
        unl_seed = stream_seed(seed, UNLABELED_STREAM, pipeline_id)
        features = records.unlabeled_features(model.num_classes)

        def unlabeled_example(index, record):
            parsed = tf.io.parse_single_example(record, features)
            if stored_predictions:
                # proc_svhn's raw `extra` shards carry dummy predictions (all zero, prob 0).
                tf.debugging.assert_greater(
                    parsed["prob"], 0.0,
                    message="--unlabel_data_dir: unlabeled record without teacher predictions (prob = 0, as in "
                            "raw extra shards). Train from predicted/filtered shards, or use an online teacher "
                            "(--teacher_model_name and --teacher_model_path)")
            image = preprocessing.decode_image(parsed["image/encoded"])
            view = train_view(augment, image, augment.unl_augment_name, tf.stack([unl_seed, index]), **size)
            out = {"image": view,
                   "label": tf.cast(parsed["label"], tf.int32), "probs": parsed["probabilities"]}
            if teacher_image_size:
                out["teacher_image"] = preprocessing.preprocess_image(
                    image, is_training=False, image_size=teacher_image_size,
                    small_image_model=model.small_image_model)
            return out

        unlabeled = _unlabeled_source(inputs, unl_seed, pipeline_id, num_pipelines)
    # Sharding is done above, per file and input pipeline (upstream's per-host sharding).
    return assemble_batches(raw, labeled_example, lab_batch, unlabeled, unlabeled_example, unl_batch,
                            skip_steps=start, auto_shard=False)


def assemble_batches(labeled: tf.data.Dataset, labeled_example, labeled_batch: int,
                     unlabeled: tf.data.Dataset | None = None, unlabeled_example=None, unlabeled_batch: int = 0, *,
                     skip_steps: int = 0, auto_shard: bool = True) -> tf.data.Dataset:
    """The one batch assembler of the command line (`train_dataset`) and the Python API
    (`data.fit_input.noisy_student_dataset`): each endless stream is numbered (an example's number seeds its
    noise), mapped to its training view, batched without remainder, and the two are zipped.

    Args:
        labeled, unlabeled: endless streams of single examples (unlabeled: None for labeled batches only).
        labeled_example, unlabeled_example: `(index, example) -> dict`, an example's training view.
        labeled_batch, unlabeled_batch: examples per batch of each stream (the unlabeled one is
            `config.unlabeled_batch_size`, upstream's ceil(B * p * r)).
        skip_steps: batches to skip (a resumed run starts where it stopped).
        auto_shard: let tf.distribute shard the batches (off when the files are already split per pipeline).

    Returns:
        A deterministic dataset of `{"labeled": ...}` or `{"labeled": ..., "unlabeled": ...}` batches.
    """

    def batches(stream, example, batch_size):
        return (stream.enumerate().skip(skip_steps * batch_size)
                .map(no_autograph(example), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                .batch(batch_size, drop_remainder=True))

    dataset = batches(labeled, labeled_example, labeled_batch)
    if unlabeled is not None:
        dataset = tf.data.Dataset.zip({"labeled": dataset,
                                       "unlabeled": batches(unlabeled, unlabeled_example, unlabeled_batch)})
    else:
        dataset = dataset.map(no_autograph(lambda lab: {"labeled": lab}))
    options = tf.data.Options()
    options.deterministic = True
    if not auto_shard:
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def _tfds_splits(name: str) -> set:
    """The splits a locally prepared TFDS data set has (empty when TFDS cannot tell)."""
    import tensorflow_datasets as tfds

    try:
        return set(tfds.builder(name).info.splits.keys())
    except Exception:  # not prepared, unknown name: loading will report it
        return set()


def eval_subsets(data_dir: str) -> list[str]:
    """Upstream evaluates `dev*` then `test*`; standard ImageNet shards are `validation*`, used when neither exists."""
    if data_dir.startswith(TFDS_PREFIX):
        splits = _tfds_splits(data_dir[len(TFDS_PREFIX):])
        return [s for s in ("dev", "test") if not splits or TFDS_SPLITS[s] in splits] or ["test"]
    found = []
    for subset in ("dev", "test", "validation"):
        try:
            records.find_files(data_dir, [subset])
            found.append(subset)
        except UnreachableStorage:
            raise
        except UserError:
            pass
    if "dev" in found or "test" in found:
        found = [s for s in found if s != "validation"]
    if not found:
        raise UserError(f"--label_data_dir={data_dir!r}: no dev*, test* or validation* files to evaluate")
    return found


def eval_dataset(data_dir: str, subset: str, batch_size: int, *, image_size: int, small_image_model: bool,
                 num_classes: int):
    """(image, label) batches of every record of a subset, in file order; the last batch may be partial."""
    raw, parse = labeled_source(data_dir, subset, num_classes=num_classes, training=False)

    def example(record):
        image, label = parse(record)
        image = preprocessing.preprocess_image(image, is_training=False, image_size=image_size,
                                               small_image_model=small_image_model)
        return image, label

    return (raw.map(no_autograph(example), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .batch(batch_size).prefetch(tf.data.AUTOTUNE))
