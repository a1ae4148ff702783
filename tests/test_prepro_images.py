"""prepro_images.py: a folder of images -> labeled/unlabeled shards (upstream `proc_svhn.py`'s formats) and
task_info.json."""

from __future__ import annotations

import dataclasses
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from PIL import Image

from noisy_student_tf.cli import adapters
from noisy_student_tf import tasks
from noisy_student_tf.errors import UserError
from noisy_student_tf.cli.flags import define_prepro_images_flags

# Parse specs written from upstream `data_input.py`, `dataset_parser` and `unl_dst_parser` (not taken from the code
# under test).
LABELED_SPEC = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string, ""),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64, -1),
}


def unlabeled_spec(num_classes):
    return {
        "image/encoded": tf.io.FixedLenFeature((), tf.string, ""),
        "probabilities": tf.io.FixedLenFeature([num_classes], tf.float32),
        "label": tf.io.FixedLenFeature([], tf.int64, -1),
        "prob": tf.io.FixedLenFeature([], tf.float32),
        "image/class/label": tf.io.FixedLenFeature([], tf.int64, -1),
    }


# Tests the command line's adapter: prepro_images.py as its flags run it.
def run(*args):
    values = flags.FlagValues()
    define_prepro_images_flags(values)
    values(["prepro_images.py", *args])
    return adapters.run_prepro_images(None, values)


def picture(width, height, seed):
    """A smooth RGB image (JPEG keeps it to a few levels), different for every seed."""
    base = np.random.RandomState(seed).randint(50, 190, size=3)
    y, x = np.mgrid[0:height, 0:width]
    ramp = 40 * (x / width)[..., None] * np.array([1, 0, -1]) + 30 * (y / height)[..., None] * np.array([0, 1, 1])
    return np.clip(base + ramp, 0, 255).astype(np.uint8)


