"""Storage that refuses writes: a clear error, no corrupt output, and the same command finishes once it can write.

"Disk full" is a real kernel limit here: the job runs with RLIMIT_FSIZE, so any write past the limit fails with
EFBIG ("File too large") exactly where a full disk fails with ENOSPC. A read-only directory cannot be made for
root (these tests may run as root), so that case injects the error TensorFlow's file layer raises on one.
"""

import errno
import sys

import pytest
import tensorflow as tf

import fault_harness
import jobs_helper
import offline_data
import prewarmed
import tiny_data
from noisy_student_tf import file_names
from noisy_student_tf import storage
from noisy_student_tf.errors import OutputError

NUM_SHARDS = 2
LIMIT_BYTES = 2000  # above the small JSON files, below a prediction shard of 40 records


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("storage")
    tiny_data.write_labeled(root / "lab", "train", tiny_data.balanced_labels(2), size=jobs_helper.TINY_SIZE)
    jobs_helper.train_job(root / "teacher", root / "lab", optim__train_steps=1, input__train_batch_size=4,
                          optim__num_train_images=20)
    for shard in range(NUM_SHARDS):
        offline_data.write_image_shard(str(root / "unl" / file_names.shard_name("extra", shard, NUM_SHARDS)),
                                       tiny_data.balanced_labels(4, seed=shard), seed=shard,
                                       size=jobs_helper.TINY_SIZE)
    return root


def limited(command, limit):
    """Runs `command` with every file it writes limited to `limit` bytes."""
    return prewarmed.run(command[1:], cwd=fault_harness.ROOT, timeout=300,
                         rlimits={"RLIMIT_FSIZE": (limit, limit)})


def predict_command(root, out):
    return [sys.executable, "predict.py", *jobs_helper.TINY_FLAGS, f"--predict_ckpt_path={root}/teacher",
            f"--label_data_dir={root}/unl", "--file_prefix=extra", f"--num_shards={NUM_SHARDS}", "--shard_id=0,1",
            f"--output_dir={out}/predict_label", f"--info_dir={out}/info"]


def test_disk_full_during_predict_then_resume(inputs, tmp_path):
    reference, out = tmp_path / "reference", tmp_path / "out"
    fault_harness.run(predict_command(inputs, reference))
    expected = fault_harness.tree(reference)
    assert max(len(v) for v in expected.values()) > LIMIT_BYTES  # the limit does bite

    full = limited(predict_command(inputs, out), LIMIT_BYTES)
    assert full.returncode == 1, full.stderr[-2000:]
    assert "Traceback" not in full.stderr
    assert f"error: cannot write {out}/predict_label/train-info-00000-of-00002-00000: File too large." in full.stderr
    left = fault_harness.tree(out)
    assert all(left[name] == expected[name] for name in left)  # whatever is there is complete and correct
    assert fault_harness.temporaries(str(out)) == []

    fault_harness.run(predict_command(inputs, out))  # space again: the same command finishes the job
    assert fault_harness.tree(out) == expected


def test_disk_full_during_a_checkpoint_save_then_resume(inputs, tmp_path):
    command = [sys.executable, "train.py", *jobs_helper.TINY_FLAGS, f"--label_data_dir={inputs}/lab",
               f"--model_dir={tmp_path}/model", "--train_steps=2", "--train_batch_size=4", "--num_train_images=20",
               "--save_checkpoints_steps=1", "--iterations_per_loop=1"]
    full = limited(command, 20_000)  # the run's small files fit, a checkpoint does not
    assert full.returncode == 1, full.stderr[-2000:]
    assert "Traceback" not in full.stderr and "File too large" in full.stderr and "error: cannot write" in full.stderr
    assert not list((tmp_path / "model").glob("model.ckpt-*.index"))
    assert not (tmp_path / "model" / "checkpoint").exists()

    finished = fault_harness.run(command)
    assert "resumed" not in finished.stderr  # nothing half-saved was taken for a checkpoint
    assert (tmp_path / "model" / "checkpoint").exists()
    assert fault_harness.temporaries(str(tmp_path / "model")) == []


def test_read_only_directory_is_a_clear_error_without_output(tmp_path, monkeypatch):
    def refuse(path, mode="r"):  # what TensorFlow's file layer raises on a read-only mount
        raise tf.errors.PermissionDeniedError(None, None, f"{path}; Read-only file system")

    monkeypatch.setattr(tf.io.gfile, "GFile", refuse)
    with pytest.raises(OutputError, match=r"cannot write .*out/result.json: Read-only file system.*run the same "
                                          r"command again"):
        storage.write_text(str(tmp_path / "out" / "result.json"), "{}")
    assert not (tmp_path / "out" / "result.json").exists()


def test_an_error_inside_the_write_keeps_nothing(tmp_path):
    final = tmp_path / "shard"
    with pytest.raises(OutputError, match=r"cannot write .*shard: No space left on device"):
        with storage.atomic_output(str(final)) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="a bug stays a bug"):  # other errors are not relabelled
        with storage.atomic_output(str(final)):
            raise ValueError("a bug stays a bug")
