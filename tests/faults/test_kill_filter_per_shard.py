"""The upstream per-shard filter loop (one job per shard and phase), with jobs killed while writing: the final
files equal one uninterrupted --all_shards run's, byte for byte; no partial file is ever visible under a final
name; no temporary is left. (Every entry point as one job: test_kill_resume.py.)"""

import os
import sys

import pytest

import fault_harness
import jobs_helper
import offline_data
import prewarmed
import tiny_data

ROOT = fault_harness.ROOT
NUM_SHARDS = 4
COMMON = jobs_helper.TINY_FLAGS + ["--seed=1"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    tiny_data.write_labeled(root / "lab", "train", tiny_data.balanced_labels(4), num_shards=2,
                            size=jobs_helper.TINY_SIZE)
    for shard in range(NUM_SHARDS):
        offline_data.write_image_shard(str(root / "unl" / ("extra-%05d-of-%05d" % (shard, NUM_SHARDS))),
                                       tiny_data.balanced_labels(40, seed=shard), seed=shard,
                                       size=jobs_helper.TINY_SIZE)
    teacher = str(root / "teacher")
    jobs_helper.train_job(teacher, root / "lab", seed=1, input__train_batch_size=8, optim__train_steps=2,
                          optim__num_train_images=40)
    return root, teacher


def predict_command(root, teacher, out):
    return [sys.executable, "predict.py", *COMMON, f"--predict_ckpt_path={teacher}", f"--label_data_dir={root}/unl",
            "--file_prefix=extra", f"--num_shards={NUM_SHARDS}", "--shard_id=" + ",".join(map(str, range(NUM_SHARDS))),
            f"--output_dir={out}/predict_label", f"--info_dir={out}/info", "--predict_batch_size=4"]


def config_fields(settings):
    """`filter_settings` as FilterConfig's fields: upstream's --task is its `replica`."""
    fields = dict(settings)
    fields["replica"] = fields.pop("task")
    return fields


def filter_settings(root, predictions, out):
    """The filter's settings, named as filter_unlabel.py's flags (and FilterConfig's fields, but for --task:
    `config_fields`)."""
    return dict(input_dir=root / "unl", file_prefix="extra", prediction_dir=predictions / "predict_label",
                info_dir=predictions / "info", prelim_stats_dir=out / "prelim_stats", output_dir=out / "filter_data",
                num_shards=NUM_SHARDS, task=0, num_image=60)


def filter_command(root, predictions, out, *extra):
    settings = [f"--{name}={value}" for name, value in filter_settings(root, predictions, out).items()]
    return [sys.executable, "filter_unlabel.py", *settings, "--num_label_classes=10", *extra]


def test_sigkilled_per_shard_filter_jobs_resume(setup, tmp_path):
    """The upstream two-phase loop (shards in descending order), each job killed once while writing."""
    root, teacher = setup
    predictions = tmp_path / "predictions"
    fault_harness.run(predict_command(root, teacher, predictions))
    reference = tmp_path / "reference"
    fault_harness.run(filter_command(root, predictions, reference, "--all_shards"))
    expected = fault_harness.tree(reference)
    out = tmp_path / "killed"
    for phase in (1, 0):
        for shard in reversed(range(NUM_SHARDS)):
            if phase == 0 and shard in (2, 0):  # a worker shard and the master, killed while writing their data
                args = filter_command(root, predictions, out, f"--shard_id={shard}", f"--only_get_stats={phase}")
                # A new interpreter: in a pre-imported one the job is over in well under a second.
                assert fault_harness.run_with_kills(args, out, expected,
                                                    [fault_harness.temp_appears(out / "filter_data" / "data")],
                                                    fresh=True)
            else:
                jobs_helper.filter_job(**config_fields(filter_settings(root, predictions, out)), num_classes=10,
                                       shard_id=shard, only_get_stats=bool(phase))
    assert fault_harness.tree(out) == expected
    assert fault_harness.temporaries(str(out)) == []


def test_filter_entry_point_exits_non_zero_with_the_missing_file_named(tmp_path):
    result = prewarmed.run(
        ["filter_unlabel.py", f"--input_dir={tmp_path}", f"--prediction_dir={tmp_path}/none",
         f"--info_dir={tmp_path}", f"--prelim_stats_dir={tmp_path}/p", f"--output_dir={tmp_path}/o",
         "--num_shards=2", "--shard_id=1", "--num_label_classes=10", "--only_get_stats=1"], cwd=ROOT, timeout=300)
    assert result.returncode == 1
    assert "prediction file" in result.stderr and "train-info-00001-of-00002-00000 does not exist" in result.stderr
    assert not os.path.exists(tmp_path / "p" / "prelim_stats_00001_-1.json")
