"""Bad input to training and eval: a clear error naming the file/flag/value, and no checkpoint written."""

import os
import re

import numpy as np
import pytest
import tensorflow as tf

import flag_helper
import jobs_helper
import prewarmed
import tiny_data
from noisy_student_tf import file_names
from noisy_student_tf.cli import adapters
from noisy_student_tf.data import records
from noisy_student_tf.errors import CheckpointError, UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = jobs_helper.TINY_SIZE
BASE = dict(optim__train_steps=3, input__train_batch_size=4, optim__num_train_images=40, loop__log_step_count_steps=1,
            loop__iterations_per_loop=1, loop__save_checkpoints_steps=2)
# BASE as main.py's flags, for the real script and the command line's adapter.
BASE_FLAGS = jobs_helper.TINY_FLAGS + ["--train_steps=3", "--train_batch_size=4", "--num_train_images=40",
                                       "--log_step_count_steps=1", "--iterations_per_loop=1",
                                       "--save_checkpoints_steps=2"]


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    tiny_data.write_labeled(root / "lab", "train", tiny_data.balanced_labels(2), size=SIZE)
    tiny_data.write_unlabeled(root / "raw_extra", tiny_data.balanced_labels(2), size=SIZE)
    return root


def no_checkpoint_written(model_dir):
    return not os.path.exists(model_dir) or not [f for f in os.listdir(model_dir) if f.startswith(("model.ckpt",
                                                                                                    "checkpoint"))]


def train_fails(tmp_path, label_data_dir, match, error=UserError, **changes):
    model_dir = str(tmp_path / "model")
    with pytest.raises(error, match=match):
        jobs_helper.train_job(model_dir, label_data_dir, **{**BASE, **changes})
    assert no_checkpoint_written(model_dir)


def test_missing_data_dir(tmp_path):
    train_fails(tmp_path, tmp_path / "nowhere", r"--label_data_dir: directory '.*nowhere' does not exist")


def test_no_matching_files(tmp_path):
    (tmp_path / "empty").mkdir()
    train_fails(tmp_path, tmp_path / "empty", r"no files matching train\*")


def test_corrupt_record(tmp_path, good):
    bad = tmp_path / "corrupt"
    bad.mkdir()
    data = (good / "lab" / file_names.shard_name("train", 0, 2)).read_bytes()
    (bad / "train-00000-of-00001").write_bytes(data[:40] + b"\x00" * 16 + data[56:])  # breaks a record CRC
    train_fails(tmp_path, bad,
                r"bad training input near step 0 \(reading --label_data_dir=.*corrupt\): .*corrupted record")


def test_label_out_of_range(tmp_path):
    records.write_records(str(tmp_path / "lab" / "train-00000-of-00001"), [
        records.labeled_example(tiny_data.jpeg(tiny_data.class_images([1], np.random.RandomState(0), SIZE)[0]), 12)])
    train_fails(tmp_path, tmp_path / "lab", r"image/class/label - 1 outside 0..9")


def test_image_of_the_wrong_size_for_the_model(tmp_path):
    tiny_data.write_labeled(tmp_path / "big", "train", tiny_data.balanced_labels(1), size=32)
    train_fails(tmp_path, tmp_path / "big", r"small_image_model expects 16x16 images")


def test_raw_unlabeled_shards_without_a_teacher(tmp_path, good):
    train_fails(tmp_path, good / "lab", r"unlabeled record without teacher predictions",
                input__unlabel_data_dir=str(good / "raw_extra"), input__unlabel_ratio=1)


