"""pseudo_label_beam.py (noisy_student_tf/offline/beam_pipeline.py) against the per-shard tools it replaces.

The oracle is predict.py + filter_unlabel.py --all_shards (and reassign.py) run on the same 8 unlabeled shards
with the same teacher and seed: every file the Beam pipeline writes must be byte-identical to theirs (Beam's
only extra file is its run record; the per-shard tools' extra files are their `.inputs` notes). The runs are
real Beam runs: DirectRunner in one process, with 2 worker processes, and the BundleBasedDirectRunner (which
retries a failed bundle).
"""

import dataclasses
import json
import os
import re
import signal
import sys
import threading
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import jobs_helper
import offline_data
import prewarmed
import tiny_data
from absl import flags
from noisy_student_tf.errors import UserError
from noisy_student_tf.cli.flags import define_beam_flags, define_main_flags
from noisy_student_tf.models import restore
from noisy_student_tf.models.inference import clean_logits, model_from_config
from noisy_student_tf.offline import beam_pipeline, filter_shards
from noisy_student_tf.config import BeamConfig, FilterConfig
from noisy_student_tf.tasks import get_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_SHARDS = 8
MULTI_PROCESS = ("--runner=FnApiRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing")
IN_PROCESS = ("--runner=FnApiRunner",)

pytestmark = pytest.mark.xdist_group("beam")  # Beam worker processes: one of these tests at a time


def spread_teacher(path):
    """A tiny network whose predictions spread over classes and confidences (a 2-step trained one predicts
    0.1 for everything, which leaves nothing to filter): random weights, the head centred and scaled on
    sample images. Written as a checkpoint predict.py reads. Seeded, so every run filters the same way."""
    keras.utils.set_random_seed(11)
    model = model_from_config(jobs_helper.TINY)
    task = get_task("imagenet")
    images = tiny_data.class_images(tiny_data.balanced_labels(10), np.random.RandomState(5), jobs_helper.TINY_SIZE)
    logits = clean_logits(model, tf.constant(images, tf.float32), task.mean, task.std).numpy()
    weights = {v.path: v for v in model.trainable_weights}
    scale = 3.0 / logits.std(axis=0).mean()
    weights["head_dense/kernel"].assign(weights["head_dense/kernel"].numpy() * scale)
    weights["head_dense/bias"].assign((weights["head_dense/bias"].numpy() - logits.mean(axis=0)) * scale)
    tf.train.Checkpoint(model=model).write(os.path.join(path, "model.ckpt-1"))
    return model


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("beam")
    for shard in range(NUM_SHARDS):
        # Shards of unequal size (47..54 images), one of them with a replica that gets one image fewer.
        labels = np.random.RandomState(shard).randint(0, 10, 47 + shard)
        offline_data.write_image_shard(str(root / "unl" / ("extra-%05d-of-%05d" % (shard, NUM_SHARDS))), labels,
                                       seed=shard, size=jobs_helper.TINY_SIZE)
    spread_teacher(str(root / "teacher"))
    return root


def predict_config(data, out, **changes):
    return jobs_helper.predict_config(data / "teacher", data / "unl", out / "predict_label", info_dir=str(out / "info"),
                                      file_prefix="extra", num_shards=NUM_SHARDS, shards=tuple(range(NUM_SHARDS)),
                                      batch_size=8, **changes)


def filter_config(data, out, **changes):
    return dataclasses.replace(FilterConfig(
        input_dir=str(data / "unl"), prediction_dir=str(out / "predict_label"), info_dir=str(out / "info"),
        prelim_stats_dir=str(out / "prelim_stats"), output_dir=str(out / "filter_data"), num_classes=10,
        num_shards=NUM_SHARDS, file_prefix="extra", num_image=30, min_threshold=0.3, seed=7, all_shards=True,
        num_workers=2), **changes)


def per_shard_tools(data, out, predict_changes=(), **filter_changes):
    """predict.py for every shard (and replica), then filter_unlabel.py --all_shards."""
    from noisy_student_tf.jobs import filter_unlabel, predict

    predict_changes = dict(predict_changes)
    replicas = predict_changes.get("total_replicas", 1)
    for worker in range(replicas):
        predict.run(predict_config(data, out, worker_id=worker, **predict_changes))
    return filter_unlabel.run(filter_config(data, out, total_replicas=replicas, **filter_changes))


