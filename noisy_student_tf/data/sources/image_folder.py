"""A folder of your own images -> shards in the upstream formats (`proc_svhn.py`, `save_tfrecord`) and the task's facts.

Input (`input_dir`), read according to `labels`:

* "folders": every sub-folder of `input_dir` is a class. Class index = position of the folder name in sorted
  order (Python string order); labels are stored 1-based (upstream `data_input.py`, `dataset_parser`,
  subtracts 1). Images anywhere below a class folder, nested folders included, belong to that class. Images
  lying directly in `input_dir` are an error (their class would be a guess).
* "none": every image anywhere below `input_dir` is unlabeled.
* "auto" (default): "folders" if `input_dir` has sub-folders, otherwise "none".

Image files: .jpg .jpeg .png .bmp .gif .webp, in any letter case. Hidden names (a leading '.') and `__MACOSX`
folders are ignored. Symbolic links are followed; a folder reached twice is read once.

Output layout (SVHN's, as upstream `proc_svhn.py`, `save_tfrecord` writes it):

    <output_dir>/train-SSSSS-of-NNNNN       labeled training split; N = num_shards
    <output_dir>/dev-SSSSS-of-MMMMM          M = max(1, num_shards // 2), as SVHN's 128 / 64
    <output_dir>/test-SSSSS-of-MMMMM
    <output_dir>/class_names.json            {"0": "<folder name>", ...}
    <output_dir>/bad_images.txt              unreadable files skipped, one path (relative to input_dir) a line
    <output_dir>/task_info.json              for --task_name=<output_dir>/task_info.json; written last
    <output_dir>/unlabeled/extra-SSSSS-of-NNNNN   unlabeled images (`unl_dst_parser`'s format), N = num_shards
    <output_dir>/unlabeled/bad_images.txt

A split never gets more shards than images (so no shard is empty), and gets no file at all when it is empty;
shard boundaries are proc_svhn's (`linspace(0, n, shards + 1)`, truncated). Unlabeled records carry proc_svhn's
dummy teacher fields: `probabilities` = C zeros, `label` 0, `prob` 0.0.

Split: per class, a seeded permutation; the first round(n * dev_fraction) images go to dev, the next
round(n * test_fraction) to test (shrunk so that at least one stays in train), the rest to train. Each split is
then put in a seeded order across classes, so every shard mixes classes. Unlabeled images: one seeded order.

Images are stored as JPEG. A JPEG file with RGB or grey pixels and no EXIF rotation is stored byte for byte when
sizes are kept (and TensorFlow's decoder reads it). Any other image is decoded (first frame of an animation),
turned upright from its EXIF orientation, converted to RGB (transparent pixels composited onto white, since
dropping alpha would show whatever colour transparent pixels happen to hold; 16-bit grey scaled to 8 bits) and
encoded by Pillow with 4:4:4 chroma at quality 95 (100 for resized images, as proc_svhn's 32x32 ones).

`image_size` = S > 0: each image is cropped to its centred square (side = the short side; the long side loses
equal margins) and resized to S x S (bicubic, antialiased when shrinking). The task is then a small-image one
(small_image_model, input size S; upstream `preprocessing.py`, `_cifar10_preprocess_for_train`, which needs S x S
input). S = 0 keeps every size; the model crops and resizes at training time (ImageNet-style path, upstream
`preprocessing.py`, `_preprocess_for_train`).

task_info.json: mean and std per channel in 0..255 units (as upstream `task_info.py`, `get_mean_std`) over the
pixels of the training images (exact integer sums, rounded to 4 decimals), image counts per split, class count,
small-image settings, flip.
An unlabeled run needs the class count (the teacher's, `num_classes`) and writes task_info.json with statistics
over all its images, unless `output_dir` already has one from a labeled run: then it takes the class count from
it and leaves it unchanged, so labeled and unlabeled folders can be prepared into one `output_dir`.

Unreadable files (corrupt, not an image) are skipped and listed (`on_bad_image="skip"`), or stop the run before
anything is written under a final name (`"fail"`). Every file is written atomically; the encoded images wait in
an anonymous temporary file until the split is known. Equal inputs and seed give byte-identical outputs.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import io
import json
import os

import numpy as np
import tensorflow as tf
from absl import logging
from PIL import Image, ImageOps, UnidentifiedImageError

from noisy_student_tf import file_names
from noisy_student_tf import storage, tasks
from noisy_student_tf.data import records
from noisy_student_tf.errors import UserError
from noisy_student_tf.progress import Progress

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
IGNORED_FOLDERS = ("__MACOSX",)  # zip archives made on macOS carry resource forks in it
LABEL_MODES = ("auto", "folders", "none")
BAD_IMAGE_MODES = ("skip", "fail")
LABELED_SPLITS = ("train", "dev", "test")
# proc_svhn's name for unlabeled shards; training reads train* and extra* (upstream `data_input.py`,
# `DataInput.make_source_dataset`).
UNLABELED_PREFIX = "extra"
UNLABELED_DIR = "unlabeled"
TASK_FILE = "task_info.json"
CLASS_NAMES_FILE = "class_names.json"
BAD_IMAGES_FILE = "bad_images.txt"
JPEG_QUALITY = 95
SMALL_JPEG_QUALITY = 100  # proc_svhn's; at 32x32 every pixel counts and the files stay tiny
MIN_IMAGE_SIZE = 8
EXIF_ORIENTATION = 0x0112
_SIXTEEN_BIT_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_BAD_LINES_LOGGED = 100


@dataclasses.dataclass(frozen=True)
class Options:
    labels: str = "auto"
    image_size: int = 0
    dev_fraction: float = 0.1
    test_fraction: float = 0.1
    num_shards: int = 16
    seed: int = 0
    on_bad_image: str = "skip"
    num_classes: int = 0  # unlabeled runs only; 0 = from an existing task_info.json
    name: str = ""  # task name; '' = the input folder's name
    flip: bool = True
    num_threads: int = 0  # 0 = one per core, at most 8

    def validate(self) -> None:
        if self.labels not in LABEL_MODES:
            raise UserError(f"--labels={self.labels!r}: choose one of {', '.join(LABEL_MODES)}")
        if self.on_bad_image not in BAD_IMAGE_MODES:
            raise UserError(f"--on_bad_image={self.on_bad_image!r}: choose one of {', '.join(BAD_IMAGE_MODES)}")
        if self.image_size != 0 and self.image_size < MIN_IMAGE_SIZE:
            raise UserError(f"--image_size={self.image_size}: use 0 to keep sizes, or a side of at least "
                            f"{MIN_IMAGE_SIZE} pixels (32 as SVHN) for the small-image model")
        for flag in ("dev_fraction", "test_fraction"):
            value = getattr(self, flag)
            if not 0.0 <= value < 1.0:
                raise UserError(f"--{flag}={value}: give a fraction in [0, 1)")
        if self.dev_fraction + self.test_fraction >= 1.0:
            raise UserError(f"--dev_fraction + --test_fraction = {self.dev_fraction + self.test_fraction:g} "
                            "leaves nothing to train on: their sum must be below 1")
        if self.num_shards < 1:
            raise UserError(f"--num_shards={self.num_shards}: give a positive number of shards")
        if self.num_classes < 0:
            raise UserError(f"--num_classes={self.num_classes}: give the teacher's number of classes (or 0 to "
                            f"read it from <output_dir>/{TASK_FILE})")
        if self.num_threads < 0:
            raise UserError(f"--num_threads={self.num_threads}: give a positive number, or 0 for one per core")

    def threads(self) -> int:
        return self.num_threads or min(8, os.cpu_count() or 1)


# --- Listing ---

@dataclasses.dataclass(frozen=True)
class Listing:
    files: list[str]  # relative to input_dir, sorted (by class first when labeled)
    labels: list[int] | None  # 0-based class per file; None when unlabeled
    class_names: list[str] | None


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _is_image_name(name: str) -> bool:
    return not _hidden(name) and name.lower().endswith(IMAGE_EXTENSIONS)


def _is_folder_to_read(name: str) -> bool:
    return not _hidden(name) and name not in IGNORED_FOLDERS


def image_files(top: str) -> list[str]:
    """Image files anywhere below `top`, relative to it, sorted (the order every later step relies on); links are
    followed and a folder reached twice is read once (`storage.walk`)."""
    found = []
    for directory, subdirs, names in storage.walk(top, follow_links=True):
        subdirs[:] = [d for d in subdirs if _is_folder_to_read(d)]
        found += [storage.relative(storage.join(directory, n), top) for n in names if _is_image_name(n)]
    return sorted(found)


def _top_level(input_dir: str) -> tuple[list[str], list[str], list[str]]:
    """(class folders, image files, other visible entries) directly in input_dir, each sorted."""
    folders, images, others = [], [], []
    try:
        names = storage.listdir(input_dir)
    except UserError as e:
        raise UserError(f"--input_dir={input_dir}: cannot read it ({e})") from None
    for name in names:
        if _hidden(name):
            continue
        if storage.isdir(storage.join(input_dir, name)):  # follows links: a linked class folder counts
            (folders if _is_folder_to_read(name) else others).append(name)
        elif _is_image_name(name):
            images.append(name)
        else:
            others.append(name)
    return folders, images, others


def list_images(input_dir: str, labels: str = "auto") -> Listing:
    if not input_dir:
        raise UserError("--input_dir is required: the folder of images (class sub-folders, or flat)")
    if not storage.isdir(input_dir):
        what = "is not a folder" if storage.exists(input_dir) else "does not exist"
        raise UserError(f"--input_dir={input_dir} {what}")
    folders, loose, others = _top_level(input_dir)
    if not folders and not loose and not others:
        raise UserError(f"--input_dir={input_dir} is empty: put images in it, one sub-folder per class for "
                        "labeled data")
    labeled = labels == "folders" or (labels == "auto" and bool(folders))
    if not labeled:
        files = image_files(input_dir)
        if not files:
            raise UserError(f"--input_dir={input_dir}: no image files ({' '.join(IMAGE_EXTENSIONS)}) in it or "
                            "below it")
        return Listing(files, None, None)
    if not folders:
        raise UserError(f"--input_dir={input_dir} has no sub-folders, but --labels=folders needs one per class; "
                        "use --labels=none (or auto) for a flat folder of unlabeled images")
    if loose:
        raise UserError(f"--input_dir={input_dir}: {len(loose)} images (e.g. {loose[0]}) lie next to the class "
                        "folders; move them into their class folder, or use --labels=none to take every image "
                        "as unlabeled")
    files, file_labels = [], []
    for index, name in enumerate(folders):
        members = image_files(storage.join(input_dir, name))
        if not members:
            raise UserError(f"--input_dir={input_dir}: class folder {name!r} has no image files "
                            f"({' '.join(IMAGE_EXTENSIONS)}); add some or remove the folder")
        files += [storage.join(name, m) for m in members]
        file_labels += [index] * len(members)
    return Listing(files, file_labels, folders)


# --- One image ---

class BadImage(Exception):
    """A file that is not a readable image; the message says why."""


@dataclasses.dataclass(frozen=True)
class EncodedImage:
    data: bytes  # JPEG
    sums: tuple[int, int, int]  # per channel, the sum of the pixel values ...
    squares: tuple[int, int, int]  # ... and of their squares (exact integers, for channel_statistics)
    pixels: int  # height * width


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # a damaged EXIF block says nothing about the pixels, which decoded fine
        return 1


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in _SIXTEEN_BIT_GREY:
        # convert("L") would clip 16-bit values, turning most of the image white; scale instead.
        grey = np.clip(np.round(np.asarray(image, dtype=np.float64) / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return image.convert("RGB")


def _center_square_resize(image: Image.Image, size: int) -> Image.Image:
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return image.resize((size, size), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side))


def _tf_decodes(data: bytes) -> bool:
    """Training decodes with TensorFlow (upstream `preprocessing.py`, `preprocess_image`): a JPEG Pillow reads but
    TF does not is re-encoded."""
    try:
        tf.io.decode_jpeg(data, channels=3)
        return True
    except tf.errors.OpError:
        return False


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, subsampling=0)
    return out.getvalue()


def _decode(path: str) -> tuple[bytes, Image.Image, str, str, int]:
    """(file bytes, upright RGB image, format, original mode, EXIF orientation); BadImage if unreadable."""
    # Any exception of the decoder means the file is bad: Pillow's plugins raise OSError, SyntaxError,
    # ValueError, struct.error, EOFError, ... on damaged data.
    try:
        data = storage.read_bytes(path, "image")
    except UserError as e:  # gone, a dangling link, no permission: a file this run cannot use
        raise BadImage(str(e)) from None
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # the full decode: truncated or damaged data fails here, not later in training
            orientation = _orientation(image)
            upright = ImageOps.exif_transpose(image) if orientation != 1 else image
            return data, _to_rgb(upright), image.format or "", image.mode, orientation
    except UnidentifiedImageError:
        raise BadImage(f"not an image in a format Pillow reads ({', '.join(IMAGE_EXTENSIONS)})") from None
    except Exception as e:  # noqa: BLE001 (see above)
        raise BadImage(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'}") from None


def encode_image(path: str, image_size: int = 0) -> EncodedImage:
    """The JPEG bytes to store for one file, and its pixel sums for the statistics. Raises BadImage."""
    data, rgb, image_format, mode, orientation = _decode(path)
    if image_size:
        rgb = _center_square_resize(rgb, image_size)
    keep = (not image_size and image_format in ("JPEG", "MPO") and mode in ("RGB", "L") and orientation == 1
            and _tf_decodes(data))  # MPO: a camera JPEG with extra pictures appended; decoders read the first
    if not keep:
        data = _jpeg(rgb, SMALL_JPEG_QUALITY if image_size else JPEG_QUALITY)
    pixels = np.asarray(rgb).reshape(-1, 3)
    sums = pixels.sum(axis=0, dtype=np.int64)
    squares = np.einsum("ij,ij->j", pixels, pixels, dtype=np.int64)
    return EncodedImage(data, tuple(int(v) for v in sums), tuple(int(v) for v in squares), len(pixels))


def _ordered_map(function, items, num_threads: int):
    """`function(item)` for every item, in order, `num_threads` at a time: Pillow's decoders, resizing and
    encoder release the GIL, so threads use every core; results come back in input order (determinism)."""
    if num_threads <= 1:
        yield from map(function, items)
        return
    window = 4 * num_threads  # bounded look-ahead: memory stays small however many files there are
    with concurrent.futures.ThreadPoolExecutor(num_threads) as pool:
        pending = collections.deque()
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


# --- Split, statistics, shards ---

def _split_sizes(n: int, dev_fraction: float, test_fraction: float) -> tuple[int, int]:
    """(dev, test) counts of a class of n >= 1 images: rounded half up, at least one image left for train."""
    n_dev, n_test = int(n * dev_fraction + 0.5), int(n * test_fraction + 0.5)
    excess = n_dev + n_test - (n - 1)
    if excess > 0:
        take = min(excess, n_test)
        n_test -= take
        n_dev -= excess - take
    return n_dev, n_test


def split_labeled(labels: np.ndarray, num_classes: int, dev_fraction: float, test_fraction: float,
                  seed: int) -> dict[str, np.ndarray]:
    """Stratified seeded split of positions into `labels`; each split in a seeded order across classes."""
    rng = np.random.RandomState(seed)  # RandomState's streams never change between numpy versions
    parts: dict[str, list] = {name: [] for name in LABELED_SPLITS}
    for c in range(num_classes):
        members = rng.permutation(np.flatnonzero(labels == c))
        n_dev, n_test = _split_sizes(len(members), dev_fraction, test_fraction)
        parts["dev"].append(members[:n_dev])
        parts["test"].append(members[n_dev:n_dev + n_test])
        parts["train"].append(members[n_dev + n_test:])
    return {name: rng.permutation(np.concatenate(chunks)) for name, chunks in parts.items()}


def channel_statistics(images) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and (population) std per channel, 0..255 units, from exact integer sums over EncodedImage-likes."""
    images = list(images)
    count = sum(image.pixels for image in images)
    means, stds = [], []
    for c in range(3):
        total = sum(image.sums[c] for image in images)
        squares = sum(image.squares[c] for image in images)
        variance = (squares * count - total * total) / (count * count)  # exact numerator: Python ints
        means.append(round(total / count, 4))
        stds.append(round(max(variance, 0.0) ** 0.5, 4))
    if min(stds) == 0:
        # A constant channel carries no information; dividing by 1 keeps it at 0 after centring, and the task
        # file needs std > 0.
        logging.warning("a colour channel is constant over the images (std 0); using std 1 for it")
        stds = [s or 1.0 for s in stds]
    return tuple(means), tuple(stds)


