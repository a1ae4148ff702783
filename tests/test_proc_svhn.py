"""proc_svhn.py from local .mat files or a (mocked) TFDS svhn_cropped: names, shard sizes, split, formats, re-runs."""

import os
import struct

import numpy as np
import pytest
import scipy.io
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import flags

from noisy_student_tf.cli import adapters
from noisy_student_tf.data.sources import svhn
from noisy_student_tf.errors import UserError
from noisy_student_tf.cli.flags import define_proc_svhn_flags

# Small stand-ins for the three files. train must exceed the 4000 dev images; test (50 images in 64 shards)
# gives empty shards, as linspace allows.
SIZES = {"train": 4100, "test": 50, "extra": 300}
NUM_SHARDS = {"train": 128, "dev": 64, "test": 64, "extra": 128}  # upstream `proc_svhn.py`, `save_tfrecord`

# Upstream `data_input.py`'s parsers (`dataset_parser`, `unl_dst_parser`), written out here rather than
# imported, so the test checks the format itself.
LABELED = {"image/encoded": tf.io.FixedLenFeature((), tf.string, ""),
           "image/class/label": tf.io.FixedLenFeature([], tf.int64, -1)}
EXTRA = {"image/encoded": tf.io.FixedLenFeature((), tf.string, ""),
         "probabilities": tf.io.FixedLenFeature([10], tf.float32),
         "label": tf.io.FixedLenFeature([], tf.int64, -1),
         "prob": tf.io.FixedLenFeature([], tf.float32),
         "image/class/label": tf.io.FixedLenFeature([], tf.int64, -1)}


# Tests the command line's adapter: proc_svhn.py as its flags run it.
def run_job(*args):
    values = flags.FlagValues()
    define_proc_svhn_flags(values)
    values(["proc_svhn.py", *args])
    return adapters.run_proc_svhn(None, values)


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """The three .mat files (train in downloaded_data/, upstream's place; the others directly in the directory)."""
    root = tmp_path_factory.mktemp("raw")
    rng = np.random.RandomState(7)
    data = {}
    for split, n in SIZES.items():
        x = rng.randint(0, 256, size=(32, 32, 3, n)).astype(np.uint8)
        y = rng.randint(1, 11, size=(n, 1)).astype(np.uint8)  # 1..10, 10 = digit 0
        y[:3, 0] = [10, 1, 9]
        directory = root / "downloaded_data" if split == "train" else root
        directory.mkdir(exist_ok=True)
        scipy.io.savemat(directory / f"{split}_32x32.mat", {"X": x, "y": y})
        data[split] = (np.transpose(x, [3, 0, 1, 2]), y.reshape(-1))
    return str(root), data


@pytest.fixture(scope="module")
def default_out(raw, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("proc"))
    counts = run_job(f"--raw_data_dir={raw[0]}", f"--output_dir={out}")
    return out, counts


def visible(directory):
    return sorted(n for n in os.listdir(directory) if not n.startswith("."))


def raw_records(path):
    """The records of an uncompressed TFRecord file: each is length (u64), CRC (u32), data, CRC (u32)."""
    with open(path, "rb") as f:
        data = f.read()
    records, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack("<Q", data[pos:pos + 8])
        records.append(data[pos + 12:pos + 12 + length])
        pos += 12 + length + 4
    assert pos == len(data)
    return records


def read_split(out, name, spec, full=False):
    """Parsed records of every shard of a split, as a list (per shard) of lists of dicts of numpy values."""
    directory = os.path.join(out, "unlabeled") if name == "extra" else out
    prefix = f"{name}_full" if full else name
    n = NUM_SHARDS[name]
    shards = [raw_records(os.path.join(directory, "%s-%05d-of-%05d" % (prefix, i, n))) for i in range(n)]
    flat = [r for shard in shards for r in shard]
    # One dataset and one batch for the whole split: a dataset per file, or per record, costs far more.
    parsed = []
    if flat:
        batch = tf.data.Dataset.from_tensor_slices(np.array(flat, dtype=object)).map(
            lambda r: tf.io.parse_single_example(r, spec)).batch(len(flat)).get_single_element()
        columns = {key: value.numpy() for key, value in batch.items()}
        parsed = [{key: column[i] for key, column in columns.items()} for i in range(len(flat))]
    bounds = np.cumsum([0] + [len(shard) for shard in shards])
    return [parsed[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def snapshot(out):
    files = {}
    for directory, _, names in os.walk(out):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, out)] = (f.read(), os.stat(path).st_mtime_ns)
    return files


