"""The offline stage as an Apache Beam pipeline: predict the unlabeled shards with the teacher, then filter and
balance them (upstream `predict_label.py` + `filter_unlabel.py`), or reassign filtered shards, on any Beam runner.

    (shard, replica) units ─Reshuffle─▶ read each unit's encoded images in chunks
      ─RunInference(TeacherModelHandler)─▶ probabilities per chunk ─GroupByKey(shard)─▶ a shard's predictions
      ─▶ its [C, 101] confidence histogram ─CombineGlobally(sum)─▶ the plan: per-class thresholds and copy
         factors (total_counts.json, threshold.json, num_image_across_cat.json)
      ─▶ per shard, the plan as a side input: copies drawn with the shard's seeded streams, the input shard read
         again, its filtered records, samples and stats written ─CombineGlobally─▶ final_stats.json

Image bytes never go through a shuffle (the chunks are fused with the inference that consumes them, and the
writing pass re-reads the input shard, as upstream does); only the probabilities are grouped, and only the
histograms are global. The arithmetic is `filtering`'s and the writers are those of `filter_shards` and
`predict`, so for the same teacher and seed the files equal those of predict.py + filter_unlabel.py
--all_shards.

Every file is written atomically, so a bundle that a runner retries, or a run that dies, never leaves a partial
file under a final name; a re-run of a finished run does nothing (its inputs are recorded beside
final_stats.json), and a re-run of an unfinished one writes the same files again.
"""

from __future__ import annotations

import dataclasses
import logging as std_logging
import os
import re
import signal
import threading
import time

import numpy as np
from absl import logging

from noisy_student_tf import storage
from noisy_student_tf.config import BeamConfig, FilterConfig, PredictConfig
from noisy_student_tf.data import records
from noisy_student_tf.errors import CheckpointError, OutputError, UnreachableStorage, UserError
from noisy_student_tf.offline import filter_shards, filtering, label_shards, provenance, shard_io
from noisy_student_tf.offline.filter_shards import ShardPredictions, STALE_HINT

# Model batches per pipeline element: enough that Beam's per-element cost is small next to the model's, few
# enough that an element of large images stays a few tens of MB.
CHUNK_BATCHES = 8
# The runner when none is given: Beam's FnApiRunner, in this process or (--direct_num_workers=N
# --direct_running_mode=multi_processing) in N worker processes. Beam 2.77's DirectRunner first tries to download
# and start the Prism runner and falls back to the FnApiRunner without a word; naming the FnApiRunner runs what the
# tests run, with or without a network.
DEFAULT_RUNNER = "FnApiRunner"
TESTED_RUNNERS = "FnApiRunner, in one process or several; BundleBasedDirectRunner"
DASK_REFUSED = (
    "--runner=DaskRunner is refused: Beam 2.77's Dask runner cannot send this pipeline's side input (the filter's "
    "plan) to Dask workers, and with partitions it lost elements (RunInference drops the last batch of a "
    "partition), so shards would be filtered from a wrong histogram or go missing. Use --runner=FnApiRunner "
    "(--direct_num_workers=N --direct_running_mode=multi_processing) on one machine, or DataflowRunner, FlinkRunner "
    "or SparkRunner on many")
METRICS_NAMESPACE, IMAGES_COUNTER = "noisy_student", "images_read"


def runner_of(args) -> str | None:
    """The `--runner` among Beam pipeline options (the last one given), or None."""
    runner = None
    for i, arg in enumerate(args):
        if arg.startswith("--runner="):
            runner = arg.split("=", 1)[1]
        elif arg == "--runner" and i + 1 < len(args):
            runner = args[i + 1]
    return runner


def _is_dask(runner: str) -> bool:
    return runner.rsplit(".", 1)[-1].lower() in ("dask", "daskrunner")


def _import_runner(runner: str) -> None:
    """Imports the module of `runner` (a name Beam knows, or a class path), so that its options class is
    registered: a runner's own options (Dask's, another package's) are defined where the runner is."""
    import importlib

    from apache_beam.options.pipeline_options import StandardOptions

    known = {path.rsplit(".", 1)[-1].lower(): path for path in StandardOptions.ALL_KNOWN_RUNNERS}
    path = known.get(runner.lower(), known.get(runner.lower() + "runner", runner))
    if "." not in path:
        raise UserError(f"--runner={runner} is not a runner Beam knows ({', '.join(StandardOptions.KNOWN_RUNNER_NAMES)})"
                        "; give another package's runner by its class path, e.g. --runner=my_package.module.MyRunner")
    module = path.rsplit(".", 1)[0]
    try:
        importlib.import_module(module)
    except ImportError as e:
        raise UserError(f"--runner={runner}: cannot import {module} ({e}); install the package of that runner") from None


