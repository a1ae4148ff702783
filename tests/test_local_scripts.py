"""The shell workflows of local_scripts/ run end to end on tiny data, as a user runs them (bash, from any
directory), with the configuration shrunk through their environment variables: a tiny network, one or two
steps, few images."""

import json
import os
import subprocess

import numpy as np
import pytest
import scipy.io

import jobs_helper
import prewarmed
import tiny_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_NET = "--width_coefficient=0.25 --depth_coefficient=0.25"


def bash(script, env, *args, expect=0):
    """Runs a workflow script; its `"$PYTHON" script.py` runs are forks of a pre-imported interpreter."""
    result = subprocess.run(["bash", os.path.join(ROOT, "local_scripts", script), *args], cwd="/",
                            env={**os.environ, **prewarmed.shell_env(), **env}, capture_output=True, text=True,
                            timeout=900, stdin=subprocess.DEVNULL)
    assert result.returncode == expect, f"{script}: {result.stderr[-3000:]}"
    return result


def shard_files(directory, prefix):
    return sorted(n for n in os.listdir(directory) if n.startswith(prefix))


def test_svhn_prepro_writes_upstreams_layout_from_mat_files(tmp_path):
    # Small stand-ins for the three original .mat files (train must hold more than the 4000 dev images).
    raw = tmp_path / "raw"
    raw.mkdir()
    rng = np.random.RandomState(0)
    for split, n in (("train", 4010), ("test", 20), ("extra", 30)):
        labels = rng.randint(1, 11, size=(n, 1)).astype(np.uint8)
        images = tiny_data.class_images(labels.ravel() % 10, rng)
        scipy.io.savemat(raw / f"{split}_32x32.mat", {"X": np.transpose(images, [1, 2, 3, 0]), "y": labels})
    bash("svhn/prepro.sh", {"DATA_ROOT": str(tmp_path / "data"), "RAW_DATA_DIR": str(raw)})
    proc = tmp_path / "data" / "proc"
    assert len(shard_files(proc, "train-")) == 128 and len(shard_files(proc, "dev-")) == 64
    assert len(shard_files(proc / "unlabeled", "extra-")) == 128


def test_svhn_workflow(tmp_path):
    """train_teacher, run, predict, filter, offline training and reassign on the layout prepro.sh writes (here
    with 4 unlabeled shards instead of 128, to keep the test short)."""
    proc = tmp_path / "data" / "proc"
    tiny_data.write_labeled(proc, "train", tiny_data.balanced_labels(3), num_shards=2)
    tiny_data.write_labeled(proc, "dev", tiny_data.balanced_labels(1, seed=5), seed=5)
    tiny_data.write_labeled(proc, "test", tiny_data.balanced_labels(2, seed=6), seed=6)
    tiny_data.write_unlabeled(proc / "unlabeled", tiny_data.balanced_labels(4, seed=3), seed=3, num_shards=4)
    env = {"DATA_ROOT": str(tmp_path / "data"), "NUM_SHARDS": "4",
           "TEACHER_CKPT": str(tmp_path / "ckpt" / "teacher"), "MODEL_DIR": str(tmp_path / "ckpt" / "exp_1"),
           "EXTRA_FLAGS": f"{TINY_NET} --num_train_images=30", "TRAIN_STEPS": "1", "NUM_IMAGE": "4",
           "MIN_THRESHOLD": "0.0"}

    # Without a teacher, run.sh says how to get one.
    missing = bash("svhn/run.sh", env, expect=1)
    assert "no teacher checkpoint" in missing.stderr and "train_teacher.sh" in missing.stderr

    bash("svhn/train_teacher.sh", env)
    assert os.path.exists(tmp_path / "ckpt" / "teacher" / "eval_results.json")
    bash("svhn/run.sh", env)
    with open(tmp_path / "ckpt" / "exp_1" / "eval_results.json") as f:
        assert json.load(f)["test"]["num_images"] == 20
    bash("svhn/predict.sh", env)
    assert len(shard_files(tmp_path / "data" / "predict" / "predict_label", "train-info-")) == 4
    bash("svhn/filter_unlabel.sh", env)
    filtered = tmp_path / "data" / "predict" / "filter_data"
    with open(filtered / "stats" / "final_stats.json") as f:
        assert json.load(f)["total_cnt"] > 0
    bash("svhn/run_offline.sh", {**env, "MODEL_DIR": str(tmp_path / "ckpt" / "offline")})
    assert os.path.exists(tmp_path / "ckpt" / "offline" / "eval_results.json")
    # As upstream, reassign re-labels with the teacher by default, not with the student in MODEL_DIR.
    reassigned = bash("svhn/reassign.sh", env)
    assert f"reassigning with predict_ckpt_path: {tmp_path / 'ckpt' / 'teacher'}" in reassigned.stderr
    assert shard_files(tmp_path / "data" / "predict" / "reassign", "train-0-") == shard_files(filtered / "data",
                                                                                               "train-0-")


