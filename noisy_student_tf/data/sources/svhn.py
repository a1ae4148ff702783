"""SVHN (cropped digits) as upstream's proc_svhn.py shards (`main`, `save_tfrecord`), without any download.

Input, either
  * the three original MATLAB files `train_32x32.mat`, `test_32x32.mat`, `extra_32x32.mat`
    (http://ufldl.stanford.edu/housenumbers/), in `<raw_data_dir>/` or `<raw_data_dir>/downloaded_data/`
    (upstream's location): `X` is (32, 32, 3, N) uint8 and `y` is (N, 1) with 1..10, where 10 means digit 0; or
  * a locally prepared TFDS `svhn_cropped` (splits train / test / extra; `label` is already the digit).

Output (default; with `full_train_data` every name gets `_full` before the shard number):

    <output_dir>/train-000NN-of-00128               train minus the dev images (69257 for the real data)
    <output_dir>/dev-000NN-of-00064                 the first 4000 images of the shuffled train split
    <output_dir>/test-000NN-of-00064                test, in file order
    <output_dir>/unlabeled/extra-000NN-of-00128     extra, shuffled, with dummy teacher fields

The split is upstream's: one RandomState(seed) permutes train, then (same stream) extra. With
`full_train_data` there is no dev split: train keeps every image and dev is a copy of test.

Shards that exist already are skipped (every file is written atomically, so an existing one is complete) and
a split whose shards all exist is not even read, so a re-run finishes quickly and changes nothing. A hidden
`.proc_svhn[_full].json` in the output directory records what the shards were made from, so a re-run with a
different seed or input stops instead of mixing two splits.
"""

from __future__ import annotations

import json

import numpy as np
import tensorflow as tf
from absl import logging

from noisy_student_tf import file_names
from noisy_student_tf import storage
from noisy_student_tf.data import records
from noisy_student_tf.errors import UserError
from noisy_student_tf.progress import Progress

SOURCE_SPLITS = ("train", "test", "extra")
MAT_FILE = "{}_32x32.mat"
DOWNLOAD_SUBDIR = "downloaded_data"  # where upstream's proc_svhn.py saves the .mat files (`download_and_extract`)
DOWNLOAD_URL = "http://ufldl.stanford.edu/housenumbers/"  # named in error messages only; nothing is downloaded
IMAGE_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
NUM_SHARDS = {"train": 128, "dev": 64, "test": 64, "extra": 128}  # upstream `proc_svhn.py`, `save_tfrecord`
DEV_SIZE = 4000  # upstream `proc_svhn.py`, `main`: the first 4000 shuffled train images
UPSTREAM_SEED = 0  # upstream `proc_svhn.py`, `main`: np.random.seed(0)
JPEG_QUALITY = 100  # upstream `utils.py`, `ImageCoder`: TF's encoder, RGB, quality 100
# Sizes of the real files upstream `proc_svhn.py` reads; other sizes are allowed (e.g. test data) but logged.
OFFICIAL_SIZES = {"train": 73257, "test": 26032, "extra": 531131}
UNLABELED_SUBDIR = "unlabeled"  # upstream `proc_svhn.py`, `save_tfrecord`: extra goes below the output directory


# --------------------------------------------------------------------------------------------- inputs

class MatSource:
    """The original .mat files. Sizes come from the file headers, so splits that need no writing are not read."""

    def __init__(self, raw_data_dir: str):
        self.paths = find_mat_files(raw_data_dir)
        self._sizes = {split: _mat_size(path) for split, path in self.paths.items()}

    def describe(self) -> str:
        return "mat"

    def size(self, split: str) -> int:
        return self._sizes[split]

    def load(self, split: str) -> tuple[np.ndarray, np.ndarray, None]:
        """(images (N, 32, 32, 3) uint8, digits (N,) int64, None): rows are already in file order."""
        path = self.paths[split]
        logging.info("reading %s", path)
        try:
            from scipy.io import loadmat

            with storage.reader(path, "SVHN file") as f:
                data = loadmat(f, variable_names=["X", "y"])
        except UserError:
            raise
        except Exception as e:  # scipy raises many types for damaged or HDF5 (v7.3) files
            raise UserError(f"cannot read {path} as a MATLAB v5 file ({e}); replace it with the original "
                            f"{storage.basename(path)} from {DOWNLOAD_URL}") from None
        # As upstream `proc_svhn.py`, `download_and_extract`: (32, 32, 3, N) -> (N, 32, 32, 3).
        images = np.transpose(data["X"], [3, 0, 1, 2])
        return images, _mat_digits(data["y"].reshape(-1), path), None


