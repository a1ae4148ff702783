"""The original local_scripts/svhn/run.sh and svhn_offline.sh command lines run unchanged, on small
data laid out where the scripts expect it. Only --train_steps=1 is appended: the scripts' 109474 steps of a
full EfficientNet-B0 at 128 + 640 images per step would take days on this machine."""

import json
import os

import keras
import numpy as np
import pytest

import prewarmed
import tiny_data
from noisy_student_tf.models import build_model
from noisy_student_tf.models.tf1_checkpoint import tf1_weight_names
from tf1_writer import write_tf1_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# All main.py calls of the upstream scripts (`local_scripts/svhn/*.sh`) pass these.
BASE = "--use_tpu=False --use_bfloat16=False"
RUN_SH_TRAIN = (
    "main.py --model_name=efficientnet-b0 --task_name=svhn --mode=train --train_batch_size=128 "
    "--iterations_per_loop=1000 --save_checkpoints_steps=1000 --unlabel_ratio=5 --teacher_softmax_temp=1 "
    "--augment_name=v1 --randaug_mag=5 --final_base_lr=0.0002 --weight_decay=1e-4 "
    "--label_data_dir=./data/svhn/proc --teacher_model_name=efficientnet-b0 "
    "--teacher_model_path=ckpt/teacher_ckpt/model.ckpt --model_dir=./ckpt/exp_1 "
    f"--unlabel_data_dir=./data/svhn/proc/unlabeled {BASE}")
RUN_SH_EVAL = (f"main.py --model_name=efficientnet-b0 --task_name=svhn --mode=eval "
               f"--label_data_dir=./data/svhn/proc --model_dir=./ckpt/exp_1 {BASE}")
OFFLINE_TRAIN = (
    "main.py --model_name=efficientnet-b0 --task_name=svhn --mode=train --train_batch_size=128 "
    "--iterations_per_loop=1000 --save_checkpoints_steps=1000 --unlabel_ratio=5 --teacher_softmax_temp=1 "
    "--augment_name=v1 --randaug_mag=5 --final_base_lr=0.0002 --weight_decay=1e-4 "
    "--label_data_dir=./data/svhn/proc --model_dir=./ckpt/exp_1 "
    f"--unlabel_data_dir=./data/svhn/predict/filter_data/data {BASE}")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """The layout upstream's `local_scripts/svhn/prepro.sh`, the teacher download and filter_unlabel.sh leave
    behind."""
    root = tmp_path_factory.mktemp("svhn_repo")
    proc = root / "data" / "svhn" / "proc"
    tiny_data.write_labeled(proc, "train", tiny_data.balanced_labels(13), num_shards=4)
    tiny_data.write_labeled(proc, "dev", tiny_data.balanced_labels(2, seed=5), seed=5)
    tiny_data.write_labeled(proc, "test", tiny_data.balanced_labels(2, seed=6), seed=6)
    tiny_data.write_unlabeled(proc / "unlabeled", tiny_data.balanced_labels(64, seed=3), seed=3)
    labels = tiny_data.balanced_labels(64, seed=4)
    probs = np.full((len(labels), 10), 0.02, np.float32)
    probs[np.arange(len(labels)), labels] = 0.82
    tiny_data.write_unlabeled(root / "data/svhn/predict/filter_data/data", labels, prefix="train-0",
                              probabilities=probs, seed=4)
    # The SVHN teacher as the original code saved it: TF1 names with EMA shadows (B0, small image, 10 classes).
    keras.utils.set_random_seed(0)
    teacher = build_model("efficientnet-b0", 10, small_image_model=True)
    values = {f"efficientnet-b0/{name}": v.numpy() for v, name in tf1_weight_names(teacher)}
    write_tf1_checkpoint(str(root / "ckpt/teacher_ckpt/model.ckpt"), values, shadows=values, global_step=1)
    return root


def run(command, cwd):
    script, *args = command.split()
    result = prewarmed.run([os.path.join(ROOT, script), *args], cwd=cwd, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


@pytest.mark.xdist_group("memory")  # 13 GB at 768 images per step: never beside another large test
def test_run_sh_and_svhn_offline_sh_commands_run_unchanged(workdir):
    log = run(RUN_SH_TRAIN + " --train_steps=1", workdir)
    assert "teacher: original TF1 checkpoint, loaded 311 tensors" in log
    assert "768 images per step (128 labeled + 640 unlabeled)" in log
    run(RUN_SH_EVAL, workdir)
    with open(workdir / "ckpt/exp_1/eval_results.json") as f:
        results = json.load(f)
    assert results["dev"]["num_images"] == 20 and results["test"]["num_images"] == 20

    os.rename(workdir / "ckpt/exp_1", workdir / "ckpt/online")  # svhn_offline.sh reuses ./ckpt/exp_1
    log = run(OFFLINE_TRAIN + " --train_steps=1", workdir)
    assert "768 images per step" in log and "teacher:" not in log
    with open(workdir / "ckpt/exp_1/FLAGS.json") as f:
        assert json.load(f)["unlabel_data_dir"] == "./data/svhn/predict/filter_data/data"
