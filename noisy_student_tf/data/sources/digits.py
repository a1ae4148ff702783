"""scikit-learn's handwritten digits as a small Noisy Student task, in the SVHN shard layout (upstream `proc_svhn.py`).

The 1,797 8x8 grey images ship inside scikit-learn (no download). Each becomes a 32x32 RGB JPEG (values
0..16 scaled to 0..255, bilinear upsampling, grey copied to three channels) and the set is split, per class
and under a seed, into a small labeled train split, an unlabeled pool, dev and test:

    data/digits/proc/train-0000N-of-00002        100 labeled images (10 per class)
    data/digits/proc/dev-00000-of-00001           200 (20 per class)
    data/digits/proc/test-00000-of-00001          500 (50 per class)
    data/digits/proc/unlabeled/extra-0000N-of-00004  997, with dummy teacher fields and the true label

Labels are stored 1-based as upstream's SVHN shards; `extra` records carry `probabilities` (zeros), `label` 0
and `prob` 0 like proc_svhn's, plus `image/class/label`, which nothing reads during training.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from noisy_student_tf import file_names
from noisy_student_tf import storage
from noisy_student_tf.data import records

IMAGE_SIZE = 32
NUM_CLASSES = 10
# Images per class in each split; the unlabeled pool takes the rest (each class has 174..183 images).
PER_CLASS = {"train": 10, "dev": 20, "test": 50}
NUM_SHARDS = {"train": 2, "dev": 1, "test": 1, "extra": 4}
JPEG_QUALITY = 100  # as proc_svhn


def load_images() -> tuple[np.ndarray, np.ndarray]:
    """(images [1797, 32, 32, 3] uint8, labels [1797]) from the copy inside scikit-learn."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    grey = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    big = np.stack([np.asarray(Image.fromarray(g).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)) for g in grey])
    return np.repeat(big[..., None], 3, axis=-1), digits.target.astype(np.int64)


def split_indices(labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Per class, a seeded permutation cut into train / dev / test / extra; each split in a seeded order."""
    rng = np.random.RandomState(seed)
    parts: dict[str, list] = {name: [] for name in ("train", "dev", "test", "extra")}
    for c in range(NUM_CLASSES):
        members = rng.permutation(np.nonzero(labels == c)[0])
        start = 0
        for name in ("train", "dev", "test"):
            parts[name].append(members[start:start + PER_CLASS[name]])
            start += PER_CLASS[name]
        parts["extra"].append(members[start:])
    return {name: rng.permutation(np.concatenate(chunks)) for name, chunks in parts.items()}


def load_splits(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The splits `prepare` writes, as arrays (no JPEG round trip), for the Python API.

    Args:
        seed: the split's seed (as `prepare`'s).

    Returns:
        {"train", "dev", "test", "extra"} -> (images [N, 32, 32, 3] uint8, 0-based labels [N]); "extra" is the
        unlabeled pool, whose labels are only for measuring the pseudo labels.
    """
    images, labels = load_images()
    return {name: (images[indices], labels[indices]) for name, indices in split_indices(labels, seed).items()}


def _jpeg(image: np.ndarray) -> bytes:
    import io

    out = io.BytesIO()
    Image.fromarray(image).save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def prepare(output_dir: str, seed: int = 0) -> dict:
    """Writes the shards (skipping files that already exist: every file is written atomically, so one that
    exists is complete); returns {split: number of images}."""
    images, labels = load_images()
    splits = split_indices(labels, seed)
    counts = {}
    for name, indices in splits.items():
        directory = storage.join(output_dir, "unlabeled") if name == "extra" else output_dir
        storage.makedirs(directory)
        for shard, part in enumerate(np.array_split(indices, NUM_SHARDS[name])):
            path = storage.join(directory, file_names.shard_name(name, shard, NUM_SHARDS[name]))
            if storage.exists(path):
                continue
            if name == "extra":
                examples = (records.unlabeled_example(_jpeg(images[i]), np.zeros(NUM_CLASSES, np.float32), 0, 0.0,
                                                      class_label_1_based=int(labels[i]) + 1) for i in part)
            else:
                examples = (records.labeled_example(_jpeg(images[i]), int(labels[i]) + 1) for i in part)
            records.write_records(path, examples)
        counts[name] = len(indices)
    return counts


def channel_statistics() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std per channel (0..255 units) over all 1,797 converted images: the task's normalisation."""
    images, _ = load_images()
    pixels = images.reshape(-1, 3).astype(np.float64)
    return tuple(float(v) for v in pixels.mean(0).round(4)), tuple(float(v) for v in pixels.std(0).round(4))