def test_nan_loss_stops_without_saving_the_diverged_state(tmp_path, good):
    model_dir = str(tmp_path / "model")
    with pytest.raises(UserError, match=r"non-finite training values by step (\d).*training diverged") as info:
        jobs_helper.train_job(model_dir, good / "lab", **BASE, optim__base_learning_rate=1e30)
    failed_at = int(re.search(r"by step (\d+)", str(info.value)).group(1))
    # The warmup starts at LR 0, so a checkpoint from before the divergence may exist; it must be finite.
    latest = tf.train.latest_checkpoint(model_dir)
    if latest:
        assert int(latest.rsplit("-", 1)[1]) < failed_at
        reader = tf.train.load_checkpoint(latest)
        for name in reader.get_variable_to_shape_map():
            value = reader.get_tensor(name)
            assert not np.issubdtype(np.asarray(value).dtype, np.floating) or np.all(np.isfinite(value)), name


def test_teacher_checkpoint_with_another_class_count(tmp_path, good):
    teacher_dir = str(tmp_path / "teacher")
    jobs_helper.train_job(teacher_dir, good / "lab", **{**BASE, "optim__train_steps": 1}, model__num_classes=12)
    train_fails(tmp_path, good / "lab", r"teacher .* does not fit the model \(teacher_model, 10 classes\)",
                CheckpointError, input__unlabel_data_dir=str(good / "raw_extra"), input__unlabel_ratio=1,
                teacher=jobs_helper.teacher(checkpoint=teacher_dir))


def test_missing_teacher_checkpoint_stops_before_step_one(tmp_path, good):
    unlabeled = dict(input__unlabel_data_dir=str(good / "raw_extra"), input__unlabel_ratio=1)
    train_fails(tmp_path, good / "lab", r"checkpoint '.*no_teacher/model.ckpt' not found", CheckpointError,
                **unlabeled, teacher=jobs_helper.teacher(checkpoint=tmp_path / "no_teacher" / "model.ckpt"))
    train_fails(tmp_path, good / "lab", r"--teacher_model_path is empty", **unlabeled,
                teacher=jobs_helper.teacher())


@pytest.mark.parametrize("changes, match", [
    (dict(augment__augment_name="v2"), r"unknown augment_name 'v2'"),
    (dict(input__train_batch_size=0), r"--train_batch_size must be positive"),
    (dict(input__unlabel_ratio=2), r"--unlabel_ratio > 0 needs --unlabel_data_dir"),
])
def test_bad_settings(tmp_path, good, changes, match):
    train_fails(tmp_path, good / "lab", match, **changes)


# Tests the command line's adapter: these values are flag text (names of a model and of a task).
@pytest.mark.parametrize("args, match", [
    (["--model_name=efficientnet-b9"], r"--model_name='efficientnet-b9' is not a model"),
    (["--task_name=cifar"], r"unknown --task_name='cifar'"),
])
def test_bad_flags(tmp_path, good, args, match):
    model_dir = str(tmp_path / "model")
    values = flag_helper.main_flags(*BASE_FLAGS, "--mode=train", f"--model_dir={model_dir}",
                                    f"--label_data_dir={good}/lab", *args)
    with pytest.raises(UserError, match=match):
        adapters.run_main(None, values)
    assert no_checkpoint_written(model_dir)


def test_eval_without_a_checkpoint(tmp_path, good):
    with pytest.raises(CheckpointError, match="holds no usable checkpoint"):
        os.makedirs(tmp_path / "fresh")
        jobs_helper.eval_job(tmp_path / "fresh", good / "lab")


def test_command_line_exits_non_zero_with_one_clear_line(tmp_path):
    result = prewarmed.run([os.path.join(ROOT, "train.py"), *BASE_FLAGS, f"--label_data_dir={tmp_path}/nowhere",
                            f"--model_dir={tmp_path}/model"], cwd=tmp_path, timeout=300)
    assert result.returncode == 1
    assert "error: --label_data_dir: directory" in result.stderr and "Traceback" not in result.stderr
    assert no_checkpoint_written(tmp_path / "model")
    result = prewarmed.run([os.path.join(ROOT, "main.py"), "--mode=serve"], cwd=tmp_path, timeout=300)
    assert result.returncode == 1 and "unknown --mode='serve'" in result.stderr