def save(path, array, kind):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = Image.fromarray(array)
    if kind == "grey":
        image.convert("L").save(path, format="PNG")
    elif kind == "rgba":  # right half fully transparent over black: stored over white, not as black
        alpha = np.full(array.shape[:2], 255, np.uint8)
        alpha[:, array.shape[1] // 2:] = 0
        rgb = array.copy()
        rgb[:, array.shape[1] // 2:] = 0
        Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(path, format="PNG")
    elif kind == "gif":
        image.quantize(64).save(path, format="GIF")
    elif kind == "webp":
        image.save(path, format="WEBP", lossless=True)
    elif kind == "jpeg":
        image.save(path, format="JPEG", quality=95)
    else:
        image.save(path, format=kind.upper())


def reference_rgb(path):
    """What the stored image should look like: the source's pixels as RGB, transparency over white."""
    with Image.open(path) as image:
        if image.mode == "RGBA":
            rgba = np.asarray(image).astype(np.float64)
            alpha = rgba[..., 3:] / 255.0
            return np.round(rgba[..., :3] * alpha + 255.0 * (1 - alpha)).astype(np.uint8)
        return np.asarray(image.convert("RGB"))


# Good images: class folder -> (relative name, format, width, height). Sizes are unique, so a decoded record
# is matched to its source by its shape. Folders are created in an unsorted order: cat=0, dog=1, owl=2.
SOURCES = {
    "owl": [("o1.png", "png", 21, 17), ("o2.jpg", "jpeg", 22, 17), ("deep/er/o3.png", "png", 23, 17),
            ("o4.jpeg", "jpeg", 24, 17), ("o5.png", "png", 25, 17)],
    "dog": [("grey.png", "grey", 21, 18), ("rgba.png", "rgba", 22, 18), ("d3.jpeg", "jpeg", 23, 18),
            ("d4.bmp", "bmp", 24, 18), ("d5.jpg", "jpeg", 25, 18)],
    "cat": [("c1.png", "png", 21, 19), ("C2.JPG", "jpeg", 22, 19), ("sub/c3.png", "png", 23, 19),
            ("c4.gif", "gif", 24, 19), ("c5.webp", "webp", 25, 19)],
}
CLASS_NAMES = ["cat", "dog", "owl"]
BAD = "owl/broken.jpg"


def make_tree(root):
    sources = {}  # (height, width) -> (path, 0-based class)
    for seed, (folder, entries) in enumerate(SOURCES.items()):
        for i, (name, kind, width, height) in enumerate(entries):
            path = os.path.join(root, folder, name)
            save(path, picture(width, height, 10 * seed + i), kind)
            sources[(height, width)] = (path, CLASS_NAMES.index(folder))
    # Ignored: hidden files and folders, and files that are not images.
    save(os.path.join(root, "cat", ".hidden.png"), picture(40, 40, 99), "png")
    save(os.path.join(root, "owl", ".thumbs", "t.png"), picture(41, 41, 98), "png")
    with open(os.path.join(root, "dog", "notes.txt"), "w") as f:
        f.write("not an image\n")
    # A truncated JPEG: it has a valid header, so only a full decode finds the damage.
    buffer = io.BytesIO()
    Image.fromarray(picture(60, 60, 97)).save(buffer, format="JPEG", quality=95)
    with open(os.path.join(root, BAD), "wb") as f:
        f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return sources


def read_records(path, spec):
    parsed = [tf.io.parse_single_example(r, spec) for r in tf.data.TFRecordDataset(path)]
    return [{k: v.numpy() for k, v in p.items()} for p in parsed]


def files_under(directory):
    return sorted(os.path.relpath(os.path.join(d, n), directory) for d, _, names in os.walk(directory)
                  for n in names)


def read_json(path):
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("photos") / "pets")
    return root, make_tree(root)


@pytest.fixture(scope="module")
def labeled(tree, tmp_path_factory):
    root, _ = tree
    out = str(tmp_path_factory.mktemp("out") / "pets")
    summary = run(f"--input_dir={root}", f"--output_dir={out}", "--num_shards=2", "--dev_fraction=0.2",
                  "--test_fraction=0.2")
    return out, summary


SHARDS = ["dev-00000-of-00001", "test-00000-of-00001", "train-00000-of-00002", "train-00001-of-00002"]


def test_labeled_folder_layout_and_side_files(labeled):
    out, summary = labeled
    assert files_under(out) == sorted(SHARDS + ["bad_images.txt", "class_names.json", "task_info.json"])
    assert read_json(os.path.join(out, "class_names.json")) == {"0": "cat", "1": "dog", "2": "owl"}
    with open(os.path.join(out, "bad_images.txt")) as f:
        assert f.read() == BAD + "\n"
    # 5 readable images per class: round(5 * 0.2) = 1 each to dev and test, 3 to train.
    assert summary.counts == {"train": 9, "dev": 3, "test": 3}


def test_labeled_records_labels_and_pixels(tree, labeled):
    _, sources = tree
    out, _ = labeled
    seen = {}
    for name in SHARDS:
        split = name.split("-")[0]
        for record in read_records(os.path.join(out, name), LABELED_SPEC):
            image = tf.io.decode_jpeg(record["image/encoded"], channels=3).numpy()
            path, label = sources[image.shape[:2]]
            assert path not in seen, f"{path} stored twice"
            seen[path] = split
            assert record["image/class/label"] == label + 1  # 1-based on disk
            difference = np.abs(image.astype(int) - reference_rgb(path).astype(int))
            assert difference.mean() < 2.0 and difference.max() < 40, path
            if path.lower().endswith((".jpg", ".jpeg")):  # readable JPEG files are kept byte for byte
                with open(path, "rb") as f:
                    assert record["image/encoded"] == f.read()
    assert sorted(seen) == sorted(p for p, _ in sources.values())
    # Stratified: every class has exactly one dev and one test image.
    for split in ("dev", "test"):
        assert sorted(sources[k][1] for k in sources if seen[sources[k][0]] == split) == [0, 1, 2]


def test_labeled_task_file(tree, labeled):
    root, sources = tree
    out, summary = labeled
    path = os.path.join(out, "task_info.json")
    info = read_json(path)
    # Mean/std over the training images, recomputed from the sources.
    train_paths = set()
    for name in SHARDS[2:]:
        for record in read_records(os.path.join(out, name), LABELED_SPEC):
            train_paths.add(sources[tuple(tf.io.decode_jpeg(record["image/encoded"]).shape[:2])][0])
    pixels = np.concatenate([reference_rgb(p).reshape(-1, 3) for p in sorted(train_paths)]).astype(np.float64)
    np.testing.assert_allclose(info["mean"], pixels.mean(0), atol=2e-3)
    np.testing.assert_allclose(info["std"], pixels.std(0), atol=2e-3)
    assert info["name"] == os.path.basename(root)
    assert (info["num_train_images"], info["num_eval_images"], info["num_test_images"]) == (9, 3, 3)
    assert info["num_classes"] == 3
    assert info["small_image_model"] is False and info["image_size"] is None and info["flip"] is True
    task = tasks.get_task(path)
    assert dataclasses.asdict(task) == {**info, "mean": tuple(info["mean"]), "std": tuple(info["std"])}
    assert task == summary.task


def test_same_inputs_give_identical_files(tree, labeled, tmp_path):
    root, _ = tree
    out, _ = labeled
    args = [f"--input_dir={root}", "--num_shards=2", "--dev_fraction=0.2", "--test_fraction=0.2"]
    run(*args, f"--output_dir={tmp_path / 'again'}", "--num_threads=1")  # threads do not change the bytes
    run(*args, f"--output_dir={out}")  # a re-run over the earlier output rewrites the same bytes
    for name in files_under(out):
        with open(os.path.join(out, name), "rb") as a, open(tmp_path / "again" / name, "rb") as b:
            assert a.read() == b.read(), name
    run(*args, f"--output_dir={tmp_path / 'seed'}", "--seed=1")
    with open(os.path.join(out, SHARDS[2]), "rb") as a, open(tmp_path / "seed" / SHARDS[2], "rb") as b:
        assert a.read() != b.read()


def test_fail_on_bad_image_writes_nothing(tree, tmp_path):
    root, _ = tree
    out = tmp_path / "out"
    with pytest.raises(UserError, match="broken.jpg"):
        run(f"--input_dir={root}", f"--output_dir={out}", "--on_bad_image=fail")
    assert not out.exists() or files_under(str(out)) == []


def test_resized_small_image_path(tmp_path):
    root = tmp_path / "shapes"
    stripes = np.zeros((32, 96, 3), np.uint8)  # red | green | blue thirds: the centre square is green
    stripes[:, :32, 0] = stripes[:, 32:64, 1] = stripes[:, 64:, 2] = 255
    save(str(root / "wide" / "stripes.png"), stripes, "png")
    save(str(root / "tall" / "t.jpg"), np.full((50, 20, 3), (200, 30, 90), np.uint8), "jpeg")
    save(str(root / "tall" / "tiny.png"), np.full((10, 10, 3), (10, 120, 250), np.uint8), "png")
    out = tmp_path / "out"
    run(f"--input_dir={root}", f"--output_dir={out}", "--image_size=32", "--dev_fraction=0",
        "--test_fraction=0", "--noflip")
    assert files_under(str(out)) == ["bad_images.txt", "class_names.json", "task_info.json",
                                     "train-00000-of-00003", "train-00001-of-00003", "train-00002-of-00003"]
    colours = {1: [], 2: []}  # 1-based labels: "tall" = 1, "wide" = 2
    for shard in range(3):
        for record in read_records(str(out / f"train-{shard:05d}-of-00003"), LABELED_SPEC):
            image = tf.io.decode_jpeg(record["image/encoded"], channels=3).numpy()
            assert image.shape == (32, 32, 3)
            colours[int(record["image/class/label"])].append(image.reshape(-1, 3).mean(0))
    np.testing.assert_allclose(colours[2], [(0, 255, 0)], atol=2)  # the stripes' centre square
    np.testing.assert_allclose(sorted(colours[1], key=lambda c: c[0]), [(10, 120, 250), (200, 30, 90)], atol=2)
    info = read_json(str(out / "task_info.json"))
    assert info["small_image_model"] is True and info["image_size"] == 32 and info["flip"] is False
    pixels = np.array([(0, 255, 0), (10, 120, 250), (200, 30, 90)], np.float64)  # one 32x32 image each
    np.testing.assert_allclose(info["mean"], pixels.mean(0), atol=0.5)
    np.testing.assert_allclose(info["std"], pixels.std(0), atol=0.5)


def make_flat(root, count=4):
    for i in range(count):
        save(os.path.join(root, f"img{i}.png"), picture(20 + i, 16, 50 + i), "png")
    with open(os.path.join(root, "zz_corrupt.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n but nothing else")
    return [os.path.join(root, f"img{i}.png") for i in range(count)]


def check_unlabeled_shards(directory, names, num_classes, count):
    assert files_under(directory) == sorted(names + ["bad_images.txt"])
    records = [r for n in names for r in read_records(os.path.join(directory, n), unlabeled_spec(num_classes))]
    assert len(records) == count
    for record in records:
        assert record["probabilities"].tolist() == [0.0] * num_classes
        assert record["label"] == 0 and record["prob"] == 0.0
        assert record["image/class/label"] == -1  # no true label is invented
    with open(os.path.join(directory, "bad_images.txt")) as f:
        assert f.read() == "zz_corrupt.png\n"
    return records


def test_flat_folder_is_unlabeled(tmp_path):
    root = tmp_path / "flat"
    paths = make_flat(str(root))
    out = tmp_path / "out"
    summary = run(f"--input_dir={root}", f"--output_dir={out}", "--num_classes=3", "--num_shards=2")
    assert summary.counts == {"extra": 4}
    assert files_under(str(out)) == ["task_info.json", "unlabeled/bad_images.txt",
                                     "unlabeled/extra-00000-of-00002", "unlabeled/extra-00001-of-00002"]
    records = check_unlabeled_shards(str(out / "unlabeled"), ["extra-00000-of-00002", "extra-00001-of-00002"],
                                     3, 4)
    shapes = sorted(tf.io.decode_jpeg(r["image/encoded"]).shape[1] for r in records)
    assert shapes == [20, 21, 22, 23]
    info = read_json(str(out / "task_info.json"))
    pixels = np.concatenate([reference_rgb(p).reshape(-1, 3) for p in paths]).astype(np.float64)
    np.testing.assert_allclose(info["mean"], pixels.mean(0), atol=2e-3)
    np.testing.assert_allclose(info["std"], pixels.std(0), atol=2e-3)
    assert info["num_classes"] == 3 and info["num_train_images"] is None
    assert tasks.get_task(str(out / "task_info.json")).num_classes == 3


def test_unlabeled_next_to_labeled_data_keeps_its_task_file(tree, tmp_path):
    root, _ = tree
    out = tmp_path / "out"
    run(f"--input_dir={root}", f"--output_dir={out}")
    with open(out / "task_info.json", "rb") as f:
        labeled_task = f.read()
    flat = tmp_path / "flat"
    make_flat(str(flat))
    with pytest.raises(UserError, match="num_classes=5.*says 3"):
        run(f"--input_dir={flat}", f"--output_dir={out}", "--num_classes=5")
    with pytest.raises(UserError, match="image_size"):
        run(f"--input_dir={flat}", f"--output_dir={out}", "--image_size=32")
    run(f"--input_dir={flat}", f"--output_dir={out}", "--num_shards=1")  # the class count comes from the file
    check_unlabeled_shards(str(out / "unlabeled"), ["extra-00000-of-00001"], 3, 4)
    with open(out / "task_info.json", "rb") as f:
        assert f.read() == labeled_task


def test_labels_none_reads_sub_folders_as_unlabeled(tree, tmp_path):
    root, sources = tree
    summary = run(f"--input_dir={root}", f"--output_dir={tmp_path / 'out'}", "--labels=none", "--num_classes=3")
    assert summary.counts == {"extra": len(sources)} and summary.bad_images == [BAD]


def test_class_folder_names_are_only_names(tmp_path):
    root = tmp_path / "odd"
    names = ["task_info.json", "train-00000-of-00001", "unlabeled", "caf\u00e9 & co"]
    for i, name in enumerate(names):
        save(str(root / name / "x.png"), picture(20, 20 + i, i), "png")
    out = tmp_path / "out"
    run(f"--input_dir={root}", f"--output_dir={out}", "--dev_fraction=0", "--test_fraction=0", "--num_shards=1")
    assert files_under(str(out)) == ["bad_images.txt", "class_names.json", "task_info.json",
                                     "train-00000-of-00001"]
    assert read_json(str(out / "class_names.json")) == {str(i): n for i, n in enumerate(sorted(names))}


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("empty", "is empty"),
    ("no_images", "no image files"),
    ("only_bad_class", "class folder 'b' .*no readable image"),
    ("empty_class", "class folder 'b' has no image files"),
    ("loose", "lie next to the class folders"),
    ("inside", "writes into --input_dir"),
    ("no_num_classes", "need --num_classes"),
    ("fractions", "sum must be below 1"),
    ("size", "--image_size=4"),
])
def test_input_errors(tmp_path, case, message):
    root, out, extra = tmp_path / "in", tmp_path / "out", []
    if case != "missing":
        root.mkdir()
    good = picture(20, 20, 1)
    if case == "no_images":
        (root / "readme.txt").write_text("hello")
    if case in ("only_bad_class", "empty_class", "loose", "inside", "fractions", "size"):
        save(str(root / "a" / "x.png"), good, "png")
    if case == "only_bad_class":
        (root / "b").mkdir()
        (root / "b" / "y.jpg").write_bytes(b"garbage")
    if case == "empty_class":
        (root / "b").mkdir()
        (root / "b" / "notes.txt").write_text("no images here")
    if case == "loose":
        save(str(root / "loose.png"), good, "png")
    if case == "inside":
        out = root / "shards"
    if case == "no_num_classes":
        save(str(root / "x.png"), good, "png")
    if case == "fractions":
        extra = ["--dev_fraction=0.5", "--test_fraction=0.5"]
    if case == "size":
        extra = ["--image_size=4"]
    with pytest.raises(UserError, match=message):
        run(f"--input_dir={root}", f"--output_dir={out}", *extra)
    assert not out.exists() or files_under(str(out)) == []


