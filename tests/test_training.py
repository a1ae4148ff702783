"""Training end to end through the real jobs: a teacher learns, an online-teacher student learns from the
unlabeled stream alone, and the run leaves upstream's files (FLAGS.json, model_params.txt, summaries)."""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import jobs_helper
import tiny_data

SIZE = jobs_helper.TINY_SIZE
COMMON = dict(seed=1, loop__iterations_per_loop=100, loop__save_checkpoints_steps=100,
              loop__log_step_count_steps=50)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    tiny_data.write_labeled(root / "lab", "train", tiny_data.balanced_labels(20), num_shards=4, size=SIZE)
    # The student's labeled set: 10 images each of classes 0 and 1 only.
    tiny_data.write_labeled(root / "two_classes", "train", np.repeat([0, 1], 10), seed=9, size=SIZE)
    for sub in ("lab", "two_classes"):
        tiny_data.write_labeled(root / sub, "dev", tiny_data.balanced_labels(10, seed=5), seed=5, size=SIZE)
        tiny_data.write_labeled(root / sub, "test", tiny_data.balanced_labels(10, seed=6), seed=6, size=SIZE)
    tiny_data.write_unlabeled(root / "unl", tiny_data.balanced_labels(60, seed=3), seed=3, size=SIZE)
    return root


def summary_tags(model_dir):
    tags = set()
    for path in glob.glob(os.path.join(model_dir, "events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_teacher_learns_and_student_learns_from_the_unlabeled_stream(data, tmp_path):
    teacher_dir, student_dir = str(tmp_path / "teacher"), str(tmp_path / "student")
    jobs_helper.train_job(teacher_dir, data / "lab", **COMMON, input__train_batch_size=32,
                          optim__train_steps=300, optim__num_train_images=200)
    teacher = jobs_helper.eval_job(teacher_dir, data / "lab")
    assert teacher["dev"]["top_1_accuracy"] >= 0.9 and teacher["test"]["top_1_accuracy"] >= 0.9

    # 300 steps: at 200 the student was still climbing (0.5-0.6 on some CPUs), at 300 it is above 0.8.
    jobs_helper.train_job(
        student_dir, data / "two_classes", **COMMON, input__train_batch_size=16, optim__train_steps=300,
        optim__num_train_images=200, input__unlabel_data_dir=str(data / "unl"), input__unlabel_ratio=3,
        teacher=jobs_helper.teacher(checkpoint=teacher_dir, softmax_temp=1),
        augment__augment_name="v1", augment__unl_augment_name="v1", augment__randaug_mag=5)
    student = jobs_helper.eval_job(student_dir, data / "two_classes")
    # Labeled data alone could explain at most 2 of 10 classes (20%).
    assert student["dev"]["top_1_accuracy"] >= 0.6 and student["test"]["top_1_accuracy"] >= 0.6

    with open(os.path.join(student_dir, "eval_results.json")) as f:
        results = json.load(f)
    assert set(results) == {"dev", "test"} and results["test"]["num_images"] == 100
    assert set(results["dev"]) == {"top_1_accuracy", "top_5_accuracy", "loss", "num_images"}
    # A run configured in Python has no flags to record (upstream main.py's FLAGS.json is a command line's):
    # it records its resolved config, and the seed it used.
    assert not os.path.exists(os.path.join(student_dir, "FLAGS.json"))
    with open(os.path.join(student_dir, "config.json")) as f:
        record = json.load(f)
    assert record["input"]["unlabel_ratio"] == 3 and record["input"]["unlabel_data_dir"] == str(data / "unl")
    assert record["augment"]["augment_name"] == "v1" and record["teacher"]["model_name"] == "efficientnet-b0"
    assert record["teacher"]["checkpoint"] == teacher_dir and record["optim"]["train_steps"] == 300
    assert record["task"]["name"] == "imagenet" and record["task"]["mean"] == list(jobs_helper.IMAGENET.mean)
    assert record["seed"] == 1 and "flag_values" not in record
    with open(os.path.join(student_dir, "model_params.txt")) as f:
        # Upstream efficientnet_builder.build_model's layout.
        lines = f.read().split("\n")
    assert lines[0] == "model_name= efficientnet-b0" and lines[1] == "" and lines[2].startswith("global_params= ")
    assert lines[4].startswith("blocks_args= [BlockArgs(") and lines[5:] == ["", ""]
    # Upstream's scalar names (`main.py`, `model_fn`'s host call), every iterations_per_loop steps.
    assert {"lab/acc", "lab/pred_prob", "lab/loss", "unl/acc_to_dump", "unl/pred_prob", "unl/target_prob",
            "ext/loss", "train/data_loss", "train/loss", "train/lr", "train/epoch"} <= summary_tags(student_dir)
    assert tf.train.latest_checkpoint(student_dir).endswith("model.ckpt-300")
