"""Labelling shards with a trained model's EMA weights: predict and reassign (upstream `predict_label.py`,
`run_prediction`).

predict: for each shard, the records i of `<input_dir>/<file_prefix>-SSSSS-of-NNNNN` with
i % total_replicas == worker_id are classified in file order and written as `train-info-SSSSS-of-NNNNN-WWWWW`
(upstream `run_prediction`), with the count in `info-SSSSS-of-NNNNN-WWWWW.txt` (`get_num_image`).
reassign: every record of a filtered shard `<file_prefix>-W-SSSSS-of-NNNNN` is re-labelled and rewritten under
the same name in output_dir (upstream `utils.py`, `get_reassign_filename`), with sample JPEGs.

A shard whose output exists is finished (outputs are only ever renamed into place when complete), so a
re-run, or a run after a crash, only does the shards that are left.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from absl import logging

from noisy_student_tf import file_names
from noisy_student_tf import storage
from noisy_student_tf.data import preprocessing, records
from noisy_student_tf.data.inputs import no_autograph
from noisy_student_tf.errors import UserError, first_line
from noisy_student_tf.offline import samples, shard_io
from noisy_student_tf.progress import Progress
from noisy_student_tf.config import PredictConfig
from noisy_student_tf.models.inference import clean_logits

# Upstream run_prediction (reassign) saves each record as a sample JPEG with p = 30000 / (image_num * num_shards).
SAMPLE_NUMERATOR = 30000.0


def _decode_parallelism() -> int:
    """Decoding is light next to the model: on a CPU-only machine, AUTOTUNE's decode threads take cores the
    model needs (prediction was slower with them), so a quarter of the cores decode; with a GPU, AUTOTUNE."""
    if tf.config.list_logical_devices("GPU"):
        return tf.data.AUTOTUNE
    return max(1, (os.cpu_count() or 1) // 4)


class Classifier:
    """Softmax probabilities of a Keras model in inference mode, on clean (eval-preprocessed) images."""

    def __init__(self, model, cfg: PredictConfig):
        if model.output_shape[-1] != cfg.model.num_classes:
            raise UserError(f"the model has {model.output_shape[-1]} classes, --num_label_classes is "
                            f"{cfg.model.num_classes}")
        self.cfg = cfg
        mean, std = cfg.task.mean, cfg.task.std

        @tf.function(reduce_retracing=True, autograph=False)
        def probabilities(images):
            return tf.nn.softmax(clean_logits(model, images, mean, std))

        self._probabilities = probabilities

    def _preprocess(self, image_bytes):
        return preprocessing.preprocess_image(image_bytes, is_training=False, image_size=self.cfg.model.image_size,
                                              small_image_model=self.cfg.model.small_image_model)

    def batches(self, path: str, *, total_replicas: int = 1, worker_id: int = 0, with_bytes: bool = False):
        """Yields (probabilities [b, C] float32, image bytes [b] or None) in file order, last batch partial."""
        def example(record):
            image_bytes = tf.io.parse_single_example(record, records.IMAGE_FEATURES)["image/encoded"]
            image = self._preprocess(image_bytes)
            return (image, image_bytes) if with_bytes else image

        dataset = tf.data.TFRecordDataset(path, buffer_size=shard_io.READ_BUFFER_BYTES)
        if total_replicas > 1:
            dataset = dataset.shard(total_replicas, worker_id)
        parallelism = _decode_parallelism()
        dataset = (dataset.map(no_autograph(example), num_parallel_calls=parallelism, deterministic=True)
                   .batch(self.cfg.batch_size).prefetch(tf.data.AUTOTUNE))
        try:
            for batch in dataset:
                if with_bytes:
                    images, image_bytes = batch
                    yield self._probabilities(images).numpy(), image_bytes.numpy()
                else:
                    yield self._probabilities(batch).numpy(), None
        except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as e:
            raise UserError(f"cannot read the images of {path}: {first_line(e)} (records need JPEG bytes under "
                            "'image/encoded')") from None

    def probabilities_of(self, encoded_images, source: str = "the images") -> np.ndarray:
        """[n, C] float32 probabilities of encoded images (a sequence of JPEG/PNG bytes), in batches of the
        config's batch size: the batches `batches` forms when `encoded_images` start at a multiple of it."""
        num_classes = self.cfg.model.num_classes
        if len(encoded_images) == 0:
            return np.zeros([0, num_classes], np.float32)
        dataset = (tf.data.Dataset.from_tensor_slices(tf.constant(list(encoded_images), tf.string))
                   .map(no_autograph(self._preprocess), num_parallel_calls=_decode_parallelism(),
                        deterministic=True)
                   .batch(self.cfg.batch_size).prefetch(tf.data.AUTOTUNE))
        try:
            return np.concatenate([self._probabilities(batch).numpy() for batch in dataset])
        except tf.errors.InvalidArgumentError as e:
            raise UserError(f"cannot decode {source}: {first_line(e)} (records need JPEG bytes under "
                            "'image/encoded')") from None


def prediction_records(probabilities: np.ndarray):
    """Upstream `run_prediction`'s records of one batch: the probabilities and the arg-max class."""
    for row, predicted in zip(probabilities, probabilities.argmax(axis=1)):
        yield records.prediction_example(row, int(predicted))


