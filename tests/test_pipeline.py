"""The main job (local_scripts/digits/run.sh -> prepro_digits.py + iterate.py) on a shrunk configuration, and
the iterative driver killed mid-stage: the re-run resumes and ends with the uninterrupted run's summary."""

import json
import os
import shutil
import signal
import subprocess
import time

import pytest
from absl import flags

import fault_harness
import prewarmed
from noisy_student_tf.cli import adapters
from noisy_student_tf.errors import UserError
from noisy_student_tf.cli.flags import define_driver_flags, define_main_flags
from noisy_student_tf.jobs import iterate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# One iteration, a few steps of a tiny network; min_threshold 0 because a barely trained teacher is unsure.
SHRUNK = {"ITERATIONS": "1", "TEACHER_STEPS": "6", "STUDENT_STEPS": "6", "TEACHER_BATCH_SIZE": "16",
          "EXTRA_FLAGS": "--min_threshold=0.0 --train_batch_size=16 "
                         "--train_flags=--width_coefficient=0.25,--depth_coefficient=0.25"}


def iterate_command(data, out):
    return ["iterate.py", "--task_name=digits", f"--label_data_dir={data}",
            f"--unlabel_data_dir={data}/unlabeled", f"--output_dir={out}", "--seed=0", "--iterations=1",
            "--teacher_train_steps=6", "--student_train_steps=6", "--unlabel_ratio=2",  # as run.sh
            "--teacher_train_batch_size=16",
            *SHRUNK["EXTRA_FLAGS"].split()]