def upstream_order():
    """Upstream's main(): np.random.seed(0), then shuffle train, then extra, with the global RNG."""
    np.random.seed(0)
    train, extra = np.arange(SIZES["train"]), np.arange(SIZES["extra"])
    np.random.shuffle(train)
    np.random.shuffle(extra)
    return {"dev": ("train", train[:4000]), "train": ("train", train[4000:]), "test": ("test", np.arange(50)),
            "extra": ("extra", extra)}


def test_file_names_and_shard_sizes(default_out):
    out, counts = default_out
    assert counts == {"train": 100, "dev": 4000, "test": 50, "extra": 300}
    expected = sorted("%s-%05d-of-%05d" % (name, i, NUM_SHARDS[name]) for name in ("train", "dev", "test")
                      for i in range(NUM_SHARDS[name]))
    assert visible(out) == sorted(expected + ["unlabeled"])
    assert visible(os.path.join(out, "unlabeled")) == ["extra-%05d-of-00128" % i for i in range(128)]
    for name, total in counts.items():
        spec = EXTRA if name == "extra" else LABELED
        sizes = [len(shard) for shard in read_split(out, name, spec)]
        assert sizes == np.diff(np.linspace(0, total, NUM_SHARDS[name] + 1).astype(int)).tolist()
    assert 0 in [len(s) for s in read_split(out, "test", LABELED)]  # 50 images over 64 shards


def test_records_follow_upstreams_split_and_encoding(raw, default_out):
    _, data = raw
    out, _ = default_out
    for name, (source, order) in upstream_order().items():
        images, y = data[source]
        spec = EXTRA if name == "extra" else LABELED
        stored = [r for shard in read_split(out, name, spec) for r in shard]
        assert len(stored) == len(order)
        # Labels: .mat 10 (digit 0) -> 1, otherwise digit + 1.
        assert [int(r["image/class/label"]) for r in stored] == [int(v % 10) + 1 for v in y[order]]
        # Images: TF's encoder, RGB, quality 100, byte for byte (a sample keeps the test fast).
        for k in range(0, len(order), 37):
            expected = tf.image.encode_jpeg(images[order[k]], format="rgb", quality=100).numpy()
            assert stored[k]["image/encoded"] == expected


def test_label_10_is_stored_as_1(raw, default_out):
    _, data = raw
    out, _ = default_out
    test = [r for shard in read_split(out, "test", LABELED) for r in shard]  # test keeps file order
    assert [int(r["image/class/label"]) for r in test[:3]] == [1, 2, 10]  # .mat 10, 1, 9


def test_extra_has_dummy_teacher_fields(raw, default_out):
    out, _ = default_out
    extra = [r for shard in read_split(out, "extra", EXTRA) for r in shard]
    assert len(extra) == SIZES["extra"]
    for r in extra:
        assert r["probabilities"].tolist() == [0.0] * 10
        assert int(r["label"]) == 0 and float(r["prob"]) == 0.0
        assert 1 <= int(r["image/class/label"]) <= 10


def test_rerun_skips_and_changes_nothing(raw, default_out):
    out, _ = default_out
    before = snapshot(out)
    run_job(f"--raw_data_dir={raw[0]}", f"--output_dir={out}")
    assert snapshot(out) == before  # same bytes and same modification times: nothing rewritten
    # A lost shard is written again, identically.
    lost = os.path.join(out, "unlabeled", "extra-00005-of-00128")
    os.remove(lost)
    run_job(f"--raw_data_dir={raw[0]}", f"--output_dir={out}")
    with open(lost, "rb") as f:
        assert f.read() == before[os.path.join("unlabeled", "extra-00005-of-00128")][0]