def find_mat_files(raw_data_dir: str) -> dict[str, str]:
    """{split: path} for the three .mat files, looked up in raw_data_dir, then raw_data_dir/downloaded_data."""
    if not raw_data_dir:
        raise UserError("--raw_data_dir is empty: give the directory holding train_32x32.mat, test_32x32.mat and "
                        "extra_32x32.mat (or use --tfds_name=svhn_cropped with a locally prepared TFDS data set)")
    found, missing = {}, []
    for split in SOURCE_SPLITS:
        name = MAT_FILE.format(split)
        candidates = [storage.join(raw_data_dir, name), storage.join(raw_data_dir, DOWNLOAD_SUBDIR, name)]
        path = next((p for p in candidates if storage.isfile(p)), None)
        if path is None:
            missing.append(name)
        else:
            found[split] = path
    if missing:
        raise UserError(
            f"missing {', '.join(missing)}: nothing is downloaded, so put the original SVHN files "
            f"({', '.join(MAT_FILE.format(s) for s in SOURCE_SPLITS)}, from {DOWNLOAD_URL}) into "
            f"{raw_data_dir} or {storage.join(raw_data_dir, DOWNLOAD_SUBDIR)}; alternatively prepare TFDS's "
            f"svhn_cropped locally (`tfds build svhn_cropped`) and pass --tfds_name=svhn_cropped")
    return found


def _mat_size(path: str) -> int:
    """N from the header of a .mat file, after checking X and y have the shapes of the original files."""
    try:
        from scipy.io import whosmat

        with storage.reader(path, "SVHN file") as f:
            shapes = {name: (tuple(shape), dtype) for name, shape, dtype in whosmat(f)}
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"cannot read {path} as a MATLAB v5 file ({e}); replace it with the original "
                        f"{storage.basename(path)} from {DOWNLOAD_URL}") from None
    x_shape, x_type = shapes.get("X", ((), None))
    y_shape, _ = shapes.get("y", ((), None))
    if len(x_shape) != 4 or x_shape[:3] != IMAGE_SHAPE or x_type != "uint8":
        raise UserError(f"{path}: expected X of shape (32, 32, 3, N) uint8, found {x_shape or 'no X'} {x_type or ''}"
                        f"; is it the original {storage.basename(path)}?")
    if y_shape != (x_shape[3], 1):
        raise UserError(f"{path}: expected y of shape ({x_shape[3]}, 1) to match X, found {y_shape or 'no y'}")
    return x_shape[3]


def _mat_digits(y: np.ndarray, path: str) -> np.ndarray:
    """.mat labels 1..10 -> digits 0..9 (10 means 0, as upstream `proc_svhn.py`, `download_and_extract`)."""
    labels = y.astype(np.int64)
    if len(labels) and (labels.min() < 1 or labels.max() > 10 or not np.array_equal(labels, y)):
        raise UserError(f"{path}: labels y must be whole numbers 1..10 (10 = digit 0), found "
                        f"{y.min()}..{y.max()}")
    return labels % 10


