"""predict -> filter_unlabel -> reassign -> offline training, through the real jobs on tiny data.

Predictions are checked against the model applied directly to the decoded images (record order, the
round-robin worker split, softmax, upstream run_prediction's format); reassign against the same; and the
filtered and reassigned shards are consumed by training with soft and with hard pseudo labels.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

import jobs_helper
import offline_data
import tiny_data
from noisy_student_tf.errors import UserError
from noisy_student_tf.models.inference import model_from_config
from noisy_student_tf.tasks import get_task
from noisy_student_tf.models import restore

SIZE = jobs_helper.TINY_SIZE
NUM_SHARDS = 3
COMMON = dict(seed=1)


# Upstream predict_label.py's prediction records (`run_prediction`), written here independently of the package.
def prediction_spec(num_classes):
    return {"probabilities": tf.io.FixedLenFeature([num_classes], tf.float32),
            "classes": tf.io.FixedLenFeature([], tf.int64)}


# Upstream filter_unlabel.py's filtered records (`filter_image_by_idx`), also reassign's.
FILTERED_SPEC = {"image/encoded": tf.io.FixedLenFeature([], tf.string),
                 "probabilities": tf.io.FixedLenFeature([10], tf.float32),
                 "label": tf.io.FixedLenFeature([], tf.int64),
                 "prob": tf.io.FixedLenFeature([], tf.float32)}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("offline")
    tiny_data.write_labeled(root / "lab", "train", tiny_data.balanced_labels(4), num_shards=2, size=SIZE)
    for shard in range(NUM_SHARDS):
        offline_data.write_image_shard(str(root / "unl" / ("extra-%05d-of-%05d" % (shard, NUM_SHARDS))),
                                       tiny_data.balanced_labels(3, seed=shard), seed=shard, size=SIZE)
    teacher = str(root / "teacher")
    jobs_helper.train_job(teacher, root / "lab", **COMMON, input__train_batch_size=8, optim__train_steps=2,
                          optim__num_train_images=40)
    return root, teacher


def model_probabilities(teacher, images):
    """The oracle: the checkpoint's EMA model applied to decoded images, outside any of our input code."""
    model = model_from_config(jobs_helper.TINY)
    restore.load_inference_weights(model, teacher)
    task = get_task("imagenet")
    x = (np.asarray(images, np.float32) - np.asarray(task.mean, np.float32)) / np.asarray(task.std, np.float32)
    return tf.nn.softmax(model.predict(x, batch_size=16, verbose=0)).numpy()


def shard_images(root, shard):
    return [tf.io.decode_jpeg(offline_data.read_records(
        str(root / "unl" / ("extra-%05d-of-%05d" % (shard, NUM_SHARDS))), {
            "image/encoded": tf.io.FixedLenFeature([], tf.string)})[i]["image/encoded"]).numpy()
        for i in range(30)]


def predict(unlabeled, teacher, out, **changes):
    settings = dict(COMMON, file_prefix="extra", num_shards=NUM_SHARDS, info_dir=str(out / "info"), batch_size=7)
    return jobs_helper.predict_job(teacher, unlabeled, out / "predict_label", **{**settings, **changes})


def test_predict_matches_the_model_in_record_order_for_each_round_robin_worker(setup, tmp_path):
    root, teacher = setup
    for worker in (0, 1):
        done = predict(root / "unl", teacher, tmp_path, shards=(0, 2), total_replicas=2, worker_id=worker)
        assert done == {0: "predicted", 2: "predicted"}
    expected = model_probabilities(teacher, shard_images(root, 2))
    for worker in (0, 1):
        path = tmp_path / "predict_label" / ("train-info-00002-of-00003-%05d" % worker)
        parsed = offline_data.read_records(str(path), prediction_spec(10))
        rows = expected[worker::2]
        assert len(parsed) == len(rows) == 15
        got = np.stack([p["probabilities"].numpy() for p in parsed])
        np.testing.assert_allclose(got, rows, atol=2e-5)
        assert [int(p["classes"]) for p in parsed] == list(got.argmax(1))
        with open(tmp_path / "info" / ("info-00002-of-00003-%05d.txt" % worker)) as f:
            assert json.load(f) == {"image_num": 15}
    assert not (tmp_path / "predict_label" / "train-info-00001-of-00003-00000").exists()
    # A re-run finds the shards done and writes nothing.
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "predict_label").iterdir()}
    again = predict(root / "unl", teacher, tmp_path, shards=(0, 2), total_replicas=2)
    assert again == {0: "skipped", 2: "skipped"}
    assert before == {p: p.stat().st_mtime_ns for p in (tmp_path / "predict_label").iterdir()}