def shard_bounds(count: int, num_shards: int) -> list[tuple[int, int]]:
    """proc_svhn's boundaries (linspace, truncated), with at most one shard per image."""
    shards = max(1, min(num_shards, count))
    edges = np.linspace(0, count, shards + 1).astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def planned_shards(prefix: str, count: int, num_shards: int) -> list[str]:
    bounds = shard_bounds(count, num_shards) if count else []
    return [file_names.shard_name(prefix, i, len(bounds)) for i in range(len(bounds))]


def _check_no_stale_shards(directory: str, prefixes, planned: set[str]) -> None:
    """Training reads every `train*`/`dev*`/... file of a folder: shards of an earlier run with other counts
    would be read too, so they stop the run (this code deletes nothing it did not write)."""
    if not storage.isdir(directory):
        return
    stale = sorted(n for n in storage.listdir(directory)
                   if not _hidden(n) and n.startswith(tuple(prefixes)) and n not in planned)
    if stale:
        raise UserError(f"{directory} already holds {len(stale)} files the readers would take as shards of this "
                        f"data (e.g. {stale[0]}), left by an earlier run with other counts: delete them or choose "
                        "another --output_dir")


class _Spool:
    """Encoded images in an anonymous temporary file (gone even if the process dies), read back by index."""

    def __init__(self, directory: str):
        self._file = storage.scratch_file(near=directory)
        self._where: list[tuple[int, int]] = []
        self._size = 0

    def add(self, data: bytes) -> None:
        self._file.seek(self._size)
        self._file.write(data)
        self._where.append((self._size, len(data)))
        self._size += len(data)

    def get(self, index: int) -> bytes:
        offset, length = self._where[index]
        self._file.seek(offset)
        return self._file.read(length)

    def close(self) -> None:
        self._file.close()


