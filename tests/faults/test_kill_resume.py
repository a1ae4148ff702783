"""Every entry point, killed with SIGKILL at several points and run again, ends as an uninterrupted run.

For each row of CASES: run the command once uninterrupted (the reference), then into a fresh directory run it
and kill it at each kill point in turn (early in start-up, while an output is being written, between outputs),
and finally run it to completion. Checked: the final tree equals the reference byte for byte (every job here is
deterministic under its seed; training with --deterministic); a watcher reading the directory every few ms
never saw a final-named file with other content; no temporary is left. The iterative driver's case is in
test_pipeline.py (it shares the main job's uninterrupted run).
"""

import dataclasses
import os
import shutil
import sys
from typing import Callable

import numpy as np
import pytest
import scipy.io
from PIL import Image

import fault_harness as harness
import jobs_helper
import offline_data
import tiny_data

NUM_SHARDS = 4
COMMON = jobs_helper.TINY_FLAGS + ["--seed=1"]
TRAIN_STEPS = 20


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("fault_inputs")
    size = jobs_helper.TINY_SIZE
    tiny_data.write_labeled(root / "lab", "train", tiny_data.balanced_labels(4), num_shards=2, size=size)
    for split in ("dev", "test"):
        tiny_data.write_labeled(root / "evalset", split, tiny_data.balanced_labels(3, seed=5), num_shards=1,
                                size=size)
    labels = tiny_data.balanced_labels(4, seed=2)
    probs = np.full((len(labels), 10), 0.05, np.float32)
    probs[np.arange(len(labels)), labels] = 0.55
    tiny_data.write_unlabeled(root / "unl_filtered", labels, prefix="train-0", probabilities=probs, size=size)
    for shard in range(NUM_SHARDS):
        offline_data.write_image_shard(str(root / "unl" / ("extra-%05d-of-%05d" % (shard, NUM_SHARDS))),
                                       tiny_data.balanced_labels(30, seed=shard), seed=shard, size=size)
    teacher = root / "teacher"
    jobs_helper.train_job(teacher, root / "lab", seed=1, input__train_batch_size=8, optim__train_steps=2,
                          optim__num_train_images=40)
    # Predictions and filtered shards, as inputs of the filter and reassign cases (predict_args, filter_args).
    offline = root / "offline"
    jobs_helper.predict_job(teacher, root / "unl", offline / "predict_label", seed=1, file_prefix="extra",
                            num_shards=NUM_SHARDS, shards=tuple(range(NUM_SHARDS)), info_dir=str(offline / "info"),
                            batch_size=4)
    jobs_helper.filter_job(**config_fields(filter_settings(root, offline)), num_classes=10, all_shards=True)
    # SVHN's three .mat files, tiny.
    rng = np.random.RandomState(0)
    (root / "svhn_raw").mkdir()
    for split, n in (("train", 80), ("test", 20), ("extra", 40)):
        x = rng.randint(0, 256, size=(32, 32, 3, n)).astype(np.uint8)
        y = rng.randint(1, 11, size=(n, 1)).astype(np.uint8)
        scipy.io.savemat(root / "svhn_raw" / f"{split}_32x32.mat", {"X": x, "y": y})
    # A folder of images, one sub-folder per class.
    for c, name in enumerate(("cat", "dog", "owl")):
        for i in range(8):
            path = root / "images" / name / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(tiny_data.class_images([c], np.random.RandomState(i), 24)[0]).save(path)
    return root


def predict_args(root, out):
    return COMMON + [f"--predict_ckpt_path={root}/teacher", f"--label_data_dir={root}/unl", "--file_prefix=extra",
                     f"--num_shards={NUM_SHARDS}", "--shard_id=" + ",".join(map(str, range(NUM_SHARDS))),
                     f"--output_dir={out}/predict_label", f"--info_dir={out}/info", "--predict_batch_size=4"]


def config_fields(settings):
    """`filter_settings` as FilterConfig's fields: upstream's --task is its `replica`."""
    fields = dict(settings)
    fields["replica"] = fields.pop("task")
    return fields


def filter_settings(root, predictions, out=None):
    """The filter's settings, named as filter_unlabel.py's flags (and FilterConfig's fields, but for --task:
    `config_fields`)."""
    out = out or predictions
    return dict(input_dir=root / "unl", file_prefix="extra", prediction_dir=predictions / "predict_label",
                info_dir=predictions / "info", prelim_stats_dir=out / "prelim_stats", output_dir=out / "filter_data",
                num_shards=NUM_SHARDS, task=0, num_image=40, min_threshold=0.0)


def filter_args(root, predictions, out=None):
    settings = [f"--{name}={value}" for name, value in filter_settings(root, predictions, out).items()]
    return [*settings, "--num_label_classes=10"]


@dataclasses.dataclass
class Case:
    name: str
    command: Callable  # (inputs root, output dir) -> argv after the Python interpreter
    kill_points: Callable  # output dir -> triggers
    prepare: Callable = lambda root, out: None  # noqa: E731 - fills the output dir before the first run
    min_kills: int = 2
    ignore: tuple = ()  # final-named files whose bytes legitimately differ between runs
    check: Callable = lambda reference, killed: None  # noqa: E731 - what to compare of the ignored files
    # A new interpreter per run (fault_harness.start), whose start-up the early kill points land in: jobs that
    # take a few seconds or less once TensorFlow is imported would often be over before them. Train and
    # predict run long enough for their kill points in a fork of a pre-imported one.
    fresh: bool = False


