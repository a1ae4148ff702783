"""Kill training with SIGKILL and start it again: it resumes from the last checkpoint, finishes at the requested
step, and with --deterministic ends with exactly the EMA weights of an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import jobs_helper
import tiny_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 60


@pytest.fixture(scope="module")
def args(tmp_path_factory):
    data = tmp_path_factory.mktemp("resume_data")
    size = jobs_helper.TINY_SIZE
    tiny_data.write_labeled(data / "lab", "train", tiny_data.balanced_labels(8), num_shards=3, size=size)
    labels = tiny_data.balanced_labels(20, seed=2)
    probs = np.full((len(labels), 10), 0.05, np.float32)
    probs[np.arange(len(labels)), labels] = 0.55
    tiny_data.write_unlabeled(data / "unl", labels, prefix="train-0", probabilities=probs, size=size)
    # Every source of randomness is on: RandAugment, dropout, stochastic depth, the labeled-example mask,
    # and shuffled labeled and unlabeled streams.
    return jobs_helper.TINY + [
        "--mode=train", "--seed=5", "--deterministic", f"--train_steps={STEPS}", "--iterations_per_loop=10",
        "--save_checkpoints_steps=10", "--log_step_count_steps=10", "--keep_checkpoint_max=10",
        "--train_batch_size=8", "--num_train_images=80", f"--label_data_dir={data}/lab",
        f"--unlabel_data_dir={data}/unl", "--unlabel_ratio=2", "--teacher_softmax_temp=1",
        "--label_data_sample_prob=0.75", "--augment_name=v1", "--randaug_mag=15"]


def start(args, model_dir):
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), *args, f"--model_dir={model_dir}"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(process):
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    return stderr


def checkpoint_tensors(model_dir):
    prefix = tf.train.latest_checkpoint(model_dir)
    reader = tf.train.load_checkpoint(prefix)
    names = [n for n in reader.get_variable_to_shape_map() if n.startswith(("ema/", "model/"))]
    return prefix, {n: reader.get_tensor(n) for n in names}


def test_sigkill_then_resume_equals_an_uninterrupted_run(args, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    uninterrupted = start(args, whole)
    victim = start(args, killed)
    deadline = time.time() + 600
    # Wait until the `checkpoint` file names a checkpoint (it is written after the checkpoint's files), then
    # kill at whatever the run is doing: a step, or the next checkpoint's save.
    while tf.train.get_checkpoint_state(str(killed)) is None:
        assert victim.poll() is None, victim.stderr.read()[-3000:]
        assert time.time() < deadline
        time.sleep(0.02)
    assert victim.poll() is None, "finished before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.wait()

    # What the killed run left is usable: every checkpoint the index names is complete and readable.
    state = tf.train.get_checkpoint_state(str(killed))
    assert state is not None
    for path in state.all_model_checkpoint_paths:
        assert tf.train.load_checkpoint(path).get_variable_to_shape_map()
    interrupted_at = int(state.model_checkpoint_path.rsplit("-", 1)[1])
    assert 10 <= interrupted_at < STEPS

    stderr = finish(start(args, killed))
    assert f"resumed from {state.model_checkpoint_path} at step {interrupted_at}" in stderr
    finish(uninterrupted)

    prefix_a, whole_tensors = checkpoint_tensors(whole)
    prefix_b, resumed_tensors = checkpoint_tensors(killed)
    assert prefix_a.endswith(f"model.ckpt-{STEPS}") and prefix_b.endswith(f"model.ckpt-{STEPS}")
    assert sorted(whole_tensors) == sorted(resumed_tensors) and any(n.startswith("ema/") for n in whole_tensors)
    for name, value in whole_tensors.items():
        np.testing.assert_array_equal(resumed_tensors[name], value, err_msg=name)