def _write_shards(directory: str, prefix: str, order: np.ndarray, num_shards: int, spool: _Spool,
                  make_example, progress: Progress) -> list[str]:
    names = []
    bounds = shard_bounds(len(order), num_shards) if len(order) else []
    for shard, (start, stop) in enumerate(bounds):
        name = file_names.shard_name(prefix, shard, len(bounds))
        part = order[start:stop].tolist()
        records.write_records(storage.join(directory, name), (make_example(spool.get(i), i) for i in part))
        progress.update(len(part))
        names.append(name)
    return names


# --- The whole job ---

@dataclasses.dataclass(frozen=True)
class Summary:
    labeled: bool
    counts: dict[str, int]  # images per split (train/dev/test, or extra)
    shards: dict[str, list[str]]  # file names per split
    num_classes: int
    class_names: list[str] | None
    bad_images: list[str]  # relative to input_dir
    shard_dir: str
    task_file: str
    task: tasks.TaskInfo


def _check_output_dir(input_dir: str, output_dir: str, shard_dir: str) -> None:
    for directory in (output_dir, shard_dir):
        if storage.exists(directory) and not storage.isdir(directory):
            raise UserError(f"--output_dir: {directory} is a file, not a folder; choose another --output_dir")
    for directory in (output_dir, shard_dir):
        if storage.is_within(directory, input_dir):
            raise UserError(f"--output_dir={output_dir} writes into --input_dir={input_dir}: keep the shards "
                            "out of your image folder and choose an --output_dir outside it")