def beam_run(data, out, args=IN_PROCESS, predict_changes=(), write_predictions=True, **filter_changes):
    predict_changes = dict(predict_changes)
    cfg = BeamConfig(predict=predict_config(data, out, **predict_changes),
                                   filter=filter_config(data, out, total_replicas=predict_changes.get(
                                       "total_replicas", 1), **filter_changes),
                                   write_predictions=write_predictions, pipeline_args=tuple(args))
    return beam_pipeline.run(cfg)


def files(directory):
    """{relative path: bytes} of every file but the per-shard tools' and Beam's records of their inputs."""
    found = {}
    for parent, _, names in os.walk(directory):
        for name in names:
            if not name.endswith(".inputs"):
                path = os.path.join(parent, name)
                with open(path, "rb") as f:
                    found[os.path.relpath(path, directory)] = f.read()
    return found


def assert_same_files(expected_dir, actual_dir):
    expected, actual = files(expected_dir), files(actual_dir)
    assert sorted(actual) == sorted(expected)
    differing = [name for name in expected if expected[name] != actual[name]]
    assert not differing, differing[:10]
    return expected


def no_temporaries(directory):
    return [os.path.join(p, n) for p, _, names in os.walk(directory) for n in names if ".tmp-" in n]


@pytest.fixture(scope="module")
def reference(data):
    """The per-shard tools' output for the default settings."""
    out = data / "tools"
    stats = per_shard_tools(data, out)
    assert stats["total_cnt"] > 0
    return out, stats


def test_two_worker_processes_write_the_files_of_predict_and_filter_unlabel(data, reference, tmp_path, monkeypatch):
    expected_dir, stats = reference
    out = tmp_path / "beam"
    assert beam_run(data, out, MULTI_PROCESS) == stats
    written = assert_same_files(expected_dir, out)
    # Every output kind is there: predictions, info files, prelim stats, global JSON, shards, stats, samples.
    for part in ("predict_label/train-info-00007-of-00008-00000", "info/info-00000-of-00008-00000.txt",
                 "prelim_stats/prelim_stats_00003_-1.json", "prelim_stats/total_counts.json",
                 "prelim_stats/total_counts_sum.json", "filter_data/threshold.json",
                 "filter_data/num_image_across_cat.json", "filter_data/stats/final_stats.json"):
        assert part in written, part
    data_files = [n for n in written if n.startswith("filter_data/data/")]
    assert len(data_files) >= 6
    assert any(n.startswith("filter_data/samples/") for n in written)
    # The balancing did something (stochastic rounding, so about 30 per class, not exactly): a class with more
    # than num_image=30 images above its threshold kept fewer, and one with fewer got duplicates
    # (threshold.json holds each class's [threshold, images above it]).
    above = {name: total for name, (_, total) in json.loads(written["filter_data/threshold.json"]).items()}
    kept = {name: stats["cat_count"].get(name, 0) for name in above}
    assert any(kept[name] < total for name, total in above.items() if total > 30), (above, kept)
    assert any(kept[name] > total for name, total in above.items() if 0 < total < 30), (above, kept)
    assert not no_temporaries(out)
    # A re-run of the finished run does nothing (its record matches): nothing is rewritten, and the teacher is
    # not even loaded.
    before = {name: os.stat(out / name).st_mtime_ns for name in written}

    def no_model(*args, **kwargs):
        raise AssertionError("the re-run of a finished run loaded the teacher")

    monkeypatch.setattr(restore, "restore_model", no_model)
    start = time.monotonic()
    assert beam_run(data, out, IN_PROCESS) == stats
    print(f"the re-run of a finished run took {time.monotonic() - start:.2f} s")
    assert time.monotonic() - start < 5
    assert {name: os.stat(out / name).st_mtime_ns for name in written} == before


@pytest.mark.parametrize("setting", [
    dict(predict_changes={"total_replicas": 2}, max_prob=0.95, upsample=False, only_use_num_shards=5),
    # replica=0 with use_all: test_the_command_line_needs_no_prediction_dir_and_takes_the_filters_task
])
def test_other_filter_settings_and_replicas_match_the_per_shard_tools(data, tmp_path, setting):
    tools = per_shard_tools(data, tmp_path / "tools", **setting)
    assert beam_run(data, tmp_path / "beam", **setting) == tools
    written = assert_same_files(tmp_path / "tools", tmp_path / "beam")
    replica_files = [n for n in written if n.startswith("predict_label/") and n.endswith("-00001")]
    assert len(replica_files) == NUM_SHARDS