def test_predict_filter_reassign_and_offline_training(setup, tmp_path):
    root, teacher = setup
    predict(root / "unl", teacher, tmp_path, shards=(0, 1, 2))
    filter_fields = dict(input_dir=root / "unl", file_prefix="extra", prediction_dir=tmp_path / "predict_label",
                         info_dir=tmp_path / "info", prelim_stats_dir=tmp_path / "prelim_stats",
                         output_dir=tmp_path / "filter_data", num_shards=NUM_SHARDS, num_classes=10, replica=0,
                         num_image=8, min_threshold=0.0)
    for phase in (1, 0):
        for shard in reversed(range(NUM_SHARDS)):  # the master (shard 0) last, as the upstream script
            jobs_helper.filter_job(**filter_fields, shard_id=shard, only_get_stats=bool(phase))
    with open(tmp_path / "filter_data" / "stats" / "final_stats.json") as f:
        final = json.load(f)
    data_files = sorted((tmp_path / "filter_data" / "data").iterdir())
    written = sum(len(offline_data.read_records(str(p), FILTERED_SPEC)) for p in data_files)
    assert final["total_cnt"] == written > 0

    # Reassign re-labels every filtered record in place, keeping the image bytes.
    first = data_files[0].name  # train-0-SSSSS-of-00003
    shard = int(first.split("-")[2])
    result = jobs_helper.predict_job(teacher, tmp_path / "filter_data" / "data", tmp_path / "reassign", **COMMON,
                                     file_prefix="train", num_shards=NUM_SHARDS, shards=(shard,), reassign=True)
    assert result == {shard: "reassigned"}
    before = offline_data.read_records(str(data_files[0]), FILTERED_SPEC)
    after = offline_data.read_records(str(tmp_path / "reassign" / first), FILTERED_SPEC)
    assert [b["image/encoded"].numpy() for b in before] == [a["image/encoded"].numpy() for a in after]
    expected = model_probabilities(teacher, [tf.io.decode_jpeg(b["image/encoded"]).numpy() for b in before])
    got = np.stack([a["probabilities"].numpy() for a in after])
    np.testing.assert_allclose(got, expected, atol=2e-5)
    assert [int(a["label"]) for a in after] == list(got.argmax(1))
    np.testing.assert_allclose([float(a["prob"]) for a in after], got.max(1), rtol=1e-6)

    # Offline students read the filtered and the reassigned shards, with soft and with hard labels.
    for unlabeled, temp in ((f"{tmp_path}/filter_data/data", 1), (f"{tmp_path}/reassign", -1)):
        student = str(tmp_path / f"student{temp}")
        jobs_helper.train_job(student, root / "lab", **COMMON, input__train_batch_size=4, optim__train_steps=2,
                              optim__num_train_images=40, input__unlabel_data_dir=unlabeled, input__unlabel_ratio=2,
                              teacher__softmax_temp=temp)
        assert os.path.exists(os.path.join(student, "checkpoint"))


def test_predict_refuses_bad_input(setup, tmp_path):
    root, teacher = setup
    with pytest.raises(UserError, match="--predict_ckpt_path is required"):
        predict(root / "unl", "", tmp_path)
    with pytest.raises(UserError, match="not in 0..2"):
        predict(root / "unl", teacher, tmp_path, shards=(3,))
    with pytest.raises(UserError, match="input shard .*extra-00000-of-00005 does not exist"):
        predict(root / "unl", teacher, tmp_path, num_shards=5)
    os.makedirs(tmp_path / "info", exist_ok=True)
    with open(tmp_path / "info" / "info-00001-of-00003-00000.txt", "w") as f:
        json.dump({"image_num": 99}, f)
    with pytest.raises(UserError, match="says 99 images but worker 0 .* has 30"):
        predict(root / "unl", teacher, tmp_path, shards=(1,))
    bad = tmp_path / "bad"
    offline_data.write(str(bad / "extra-00000-of-00003"), [offline_data.example(image__encoded=b"not a jpeg")])
    with pytest.raises(UserError, match="cannot read the images of .*extra-00000-of-00003"):
        predict(bad, teacher, tmp_path / "second", shards=(0,))
    assert os.listdir(tmp_path / "second" / "predict_label") == []  # no output, not even a temporary file
