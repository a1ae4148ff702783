"""The file layer (noisy_student_tf/storage.py): every read and write of a user's path goes through it, so any path
may be a TensorFlow filesystem URL. Here on `ram://` (TensorFlow's in-memory filesystem, which no local-file call
can reach) and on `gs://` without network or credentials (this machine has neither)."""

import ast
import glob
import json
import os

import pytest
import tensorflow as tf

import jobs_helper
import prewarmed
import tiny_data
from noisy_student_tf import file_names
from noisy_student_tf import storage
from noisy_student_tf.data import records
from noisy_student_tf.errors import UnreachableStorage, UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The layer itself, and the one documented local-only place: FLAGS.md of the source checkout.
ALLOWED = {"noisy_student_tf/storage.py", "noisy_student_tf/cli/reference.py"}
LOCAL_MODULES = {"shutil", "tempfile", "glob", "pathlib"}
LOCAL_OS_CALLS = {"listdir", "makedirs", "mkdir", "replace", "rename", "remove", "unlink", "rmdir", "walk",
                  "scandir", "stat", "lstat", "chdir", "open", "fsync", "removedirs", "renames"}


def _dotted(node) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def local_file_calls(path: str) -> list[str]:
    """`file:line name` of every local-file call and import in a source file."""
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    found = []
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
            name = "open"
        elif isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            head, _, rest = dotted.partition(".")
            if dotted.startswith("os.path.") and dotted.count(".") == 2:
                name = dotted
            elif head == "os" and rest in LOCAL_OS_CALLS:
                name = dotted
            elif head in LOCAL_MODULES and rest:
                name = dotted
            elif dotted.startswith("tf.io.gfile.") or dotted.startswith("io.open"):
                name = dotted
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            imported = [a.name for a in node.names] if isinstance(node, ast.ImportFrom) else []
            if any(m.split(".")[0] in LOCAL_MODULES for m in modules) or (
                    modules == ["os"] and set(imported) & (LOCAL_OS_CALLS | {"path"})) or modules == ["os.path"]:
                name = f"import {', '.join(modules + imported)}"
        if name:
            found.append(f"{path}:{node.lineno} {name}")
    return found


def test_no_local_file_call_outside_the_file_layer():
    sources = sorted(glob.glob(os.path.join(ROOT, "noisy_student_tf", "**", "*.py"), recursive=True))
    sources += sorted(glob.glob(os.path.join(ROOT, "*.py")))
    offenders = []
    for source in sources:
        relative = os.path.relpath(source, ROOT)
        if relative not in ALLOWED:
            offenders += local_file_calls(relative)
    assert offenders == []


def test_the_scan_finds_each_kind_of_local_call(tmp_path, monkeypatch):
    """The scan above is only a proof if it can fail: each forbidden form in a file is reported."""
    source = tmp_path / "noisy_student_tf" / "offender.py"
    source.parent.mkdir()
    source.write_text("import os\nimport shutil\nfrom os import path\nimport tensorflow as tf\n"
                      "open('x')\nos.path.join('a', 'b')\nos.listdir('.')\nos.makedirs('d')\nos.replace('a', 'b')\n"
                      "shutil.rmtree('d')\ntf.io.gfile.exists('x')\nos.cpu_count()\nos.environ.get('X')\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", str(tmp_path))
    found = [entry.split(" ", 1)[1] for entry in local_file_calls("noisy_student_tf/offender.py")]
    assert found == ["import shutil", "import os, path", "open", "os.path.join", "os.listdir", "os.makedirs",
                     "os.replace", "shutil.rmtree", "tf.io.gfile.exists"]


# --- the layer on ram:// ---

def test_atomic_writes_reads_and_listing_on_ram():
    root = "ram://layer/basic"
    storage.write_json(storage.join(root, "a", "value.json"), {"x": 1})
    storage.write_bytes(storage.join(root, "b.bin"), b"\x00\x01")
    assert storage.read_json(storage.join(root, "a", "value.json")) == {"x": 1}
    assert storage.read_bytes(storage.join(root, "b.bin")) == b"\x00\x01"
    assert storage.listdir(root) == ["a", "b.bin"]  # no temporary is left under any name
    assert storage.isdir(storage.join(root, "a")) and storage.isfile(storage.join(root, "b.bin"))
    assert storage.glob(storage.join(root, "*.bin")) == [storage.join(root, "b.bin")]
    assert [(d, s, f) for d, s, f in storage.walk(root)] == [(root, ["a"], ["b.bin"]),
                                                             (storage.join(root, "a"), [], ["value.json"])]
    assert storage.stamp(storage.join(root, "b.bin"))[0] == 2 and storage.stamp(root + "/none") == "missing"
    assert storage.parent(storage.join(root, "a", "value.json")) == storage.join(root, "a")
    assert storage.basename(root + "/a/") == "a" and storage.relative(root + "/a/value.json", root) == "a/value.json"
    with pytest.raises(UserError, match=r"^info ram://layer/basic/none does not exist: run predict$"):
        storage.read_bytes(root + "/none", "info", "run predict")
    storage.write_text(storage.join(root, "bad.json"), "{")
    with pytest.raises(UserError, match=r"ram://layer/basic/bad.json is not valid JSON"):
        storage.read_json(storage.join(root, "bad.json"))


def test_a_failed_write_leaves_nothing_on_ram():
    root = "ram://layer/failed"
    with pytest.raises(RuntimeError):
        with storage.atomic_output(storage.join(root, "shard")) as tmp:
            with tf.io.TFRecordWriter(tmp) as writer:
                writer.write(b"half")
            raise RuntimeError("killed mid-way")
    assert storage.listdir(root) == []