def _encode_all(input_dir: str, listing: Listing, opts: Options, spool: _Spool):
    """Encodes every file into the spool; returns (the good files' positions in the listing, their
    EncodedImage without the bytes, the bad files)."""
    good, stats, bad = [], [], []
    progress = Progress("encoding images", len(listing.files))

    def work(relative: str):
        try:
            return encode_image(storage.join(input_dir, relative), opts.image_size)
        except BadImage as e:
            return e

    # closing(): an error in the loop stops the worker threads at once.
    with contextlib.closing(_ordered_map(work, listing.files, opts.threads())) as results:
        for position, result in enumerate(results):
            path = storage.join(input_dir, listing.files[position])
            if isinstance(result, BadImage):
                if opts.on_bad_image == "fail":
                    raise UserError(f"unreadable image {path} ({result}); fix or remove it, or use "
                                    "--on_bad_image=skip to leave out unreadable files")
                if len(bad) < _BAD_LINES_LOGGED:
                    logging.warning("unreadable image, skipped: %s (%s)", path, result)
                bad.append(listing.files[position])
            else:
                spool.add(result.data)
                good.append(position)
                stats.append(dataclasses.replace(result, data=b""))  # the bytes live in the spool
            progress.update(1)
    progress.finish()
    if bad:
        logging.warning("skipped %d unreadable files of %d (listed in %s)", len(bad), len(listing.files),
                        BAD_IMAGES_FILE)
    return good, stats, bad