@pytest.mark.parametrize("script", ["train.sh", "train_offline.sh", "eval.sh", "predict.sh", "filter_unlabel.sh",
                                    "reassign.sh"])
def test_imagenet_scripts_name_an_empty_required_variable(script):
    result = bash(f"imagenet/{script}", {"LABEL_DATA_DIR": "", "UNLABEL_DATA_DIR": "", "MODEL_NAME": ""}, expect=1)
    assert "is empty: set it at the top of local_scripts/imagenet/common.sh" in result.stderr


def test_imagenet_workflow(tmp_path):
    data = tmp_path / "imagenet"
    size = jobs_helper.TINY_SIZE
    tiny_data.write_labeled(data / "lab", "train", tiny_data.balanced_labels(4), num_shards=2, size=size)
    # Standard ImageNet shards name the evaluation split validation-* (the original eval could not read it).
    tiny_data.write_labeled(data / "lab", "validation", tiny_data.balanced_labels(2, seed=5), seed=5, size=size)
    tiny_data.write_unlabeled(data / "unl", tiny_data.balanced_labels(4, seed=3), seed=3, size=size, num_shards=4)
    teacher = str(tmp_path / "teacher")
    jobs_helper.train_job(teacher, data / "lab", input__train_batch_size=8, optim__train_steps=1,
                          optim__num_train_images=40)
    env = {"LABEL_DATA_DIR": str(data / "lab"), "UNLABEL_DATA_DIR": str(data / "unl"),
           "MODEL_NAME": "efficientnet-b0", "TEACHER_CKPT": teacher, "MODEL_DIR": str(tmp_path / "student"),
           "PREDICT_ROOT": str(tmp_path / "predict"), "NUM_SHARDS": "4", "NUM_LABEL_CLASSES": "10",
           "NUM_IMAGE": "4", "MIN_THRESHOLD": "0.0",
           "EXTRA_FLAGS": " ".join(jobs_helper.TINY_FLAGS[1:4]) + f" {TINY_NET} --train_batch_size=8 --train_steps=1 "
                          "--num_train_images=40 --unlabel_ratio=1"}
    bash("imagenet/train.sh", env)
    bash("imagenet/eval.sh", env)
    with open(tmp_path / "student" / "eval_results.json") as f:
        assert set(json.load(f)) == {"validation"}
    bash("imagenet/predict.sh", env)
    bash("imagenet/filter_unlabel.sh", env)
    bash("imagenet/train_offline.sh", {**env, "MODEL_DIR": str(tmp_path / "offline")})
    assert os.path.exists(tmp_path / "offline" / "checkpoint")
    reassigned = bash("imagenet/reassign.sh", env)
    assert f"reassigning with predict_ckpt_path: {teacher}" in reassigned.stderr
    assert shard_files(tmp_path / "predict" / "reassign", "train-0-")