def test_split_is_deterministic_under_the_seed(raw, default_out, tmp_path):
    out, _ = default_out
    first = {k: v[0] for k, v in snapshot(out).items()}
    run_job(f"--raw_data_dir={raw[0]}", f"--output_dir={tmp_path}/again")
    assert {k: v[0] for k, v in snapshot(f"{tmp_path}/again").items()} == first
    other = svhn.split_plan(SIZES, seed=1)
    assert not np.array_equal(other["dev"][1], svhn.split_plan(SIZES, seed=0)["dev"][1])
    # The same directory with another seed would mix two splits: refused.
    with pytest.raises(UserError, match="seed"):
        run_job(f"--raw_data_dir={raw[0]}", f"--output_dir={out}", "--seed=1")


def test_full_train_data(raw, tmp_path):
    counts = run_job(f"--raw_data_dir={raw[0]}", f"--output_dir={tmp_path}", "--full_train_data")
    assert counts == {"train": 4100, "dev": 50, "test": 50, "extra": 300}
    assert all(n.split("-")[0] in ("train_full", "dev_full", "test_full") for n in visible(tmp_path)
               if n != "unlabeled")
    assert visible(tmp_path / "unlabeled") == ["extra_full-%05d-of-00128" % i for i in range(128)]
    train = [r for shard in read_split(str(tmp_path), "train", LABELED, full=True) for r in shard]
    assert len(train) == 4100
    for i in range(64):  # dev is the test set
        with open(tmp_path / ("dev_full-%05d-of-00064" % i), "rb") as d, \
                open(tmp_path / ("test_full-%05d-of-00064" % i), "rb") as t:
            assert d.read() == t.read()


def test_missing_mat_file_names_it(raw, tmp_path):
    root = tmp_path / "raw"
    root.mkdir()
    for split in ("train", "extra"):
        os.symlink(os.path.join(raw[0], "downloaded_data" if split == "train" else "", f"{split}_32x32.mat"),
                   root / f"{split}_32x32.mat")
    with pytest.raises(UserError, match="^missing test_32x32.mat: .*--tfds_name=svhn_cropped") as e:
        run_job(f"--raw_data_dir={root}", f"--output_dir={tmp_path}/out")
    assert f"into {root} or {root}/downloaded_data" in str(e.value)
    assert not os.path.exists(tmp_path / "out")


def test_bad_flags():
    with pytest.raises(UserError, match="task_name"):
        run_job("--task_name=cifar10", "--raw_data_dir=x", "--output_dir=y")
    with pytest.raises(UserError, match="raw_data_dir"):
        run_job("--output_dir=y")


def test_too_small_train_for_dev_split(raw, tmp_path):
    with pytest.raises(UserError, match="dev split"):
        svhn.prepare(svhn.MatSource(raw[0]), str(tmp_path), dev_size=5000)


def test_tfds_svhn_cropped(tmp_path):
    n = 200
    with tfds.testing.mock_data(num_examples=n):
        # local_scripts pass --raw_data_dir in any case: with --tfds_name it is not used.
        counts = run_job("--tfds_name=svhn_cropped", f"--raw_data_dir={tmp_path}/no_mat_files",
                         f"--output_dir={tmp_path}", "--full_train_data")
        # The mock's records, in the order the job restores (by `id`, the position in the .mat file).
        source = {}
        for split in ("train", "test", "extra"):
            examples = list(tfds.load("svhn_cropped", split=split, download=False).as_numpy_iterator())
            examples.sort(key=lambda e: e["id"])
            source[split] = [e["image"] for e in examples], [int(e["label"]) for e in examples]
        with pytest.raises(UserError, match="dev split"):  # 200 train images cannot give 4000 dev images
            run_job("--tfds_name=svhn_cropped", f"--output_dir={tmp_path}/default")
    assert counts == {"train": n, "dev": n, "test": n, "extra": n}
    plan = svhn.split_plan({"train": n, "test": n, "extra": n}, seed=0, full_train_data=True)
    for name, (split, order) in plan.items():
        spec = EXTRA if name == "extra" else LABELED
        stored = [r for shard in read_split(str(tmp_path), name, spec, full=True) for r in shard]
        images, labels = source[split]
        assert [int(r["image/class/label"]) for r in stored] == [labels[i] + 1 for i in order]
        for k in (0, n // 2, n - 1):
            expected = tf.image.encode_jpeg(images[order[k]], format="rgb", quality=100).numpy()
            assert stored[k]["image/encoded"] == expected