def test_move_tree_on_an_object_store_moves_every_file():
    """TensorFlow's ram:// (like an object store) has no directory rename: its own rename of a directory drops the
    files below it. move_tree moves them one by one."""
    source, target = "ram://layer/move/tmp", "ram://layer/move/out"
    storage.write_text(storage.join(source, "sub", "a.txt"), "a")
    storage.write_text(storage.join(source, "info.json"), "{}")
    storage.move_tree(source, target, last="info.json")
    assert [(storage.relative(d, target), f) for d, _, f in storage.walk(target)] == [
        (".", ["info.json"]), ("sub", ["a.txt"])]
    assert not storage.exists(source)


def test_dead_temporaries_on_ram_are_removed_and_live_ones_kept():
    root = "ram://layer/temps"
    dead = storage.join(root, f".x.tmp-{storage.HOST}-999999999-ab")  # no such process
    live = storage.join(root, f".y.tmp-{storage.HOST}-{os.getpid()}-cd")
    for path in (dead, live):
        storage.write_text(path, "")
    assert storage.remove_dead_temporaries(root) == 1
    assert storage.listdir(root) == [storage.basename(live)]


def test_records_and_shard_listing_on_ram():
    root = "ram://layer/records"
    for shard in range(2):
        records.write_records(storage.join(root, file_names.shard_name("train", shard, 2)), [b"r1", b"r2"])
    files = records.find_files(root, ["train"])
    assert files == [storage.join(root, "train-00000-of-00002"), storage.join(root, "train-00001-of-00002")]
    assert records.first_unreadable(files) is None
    data = storage.read_bytes(files[1])
    storage.write_bytes(files[1], data[:-3])
    assert records.first_unreadable(files) == (files[1], "truncated record at 18")
    with pytest.raises(UserError, match=r"--label_data_dir: directory 'ram://layer/none' does not exist"):
        records.find_files("ram://layer/none", ["train"])


# --- gs:// without network or credentials ---

def test_an_unreachable_bucket_is_named_with_the_likely_cause():
    with pytest.raises(UnreachableStorage, match=r"cannot reach gs://no-such-bucket-x/data: .*credentials"):
        storage.exists("gs://no-such-bucket-x/data")
    with pytest.raises(UnreachableStorage, match=r"cannot reach gs://no-such-bucket-x/d"):
        records.find_files("gs://no-such-bucket-x/d", ["train"])


def test_scratch_files_of_remote_outputs_are_local_and_anonymous(tmp_path):
    before = set(os.listdir(tmp_path))
    with storage.scratch_file(near=str(tmp_path / "out")) as f:
        f.write(b"spooled")
        f.seek(0)
        assert f.read() == b"spooled"
    assert set(os.listdir(tmp_path)) == before | {"out"} and os.listdir(tmp_path / "out") == []
    with storage.scratch_file(near="ram://layer/scratch") as f:
        f.write(b"x")
    assert not storage.exists("ram://layer/scratch")


# --- the programs and the main job on ram:// ---

def test_every_program_on_ram_writes_the_files_of_a_local_run(tmp_path):
    """prepro_digits, prepro_images (a folder read from ram:// too), proc_svhn (.mat files read from ram://),
    train, eval, predict, filter_unlabel (one shard at a time, and --all_shards), reassign, export,
    convert_checkpoint --to_tf1, predict from that TF1 checkpoint and the Beam pipeline (FnApiRunner, in this
    process), each through its real flag adapter, in one process (tests/ram_programs.py)."""
    report_path = tmp_path / "report.json"
    result = prewarmed.run([os.path.join(ROOT, "tests", "ram_programs.py"), str(tmp_path / "root"), str(report_path)],
                           cwd=str(tmp_path), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert report["files"] > 500 and report["stats"]["total_cnt"] > 0
    assert (report["only_local"], report["only_ram"], report["differ"]) == ([], [], [])
    assert report["events"] == [1, 1] and report["scalars_equal"] == [True] and report["serving_outputs_equal"]
    # Nothing of the ram:// run was written locally. Beam's runner and TensorFlow's autograph keep scratch in the
    # temporary directory (empty folders, generated code): theirs, not an output.
    assert report["left_locally"]["cwd"] == []
    assert [name for name in report["left_locally"]["tmp"]
            if not name.startswith(("beam-", "tmp", "__autograph_generated_file"))] == []


def test_main_py_with_a_ram_model_dir_leaves_no_local_folder(tmp_path):
    """Once a local folder `ram:/bucket/m` received FLAGS.json and model_params.txt while the checkpoints went to
    ram://. ram:// dies with the process, so the run reports what it wrote before it ends."""
    data = tmp_path / "data"
    tiny_data.write_labeled(data, "train", tiny_data.balanced_labels(2), size=jobs_helper.TINY_SIZE)
    work = tmp_path / "work"
    work.mkdir()
    result = prewarmed.run([os.path.join(ROOT, "tests", "ram_main_py.py"), *jobs_helper.TINY_FLAGS, "--mode=train",
                            f"--label_data_dir={data}", "--model_dir=ram://bucket/m", "--train_steps=2",
                            "--train_batch_size=4", "--num_train_images=20"], cwd=str(work), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.listdir(work) == []
    written = json.loads(result.stdout.splitlines()[-1])
    assert {"FLAGS.json", "model_params.txt", "checkpoint", "model.ckpt-2.index"} <= set(written)