class TfdsSource:
    """A locally prepared TFDS svhn_cropped (or a data set with the same features); never downloads."""

    def __init__(self, name: str, data_dir: str | None = None):
        self.name, self.data_dir = name, data_dir or None
        self._datasets = {split: self._open(split) for split in SOURCE_SPLITS}

    def describe(self) -> str:
        return f"tfds:{self.name}"

    def _open(self, split: str):
        import tensorflow_datasets as tfds

        try:
            dataset = tfds.load(self.name, split=split, data_dir=self.data_dir, shuffle_files=False, download=False)
        except Exception as e:  # TFDS raises several types for "not prepared" / "unknown split"
            raise UserError(f"--tfds_name={self.name}: cannot read split {split!r} without downloading (prepare "
                            f"it first, e.g. `tfds build {self.name}`, or give the three .mat files with "
                            f"--raw_data_dir): {e}") from None
        spec = dataset.element_spec
        if "image" not in spec or "label" not in spec or tuple(spec["image"].shape) != IMAGE_SHAPE:
            raise UserError(f"--tfds_name={self.name}: expected features image (32, 32, 3) and label, as in "
                            f"svhn_cropped; found {spec}")
        return dataset

    def size(self, split: str) -> int:
        count = int(self._datasets[split].cardinality())
        if count < 0:  # unknown to TFDS: count by reading the labels only
            labels = self._datasets[split].map(lambda e: e["label"])
            count = int(labels.reduce(np.int64(0), lambda n, _: n + 1))
        return count

    def load(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(images, digits, rows): rows[i] is the row holding image i of the original .mat file (None: unknown).

        TFDS shuffles examples when it prepares a data set, but svhn_cropped >= 3.1 keeps each image's position
        in the .mat file in `id` ("train_000123", zero-padded, so string order is file order): sorting by it
        restores the input order of upstream's split, so the same seed selects the same images.
        """
        total = self.size(split)
        images = np.empty((total, *IMAGE_SHAPE), np.uint8)  # filled in place: extra alone is 1.6 GB
        labels = np.empty((total,), np.int64)
        ids = []
        progress = Progress(f"reading {self.describe()} {split}", total)
        done = 0
        for batch in self._datasets[split].batch(1024).as_numpy_iterator():
            n = len(batch["label"])
            if done + n > total:
                raise UserError(f"{self.describe()} {split}: more images than the {total} it declares")
            images[done:done + n], labels[done:done + n] = batch["image"], batch["label"]
            if "id" in batch:
                ids.append(batch["id"])
            done += n
            progress.update(n)
        progress.finish()
        if done != total:
            raise UserError(f"{self.describe()} {split}: read {done} images, expected {total}")
        if total and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
            raise UserError(f"--tfds_name={self.name}: labels of split {split!r} must be digits 0..9, found "
                            f"{labels.min()}..{labels.max()}")
        if ids:
            return images, labels, np.argsort(np.concatenate(ids), kind="stable")
        logging.warning("%s has no `id` feature: the split uses TFDS's stored order, so it will not select the "
                        "same images as upstream's", self.describe())
        return images, labels, None


# --------------------------------------------------------------------------------------------- the split

def split_plan(sizes: dict[str, int], seed: int = UPSTREAM_SEED, full_train_data: bool = False,
               dev_size: int = DEV_SIZE) -> dict[str, tuple[str, np.ndarray]]:
    """{output split: (source split, indices into the source in output order)} as upstream `proc_svhn.py`, `main`.

    A legacy RandomState with the seed reproduces upstream's `np.random.seed(0)` + two `np.random.shuffle`
    calls exactly: train is permuted first, then extra from the same stream (so extra depends on train's size).
    """
    rng = np.random.RandomState(seed)
    train = np.arange(sizes["train"])
    rng.shuffle(train)
    extra = np.arange(sizes["extra"])
    rng.shuffle(extra)
    test = np.arange(sizes["test"])
    if full_train_data:
        return {"train": ("train", train), "dev": ("test", test), "test": ("test", test), "extra": ("extra", extra)}
    if sizes["train"] <= dev_size:
        raise UserError(f"the SVHN train split has {sizes['train']} images but the dev split takes the first "
                        f"{dev_size} (the original has {OFFICIAL_SIZES['train']}); use the complete data or "
                        f"--full_train_data")
    return {"train": ("train", train[dev_size:]), "dev": ("train", train[:dev_size]), "test": ("test", test),
            "extra": ("extra", extra)}


def shard_bounds(num_images: int, num_shards: int) -> np.ndarray:
    """Upstream `proc_svhn.py`, `save_tfrecord`: linspace(0, N, num_shards + 1) truncated to int (upstream's
    `.astype(np.int)`)."""
    return np.linspace(0, num_images, num_shards + 1).astype(np.int64)


def output_paths(output_dir: str, name: str, full_train_data: bool) -> list[str]:
    """The shard paths of one output split, in shard order (upstream `proc_svhn.py`, `save_tfrecord`)."""
    prefix = f"{name}_full" if full_train_data else name
    directory = storage.join(output_dir, UNLABELED_SUBDIR) if name == "extra" else output_dir
    num_shards = NUM_SHARDS[name]
    return [storage.join(directory, file_names.shard_name(prefix, i, num_shards)) for i in range(num_shards)]


# --------------------------------------------------------------------------------------------- writing

@tf.function(input_signature=[tf.TensorSpec([None, *IMAGE_SHAPE], tf.uint8)])
def _encode_batch(images):
    return tf.map_fn(lambda image: tf.image.encode_jpeg(image, format="rgb", quality=JPEG_QUALITY), images,
                     fn_output_signature=tf.string, parallel_iterations=16)


def encode_jpegs(images: np.ndarray) -> list[bytes]:
    """TF's JPEG encoder as upstream's ImageCoder (RGB, quality 100), one shard per call, in order.

    One traced function per call: building a tf.data pipeline per shard cost more than encoding the shard.
    """
    if not len(images):
        return []
    return list(_encode_batch(np.ascontiguousarray(images)).numpy())


def serialize(name: str, jpegs: list[bytes], digits: np.ndarray):
    """Records of one shard: labels stored 1-based (digit + 1, as upstream `proc_svhn.py`, `save_tfrecord`); `extra`
    also gets the dummy teacher fields every unlabeled reader requires (upstream `data_input.py`, `unl_dst_parser`)."""
    dummy = np.zeros(NUM_CLASSES, np.float32)
    for jpeg, digit in zip(jpegs, digits):
        if name == "extra":
            yield records.unlabeled_example(jpeg, dummy, 0, 0.0, class_label_1_based=int(digit) + 1)
        else:
            yield records.labeled_example(jpeg, int(digit) + 1)


def write_split(name: str, images: np.ndarray, digits: np.ndarray, indices: np.ndarray, paths: list[str]) -> int:
    """Writes the missing shards of one output split; returns how many images they hold."""
    bounds = shard_bounds(len(indices), len(paths))
    todo = [i for i, path in enumerate(paths) if not storage.exists(path)]
    total = int(sum(bounds[i + 1] - bounds[i] for i in todo))
    if len(todo) < len(paths):
        logging.info("%s: %d of %d shards exist already, writing the other %d", name, len(paths) - len(todo),
                     len(paths), len(todo))
    storage.makedirs(storage.parent(paths[0]))
    progress = Progress(f"writing {name}", total)
    for i in todo:
        part = indices[bounds[i]:bounds[i + 1]]
        written = records.write_records(paths[i], serialize(name, encode_jpegs(images[part]), digits[part]))
        progress.update(written)
    progress.finish()
    return total


def _check_settings(output_dir: str, full_train_data: bool, settings: dict) -> None:
    """Refuses to add shards to an output directory made from another input, seed or dev size."""
    path = storage.join(output_dir, ".proc_svhn%s.json" % ("_full" if full_train_data else ""))
    if storage.exists(path):
        previous = storage.read_json(path)
        changed = ", ".join(f"{key} {previous.get(key)!r} -> {settings.get(key)!r}"
                            for key in sorted(set(previous) | set(settings)) if previous.get(key) != settings.get(key))
        if changed:
            raise UserError(f"--output_dir={output_dir} already holds SVHN shards made with other settings "
                            f"({changed}; recorded in {path}): choose another --output_dir, or delete those shards "
                            f"and {path}")
        return
    storage.write_text(path, json.dumps(settings, sort_keys=True) + "\n")


def prepare(source, output_dir: str, seed: int = UPSTREAM_SEED, full_train_data: bool = False,
            dev_size: int = DEV_SIZE) -> dict[str, int]:
    """Writes every missing shard; returns {output split: number of images}.

    `source` is a MatSource or TfdsSource. Each source split is read only if one of its shards is missing and is
    released before the next is read (extra alone is 1.6 GB of pixels).
    """
    if not output_dir:
        raise UserError("--output_dir is empty: give the directory for the TFRecord shards")
    sizes = {split: source.size(split) for split in SOURCE_SPLITS}
    for split, size in sizes.items():
        if size != OFFICIAL_SIZES[split]:
            logging.warning("SVHN %s has %d images, not the %d of the original data", split, size,
                            OFFICIAL_SIZES[split])
    plan = split_plan(sizes, seed, full_train_data, dev_size)
    _check_settings(output_dir, full_train_data,
                    {"source": source.describe(), "seed": seed, "dev_size": None if full_train_data else dev_size,
                     "sizes": sizes})
    storage.remove_dead_temporaries(output_dir)
    for source_split in SOURCE_SPLITS:
        outputs = {name: indices for name, (src, indices) in plan.items() if src == source_split}
        paths = {name: output_paths(output_dir, name, full_train_data) for name in outputs}
        if all(storage.exists(p) for name in outputs for p in paths[name]):
            logging.info("all %s shards exist already", "/".join(outputs))
            continue
        images, digits, rows = source.load(source_split)
        if len(digits) != sizes[source_split]:
            raise UserError(f"{source.describe()} {source_split}: read {len(digits)} images, expected "
                            f"{sizes[source_split]}")
        for name, indices in outputs.items():
            write_split(name, images, digits, indices if rows is None else rows[indices], paths[name])
        del images, digits, rows
    return {name: len(indices) for name, (_, indices) in plan.items()}