def same_checkpoint_list(reference, killed):
    """The `checkpoint` state file stamps the wall time; the checkpoints it names must be the same."""
    import tensorflow as tf

    names = [[os.path.basename(p) for p in tf.train.get_checkpoint_state(str(d)).all_model_checkpoint_paths]
             for d in (reference, killed)]
    assert names[0] == names[1] and names[0][-1] == f"model.ckpt-{TRAIN_STEPS}"


CASES = [
    Case("train",
         lambda r, o: ["train.py", *COMMON, "--deterministic", f"--train_steps={TRAIN_STEPS}",
                       "--iterations_per_loop=5", "--save_checkpoints_steps=5", "--log_step_count_steps=5",
                       "--keep_checkpoint_max=10", "--train_batch_size=8", "--num_train_images=40",
                       f"--label_data_dir={r}/lab", f"--unlabel_data_dir={r}/unl_filtered", "--unlabel_ratio=1",
                       # every source of randomness on: RandAugment, dropout, stochastic depth, the labeled-example
                       # mask, shuffled labeled and unlabeled streams
                       "--teacher_softmax_temp=1", "--label_data_sample_prob=0.75", "--augment_name=v1",
                       "--randaug_mag=10", f"--model_dir={o}"],
         lambda o: [harness.after(2, 5), harness.temp_appears(o),  # start-up; during a checkpoint save
                    harness.final_appears(o, "model.ckpt-", count=6)],  # between saves (3 written)
         ignore=("checkpoint",), check=same_checkpoint_list),
    Case("eval", lambda r, o: ["eval.py", *COMMON, f"--label_data_dir={r}/evalset", f"--model_dir={o}"],
         lambda o: [harness.after(1, 3), harness.after(4, 7)],
         prepare=lambda r, o: shutil.copytree(r / "teacher", o), min_kills=1, fresh=True),
    # Predict's early kill point is early enough for a fork: a run that ends before it is not killed, and then the
    # later kill points find its shards done (a CI run once ended all three runs before their kill points).
    Case("predict", lambda r, o: ["predict.py", *predict_args(r, o)],
         lambda o: [harness.after(0.5, 2), harness.temp_appears(o / "predict_label"),
                    harness.final_appears(o / "predict_label", "train-info")]),
    Case("filter_unlabel", lambda r, o: ["filter_unlabel.py", *filter_args(r, r / "offline", o), "--all_shards"],
         lambda o: [harness.after(0.5, 3), harness.temp_appears(o / "filter_data" / "data"),
                    harness.final_appears(o / "filter_data" / "stats", "stats_")], fresh=True),
    Case("reassign",
         lambda r, o: ["reassign.py", *COMMON, f"--predict_ckpt_path={r}/teacher",
                       f"--label_data_dir={r}/offline/filter_data/data", "--file_prefix=train",
                       f"--num_shards={NUM_SHARDS}", "--shard_id=" + ",".join(map(str, range(NUM_SHARDS))),
                       f"--output_dir={o}", "--predict_batch_size=4"],
         lambda o: [harness.after(1, 4), harness.temp_appears(o), harness.final_appears(o, "train-0-")], fresh=True),
    Case("proc_svhn", lambda r, o: ["proc_svhn.py", f"--raw_data_dir={r}/svhn_raw", f"--output_dir={o}",
                                    "--full_train_data"],
         lambda o: [harness.after(1, 3), harness.temp_appears(o), harness.final_appears(o, "train-", count=40)],
         fresh=True),
    Case("prepro_images", lambda r, o: ["prepro_images.py", f"--input_dir={r}/images", f"--output_dir={o}",
                                        "--image_size=16", "--num_shards=4", "--num_threads=1"],
         lambda o: [harness.after(1, 3), harness.temp_appears(o), harness.final_appears(o, "train-")], fresh=True),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_killed_job_resumes_to_the_uninterrupted_outputs(inputs, tmp_path, case):
    # Both runs write to the same path (files like FLAGS.json record it); the uninterrupted one is moved aside.
    out, reference = tmp_path / "out", tmp_path / "reference"
    ignore = harness.DEFAULT_IGNORE + case.ignore
    case.prepare(inputs, out)
    harness.run([sys.executable, *case.command(inputs, out)])
    os.rename(out, reference)
    expected = harness.tree(reference, ignore)
    assert expected, "the uninterrupted run wrote nothing"

    case.prepare(inputs, out)
    kills = harness.run_with_kills([sys.executable, *case.command(inputs, out)], out, expected,
                                   case.kill_points(out), ignore, fresh=case.fresh)
    assert kills >= case.min_kills, f"only {kills} runs were still going at their kill point"
    assert harness.tree(out, ignore) == expected
    case.check(reference, out)
    assert harness.temporaries(str(out)) == []