def check_pipeline_args(args) -> None:
    """Arguments that are neither the program's flags nor Beam pipeline options (Beam would only log and drop
    them, so a misspelt filter flag would silently go unused) stop the run, naming them. The runner's module is
    imported first, so that its own options are known; DaskRunner is refused (`DASK_REFUSED`)."""
    from apache_beam.options import pipeline_options

    not_flags = [a for a in args if not a.startswith("--")]
    if not_flags:
        raise UserError(f"unexpected arguments {not_flags}; flags and pipeline options are written --name=value")
    runner = runner_of(args)
    if runner is not None:
        if _is_dask(runner):
            raise UserError(DASK_REFUSED)
        _import_runner(runner)
    parser = pipeline_options._BeamArgumentParser(allow_abbrev=False)
    pending = list(pipeline_options.PipelineOptions.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        cls._add_argparse_args(parser)
    _, unknown = parser.parse_known_args(list(args))
    unknown = [a for a in unknown if a.startswith("--")]
    if unknown:
        raise UserError(f"unknown flags {unknown}: neither this program's flags (see --help) nor Beam pipeline "
                        "options (--runner, --direct_num_workers, ...)")


# --- what the pipeline works on ---

def _units(cfg: BeamConfig) -> list[tuple[int, int]]:
    """(shard, replica) pairs; a reassign unit is a whole filtered shard (replica 0)."""
    p = cfg.predict
    if p.reassign:
        present = label_shards.shards_to_reassign(p)
        todo = [s for s in present if not storage.exists(p.reassign_output_path(s))]
        for shard in sorted(set(present) - set(todo)):
            logging.info("shard %d: already reassigned (%s)", shard, p.reassign_output_path(shard))
        return [(shard, 0) for shard in todo]
    units = [(shard, worker) for shard in range(p.num_shards) for worker in range(p.total_replicas)]
    if cfg.filter is None:  # predictions only: as predict.py, a shard whose file exists is finished
        units = [u for u in units if not storage.exists(p.prediction_path(*u))]
    return units


def check_inputs(cfg: BeamConfig) -> tuple[BeamConfig, str]:
    """Everything that can be checked before the pipeline starts, with the per-shard tools' messages: the input
    shards, the teacher checkpoint and its class count.

    Returns:
        (the config with the checkpoint resolved to one prefix, so that every worker loads the same weights even
        if a newer checkpoint appears meanwhile; a description of what was read).
    """
    from noisy_student_tf.models.restore import restore_model

    cfg = with_resolved_checkpoint(cfg)
    p = cfg.predict
    if not p.reassign:
        for shard in range(p.num_shards):
            shard_io.require_file(p.input_path(shard), "input shard",
                                  "check --label_data_dir, --file_prefix and --num_shards")
    model, description = restore_model(p.model, p.checkpoint, use_ema=p.use_ema, what="predict_ckpt_path")
    label_shards.Classifier(model, p)  # the class count
    return cfg, description


def with_resolved_checkpoint(cfg: BeamConfig) -> BeamConfig:
    """`cfg` with the teacher checkpoint resolved to one prefix (a model_dir's latest), read without building
    the model."""
    from noisy_student_tf.models import tf1_checkpoint

    p = cfg.predict
    if not p.checkpoint:
        raise UserError("--predict_ckpt_path is required: the checkpoint (model_dir, prefix or original TF1 "
                        "checkpoint) whose predictions become the pseudo labels")
    prefix = tf1_checkpoint.resolve_checkpoint_path(p.checkpoint)  # predict.py's message when it is missing
    return dataclasses.replace(cfg, predict=dataclasses.replace(p, checkpoint=prefix))


def run_inputs(cfg: BeamConfig) -> dict:
    """What a finished run was computed from (recorded beside final_stats.json): a re-run with the same inputs
    does nothing."""
    p, f = cfg.predict, cfg.filter
    stamps = {storage.basename(path): provenance.file_stamp(path)
              for path in [p.input_path(s) for s in range(p.num_shards)] + [p.checkpoint + ".index"]}
    return {"checkpoint": p.checkpoint, "model": repr(p.model), "use_ema": p.use_ema, "precision": p.precision,
            "filter": repr(dataclasses.replace(f, shard_id=0, only_get_stats=False, all_shards=False,
                                               num_workers=None, poll_seconds=0.0, wait_timeout=0.0,
                                               rebuild_stale=False)),
            "predictions": [p.output_dir, p.info_dir] if cfg.write_predictions else None, **stamps}


def _forget_inputs(path: str) -> None:
    """The per-shard tools note each derived file's inputs in `<file>.inputs`; a file this pipeline rewrites
    must not keep a note about other inputs."""
    storage.remove(path + provenance.SUFFIX)


# --- the transforms' functions (module level, so that workers import them rather than unpickle code) ---

def read_chunks(unit: tuple[int, int], p: PredictConfig):
    """Yields ((shard, replica, first record), encoded images) in record order, in chunks of a multiple of the
    batch size (so the model sees predict.py's batches); at least one chunk, empty for a unit with no records."""
    from apache_beam.metrics import Metrics

    images = Metrics.counter(METRICS_NAMESPACE, IMAGES_COUNTER)
    shard, worker = unit
    chunk = p.batch_size * CHUNK_BATCHES
    path = p.input_path(shard)
    replicas = 1 if p.reassign else p.total_replicas
    pending, start = [], 0
    for batch in shard_io.record_batches(path, records.IMAGE_FEATURES, total_replicas=replicas, worker_id=worker):
        pending.extend(batch["image/encoded"])
        while len(pending) >= chunk:
            images.inc(chunk)
            yield (shard, worker, start), np.asarray(pending[:chunk], dtype=object)
            pending, start = pending[chunk:], start + chunk
    if pending or start == 0:
        images.inc(len(pending))
        yield (shard, worker, start), np.asarray(pending, dtype=object)


def drop_images(keyed_result, per_replica: bool):
    """((shard, replica, start), PredictionResult) -> ((shard, task), (replica, start, probabilities)): the image
    bytes stay behind, only probabilities are grouped. A task is what one filter_unlabel job reads: every
    replica of the shard (-1), or with `per_replica` (filter_unlabel's --task=N) each replica on its own."""
    (shard, worker, start), result = keyed_result
    return (shard, worker if per_replica else -1), (worker, start, np.asarray(result.inference, np.float32))


def _replicas(p: PredictConfig) -> int:
    return 1 if p.reassign else p.total_replicas


def assemble(shard_parts, p: PredictConfig):
    """((shard, task), [(replica, start, probabilities)]) -> ((shard, task), ShardPredictions) in replica, then
    record order. Each replica's predictions are counted against its records in the input shard (as predict.py
    counts them for its info file): a runner that lost or duplicated an element stops the run here, naming the
    shard, before any file of it is written."""
    (shard, task), parts = shard_parts
    parts = sorted(parts, key=lambda part: (part[0], part[1]))
    workers = [task] if task != -1 else list(range(_replicas(p)))
    path = p.input_path(shard)
    counts, per_replica = [], shard_io.replica_counts(path, _replicas(p))  # one read of the shard
    for worker in workers:
        expected = per_replica[worker]
        received = sum(len(probs) for w, _, probs in parts if w == worker)
        if received != expected:
            raise UserError(f"{path}: the pipeline received {received} predictions for the {expected} records of "
                            f"replica {worker}: the runner lost or repeated elements, and nothing of this shard was "
                            f"written. Run again, on a runner this package is tested with ({TESTED_RUNNERS})")
        counts.append(expected)
    probabilities = (np.concatenate([probs for _, _, probs in parts]) if parts
                     else np.zeros([0, p.model.num_classes], np.float32))
    return (shard, task), ShardPredictions(workers, counts, probabilities.argmax(axis=1).astype(np.int64),
                                           probabilities)


def expected_keys(units: list[tuple[int, int]], per_replica: bool) -> list[tuple[int, int]]:
    """The (shard, task) groups a complete run of `units` assembles (see `drop_images`)."""
    return sorted({(shard, worker if per_replica else -1) for shard, worker in units})


def check_complete(keys, expected: list[tuple[int, int]], p: PredictConfig):
    """Stops the run when a (shard, task) never arrived: a runner that dropped every element of a shard would
    otherwise finish without its files."""
    missing = sorted(set(expected) - set(keys))
    if missing:
        shard, task = missing[0]
        raise UserError(f"{p.input_path(shard)}: no prediction of this shard reached the end of the pipeline"
                        f"{'' if task == -1 else f' (replica {task})'}; {len(missing)} shard(s) missing: the runner "
                        f"lost elements. Run again, on a runner this package is tested with ({TESTED_RUNNERS})")
    return len(expected)


def _task_config(f: FilterConfig, task: int) -> FilterConfig:
    """The filter_unlabel job that handles `task`'s files (upstream ran one job per shard and task)."""
    return f if task == f.replica else dataclasses.replace(f, replica=task)


def _source_name(p: PredictConfig, shard: int, worker: int, write_predictions: bool) -> str:
    if write_predictions:
        return p.prediction_path(shard, worker)
    return f"{p.input_path(shard)} (the teacher's predictions of replica {worker})"


def shard_histogram(keyed, p: PredictConfig, f: FilterConfig, write_predictions: bool) -> np.ndarray:
    """A shard's [C, 101] histogram; zeros for shards the totals leave out (--only_use_num_shards). NaN or
    infinite probabilities stop the run here, before anything is written."""
    (shard, task), predictions = keyed
    bad = np.nonzero(~np.isfinite(predictions.probabilities).all(axis=1))[0]
    if len(bad):
        offsets = np.cumsum([0] + predictions.counts)
        worker_index = int(np.searchsorted(offsets, bad[0], side="right") - 1)
        name = _source_name(p, shard, predictions.workers[worker_index], write_predictions)
        raise UserError(f"{name}: record {int(bad[0] - offsets[worker_index])} has NaN or infinite probabilities")
    if (shard, task) not in f.aggregated():
        return np.zeros((f.num_classes, len(filtering.GRID)), np.int64)
    return filtering.histogram(predictions.classes, predictions.top_probs, f.num_classes)


def sum_histograms(histograms) -> np.ndarray:
    total = None
    for h in histograms:
        total = h.copy() if total is None else total + h
    return total


def make_plan(total: np.ndarray | None, f: FilterConfig):
    """The global step: total_counts.json, threshold.json, num_image_across_cat.json; returns the thresholds."""
    if total is None:
        total = np.zeros((f.num_classes, len(filtering.GRID)), np.int64)
    for path in (f.total_counts_path, f.threshold_path):
        _forget_inputs(path)
    filter_shards.write_total_counts(f, total)
    selected = filter_shards.plan_thresholds(f, total)
    filter_shards.write_thresholds(f, selected)
    return selected


def write_predictions(keyed, p: PredictConfig):
    """predict.py's files of one shard: train-info-SSSSS-of-NNNNN-WWWWW and info-SSSSS-of-NNNNN-WWWWW.txt."""
    (shard, _), predictions = keyed
    offset = 0
    for worker, count in zip(predictions.workers, predictions.counts):
        output, info = p.prediction_path(shard, worker), p.info_path(shard, worker)
        shard_io.write_info(info, count)  # first, as predict.py: a prediction file never lacks its count
        records.write_records(output, label_shards.prediction_records(predictions.probabilities[offset:offset + count]))
        offset += count
    return keyed[0]


def filter_shard(keyed, selected, p: PredictConfig, f: FilterConfig, with_predictions: bool):
    """One shard's second phase (upstream `filter_image_by_idx`), with its prelim stats (and predictions);
    returns ((shard, task), its per-class record counts)."""
    (shard, task), predictions = keyed
    f = _task_config(f, task)
    if with_predictions:
        write_predictions(keyed, p)
    for path in (f.prelim_path(shard, f.replica), f.stats_path(shard, f.replica)):
        _forget_inputs(path)
    filter_shards.write_prelim_stats(f, shard, filtering.histogram(predictions.classes, predictions.top_probs,
                                                                   f.num_classes))
    counts = filter_shards.write_filtered_shard(f, shard, predictions, selected)
    storage.write_json(f.stats_path(shard, f.replica), counts)
    return (shard, task), counts


def write_final_stats(per_shard_counts, f: FilterConfig, inputs: dict, expected: list, p: PredictConfig) -> dict:
    """final_stats.json (upstream `read_stats`: the shards the totals use), then the run's record: the run is
    finished. Every (shard, task) must have arrived."""
    counts = dict(per_shard_counts)
    check_complete(counts, expected, p)
    stats = filtering.final_stats(counts[key] for key in f.aggregated())
    storage.write_json(f.final_stats_path, stats)
    provenance.record(f.final_stats_path, inputs)
    return stats


def reassign_shard(keyed, p: PredictConfig):
    """Writes one re-labelled filtered shard (upstream `run_prediction` with `--reassign_label`); returns its
    (shard, task)."""
    (shard, _), predictions = keyed
    input_path = p.input_path(shard)

    def batches():
        start = 0
        for batch in shard_io.record_batches(input_path, records.IMAGE_FEATURES):
            images = batch["image/encoded"]
            yield predictions.probabilities[start:start + len(images)], images
            start += len(images)

    label_shards.write_reassigned_shard(p, shard, batches(), len(predictions.probabilities))
    return keyed[0]


# --- the pipeline ---

def build(pipeline, cfg: BeamConfig, units: list[tuple[int, int]], inputs: dict | None = None):
    """Adds the stage to `pipeline`; returns the PCollection of its result (final stats, or images written)."""
    import apache_beam as beam
    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

    from noisy_student_tf.offline.beam_inference import TeacherModelHandler

    p, f = cfg.predict, cfg.filter
    per_replica = f is not None and f.replica != -1
    expected = expected_keys(units, per_replica)
    predictions = (
        pipeline
        | "Units" >> beam.Create(units)
        | "SpreadUnits" >> beam.Reshuffle()  # one unit per worker, rather than all of them where Create ran
        | "ReadChunks" >> beam.FlatMap(read_chunks, p)
        | "Predict" >> RunInference(KeyedModelHandler(TeacherModelHandler(p)))
        | "DropImages" >> beam.Map(drop_images, per_replica)
        | "GroupByShardAndTask" >> beam.GroupByKey()
        | "Assemble" >> beam.Map(assemble, p))
    if p.reassign or f is None:
        written = (predictions | "Reassign" >> beam.Map(reassign_shard, p) if p.reassign
                   else predictions | "WritePredictions" >> beam.Map(write_predictions, p))
        return (written
                | "CollectShards" >> beam.combiners.ToList()
                | "CheckComplete" >> beam.Map(check_complete, expected, p))
    plan = (predictions
            | "Histogram" >> beam.Map(shard_histogram, p, f, cfg.write_predictions)
            | "SumHistograms" >> beam.CombineGlobally(sum_histograms)
            | "Plan" >> beam.Map(make_plan, f))
    return (predictions
            | "FilterShards" >> beam.Map(filter_shard, beam.pvalue.AsSingleton(plan), p, f, cfg.write_predictions)
            | "CollectCounts" >> beam.combiners.ToList()
            | "FinalStats" >> beam.Map(write_final_stats, f, inputs, expected, p))


_ERROR_NAMES = "|".join(cls.__name__ for cls in (UserError, CheckpointError, OutputError, UnreachableStorage,
                                                  provenance.StaleOutput))
_WORKER_ERROR = re.compile(rf"(?:{_ERROR_NAMES}): (.+?)(?: \[while running '[^']*'\])?$", re.MULTILINE)


def _user_error_in(error: BaseException) -> str | None:
    """A worker's UserError reaches the launching process as a runner error holding the worker's traceback:
    its message, if one is in there."""
    found = _WORKER_ERROR.findall(str(error))
    return found[-1] if found else None


class WorkerDeathWatch:
    """Beam 2.77's FnApiRunner in multi_processing mode waits forever once a worker process dies (the thread
    that started it raises "Worker subprocess exited with return code N" and nobody listens). While the pipeline
    runs, this notices that and interrupts the main thread, so the run stops with an error instead of hanging.

    On a busy machine the launcher may instead see the dead worker's data channel close first ("Channel closed
    prematurely", raised in the main thread); `wait_for_death` then collects the exit message without
    interrupting."""

    # How long a closed channel waits for the thread that watches the worker to report its exit code.
    EXIT_REPORT_SECONDS = 10.0

    def __init__(self):
        self.message = None
        self._previous = None
        self._interrupt = True
        self._lock = threading.Lock()
        self._died = threading.Event()

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # only the main thread can be interrupted
            self._previous = threading.excepthook
            threading.excepthook = self._hook
        return self

    def _hook(self, args):
        if isinstance(args.exc_value, RuntimeError) and "Worker subprocess exited" in str(args.exc_value):
            with self._lock:
                if self.message is None:
                    self.message = str(args.exc_value)
                    self._died.set()
                    if self._interrupt:
                        os.kill(os.getpid(), signal.SIGINT)
        self._previous(args)

    def wait_for_death(self) -> str:
        """The dead worker's exit message, waiting a little for it; a generic one if none comes."""
        with self._lock:
            self._interrupt = False
        self._died.wait(self.EXIT_REPORT_SECONDS)
        return self.message or "its data channel closed"

    def __exit__(self, *exc_info):
        if self._previous is not None:
            threading.excepthook = self._previous


def _worker_died(message: str) -> UserError:
    return UserError(f"a Beam worker process died ({message}). The files written so far are complete; run the "
                     "same command again to finish")


def pipeline_options_of(args) -> tuple[str, ...]:
    """`args` with the runner made explicit: `DEFAULT_RUNNER` when none is named."""
    runner = runner_of(args)
    if runner is None:
        return (f"--runner={DEFAULT_RUNNER}", *args)
    if runner.lower() in ("direct", "directrunner", "switchingdirectrunner"):
        logging.warning("--runner=%s: Beam's DirectRunner first tries to download and start the Prism runner, "
                        "which this package has not been tested on, and falls back to the FnApiRunner if it "
                        "cannot; --runner=FnApiRunner runs what the tests run", runner)
    return tuple(args)


def run(cfg: BeamConfig) -> dict:
    """Runs the stage on the runner `cfg.pipeline_args` choose (`DEFAULT_RUNNER`, Beam's FnApiRunner, by default).

    Returns:
        The final stats of the filtered data (final_stats.json's content); with no filter,
        {"shards": shards predicted} or {"images": images reassigned}.
    """
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    cfg.validate()
    check_pipeline_args(cfg.pipeline_args)
    cfg = dataclasses.replace(cfg, pipeline_args=pipeline_options_of(cfg.pipeline_args))
    quiet = std_logging.getLogger("apache_beam")
    if quiet.level == std_logging.NOTSET:  # Beam logs every worker's start and stop at INFO
        quiet.setLevel(std_logging.WARNING)
    f = cfg.filter
    inputs = None
    if f is not None:
        # The run's record first: a finished run returns before the teacher is loaded.
        inputs = run_inputs(with_resolved_checkpoint(cfg))
        done = f.final_stats_path
        if storage.exists(done + provenance.SUFFIX) and provenance.is_current(
                done, inputs, rebuild=f.rebuild_stale, hint=STALE_HINT):
            logging.info("already filtered with these inputs (%s)", done)
            return storage.read_json(done)
    cfg, description = check_inputs(cfg)
    p = cfg.predict
    logging.info("Beam: %s with %s", "reassigning" if p.reassign else "predicting", description)
    if f is not None:
        storage.remove_dead_temporaries(f.prelim_stats_dir, f.output_dir)
    directories = [d for d in (p.output_dir, p.info_dir if cfg.write_predictions else "") if d]
    for directory in directories:
        storage.makedirs(directory)
    storage.remove_dead_temporaries(*directories)
    units = _units(cfg)
    if not units:
        return {"shards": 0}
    start = time.monotonic()
    with WorkerDeathWatch() as death:
        # The outer handler also catches the watch's interrupt when it lands while the inner one runs.
        try:
            try:
                pipeline = beam.Pipeline(options=PipelineOptions(list(cfg.pipeline_args)))
                build(pipeline, cfg, units, inputs)
                result = pipeline.run()
                result.wait_until_finish()
            except UserError:
                raise
            except Exception as e:  # noqa: BLE001 - a worker's input error is the user's to fix; the rest propagate
                message = _user_error_in(e)
                if message is not None:
                    raise UserError(message) from None
                if isinstance(e, RuntimeError) and "Channel closed prematurely" in str(e):
                    raise _worker_died(death.wait_for_death()) from None
                raise
        except KeyboardInterrupt:
            if death.message is None:
                raise
            raise _worker_died(death.message) from None
    elapsed = time.monotonic() - start
    images = _images_predicted(result)
    logging.info("Beam pipeline finished in %.1f s: %s images predicted (%s images/s)", elapsed,
                 images if images is not None else "?", f"{images / elapsed:.0f}" if images else "?")
    if f is not None:
        stats = storage.read_json(f.final_stats_path)
        logging.info("filtered data: %d records; per class %s", stats["total_cnt"], stats["cat_count"])
        return stats
    return {"shards": len({shard for shard, _ in units})}


def _images_predicted(result) -> int | None:
    """The images counter summed over workers, where the runner reports metrics."""
    try:
        from apache_beam.metrics.metric import MetricsFilter

        counters = result.metrics().query(MetricsFilter().with_name(IMAGES_COUNTER))["counters"]
        return int(sum(c.committed or 0 for c in counters)) if counters else None
    except Exception:  # noqa: BLE001 - metrics are a courtesy some runners do not offer
        return None