def test_rotated_cmyk_and_16_bit_images_are_stored_upright_rgb(tmp_path):
    root = tmp_path / "odd_formats"
    (root / "a").mkdir(parents=True)
    rotated = np.zeros((10, 20, 3), np.uint8)
    rotated[:, :10] = (250, 250, 250)  # white left half, black right half
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(rotated).save(root / "a" / "rotated.jpg", format="JPEG", quality=95, exif=exif.tobytes())
    Image.fromarray(np.full((12, 14, 3), (30, 160, 220), np.uint8)).convert("CMYK").save(
        root / "a" / "cmyk.jpg", format="JPEG", quality=95)
    Image.fromarray(np.full((16, 18), 40000, np.uint16)).save(root / "a" / "deep.png")
    out = tmp_path / "out"
    run(f"--input_dir={root}", f"--output_dir={out}", "--dev_fraction=0", "--test_fraction=0", "--num_shards=1")
    images = {}
    for record in read_records(str(out / "train-00000-of-00001"), LABELED_SPEC):
        image = tf.io.decode_jpeg(record["image/encoded"], channels=3).numpy()
        images[image.shape[:2]] = image.astype(int)
    upright = images[(20, 10)]  # displayed size; white half now on top
    assert upright[:8].mean() > 240 and upright[12:].mean() < 15
    np.testing.assert_allclose(images[(12, 14)].reshape(-1, 3).mean(0), (30, 160, 220), atol=4)
    np.testing.assert_allclose(images[(16, 18)].reshape(-1, 3).mean(0), [40000 / 257] * 3, atol=2)


def test_shards_of_an_earlier_run_with_other_counts_stop_the_run(tree, tmp_path):
    root, _ = tree
    out = tmp_path / "out"
    run(f"--input_dir={root}", f"--output_dir={out}", "--num_shards=2")
    with pytest.raises(UserError, match="earlier run"):
        run(f"--input_dir={root}", f"--output_dir={out}", "--num_shards=3")