@pytest.fixture(scope="module")
def main_job(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    env = {**os.environ, **SHRUNK, **prewarmed.shell_env(), "DATA_DIR": str(root / "data"),
           "OUTPUT_DIR": str(root / "out")}
    result = subprocess.run(["bash", "local_scripts/digits/run.sh"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, result


def test_main_job_prints_the_table_and_writes_summary_and_plot(main_job):
    root, result = main_job
    out = root / "out"
    assert "| teacher |" in result.stdout and "| student 1 |" in result.stdout
    with open(out / "summary.json") as f:
        summary = json.load(f)
    assert set(summary) == {"teacher", "iterations"} and len(summary["iterations"]) == 1
    for entry in [summary["teacher"], *summary["iterations"]]:
        assert set(entry) == {"dev_top1", "test_top1"} and all(0 <= v <= 1 for v in entry.values())
    with open(out / "accuracy.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "stage 6/6 iter_1_student_eval" in result.stderr and "images/s" in result.stderr
    with open(out / "iter_1" / "student" / "eval_results.json") as f:
        assert json.load(f)["test"]["num_images"] == 500  # the digits test split


def test_killed_driver_resumes_and_ends_with_the_same_summary(main_job, tmp_path):
    root, _ = main_job
    data, out = root / "data", tmp_path / "killed"
    victim = prewarmed.Process(iterate_command(data, out), cwd=ROOT)
    # Kill inside the student's training stage, after it saved a checkpoint.
    student = out / "iter_1" / "student" / "checkpoint"
    deadline = time.time() + 600
    while not student.exists() and victim.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert victim.poll() is None, "the driver finished before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    assert not (out / "stages" / "iter_1_student_train.json").exists()
    assert (out / "stages" / "iter_1_filter.json").exists()

    rerun = prewarmed.run(iterate_command(data, out), cwd=ROOT, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "teacher_train: done before, skipped" in rerun.stderr
    assert "iter_1_filter: done before, skipped" in rerun.stderr
    for name in ("summary.json", "stages/iter_1_filter.json"):
        with open(out / name) as a, open(root / "out" / name) as b:
            assert json.load(a) == json.load(b)
    assert fault_harness.temporaries(str(out)) == []  # the killed save's leftovers were cleaned up


def test_the_main_job_with_every_path_on_ram_gives_the_same_summary_and_files(main_job, tmp_path):
    """`run_noisy_student` in one process with every path on ram:// (TensorFlow's in-memory filesystem, standing
    in for gs://; the data copied there first) equals the local run of the same command: the same summary, the
    same files byte for byte (up to the run's root path, ram://'s missing modification times in `.inputs` records,
    and TensorBoard event files, compared by their scalars), and nothing written to local disk."""
    root, _ = main_job
    report_path = tmp_path / "report.json"
    result = prewarmed.run([os.path.join(ROOT, "tests", "ram_main_job.py"), str(root), str(tmp_path / "work"),
                            str(report_path), json.dumps(SHRUNK)], cwd=str(tmp_path), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert report["summary"] == report["local_summary"]
    assert report["files"] > 50 and (report["only_local"], report["only_ram"], report["differ"]) == ([], [], [])
    assert report["events"][0] == report["events"][1] and len(report["events"][0]) == 2 and report["scalars_equal"]
    assert report["left_locally"] == {"cwd": [], "tmp": []}


def driver_config(args):
    """iterate.py's command line through its adapter: this test is about what a re-run of a command does."""
    values = flags.FlagValues()
    define_driver_flags(values)
    values(["iterate.py", *args])
    return adapters.driver_config(values)


def test_other_settings_in_the_same_output_dir_are_refused(main_job):
    root, _ = main_job
    args = [f"--label_data_dir={root}/data", f"--unlabel_data_dir={root}/data/unlabeled", f"--output_dir={root}/out",
            "--iterations=1", "--teacher_train_steps=6", "--student_train_steps=6", "--unlabel_ratio=2",
            "--min_threshold=0.0", "--teacher_train_batch_size=16",
            "--train_batch_size=16", "--train_flags=--width_coefficient=0.25,--depth_coefficient=0.25"]
    with pytest.raises(UserError, match=r"holds a run with other settings \(changed: student_train_steps\)"):
        changed = [a.replace("--student_train_steps=6", "--student_train_steps=7") for a in args]
        iterate.run(driver_config(changed))
    with pytest.raises(UserError, match="lists 2 models for 1 iterations"):
        iterate.Driver(driver_config(args + ["--student_model_names=efficientnet-b0,efficientnet-b1"]))


def test_the_beam_engine_writes_the_iteration_files_of_predict_and_filter(main_job, tmp_path):
    """--offline_engine=beam: iteration 1's pseudo-labelling as one Beam pipeline (2 worker processes), from the
    main job's teacher; every file equals what the main job's predict and filter stages wrote."""
    root, _ = main_job
    args = [f"--label_data_dir={root}/data", f"--unlabel_data_dir={root}/data/unlabeled", f"--output_dir={tmp_path}",
            "--iterations=1", "--teacher_train_steps=6", "--student_train_steps=6", "--unlabel_ratio=2",
            "--min_threshold=0.0", "--teacher_train_batch_size=16", "--train_batch_size=16",
            "--train_flags=--width_coefficient=0.25,--depth_coefficient=0.25", "--offline_engine=beam",
            "--beam_options=--direct_num_workers=2,--direct_running_mode=multi_processing"]
    driver = iterate.Driver(driver_config(args))
    assert [s.name for s in driver.stages()][2:] == ["iter_1_pseudo_label", "iter_1_student_train",
                                                     "iter_1_student_eval"]
    shutil.copytree(root / "out" / "teacher", tmp_path / "teacher")
    result = next(s for s in driver.stages() if s.name == "iter_1_pseudo_label").run()

    def files(directory):
        return {os.path.relpath(os.path.join(p, n), directory): open(os.path.join(p, n), "rb").read()
                for p, _, names in os.walk(directory) for n in names if not n.endswith(".inputs")}

    for part in ("predict_label", "info", "prelim_stats", "filter_data"):
        expected, written = files(root / "out" / "iter_1" / part), files(tmp_path / "iter_1" / part)
        assert expected and sorted(written) == sorted(expected), part
        assert [n for n in expected if expected[n] != written[n]] == [], part
    with open(root / "out" / "iter_1" / "filter_data" / "stats" / "final_stats.json") as f:
        assert result["records"] == json.load(f)["total_cnt"] > 0


def test_unlabeled_shards_are_counted_and_gaps_named(tmp_path):
    for i in (0, 2):
        (tmp_path / f"extra-{i:05d}-of-00003").write_bytes(b"")
    with pytest.raises(UserError, match=r"shards \[1\] of 3 are missing"):
        iterate.unlabeled_shards(str(tmp_path), "extra")
    (tmp_path / "extra-00001-of-00003").write_bytes(b"")
    assert iterate.unlabeled_shards(str(tmp_path), "extra") == 3
    with pytest.raises(UserError, match="found none"):
        iterate.unlabeled_shards(str(tmp_path), "train")


def test_unlabel_ratio_and_teacher_path_reach_their_use_as_config_fields(tmp_path):
    """--unlabel_ratio goes flag -> DriverConfig -> the student's TrainConfig.input (the input's unlabeled batch
    and the loss weight read it there); main.py's --teacher_model_path goes flag -> TrainConfig.teacher."""
    (tmp_path / "extra-00000-of-00001").write_bytes(b"")
    driver = iterate.Driver(driver_config([f"--unlabel_data_dir={tmp_path}", "--unlabel_ratio=2.5",
                                           "--train_batch_size=8", f"--output_dir={tmp_path}/out"]))
    assert driver.cfg.unlabel_ratio == 2.5
    student = driver.train_config("s", "efficientnet-b0", steps=10, seed=1, batch_size=8, unlabel_data_dir="u")
    teacher = driver.train_config("t", "efficientnet-b0", steps=10, seed=0, batch_size=8)
    assert student.input.unlabel_ratio == 2.5 and student.input.unlabeled_batch_size == 20
    assert teacher.input.unlabel_ratio == 0 and teacher.input.unlabeled_batch_size == 0

    values = flags.FlagValues()
    define_main_flags(values)
    values(["main.py", "--teacher_model_name=efficientnet-b0", "--teacher_model_path=ckpt/teacher",
            "--unlabel_ratio=3", "--train_batch_size=4"])
    cfg = adapters.train_config(values)
    assert cfg.teacher.checkpoint == "ckpt/teacher" and cfg.online_teacher
    assert cfg.input.unlabeled_batch_size == 12


def test_recipe_flags_and_train_flags_resolve_into_the_driver_config():
    cfg = driver_config(["--recipe=digits", "--seed=3", "--train_flags=--dropout_rate=0.3,--use_cache=False"])
    # The recipe's values, the flag given next to it, and --train_flags on top of the recipe's network.
    assert (cfg.unlabel_ratio, cfg.train_batch_size, cfg.teacher_train_steps) == (2.0, 16, 400)
    assert cfg.seed == 3 and not cfg.input.use_cache
    assert (cfg.model_options.width_coefficient, cfg.model_options.dropout_rate) == (0.5, 0.3)
    assert cfg.settings["train_flags"] == ["--dropout_rate=0.3", "--width_coefficient=0.5", "--depth_coefficient=0.5",
                                           "--use_cache=False"]
    assert cfg.settings["unlabel_ratio"] == 2.0 and "recipe" not in cfg.settings
    with pytest.raises(UserError, match="--train_flags=--weight_decay: iterate.py sets it"):
        driver_config(["--train_flags=--weight_decay=1e-5"])


def test_the_driver_checks_flag_values_before_it_reads_or_trains(tmp_path):
    """A filter setting that can never work stops iterate.py at once, not after the teacher's training; so do
    the stages' own values, before anything is written."""
    with pytest.raises(UserError, match=r"--min_threshold=1.5 must be a confidence in 0..1"):
        iterate.Driver(driver_config([f"--unlabel_data_dir={tmp_path}/nowhere", "--min_threshold=1.5"]))
    (tmp_path / "extra-00000-of-00001").write_bytes(b"")
    driver = iterate.Driver(driver_config([f"--unlabel_data_dir={tmp_path}", f"--output_dir={tmp_path}/out",
                                           "--train_flags=--predict_batch_size=0"]))
    with pytest.raises(UserError, match=r"--predict_batch_size must be positive, got 0"):
        driver.run()
    assert not (tmp_path / "out").exists()
