"""SIGKILL predict.py and filter_unlabel.py at several points (early, while a file is being written, between
shards), run them again, and check: the final outputs equal an uninterrupted run's, byte for byte; no file was
ever visible under a final name with other content than that; no temporary file is left."""

import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

import jobs_helper
import offline_data
import tiny_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_SHARDS = 4
COMMON = jobs_helper.TINY + ["--seed=1"]


def tree(directory):
    """{relative path: bytes} of the final-named files under `directory` (not temporaries, not sidecars)."""
    files = {}
    for base, _, names in os.walk(directory):
        for name in names:
            if not name.startswith(".") and not name.endswith(".inputs"):
                path = os.path.join(base, name)
                with open(path, "rb") as f:
                    files[os.path.relpath(path, directory)] = f.read()
    return files


def temporaries(directory):
    return [os.path.join(b, n) for b, dirs, names in os.walk(directory) for n in names + dirs if n.startswith(".")]


class Watcher(threading.Thread):
    """Looks at every final-named file under `directory` every few ms while jobs run; any content other than
    the uninterrupted run's is a partial (or wrong) file visible under a final name."""

    def __init__(self, directory, reference):
        super().__init__(daemon=True)
        self.directory, self.reference = directory, reference
        self.violations, self.checks, self.running = [], 0, True

    def run(self):
        while self.running:
            for base, _, names in os.walk(self.directory):
                for name in names:
                    if name.startswith(".") or name.endswith(".inputs"):
                        continue
                    path = os.path.join(base, name)
                    try:
                        with open(path, "rb") as f:
                            content = f.read()
                    except FileNotFoundError:
                        continue
                    self.checks += 1
                    if content != self.reference.get(os.path.relpath(path, self.directory)):
                        self.violations.append(path)
            time.sleep(0.005)


def run_with_kills(command, out_dir, reference, triggers):
    """Runs `command` once per trigger, killing it when the trigger fires, then once to completion."""
    watcher = Watcher(out_dir, reference)
    watcher.start()
    kills = 0
    try:
        for trigger in triggers:
            process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE)
            deadline = time.time() + 300
            while process.poll() is None and not trigger() and time.time() < deadline:
                time.sleep(0.002)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.communicate()
        final = subprocess.run(command, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=600)
        assert final.returncode == 0, final.stderr[-3000:]
    finally:
        watcher.running = False
        watcher.join()
    assert watcher.checks > 0 and watcher.violations == []
    return kills


def temp_appears(directory):
    return lambda: any(n.startswith(".") and ".tmp-" in n for _, _, names in os.walk(directory) for n in names)


def after(seconds):
    start = time.time()
    return lambda: time.time() - start > seconds


def count_final(directory, prefix):
    return lambda: os.path.isdir(directory) and sum(n.startswith(prefix) for n in os.listdir(directory)) >= 1


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    tiny_data.write_labeled(root / "lab", "train", tiny_data.balanced_labels(4), num_shards=2,
                            size=jobs_helper.TINY_SIZE)
    for shard in range(NUM_SHARDS):
        offline_data.write_image_shard(str(root / "unl" / ("extra-%05d-of-%05d" % (shard, NUM_SHARDS))),
                                       tiny_data.balanced_labels(40, seed=shard), seed=shard,
                                       size=jobs_helper.TINY_SIZE)
    teacher = str(root / "teacher")
    jobs_helper.train_job(COMMON + [f"--label_data_dir={root}/lab", f"--model_dir={teacher}",
                                    "--train_batch_size=8", "--train_steps=2", "--num_train_images=40"])
    return root, teacher


def predict_command(root, teacher, out):
    return [sys.executable, "predict.py", *COMMON, f"--predict_ckpt_path={teacher}", f"--label_data_dir={root}/unl",
            "--file_prefix=extra", f"--num_shards={NUM_SHARDS}", "--shard_id=" + ",".join(map(str, range(NUM_SHARDS))),
            f"--output_dir={out}/predict_label", f"--info_dir={out}/info", "--predict_batch_size=4"]