def predict_shard(classifier: Classifier, cfg: PredictConfig, shard: int) -> str:
    """Upstream `run_prediction` for one shard; returns 'predicted' or 'skipped'."""
    input_path, output_path, info_path = cfg.input_path(shard), cfg.prediction_path(shard), cfg.info_path(shard)
    if storage.exists(output_path):
        count = shard_io.count_records(output_path)
        if storage.exists(info_path) and shard_io.read_info(info_path) != count:
            raise UserError(f"{output_path} holds {count} predictions but {info_path} says "
                            f"{shard_io.read_info(info_path)}: delete both and predict the shard again")
        if not storage.exists(info_path):
            shard_io.write_info(info_path, count)
        logging.info("shard %d: already predicted (%s)", shard, output_path)
        return "skipped"
    shard_io.require_file(input_path, "input shard", "check --label_data_dir, --file_prefix and --num_shards")
    # Upstream counts the worker's records first and keeps the count in the info file (reused if present).
    count = shard_io.count_records(input_path, total_replicas=cfg.total_replicas, worker_id=cfg.worker_id)
    if storage.exists(info_path):
        recorded = shard_io.read_info(info_path)
        if recorded != count:
            raise UserError(f"{info_path} says {recorded} images but worker {cfg.worker_id} of {input_path} has "
                            f"{count}: the info file belongs to other data; delete it")
    else:
        shard_io.write_info(info_path, count)

    progress = Progress(f"predict shard {shard}", count)

    def shard_records():
        for probabilities, _ in classifier.batches(input_path, total_replicas=cfg.total_replicas,
                                                    worker_id=cfg.worker_id):
            yield from prediction_records(probabilities)
            progress.update(len(probabilities))

    written = records.write_records(output_path, shard_records())
    progress.finish()
    if written != count:  # the file changed while we read it
        storage.remove(output_path)
        raise UserError(f"{input_path} changed while it was predicted ({count} then {written} records)")
    return "predicted"


def reassign_shard(classifier: Classifier, cfg: PredictConfig, shard: int) -> str:
    """Upstream `run_prediction` with `--reassign_label`: re-label every record of a filtered shard, same order,
    original image bytes."""
    input_path, output_path = cfg.input_path(shard), cfg.reassign_output_path(shard)
    if storage.exists(output_path):
        logging.info("shard %d: already reassigned (%s)", shard, output_path)
        return "skipped"
    shard_io.require_file(input_path, "filtered shard", "check --label_data_dir (the filter's data directory), "
                          "--file_prefix, --worker_id and --num_shards")
    count = shard_io.count_records(input_path)
    write_reassigned_shard(cfg, shard, classifier.batches(input_path, with_bytes=True), count)
    return "reassigned"


def write_reassigned_shard(cfg: PredictConfig, shard: int, batches, count: int) -> None:
    """Writes shard `shard` re-labelled, with sample JPEGs.

    Args:
        cfg: the reassign job.
        shard: which filtered shard.
        batches: (probabilities [b, C] float32, image bytes [b]) in the input shard's record order.
        count: the input shard's records (the output must have as many).
    """
    input_path, output_path = cfg.input_path(shard), cfg.reassign_output_path(shard)
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, shard]))
    sample_prob = SAMPLE_NUMERATOR / (max(count, 1) * cfg.num_shards)
    encoder = records.PseudoLabelEncoder(cfg.model.num_classes)
    sample_dir = storage.join(cfg.output_dir, "samples")
    names = [str(c) for c in range(cfg.model.num_classes)]
    for class_name in names:
        storage.makedirs(storage.join(sample_dir, class_name))
    progress = Progress(f"reassign shard {shard}", count)

    def reassigned_records():
        index = 0
        for probabilities, image_bytes in batches:
            probabilities = np.ascontiguousarray(probabilities, "<f4")
            draws = rng.random(len(probabilities))
            for row, image, draw in zip(probabilities, image_bytes, draws):
                label = int(row.argmax())
                yield encoder.encode(image, label, row[label:label + 1].tobytes(), row.tobytes())
                if draw < sample_prob:
                    sample = "image_{:d}_{:d}_{:.2f}.jpeg".format(shard, index, float(row[label]))
                    samples.save_sample(image, storage.join(sample_dir, names[label], sample))
                index += 1
            progress.update(len(probabilities))

    written = records.write_records(output_path, reassigned_records())
    progress.finish()
    if written != count:
        storage.remove(output_path)
        raise UserError(f"{input_path} changed while it was reassigned ({count} then {written} records)")


def shards_to_reassign(cfg: PredictConfig) -> list[int]:
    """The requested shards that have a filtered file. filter_unlabel writes no file for a shard where nothing
    was kept (upstream `filter_image_by_idx`): those are skipped, unless none of the requested shards exists
    (then the directory or names are wrong)."""
    present = [s for s in cfg.shards if storage.exists(cfg.input_path(s))]
    if not present:
        name = storage.basename(cfg.input_path(cfg.shards[0]))
        raise UserError(f"no filtered shard to reassign in {cfg.input_dir} (e.g. {name}): check "
                        "--label_data_dir (the filter's data directory), --file_prefix, --worker_id, --num_shards")
    for shard in sorted(set(cfg.shards) - set(present)):
        logging.warning("shard %d: no filtered data (the filter kept no image of it); nothing to reassign", shard)
    return present


def run(classifier: Classifier, cfg: PredictConfig) -> dict:
    """Predicts (or reassigns) `cfg.shards` with `classifier`; returns {shard: what was done}."""
    cfg.validate()
    file_names.check_file_prefix(cfg.file_prefix)
    shards, reassign = list(cfg.shards), cfg.reassign
    storage.makedirs(cfg.output_dir)
    if not reassign:
        storage.makedirs(cfg.info_dir)
    storage.remove_dead_temporaries(cfg.output_dir, cfg.info_dir)
    if reassign:
        present = shards_to_reassign(cfg)
        return {shard: reassign_shard(classifier, cfg, shard) if shard in present else "absent" for shard in shards}
    return {shard: predict_shard(classifier, cfg, shard) for shard in shards}