def test_predict_only_and_reassign_match_predict_and_reassign(data, reference, tmp_path):
    from noisy_student_tf.jobs import predict

    expected_dir, _ = reference
    p = predict_config(data, tmp_path)
    assert beam_pipeline.run(BeamConfig(predict=p, write_predictions=True,
                                                      pipeline_args=IN_PROCESS)) == {"shards": NUM_SHARDS}
    expected = {n: b for n, b in files(expected_dir).items() if n.startswith(("predict_label/", "info/"))}
    assert files(tmp_path) == expected

    # Reassign the filtered shards with the same teacher: reassign.py's files, record for record.
    filtered = str(expected_dir / "filter_data" / "data")
    reassign = jobs_helper.predict_config(data / "teacher", filtered, tmp_path / "reassign_tools", file_prefix="train",
                                          num_shards=NUM_SHARDS, shards=tuple(range(NUM_SHARDS)), worker_id=0,
                                          reassign=True, batch_size=8)
    # The filter names its shards after its task (-1: every replica); reassign.py reads task N's (--worker_id).
    names = sorted(os.listdir(filtered))
    os.makedirs(tmp_path / "filtered", exist_ok=True)
    for name in names:  # as task 0's files, the names reassign.py reads
        os.link(os.path.join(filtered, name), tmp_path / "filtered" / name.replace("train--1-", "train-0-"))
    reassign = dataclasses.replace(reassign, input_dir=str(tmp_path / "filtered"))
    predict.run(reassign)
    beam = dataclasses.replace(reassign, output_dir=str(tmp_path / "reassign_beam"))
    result = beam_pipeline.run(BeamConfig(predict=beam, pipeline_args=MULTI_PROCESS))
    assert result == {"shards": len(names)}
    assert_same_files(tmp_path / "reassign_tools", tmp_path / "reassign_beam")


def test_a_bundle_that_fails_once_is_retried_and_leaves_no_partial_file(data, reference, tmp_path, monkeypatch):
    """The BundleBasedDirectRunner retries a failed bundle (as Dataflow does). Shard 3's writer dies after
    writing a few records; its temporary file is removed, the retry writes the shard, and the output equals
    the per-shard tools'."""
    expected_dir, stats = reference
    real_write = filter_shards.write_filtered_shard
    failures = []

    def write_once_failing(cfg, shard, predictions, selected):
        if shard == 3 and not failures:
            encode = filter_shards.records.PseudoLabelEncoder.encode
            written = []

            def encode_then_fail(self, *args):
                written.append(1)
                if len(written) > 3:
                    partial = [p for p in no_temporaries(cfg.output_dir) if "00003-of" in p]
                    failures.append(partial)
                    raise OSError("simulated worker failure while writing shard 3")
                return encode(self, *args)

            monkeypatch.setattr(filter_shards.records.PseudoLabelEncoder, "encode", encode_then_fail)
            try:
                return real_write(cfg, shard, predictions, selected)
            finally:
                monkeypatch.setattr(filter_shards.records.PseudoLabelEncoder, "encode", encode)
        return real_write(cfg, shard, predictions, selected)

    monkeypatch.setattr(filter_shards, "write_filtered_shard", write_once_failing)
    out = tmp_path / "beam"
    assert beam_run(data, out, ("--runner=BundleBasedDirectRunner",)) == stats
    assert len(failures) == 1 and failures[0], "the failure struck while shard 3's temporary file was open"
    assert_same_files(expected_dir, out)
    assert not no_temporaries(out)


def cli_args(data, out):
    """The command line, run as a fork of a pre-imported interpreter (prewarmed.py): Beam's worker processes are
    new Pythons either way."""
    return [os.path.join(ROOT, "pseudo_label_beam.py"), *jobs_helper.TINY_FLAGS,
            f"--predict_ckpt_path={data / 'teacher'}", f"--input_dir={data / 'unl'}", "--file_prefix=extra",
            f"--num_shards={NUM_SHARDS}", "--predict_batch_size=8", f"--prelim_stats_dir={out / 'prelim_stats'}",
            f"--output_dir={out / 'filter_data'}", f"--prediction_dir={out / 'predict_label'}",
            f"--info_dir={out / 'info'}", "--num_image=30", "--min_threshold=0.3", "--seed=7", "--runner=FnApiRunner"]