def _task_name(opts: Options, input_dir: str) -> str:
    return opts.name or storage.basename(storage.absolute(input_dir))


def _labeled_task(opts, input_dir, listing, good, stats, spool, output_dir, bad) -> Summary:
    labels = np.asarray([listing.labels[p] for p in good], dtype=np.int64)
    num_classes = len(listing.class_names)
    empty = np.flatnonzero(np.bincount(labels, minlength=num_classes) == 0)
    if len(empty):
        raise UserError(f"class folder {listing.class_names[empty[0]]!r} in --input_dir={input_dir} has no "
                        "readable image (all unreadable: see the log); add images or remove the folder")
    if num_classes == 1:
        logging.warning("only one class folder (%r): every image gets the same label", listing.class_names[0])
    splits = split_labeled(labels, num_classes, opts.dev_fraction, opts.test_fraction, opts.seed)
    shard_counts = {"train": opts.num_shards, "dev": max(1, opts.num_shards // 2),
                    "test": max(1, opts.num_shards // 2)}
    planned = {n for s in LABELED_SPLITS for n in planned_shards(s, len(splits[s]), shard_counts[s])}
    _check_no_stale_shards(output_dir, (*LABELED_SPLITS, "validation"), planned)

    progress = Progress("writing shards", len(good))
    shards = {}
    for split in LABELED_SPLITS:
        shards[split] = _write_shards(output_dir, split, splits[split], shard_counts[split], spool,
                                      lambda data, i: records.labeled_example(data, int(labels[i]) + 1), progress)
    progress.finish()
    mean, std = channel_statistics(stats[i] for i in splits["train"].tolist())
    counts = {split: len(splits[split]) for split in LABELED_SPLITS}
    task = tasks.TaskInfo(_task_name(opts, input_dir), mean, std, num_train_images=counts["train"],
                          num_eval_images=counts["dev"], num_test_images=counts["test"], num_classes=num_classes,
                          small_image_model=opts.image_size > 0, image_size=opts.image_size or None,
                          flip=opts.flip)
    names = {str(i): name for i, name in enumerate(listing.class_names)}
    # ASCII escapes keep any folder name (even one that is not valid UTF-8) writable.
    storage.write_text(storage.join(output_dir, CLASS_NAMES_FILE), json.dumps(names, indent=2) + "\n")
    _write_bad_list(output_dir, bad)
    task_file = storage.join(output_dir, TASK_FILE)
    tasks.write_task_file(task_file, task)  # last: its presence means the rest is complete
    return Summary(True, counts, shards, num_classes, list(listing.class_names), bad, output_dir, task_file, task)


def _existing_labeled_task(task_file: str) -> tasks.TaskInfo | None:
    if not storage.isfile(task_file):
        return None
    task = tasks.load_task_file(task_file)
    return task if task.num_train_images is not None else None


def _unlabeled_task(opts, input_dir, good, stats, spool, output_dir, shard_dir, bad) -> Summary:
    task_file = storage.join(output_dir, TASK_FILE)
    labeled_task = _existing_labeled_task(task_file)
    num_classes = _unlabeled_classes(opts, labeled_task, task_file)
    order = np.random.RandomState(opts.seed).permutation(len(good))
    _check_no_stale_shards(shard_dir, (UNLABELED_PREFIX, "train"),
                           set(planned_shards(UNLABELED_PREFIX, len(order), opts.num_shards)))
    zeros = [0.0] * num_classes
    progress = Progress("writing shards", len(good))
    names = _write_shards(shard_dir, UNLABELED_PREFIX, order, opts.num_shards, spool,
                          lambda data, i: records.unlabeled_example(data, zeros, 0, 0.0), progress)
    progress.finish()
    _write_bad_list(shard_dir, bad)
    if labeled_task is None:
        mean, std = channel_statistics(stats)
        task = tasks.TaskInfo(_task_name(opts, input_dir), mean, std, num_train_images=None, num_eval_images=None,
                              num_test_images=None, num_classes=num_classes, small_image_model=opts.image_size > 0,
                              image_size=opts.image_size or None, flip=opts.flip)
        tasks.write_task_file(task_file, task)
    else:
        task = labeled_task
        logging.info("kept %s of the labeled data (class count %d)", task_file, num_classes)
    return Summary(False, {UNLABELED_PREFIX: len(good)}, {UNLABELED_PREFIX: names}, num_classes, None, bad,
                   shard_dir, task_file, task)


def _unlabeled_classes(opts: Options, labeled_task: tasks.TaskInfo | None, task_file: str) -> int:
    """The class count of the dummy `probabilities`: the flag, or the labeled data's beside it (which must
    then agree with the flags, since both kinds of images feed one model)."""
    if labeled_task is None:
        if not opts.num_classes:
            raise UserError(f"unlabeled images need --num_classes (the length of the stored teacher "
                            f"probabilities, i.e. the labeled data's class count); or prepare the labeled folder "
                            f"into this --output_dir first and it is read from {task_file}")
        return opts.num_classes
    if opts.num_classes and opts.num_classes != labeled_task.num_classes:
        raise UserError(f"--num_classes={opts.num_classes}, but {task_file} of the labeled data says "
                        f"{labeled_task.num_classes}: leave --num_classes out or make them agree")
    if (labeled_task.image_size or 0) != opts.image_size:
        raise UserError(f"--image_size={opts.image_size}, but the labeled data in {task_file} has image_size "
                        f"{labeled_task.image_size or 0}: give unlabeled images the same --image_size")
    return labeled_task.num_classes


def _write_bad_list(directory: str, bad: list[str]) -> None:
    """Always written (empty when all files were read), so no list of an earlier run is left behind."""
    lines = [p if p.isprintable() else repr(p) for p in bad]  # one line per file whatever its name holds
    storage.write_text(storage.join(directory, BAD_IMAGES_FILE), "".join(f"{line}\n" for line in lines))


def prepare(input_dir: str, output_dir: str, opts: Options = Options()) -> Summary:
    """Reads `input_dir`, writes the shards and task files (module docstring); returns what was written."""
    opts.validate()
    if not output_dir:
        raise UserError("--output_dir is required: where the shards and task_info.json go")
    listing = list_images(input_dir, opts.labels)
    labeled = listing.labels is not None
    shard_dir = output_dir if labeled else storage.join(output_dir, UNLABELED_DIR)
    _check_output_dir(input_dir, output_dir, shard_dir)
    if not labeled:  # fail on a missing class count before the long encoding pass, not after it
        _unlabeled_classes(opts, _existing_labeled_task(storage.join(output_dir, TASK_FILE)),
                           storage.join(output_dir, TASK_FILE))
    logging.info("%s: %d image files%s", input_dir, len(listing.files),
                 f" in {len(listing.class_names)} classes" if labeled else " (unlabeled)")
    storage.remove_dead_temporaries(shard_dir)
    spool = _Spool(shard_dir)
    try:
        good, stats, bad = _encode_all(input_dir, listing, opts, spool)
        if not good:
            raise UserError(f"--input_dir={input_dir}: none of its {len(listing.files)} image files could be "
                            "read (see the log)")
        if labeled:
            return _labeled_task(opts, input_dir, listing, good, stats, spool, output_dir, bad)
        return _unlabeled_task(opts, input_dir, good, stats, spool, output_dir, shard_dir, bad)
    finally:
        spool.close()