def filter_command(root, predictions, out, *extra):
    return [sys.executable, "filter_unlabel.py", f"--input_dir={root}/unl", "--file_prefix=extra",
            f"--prediction_dir={predictions}/predict_label", f"--info_dir={predictions}/info",
            f"--prelim_stats_dir={out}/prelim_stats", f"--output_dir={out}/filter_data",
            f"--num_shards={NUM_SHARDS}", "--num_label_classes=10", "--task=0", "--num_image=60", *extra]


def test_sigkilled_predict_and_filter_finish_with_the_uninterrupted_outputs(setup, tmp_path):
    root, teacher = setup
    random.seed(3)
    reference = tmp_path / "reference"
    subprocess.run(predict_command(root, teacher, reference), cwd=ROOT, check=True, capture_output=True)
    subprocess.run(filter_command(root, reference, reference, "--all_shards"), cwd=ROOT, check=True,
                   capture_output=True)
    expected = tree(reference)
    assert any(k.startswith("filter_data/data/") for k in expected)
    assert any(k.startswith("filter_data/samples/") for k in expected)

    killed = tmp_path / "killed"
    kills = run_with_kills(predict_command(root, teacher, killed), str(killed), expected, [
        after(random.uniform(1.0, 4.0)),                  # early: start-up, model loading
        temp_appears(str(killed / "predict_label")),      # while a prediction file is being written
        count_final(str(killed / "predict_label"), "train-info"),  # between shards
    ])
    # The filter, as one --all_shards process, killed early, mid-write and between stages.
    kills += run_with_kills(filter_command(root, killed, killed, "--all_shards"), str(killed), expected, [
        after(random.uniform(0.5, 3.0)),
        temp_appears(str(killed / "filter_data" / "data")),
        count_final(str(killed / "filter_data" / "stats"), "stats_"),
    ])
    assert kills >= 4, "too few runs were still going when their kill point came"
    assert tree(killed) == expected
    assert temporaries(str(killed)) == []


def test_sigkilled_per_shard_filter_jobs_resume(setup, tmp_path):
    """The upstream two-phase loop (shards in descending order), each job killed once while writing."""
    root, teacher = setup
    predictions = tmp_path / "predictions"
    subprocess.run(predict_command(root, teacher, predictions), cwd=ROOT, check=True, capture_output=True)
    reference = tmp_path / "reference"
    subprocess.run(filter_command(root, predictions, reference, "--all_shards"), cwd=ROOT, check=True,
                   capture_output=True)
    expected = tree(reference)
    out = tmp_path / "killed"
    for phase in (1, 0):
        for shard in reversed(range(NUM_SHARDS)):
            args = filter_command(root, predictions, out, f"--shard_id={shard}", f"--only_get_stats={phase}")
            if phase == 0 and shard in (2, 0):  # a worker shard and the master, killed while writing their data
                assert run_with_kills(args, str(out), expected, [temp_appears(str(out / "filter_data" / "data"))])
            else:
                jobs_helper.filter_job(args[2:])
    assert tree(out) == expected
    assert temporaries(str(out)) == []


def test_filter_entry_point_exits_non_zero_with_the_missing_file_named(tmp_path):
    result = subprocess.run(
        [sys.executable, "filter_unlabel.py", f"--input_dir={tmp_path}", f"--prediction_dir={tmp_path}/none",
         f"--info_dir={tmp_path}", f"--prelim_stats_dir={tmp_path}/p", f"--output_dir={tmp_path}/o",
         "--num_shards=2", "--shard_id=1", "--num_label_classes=10", "--only_get_stats=1"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "prediction file" in result.stderr and "train-info-00001-of-00002-00000 does not exist" in result.stderr
    assert not os.path.exists(tmp_path / "p" / "prelim_stats_00001_-1.json")
