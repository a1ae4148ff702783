"""Bad input to every entry point, through the real command line (each run a fork of a pre-imported interpreter,
prewarmed.py): each case must exit non-zero with one line that names the file, flag or value at fault (no
traceback), and leave nothing under a final name in its output directory."""

import dataclasses
import fnmatch
import os
import shutil
from typing import Callable

import numpy as np
import pytest
import scipy.io

import fault_harness
import jobs_helper
import offline_data
import prewarmed
import tiny_data
from noisy_student_tf import file_names

SIZE = jobs_helper.TINY_SIZE
TINY = jobs_helper.TINY_FLAGS
TRAIN = TINY + ["--mode=train", "--train_steps=2", "--train_batch_size=4", "--num_train_images=40"]
NUM_SHARDS = 2
UNREACHABLE = "gs://noisy-student-tf-no-such-bucket"


def labeled_record(image=None, label=1, **override):
    image = tiny_data.jpeg(tiny_data.class_images([0], np.random.RandomState(0), SIZE)[0]) if image is None else image
    features = {"image__encoded": image, "image__class__label": label, **override}
    return offline_data.example(**{k: v for k, v in features.items() if v is not None})


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_inputs")
    tiny_data.write_labeled(root / "lab", "train", tiny_data.balanced_labels(2), size=SIZE)
    good = (root / "lab" / file_names.shard_name("train", 0, 2)).read_bytes()
    (root / "empty").mkdir()
    # Damaged labeled data, one directory per fault; the damaged shard is one of three, which the message names.
    for name, payload in {"crc": good[:40] + b"\x00" * 16 + good[56:], "truncated": good[: len(good) // 2]}.items():
        (root / name).mkdir()
        for shard in range(3):
            (root / name / file_names.shard_name("train", shard, 3)).write_bytes(payload if shard == 1 else good)
    faults = {
        "no_label_key": [labeled_record(image__class__label=None)],
        "float_label": [labeled_record(image__class__label=1.0)],
        "label_range": [labeled_record(label=12)],
        "not_jpeg": [labeled_record(image=b"this is not an image")],
    }
    for name, serialized in faults.items():
        offline_data.write(str(root / name / "train-00000-of-00001"), serialized)
    tiny_data.write_labeled(root / "big", "train", tiny_data.balanced_labels(1), size=32)
    # A teacher, unlabeled shards, its predictions.
    jobs_helper.train_job(root / "teacher", root / "lab", seed=1, optim__train_steps=2, input__train_batch_size=4,
                          optim__num_train_images=40)
    for shard in range(NUM_SHARDS):
        offline_data.write_image_shard(str(root / "unl" / file_names.shard_name("extra", shard, NUM_SHARDS)),
                                       tiny_data.balanced_labels(2, seed=shard), seed=shard, size=SIZE)
    jobs_helper.predict_job(root / "teacher", root / "unl", root / "pred" / "predict_label", file_prefix="extra",
                            num_shards=NUM_SHARDS, shards=(0, 1), info_dir=str(root / "pred" / "info"))
    # The same predictions with a NaN probability, and with an info file that disagrees with its shard.
    shutil.copytree(root / "pred", root / "pred_nan")
    nan_probs = np.full((20, 10), 0.1, np.float32)
    nan_probs[3, 4] = np.nan
    offline_data.write_predictions(str(root / "pred_nan"), 0, NUM_SHARDS, nan_probs)
    shutil.copytree(root / "pred", root / "pred_count")
    (root / "pred_count" / "info" / file_names.info_name(1, NUM_SHARDS, 0)).write_text('{"image_num": 7}')
    # SVHN .mat files: one split missing, one without the `X` key.
    (root / "mat").mkdir()
    x = np.zeros((32, 32, 3, 4), np.uint8)
    scipy.io.savemat(root / "mat" / "train_32x32.mat", {"X": x, "y": np.ones((4, 1), np.uint8)})
    scipy.io.savemat(root / "mat" / "test_32x32.mat", {"y": np.ones((4, 1), np.uint8)})
    scipy.io.savemat(root / "mat" / "extra_32x32.mat", {"X": x, "y": np.ones((4, 1), np.uint8)})
    (root / "mat_missing").mkdir()
    shutil.copy(root / "mat" / "train_32x32.mat", root / "mat_missing")
    # An image folder with a corrupt file.
    for c in ("a", "b"):
        (root / "images" / c).mkdir(parents=True)
        for i in range(2):
            from PIL import Image

            Image.fromarray(tiny_data.class_images([i], np.random.RandomState(i), 20)[0]).save(
                root / "images" / c / f"{i}.png")
    (root / "images" / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


@dataclasses.dataclass
class Case:
    id: str
    entry: str
    args: Callable  # (data root, output dir) -> flags
    message: str  # must appear in stderr (after formatting with the data root and output dir)
    allowed: tuple = ()  # final-named files that may exist in the output directory afterwards


def train_case(id, args, message):
    return Case(id, "train.py", lambda d, o: TRAIN + [f"--model_dir={o}"] + args(d), message)


def filter_case(id, predictions, message, extra=(), allowed=()):
    return Case(id, "filter_unlabel.py", lambda d, o: [
        f"--input_dir={d}/unl", "--file_prefix=extra", f"--prediction_dir={d}/{predictions}/predict_label",
        f"--info_dir={d}/{predictions}/info", f"--prelim_stats_dir={o}/prelim_stats", f"--output_dir={o}/data",
        f"--num_shards={NUM_SHARDS}", "--num_label_classes=10", "--task=0", "--num_image=4", "--all_shards",
        *extra], message, allowed)


def predict_case(id, extra, message):
    return Case(id, "predict.py", lambda d, o: TINY + [
        f"--predict_ckpt_path={d}/teacher", f"--label_data_dir={d}/unl", "--file_prefix=extra",
        f"--num_shards={NUM_SHARDS}", "--shard_id=0,1", f"--output_dir={o}/predict_label", f"--info_dir={o}/info",
        *extra(d)], message)


CASES = [
    train_case("missing-dir", lambda d: [f"--label_data_dir={d}/nowhere"],
               "--label_data_dir: directory '{d}/nowhere' does not exist"),
    train_case("empty-dir", lambda d: [f"--label_data_dir={d}/empty"], "no files matching train*"),
    train_case("corrupt-record", lambda d: [f"--label_data_dir={d}/crc"],
               "--label_data_dir={d}/crc): {d}/crc/train-00001-of-00003 is corrupt or truncated (corrupted record"),
    train_case("truncated-record", lambda d: [f"--label_data_dir={d}/truncated"],
               "{d}/truncated/train-00001-of-00003 is corrupt or truncated (truncated record at"),
    train_case("missing-feature-key", lambda d: [f"--label_data_dir={d}/no_label_key"], "image/class/label"),
    train_case("wrong-feature-dtype", lambda d: [f"--label_data_dir={d}/float_label"], "image/class/label"),
    train_case("label-out-of-range", lambda d: [f"--label_data_dir={d}/label_range"],
               "image/class/label - 1 outside 0..9"),
    train_case("not-a-jpeg", lambda d: [f"--label_data_dir={d}/not_jpeg"], "--label_data_dir={d}/not_jpeg"),
    train_case("wrong-image-size", lambda d: [f"--label_data_dir={d}/big"], "small_image_model expects 16x16"),
    train_case("unknown-model", lambda d: [f"--label_data_dir={d}/lab", "--model_name=efficientnet-b9"],
               "--model_name='efficientnet-b9' is not a model"),
    train_case("zero-batch", lambda d: [f"--label_data_dir={d}/lab", "--train_batch_size=0"],
               "--train_batch_size must be positive"),
    train_case("teacher-without-checkpoint", lambda d: [
        f"--label_data_dir={d}/lab", f"--unlabel_data_dir={d}/unl", "--unlabel_ratio=1",
        "--teacher_model_name=efficientnet-b0"], "--teacher_model_path is empty"),
    train_case("unused-teacher-without-checkpoint", lambda d: [
        f"--label_data_dir={d}/lab", "--teacher_model_name=efficientnet-b0", f"--teacher_model_path={d}/nowhere"],
        "--teacher_model_path: checkpoint '{d}/nowhere' not found"),
    train_case("teacher-of-another-architecture", lambda d: [
        f"--label_data_dir={d}/lab", f"--unlabel_data_dir={d}/unl", "--unlabel_ratio=1", "--width_coefficient=0.5",
        "--teacher_model_name=efficientnet-b0", f"--teacher_model_path={d}/teacher"], "{d}/teacher"),
    Case("eval-without-checkpoint", "eval.py", lambda d, o: TINY + [f"--model_dir={d}/empty",
                                                                     f"--label_data_dir={d}/lab"],
         "{d}/empty"),
    predict_case("wrong-class-count", lambda d: ["--num_label_classes=5"], "{d}/teacher"),
    predict_case("shard-out-of-range", lambda d: ["--shard_id=2"], "--shard_id: 2 is not in 0..1"),
    predict_case("missing-input-shard", lambda d: [f"--num_shards={NUM_SHARDS + 1}"],
                 "extra-00000-of-00003 does not exist"),
    predict_case("prefix-outside-the-directory", lambda d: ["--file_prefix=../unl/extra"],
                 "--file_prefix='../unl/extra' must be a plain file-name prefix"),
    # Shards are done from the last to the first (upstream's order, the master last); a job over several shards
    # keeps the complete statistics of the shard it finished before meeting the bad one (a re-run skips it).
    filter_case("nan-probabilities", "pred_nan", "train-info-00000-of-00002-00000: record 3 has NaN",
                allowed=("prelim_stats_00001_0.json", "prelim_stats_00001_0.json.inputs")),
    filter_case("inconsistent-info-file", "pred_count", "info/info-00001-of-00002-00000.txt says 7 images"),
    filter_case("zero-num-image", "pred", "--num_image must be positive", ["--num_image=0"]),
    filter_case("wrong-class-count", "pred", "--num_label_classes", ["--num_label_classes=7"]),
    Case("reassign-prefix-traversal", "reassign.py", lambda d, o: TINY + [
        f"--predict_ckpt_path={d}/teacher", f"--label_data_dir={d}/unl", "--file_prefix=../../escaped",
        f"--num_shards={NUM_SHARDS}", "--shard_id=0", f"--output_dir={o}"],
         "--file_prefix='../../escaped' must be a plain file-name prefix"),
    Case("svhn-missing-mat", "proc_svhn.py", lambda d, o: [f"--raw_data_dir={d}/mat_missing", f"--output_dir={o}"],
         "test_32x32.mat"),
    Case("svhn-mat-without-X", "proc_svhn.py", lambda d, o: [f"--raw_data_dir={d}/mat", f"--output_dir={o}"],
         "test_32x32.mat"),
    Case("images-empty-dir", "prepro_images.py", lambda d, o: [f"--input_dir={d}/empty", f"--output_dir={o}"],
         "{d}/empty"),
    Case("images-negative-size", "prepro_images.py",
         lambda d, o: [f"--input_dir={d}/images", f"--output_dir={o}", "--image_size=-1"], "--image_size=-1"),
    Case("images-corrupt-file-fails", "prepro_images.py",
         lambda d, o: [f"--input_dir={d}/images", f"--output_dir={o}", "--on_bad_image=fail"], "broken.jpg"),
    Case("driver-student-names", "iterate.py", lambda d, o: [
        "--task_name=digits", f"--label_data_dir={d}/lab", f"--unlabel_data_dir={d}/unl", f"--output_dir={o}",
        "--iterations=2", "--student_model_names=efficientnet-b0,efficientnet-b1,efficientnet-b2"],
         "--student_model_names lists 3 models for 2 iterations"),
    Case("driver-missing-unlabeled", "iterate.py", lambda d, o: [
        "--task_name=digits", f"--label_data_dir={d}/lab", f"--unlabel_data_dir={d}/nowhere", f"--output_dir={o}"],
         "{d}/nowhere"),
    Case("export-without-checkpoint", "export.py", lambda d, o: [
        f"--model_dir={d}/empty", f"--output={o}/model", "--task_name=imagenet", "--model_name=efficientnet-b0"],
         "{d}/empty"),
    # Flag values are checked before any file: the missing predictions are not what this run reports.
    filter_case("threshold-above-one", "nowhere", "--min_threshold=1.5 must be a confidence in 0..1",
                ["--min_threshold=1.5"]),
    # Cloud Storage that cannot be reached (this machine has no network and no credentials).
    train_case("unreachable-data-bucket", lambda d: [f"--label_data_dir={UNREACHABLE}/data"],
               "error: cannot reach " + UNREACHABLE + "/data: "),
    Case("unreachable-model-dir", "train.py", lambda d, o: TRAIN + [f"--label_data_dir={d}/lab",
                                                                    f"--model_dir={UNREACHABLE}/model"],
         "error: cannot reach " + UNREACHABLE + "/model: "),
    filter_case("unreachable-filter-output", "pred", "error: cannot reach " + UNREACHABLE + "/filtered",
                [f"--output_dir={UNREACHABLE}/filtered"]),
    predict_case("unreachable-prediction-dir", lambda d: [f"--output_dir={UNREACHABLE}/predict_label"],
                 "error: cannot reach " + UNREACHABLE + "/predict_label"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_exits_non_zero_naming_the_fault_and_writes_nothing(data, tmp_path, case):
    out = tmp_path / "out"
    result = prewarmed.run([case.entry, *case.args(data, out)], cwd=fault_harness.ROOT, timeout=300)
    assert result.returncode != 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert case.message.format(d=data, o=out) in result.stderr, result.stderr[-2000:]
    # Nothing at all is created (not even a summary or a sidecar), except what `allowed` names.
    left = [os.path.relpath(os.path.join(base, name), out) for base, _, names in os.walk(out) for name in names
            if not any(fnmatch.fnmatch(name, pattern) for pattern in case.allowed)]
    assert left == [], left
    assert not (data.parent / "escaped").exists() and not os.path.exists(os.path.join(data, "..", "escaped-0"))
    assert not os.path.exists(os.path.join(fault_harness.ROOT, "gs:"))  # a URL is never taken for a local path


def test_the_table_is_broad():
    assert len(CASES) >= 20 and len({c.entry for c in CASES}) >= 8
