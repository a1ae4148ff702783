"""Training options: precision policies and XLA, --fix_layer_num, --init_model, upstream's default mode and its
TPU-only flags."""

import dataclasses
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import jobs_helper
import prewarmed
import tiny_data
from noisy_student_tf.models import restore
from noisy_student_tf.models.restore import ema_shadow_key
from noisy_student_tf.training.trainer import Trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = jobs_helper.TINY_SIZE
BASE = dict(seed=2, optim__train_steps=2, input__train_batch_size=4, optim__num_train_images=40,
            loop__iterations_per_loop=1, loop__log_step_count_steps=1, loop__save_checkpoints_steps=2)
# The same as main.py flags, for the run through the real script.
BASE_FLAGS = ["--task_name=imagenet", "--small_image_model", "--input_image_size=16", "--num_label_classes=10",
              "--model_name=efficientnet-b0", "--width_coefficient=0.25", "--depth_coefficient=0.25",
              "--use_tpu=False", "--use_bfloat16=False", "--seed=2", "--train_steps=2", "--train_batch_size=4",
              "--num_train_images=40", "--iterations_per_loop=1", "--log_step_count_steps=1",
              "--save_checkpoints_steps=2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("options")
    tiny_data.write_labeled(root / "lab", "train", tiny_data.balanced_labels(2), size=SIZE)
    tiny_data.write_labeled(root / "lab", "dev", tiny_data.balanced_labels(1, seed=4), seed=4, size=SIZE)
    return root


# Model noise off: XLA may pick another stateless-RNG algorithm, which would change the dropout masks.
QUIET = dict(model__dropout_rate=0.0, model__stochastic_depth_rate=0.0)


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    return jobs_helper.train_job(tmp_path_factory.mktemp("ref"), data / "lab", **BASE, **QUIET)


@pytest.mark.parametrize("extra", [dict(runtime__precision="mixed_float16"),
                                   dict(runtime__precision="mixed_bfloat16"), dict(runtime__jit_compile=True)],
                         ids=["float16-loss-scaling", "bfloat16", "xla"])
def test_precision_and_xla_options_train(tmp_path, data, reference, extra):
    try:
        metrics = jobs_helper.train_job(tmp_path / "opt", data / "lab", **BASE, **QUIET, **extra)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(metrics["train/loss"])
    tolerance = 1e-3 if "runtime__jit_compile" in extra else 0.05  # XLA reorders float32 maths; 16-bit rounds
    assert metrics["lab/loss"] == pytest.approx(reference["lab/loss"], rel=tolerance)
    assert tf.train.latest_checkpoint(f"{tmp_path}/opt").endswith("model.ckpt-2")


def tiny_trainer(model_dir, **overrides):
    keras.utils.set_random_seed(0)
    cfg = jobs_helper.train_config(model_dir, "unused", input__train_batch_size=4, optim__base_learning_rate=0.1,
                                   optim__num_train_images=4, optim__train_steps=10,
                                   task=dataclasses.replace(jobs_helper.IMAGENET, mean=(0, 0, 0), std=(1, 1, 1)),
                                   **overrides)
    trainer = Trainer(cfg)
    trainer.initialize()
    return trainer


def test_fix_layer_num_freezes_the_stem_and_first_blocks(tmp_path):
    trainer = tiny_trainer(tmp_path, fix_layer_num=2)
    before = {v.path: v.numpy() for v in trainer.model.student.weights}
    batch = {"labeled": {"image": np.random.RandomState(0).uniform(0, 1, (4, SIZE, SIZE, 3)).astype(np.float32),
                         "label": np.arange(4, dtype=np.int32)}}
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    trainer.train_function(iter(trainer.strategy.distribute_datasets_from_function(lambda ctx: dataset)), 3)
    for variable in trainer.model.student.weights:
        frozen = variable.path.startswith(("stem_", "blocks_0_", "blocks_1_"))
        changed = not np.array_equal(variable.numpy(), before[variable.path])
        assert changed != frozen or variable.path.endswith(("moving_mean", "moving_variance")) and not frozen, \
            variable.path
    # Frozen weights are not averaged (upstream: not trainable, so not in the EMA) except BN statistics.
    shadows = set(trainer.model.ema.shadows)
    assert "stem_conv/kernel" not in shadows and "stem_bn/moving_mean" in shadows
    assert "blocks_2_project_conv/kernel" in shadows


def test_init_model_starts_the_student_from_the_ema_weights(tmp_path):
    source = tiny_trainer(tmp_path / "source")
    batch = {"labeled": {"image": np.random.RandomState(1).uniform(0, 1, (4, SIZE, SIZE, 3)).astype(np.float32),
                         "label": np.arange(4, dtype=np.int32)}}
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    source.train_function(iter(source.strategy.distribute_datasets_from_function(lambda ctx: dataset)), 3)
    source.save(3)
    ema = source.model.ema.values()
    student = tiny_trainer(tmp_path / "student", init_model_path=str(tmp_path / "source"))
    for variable in student.model.student.weights:
        expected = ema.get(variable.path)
        if expected is not None:
            np.testing.assert_array_equal(variable.numpy(), expected, err_msg=variable.path)
    # The student's own EMA starts at the initial weights.
    np.testing.assert_array_equal(student.model.ema.shadows["head_dense/kernel"].numpy(), ema["head_dense/kernel"])
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / "source")))
    assert reader.has_tensor(ema_shadow_key("head_dense/kernel"))
    assert restore.is_object_checkpoint(tf.train.latest_checkpoint(str(tmp_path / "source")))


def test_default_mode_trains_then_evaluates_and_tpu_flags_are_accepted(tmp_path, data):
    args = [a for a in BASE_FLAGS if not a.startswith("--seed")] + [
        f"--label_data_dir={data}/lab", f"--model_dir={tmp_path}/model", "--transpose_input=False",
        "--num_shards_per_group=8", "--master=grpc://10.0.0.2:8470", "--iterations_per_loop=1"]
    result = prewarmed.run([os.path.join(ROOT, "main.py"), *args], cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--num_shards_per_group=8 only configured TPUs upstream" in result.stderr
    assert "--master=grpc://10.0.0.2:8470 only configured TPUs upstream" in result.stderr
    assert "images/s | ETA" in result.stderr
    with open(tmp_path / "model" / "eval_results.json") as f:
        assert json.load(f)["dev"]["num_images"] == 10
    with open(tmp_path / "model" / "FLAGS.json") as f:
        assert isinstance(json.load(f)["seed"], int)  # drawn once and recorded