def test_the_command_killed_while_writing_leaves_no_partial_file_and_a_rerun_gives_the_same_files(
        data, reference, tmp_path):
    expected_dir, _ = reference
    expected = files(expected_dir)
    out = tmp_path / "beam"
    process = prewarmed.Process(cli_args(data, out), cwd=ROOT)
    data_dir = out / "filter_data" / "data"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if data_dir.is_dir() and any(data_dir.iterdir()):  # the writing pass has begun
            break
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.communicate()
    # Whatever was left under a final name is complete: equal to the per-shard tools' file of that name.
    left = files(out)
    finished = [name for name in left if ".tmp-" not in name]
    assert all(left[name] == expected[name] for name in finished if name in expected)
    assert "filter_data/stats/final_stats.json" not in left
    result = prewarmed.run(cli_args(data, out), cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Beam pipeline finished" in result.stderr
    assert_same_files(expected_dir, out)
    assert not no_temporaries(out)


def descendants(pid):
    """Processes below `pid` (Linux /proc): Beam starts its workers through a shell."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def beam_workers(pid):
    workers = []
    for child in descendants(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(b"sdk_worker_main" in part for part in argv) and not argv[0].endswith(b"sh"):  # the worker, not a shell around it
            workers.append(child)
    return workers


def test_a_killed_worker_process_stops_the_run_with_an_error_and_a_rerun_gives_the_same_files(
        data, reference, tmp_path):
    """FnApiRunner with 2 worker processes: one is SIGKILLed mid-run. Beam itself would wait forever; the
    command stops with a clear error, leaves no partial file under a final name, and the same command run
    again finishes with the per-shard tools' files."""
    expected_dir, _ = reference
    expected = files(expected_dir)
    out = tmp_path / "beam"
    args = cli_args(data, out)[:-1] + list(MULTI_PROCESS)
    process = prewarmed.Process(args, cwd=ROOT)
    deadline, seen = time.monotonic() + 300, None
    while time.monotonic() < deadline and process.poll() is None:
        workers = beam_workers(process.pid)
        if len(workers) >= 2:
            seen = seen or time.monotonic()
            if time.monotonic() - seen > 4:  # both have imported TensorFlow and are working
                os.kill(workers[-1], signal.SIGKILL)
                break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before a worker could be killed"
    _, stderr = process.communicate(timeout=120)  # stops instead of hanging
    assert process.returncode == 1, stderr[-3000:]
    assert re.search(r"error: a Beam worker process died \(Worker subprocess exited with return code (-9|137)\)\. "
                     "The files written so far are complete; run the same command again to finish", stderr), \
        stderr[-3000:]
    left = files(out)
    assert all(left[name] == expected[name] for name in left if ".tmp-" not in name and name in expected)
    assert "filter_data/stats/final_stats.json" not in left
    result = prewarmed.run(args, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_files(expected_dir, out)
    assert not no_temporaries(out)


def test_a_worker_death_seen_first_as_a_closed_channel_waits_for_the_exit_code_without_interrupting():
    """On a busy machine the launcher can see a killed worker's data channel close before the thread that
    watches the worker reports its exit code; the run then waits for that report (no SIGINT) to name it."""
    interrupted = []
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
    try:
        with beam_pipeline.WorkerDeathWatch() as death:
            def watcher():
                time.sleep(0.5)
                raise RuntimeError("Worker subprocess exited with return code 137")

            thread = threading.Thread(target=watcher)
            thread.start()
            assert death.wait_for_death() == "Worker subprocess exited with return code 137"
            thread.join()
        with beam_pipeline.WorkerDeathWatch() as death:
            death.EXIT_REPORT_SECONDS = 0.1
            assert death.wait_for_death() == "its data channel closed"  # no report comes: a generic reason
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not interrupted


def test_unknown_flags_and_arguments_are_refused(data, tmp_path):
    result = prewarmed.run(cli_args(data, tmp_path) + ["--min_treshold=0.5"], cwd=ROOT, timeout=300)
    assert result.returncode == 1
    assert "unknown flags ['--min_treshold=0.5']" in result.stderr
    assert not (tmp_path / "filter_data").exists()


def nan_teacher(path):
    model = model_from_config(jobs_helper.TINY)
    head = [v for v in model.trainable_weights if v.path == "head_dense/bias"][0]
    head.assign(np.full(head.shape, np.nan, np.float32))
    tf.train.Checkpoint(model=model).write(os.path.join(path, "model.ckpt-1"))


@pytest.mark.parametrize("problem", ["missing teacher", "no shards", "class count", "nan probabilities"])
def test_bad_input_stops_before_anything_is_written_with_the_per_shard_message(data, tmp_path, problem):
    from noisy_student_tf.jobs import filter_unlabel, predict

    predict_changes, filter_changes = {}, {}
    if problem == "missing teacher":
        os.makedirs(tmp_path / "empty_model_dir")
        predict_changes["checkpoint"] = str(tmp_path / "empty_model_dir")
    elif problem == "no shards":
        os.makedirs(tmp_path / "no_shards")
        predict_changes["input_dir"] = filter_changes["input_dir"] = str(tmp_path / "no_shards")
    elif problem == "class count":
        predict_changes["model"] = dataclasses.replace(jobs_helper.TINY, num_classes=7)
        filter_changes["num_classes"] = 7
    else:
        nan_teacher(str(tmp_path / "nan_teacher"))
        predict_changes["checkpoint"] = str(tmp_path / "nan_teacher")

    tools_out, beam_out = tmp_path / "tools", tmp_path / "beam"
    with pytest.raises(UserError) as per_shard:
        predict.run(dataclasses.replace(predict_config(data, tools_out), **predict_changes))
        filter_unlabel.run(filter_config(data, tools_out, **filter_changes))
    cfg = BeamConfig(predict=dataclasses.replace(predict_config(data, beam_out), **predict_changes),
                                   filter=filter_config(data, beam_out, **filter_changes), write_predictions=True,
                                   pipeline_args=MULTI_PROCESS if problem == "nan probabilities" else IN_PROCESS)
    with pytest.raises(UserError) as beam:
        beam_pipeline.run(cfg)
    # The same message; which shard's NaN is met first differs (filter_unlabel: shard 1; Beam: any).
    def same_shard(message):
        return re.sub(r"train-info-\d{5}", "train-info-SSSSS", str(message).replace(str(tools_out), str(beam_out)))

    assert same_shard(beam.value) == same_shard(per_shard.value)
    assert not files(beam_out)  # not a prediction, histogram or threshold file: the check comes first


# --- the pipeline as a user outside this repository runs it ---

def cli(*args):
    """pseudo_label_beam.py's flags through its real adapter, in this process: (values, pipeline options)."""
    values = flags.FlagValues()
    define_main_flags(values)
    define_beam_flags(values)
    rest = values(["pseudo_label_beam.py", *jobs_helper.TINY_FLAGS, *args], known_only=True)
    return values, rest[1:]


def cli_filter_args(data, out, *extra):
    """The filter's flags of the tests' default settings (filter_config), without --prediction_dir/--info_dir."""
    return (f"--predict_ckpt_path={data / 'teacher'}", f"--input_dir={data / 'unl'}", "--file_prefix=extra",
            f"--num_shards={NUM_SHARDS}", "--predict_batch_size=8", f"--prelim_stats_dir={out / 'prelim_stats'}",
            f"--output_dir={out / 'filter_data'}", "--num_image=30", "--min_threshold=0.3", "--seed=7", *extra)


def test_the_command_line_needs_no_prediction_dir_and_takes_the_filters_task(data, tmp_path):
    """Without --prediction_dir/--info_dir the command writes no predictions and the filter files of
    filter_unlabel.py; --task=0 over two prediction replicas (upstream's per-replica filter jobs) gives the files of
    filter_unlabel.py --task=0."""
    from noisy_student_tf.cli import adapters

    setting = dict(predict_changes={"total_replicas": 2}, replica=0, use_all=True)
    tools = per_shard_tools(data, tmp_path / "tools", **setting)
    out = tmp_path / "beam"
    values, options = cli(*cli_filter_args(data, out, "--total_replicas=2", "--task=0", "--use_all",
                                           *IN_PROCESS))
    assert adapters.run_pseudo_label_beam(["pseudo_label_beam.py", *options], values) == tools
    expected = {n: b for n, b in files(tmp_path / "tools").items() if n.startswith(("prelim_stats/", "filter_data/"))}
    assert sorted(os.listdir(out)) == ["filter_data", "prelim_stats"]  # no predict_label/, no info/
    assert files(out) == expected
    assert any(n.startswith("filter_data/data/train-1-") for n in expected)  # both replicas' tasks were filtered


def test_a_runner_of_another_package_brings_its_options_and_misspelt_flags_are_still_refused():
    assert "beam_test_runner" not in sys.modules  # its options class is not registered until its module loads
    runner = "--runner=beam_test_runner.RecordingRunner"
    beam_pipeline.check_pipeline_args([runner, "--recording_tag=nightly"])
    with pytest.raises(UserError, match=r"unknown flags \['--recording_tgg=nightly'\]"):
        beam_pipeline.check_pipeline_args([runner, "--recording_tgg=nightly"])
    with pytest.raises(UserError, match=r"--runner=no_such_package.Runner: cannot import no_such_package"):
        beam_pipeline.check_pipeline_args(["--runner=no_such_package.Runner"])
    with pytest.raises(UserError, match=r"--runner=NoSuchRunner is not a runner Beam knows"):
        beam_pipeline.check_pipeline_args(["--runner=NoSuchRunner"])


@pytest.mark.parametrize("runner", ["DaskRunner", "dask", "apache_beam.runners.dask.dask_runner.DaskRunner"])
def test_the_dask_runner_is_refused_before_anything_is_read_or_written(data, tmp_path, runner):
    cfg = BeamConfig(predict=predict_config(data, tmp_path), filter=filter_config(data, tmp_path),
                                   write_predictions=True,
                                   pipeline_args=(f"--runner={runner}", "--dask_client_address=tcp://127.0.0.1:8786"))
    with pytest.raises(UserError, match=r"--runner=DaskRunner is refused: Beam 2.77's Dask runner cannot send"):
        beam_pipeline.run(cfg)
    assert not os.path.exists(tmp_path / "filter_data") and not os.path.exists(tmp_path / "predict_label")


def test_a_runner_that_loses_a_prediction_stops_the_run_naming_the_shard(data, tmp_path, monkeypatch):
    """The info files count the input shard's records, as predict.py's: a runner that loses an element (Beam's
    Dask runner dropped the last batch of a partition) is caught before the shard's files are written."""
    real = beam_pipeline.drop_images

    def lose_one(keyed_result, per_replica):
        key, (worker, start, probabilities) = real(keyed_result, per_replica)
        return key, (worker, start, probabilities[1:] if key[0] == 3 and start == 0 else probabilities)

    monkeypatch.setattr(beam_pipeline, "drop_images", lose_one)
    with pytest.raises(UserError, match=r"extra-00003-of-00008: the pipeline received 49 predictions for the 50 "
                                        r"records of replica 0: the runner lost or repeated elements"):
        beam_run(data, tmp_path)
    assert files(tmp_path) == {}  # the check precedes the plan, which precedes every write


def readme_beam_command():
    """The README's worked example of pseudo_label_beam.py, as words."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        blocks = re.findall(r"```bash\n(.*?)```", f.read(), flags=re.S)
    block = next(b for b in blocks if b.startswith("python pseudo_label_beam.py"))
    return block.replace("\\\n", " ").split()


def test_the_readmes_worked_example_runs_as_written_on_the_runner_it_names(tmp_path):
    """The command a user copies from the README, as a program run (a fork of a pre-imported interpreter, with
    Beam's two worker processes), on stand-ins for the main job's files: the prepared digits and a checkpoint of
    the recipe's teacher network (untrained: what it predicts does not matter here)."""
    from noisy_student_tf import derivations, recipes
    from noisy_student_tf.data.sources import digits

    command = readme_beam_command()
    assert command[:2] == ["python", "pseudo_label_beam.py"]
    assert "--runner=FnApiRunner" in command and "--direct_running_mode=multi_processing" in command
    digits.prepare(str(tmp_path / "data" / "digits" / "proc"))
    recipe = recipes.get("digits")
    network = model_from_config(derivations.model_config(get_task("digits"), recipe.teacher_model_name,
                                                         recipe.num_label_classes, recipe.model_options))
    tf.train.Checkpoint(model=network).write(str(tmp_path / "ckpt" / "digits" / "teacher" / "model.ckpt-1"))
    result = prewarmed.run([os.path.join(ROOT, command[1]), *command[2:]], cwd=str(tmp_path), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Beam pipeline finished" in result.stderr and "997 images predicted" in result.stderr
    out = tmp_path / "ckpt" / "beam"
    assert json.loads((out / "filter_data" / "stats" / "final_stats.json").read_text())["total_cnt"] >= 0
    assert len(json.loads((out / "filter_data" / "threshold.json").read_text())) == 10
    assert sorted(os.listdir(out / "prelim_stats"))[:4] == [f"prelim_stats_0000{i}_-1.json" for i in range(4)]
