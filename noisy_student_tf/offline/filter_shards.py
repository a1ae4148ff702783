"""filter_unlabel (upstream `filter_unlabel.py`): per-shard confidence statistics, per-class thresholds, balanced
shards.

One call of `run_shard` is one upstream invocation (one shard, one task, one phase); `run_all_shards` runs
both phases over every shard in one process. Outputs keep upstream's names and formats (`filter_image_by_idx`,
`get_threshold`); each is written atomically, and each derived file notes its inputs (`provenance`) so that a
re-run skips finished work but never reuses results computed from other predictions or flags.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import threading
import time

import numpy as np
import tensorflow as tf
from absl import logging

from noisy_student_tf import storage
from noisy_student_tf.config import FilterConfig
from noisy_student_tf.data import records
from noisy_student_tf.errors import UserError
from noisy_student_tf.offline import filtering, provenance, samples, shard_io
from noisy_student_tf.progress import Progress

CHUNK_RECORDS = 10000  # upstream shuffles and writes the kept records in chunks of this many
# Upstream filter_image_by_idx saves each written record as a sample JPEG with p = 30000 / (num_image * 1000).
SAMPLES_PER_CLASS_NUMERATOR = 30000.0
SAMPLES_PER_CLASS_DENOMINATOR = 1000.0


STALE_HINT = ("Use new --prelim_stats_dir/--output_dir directories, delete the old ones, or pass --rebuild_stale "
              "to recompute what is stale.")


@dataclasses.dataclass
class ShardPredictions:
    """A shard's predictions, all workers of this job concatenated (worker order, then record order)."""

    workers: list[int]
    counts: list[int]  # images per worker
    classes: np.ndarray
    probabilities: np.ndarray

    @property
    def top_probs(self) -> np.ndarray:
        return self.probabilities[np.arange(len(self.classes)), self.classes]


def _check_replicas(cfg: FilterConfig, shard: int) -> None:
    """Upstream inferred the number of prediction replicas from shard 0's files and asserted it equals
    --total_replicas; here a shard's files are checked directly."""
    extra, _ = cfg.prediction_paths(shard, cfg.total_replicas)
    if storage.exists(extra):
        raise UserError(f"{extra} exists: shard {shard} was predicted by more than --total_replicas="
                        f"{cfg.total_replicas} workers; pass the number of workers predict used")
    for worker in cfg.workers():
        prediction, info = cfg.prediction_paths(shard, worker)
        shard_io.require_file(prediction, "prediction file", "run predict for this shard first "
                              "(check --prediction_dir, --num_shards and --total_replicas)")
        shard_io.require_file(info, "info file", "run predict for this shard first (check --info_dir)")


def _shard_inputs(cfg: FilterConfig, shard: int) -> dict:
    inputs = {"num_label_classes": cfg.num_classes}
    for worker in cfg.workers():
        prediction, info = cfg.prediction_paths(shard, worker)
        inputs[storage.basename(prediction)] = provenance.file_stamp(prediction)
        inputs[storage.basename(info)] = provenance.file_stamp(info)
    return inputs


def read_shard_predictions(cfg: FilterConfig, shard: int) -> ShardPredictions:
    workers, counts, classes, probabilities = [], [], [], []
    for worker in cfg.workers():
        prediction, info = cfg.prediction_paths(shard, worker)
        image_num = shard_io.read_info(info)
        workers.append(worker)
        counts.append(image_num)
        if image_num == 0:
            continue
        c, p = shard_io.read_predictions(prediction, cfg.num_classes, image_num, info_path=info)
        classes.append(c)
        probabilities.append(p)
    return ShardPredictions(
        workers, counts,
        np.concatenate(classes) if classes else np.zeros([0], np.int64),
        np.concatenate(probabilities) if probabilities else np.zeros([0, cfg.num_classes], np.float32))


def _wait_for(cfg: FilterConfig, paths: list[str], what: str, how: str) -> None:
    """Upstream busy-waited forever; here: poll every poll_seconds, give up after wait_timeout naming the files."""
    deadline = time.monotonic() + cfg.wait_timeout
    while True:
        missing = [p for p in paths if not storage.exists(p)]
        if not missing:
            return
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        if time.monotonic() >= deadline:
            raise UserError(f"gave up after {cfg.wait_timeout:g} s waiting for {len(missing)} {what}: {shown}. "
                            f"{how}")
        logging.info("waiting for %d %s (%s); looking again in %g s", len(missing), what, shown,
                     cfg.poll_seconds)
        time.sleep(min(cfg.poll_seconds, max(deadline - time.monotonic(), 0.0)))


# --- phase 1 ---

def ensure_prelim_stats(cfg: FilterConfig, shard: int, predictions: ShardPredictions) -> None:
    path = cfg.prelim_path(shard, cfg.replica)
    inputs = _shard_inputs(cfg, shard)
    if provenance.is_current(path, inputs, rebuild=cfg.rebuild_stale, hint=STALE_HINT):
        return
    write_prelim_stats(cfg, shard, filtering.histogram(predictions.classes, predictions.top_probs, cfg.num_classes))
    provenance.record(path, inputs)


def write_prelim_stats(cfg: FilterConfig, shard: int, counts: np.ndarray) -> None:
    """prelim_stats_SSSSS_T.json: one shard's [C, 101] confidence histogram (upstream `get_threshold`)."""
    storage.write_json(cfg.prelim_path(shard, cfg.replica), filtering.histogram_json(counts, all_classes=False))


def ensure_total_counts(cfg: FilterConfig) -> np.ndarray:
    """Master: the histogram summed over all shards (total_counts.json, total_counts_sum.json)."""
    paths = [cfg.prelim_path(shard, task) for shard, task in cfg.aggregated()]
    _wait_for(cfg, paths, "prelim stats files",
              "Run filter_unlabel with --only_get_stats=1 for those shards (the master, shard 0, runs last).")
    inputs = {"num_label_classes": cfg.num_classes, **{storage.basename(p): provenance.file_hash(p) for p in paths}}
    path = cfg.total_counts_path
    if provenance.is_current(path, inputs, rebuild=cfg.rebuild_stale, hint=STALE_HINT):
        return filtering.histogram_from_json(storage.read_json(path), cfg.num_classes, path)
    total = np.zeros((cfg.num_classes, len(filtering.GRID)), np.int64)
    for p in paths:
        total += filtering.histogram_from_json(storage.read_json(p), cfg.num_classes, p)
    write_total_counts(cfg, total)
    provenance.record(path, inputs)
    return total


def write_total_counts(cfg: FilterConfig, total: np.ndarray) -> None:
    """total_counts.json and total_counts_sum.json: the histogram summed over the shards, and N(prob >= t)."""
    storage.write_json(cfg.total_counts_sum_path,
               filtering.histogram_json(filtering.suffix_sums(total), all_classes=True))
    storage.write_json(cfg.total_counts_path, filtering.histogram_json(total, all_classes=True))


def _threshold_inputs(cfg: FilterConfig) -> dict:
    return {"total_counts.json": provenance.file_hash(cfg.total_counts_path), "num_image": cfg.num_image,
            "min_threshold": cfg.min_threshold, "max_prob": cfg.max_prob, "use_top": bool(cfg.use_top),
            "use_all": bool(cfg.use_all), "num_label_classes": cfg.num_classes}


def ensure_thresholds(cfg: FilterConfig, total_counts: np.ndarray) -> None:
    """Master: threshold.json and num_image_across_cat.json (upstream `filter_unlabel.py`, `get_threshold`)."""
    path = cfg.threshold_path
    inputs = _threshold_inputs(cfg)
    if provenance.is_current(path, inputs, rebuild=cfg.rebuild_stale, hint=STALE_HINT):
        return
    write_thresholds(cfg, plan_thresholds(cfg, total_counts))
    provenance.record(path, inputs)


def plan_thresholds(cfg: FilterConfig, total_counts: np.ndarray) -> list[tuple[float, int]]:
    """Per class (threshold, images at or above it) from the global histogram (upstream `get_threshold`)."""
    selected = filtering.select_thresholds(total_counts, num_image=cfg.num_image, min_threshold=cfg.min_threshold,
                                           max_prob=cfg.max_prob, use_top=cfg.use_top, use_all=cfg.use_all)
    for name, (threshold, total) in zip(filtering.class_names(cfg.num_classes), selected):
        if not cfg.use_all:
            logging.info("class %s: threshold %.2f keeps %d images (target %d: %s)", name, threshold, total,
                         cfg.num_image, "upsampling" if total < cfg.num_image else "subsampling")
    return selected


def write_thresholds(cfg: FilterConfig, selected: list[tuple[float, int]]) -> None:
    """threshold.json ({class: [threshold, total]}) and num_image_across_cat.json."""
    # The misspelt key is upstream's (`get_threshold`); tools that read the file expect it.
    storage.write_json(storage.join(cfg.output_dir, "num_image_across_cat.json"),
               {"num_image_acorss_cat": filtering.num_image_across_classes(selected, cfg.num_image)})
    storage.write_json(cfg.threshold_path,
               {name: [t, n] for name, (t, n) in zip(filtering.class_names(cfg.num_classes), selected)})


def load_thresholds(cfg: FilterConfig) -> list[tuple[float, int]]:
    data = storage.read_json(cfg.threshold_path)
    try:
        return [(float(data[name][0]), int(data[name][1])) for name in filtering.class_names(cfg.num_classes)]
    except (KeyError, IndexError, TypeError, ValueError):
        raise UserError(f"{cfg.threshold_path} does not hold [threshold, total] for every class "
                        f"0..{cfg.num_classes - 1}") from None


# --- phase 2 ---

def _stats_inputs(cfg: FilterConfig, shard: int) -> dict:
    input_shard = cfg.input_shard(shard)
    threshold = cfg.threshold_path
    return {**_shard_inputs(cfg, shard),
            "threshold.json": provenance.file_hash(threshold) if storage.exists(threshold) else "missing",
            storage.basename(input_shard): provenance.file_stamp(input_shard),
            "seed": cfg.seed, "num_image": cfg.num_image, "max_prob": cfg.max_prob, "use_all": bool(cfg.use_all),
            "upsample": bool(cfg.upsample)}


def write_filtered_shard(cfg: FilterConfig, shard: int, predictions: ShardPredictions,
                         selected: list[tuple[float, int]]) -> dict:
    """Upstream `get_keep_image_idx` and `filter_image_by_idx`: choose copies, then write the kept images'
    original bytes with their pseudo labels, shuffled in chunks, plus sample JPEGs. Returns the per-class record
    counts."""
    choose_rng, write_rng = filtering.shard_rngs(cfg.seed, shard, cfg.replica)
    top_probs = predictions.top_probs
    copies = filtering.select_copies(predictions.classes, top_probs, selected, num_image=cfg.num_image,
                                     max_prob=cfg.max_prob, use_all=cfg.use_all, upsample=cfg.upsample,
                                     rng=choose_rng)
    counts = filtering.class_counts(predictions.classes, copies, cfg.num_classes)
    names = filtering.class_names(cfg.num_classes)
    sample_dir = storage.join(cfg.output_dir, "samples")
    for name in names:
        storage.makedirs(storage.join(sample_dir, name))
    data_path = cfg.data_path(shard)
    storage.makedirs(storage.parent(data_path))
    if not copies.sum():
        storage.remove(data_path)  # left by an earlier run that kept something
        logging.info("shard %d: no image passes its class threshold; no data file (as upstream)", shard)
        return counts

    input_path = cfg.input_shard(shard)
    shard_io.require_file(input_path, "unlabeled input shard", "check --input_dir, --file_prefix and --num_shards")
    encoder = records.PseudoLabelEncoder(cfg.num_classes)
    probabilities = np.ascontiguousarray(predictions.probabilities, "<f4")
    sample_prob = SAMPLES_PER_CLASS_NUMERATOR / (cfg.num_image * SAMPLES_PER_CLASS_DENOMINATOR)
    progress = Progress(f"filter shard {shard}", int(sum(predictions.counts)))
    written = 0

    # Kept images are queued as indices into the shard's arrays; each chunk is shuffled and written.
    top_f32 = np.ascontiguousarray(top_probs, "<f4")
    row_size = 4 * cfg.num_classes
    with storage.atomic_output(data_path) as tmp, tf.io.TFRecordWriter(tmp) as writer:
        pending_records, pending_index = [], []

        def flush():
            nonlocal written
            order = write_rng.permutation(len(pending_records))
            draws = write_rng.random(len(pending_records))
            write = writer.write
            for j in order.tolist():
                write(pending_records[j])
            for position in np.nonzero(draws < sample_prob)[0].tolist():
                j = int(order[position])
                i = pending_index[j]
                label = int(predictions.classes[i])
                name = "image_{:d}_{:d}_{:d}_{:.2f}.jpeg".format(shard, cfg.replica, local_index[i], top_probs[i])
                image = tf.train.Example.FromString(pending_records[j]).features.feature["image/encoded"]
                samples.save_sample(image.bytes_list.value[0], storage.join(sample_dir, names[label], name))
            written += len(pending_records)
            pending_records.clear()
            pending_index.clear()

        # Index of each image within its worker's records (the sample names use it, as upstream).
        local_index = np.concatenate([np.arange(n) for n in predictions.counts] or [np.zeros(0, np.int64)])
        offset = 0  # position of this worker's first image in the concatenated predictions
        for worker, image_num in zip(predictions.workers, predictions.counts):
            seen = 0
            for batch in shard_io.record_batches(input_path, records.IMAGE_FEATURES,
                                                 total_replicas=cfg.total_replicas, worker_id=worker):
                images = batch["image/encoded"]
                if seen + len(images) > image_num:
                    seen += len(images)
                    break
                start = offset + seen
                kept = np.nonzero(copies[start:start + len(images)])[0]
                chosen = start + kept
                labels = predictions.classes[chosen].tolist()
                repeats = copies[chosen].tolist()
                rows = probabilities[chosen].tobytes()
                tops = top_f32[chosen].tobytes()
                encode = encoder.encode
                for n, (k, i, label, repeat) in enumerate(zip(kept.tolist(), chosen.tolist(), labels, repeats)):
                    record = encode(images[k], label, tops[4 * n:4 * n + 4], rows[row_size * n:row_size * (n + 1)])
                    if repeat == 1:
                        pending_records.append(record)
                        pending_index.append(i)
                    else:
                        pending_records.extend([record] * repeat)
                        pending_index.extend([i] * repeat)
                    if len(pending_records) >= CHUNK_RECORDS:
                        flush()
                seen += len(images)
                progress.update(len(images))
            if seen != image_num:
                raise UserError(f"{input_path} has {'more' if seen > image_num else 'fewer'} records for worker "
                                f"{worker} than its {image_num} predictions: the predictions are of other data "
                                "(check --input_dir, --file_prefix and --total_replicas)")
            offset += image_num
        if pending_records:
            flush()
    progress.finish()
    logging.info("shard %d: wrote %d records (%d distinct images) to %s", shard, written,
                 int(np.count_nonzero(copies)), data_path)
    return counts


def write_final_stats(cfg: FilterConfig) -> dict:
    paths = [cfg.stats_path(shard, task) for shard, task in cfg.aggregated()]
    _wait_for(cfg, paths, "per-shard stats files", "Run filter_unlabel with --only_get_stats=0 for those shards "
              "(the master, shard 0, runs last).")
    stats = filtering.final_stats(storage.read_json(p) for p in paths)
    storage.write_json(cfg.final_stats_path, stats)
    logging.info("filtered data: %d records; per class %s", stats["total_cnt"], stats["cat_count"])
    return stats


# --- one upstream invocation ---

class PredictionCache:
    """Keeps shards' predictions from phase 1 for phase 2 of the same process, up to a memory budget."""

    def __init__(self, budget_bytes: int):
        self.budget, self.used, self._items = budget_bytes, 0, {}
        self._lock = threading.Lock()

    def put(self, key, predictions: ShardPredictions) -> None:
        size = predictions.probabilities.nbytes + predictions.classes.nbytes
        with self._lock:
            if self.used + size <= self.budget:
                self._items[key] = predictions
                self.used += size

    def pop(self, key) -> ShardPredictions | None:
        with self._lock:
            return self._items.pop(key, None)


PREDICTION_CACHE_BYTES = 2 << 30  # --all_shards keeps up to 2 GiB of predictions between its two phases


def run_shard(cfg: FilterConfig, shard: int, only_get_stats: bool, cache: PredictionCache | None = None,
              clean: bool = True) -> str:
    """Upstream filter_unlabel.main() for one shard; returns what it did ('done', 'stats', 'filtered')."""
    if not 0 <= shard < cfg.num_shards:
        raise UserError(f"--shard_id={shard} must be in 0..{cfg.num_shards - 1} (--num_shards={cfg.num_shards})")
    master = cfg.is_master(shard)
    _check_replicas(cfg, shard)
    if clean:  # --all_shards cleans once for all its shards
        storage.remove_dead_temporaries(cfg.prelim_stats_dir, cfg.output_dir)
    stats_path = cfg.stats_path(shard, cfg.replica)
    done = provenance.is_current(stats_path, _stats_inputs(cfg, shard), rebuild=cfg.rebuild_stale, hint=STALE_HINT)
    if done and master:
        # The master's shard may be finished while other shards' statistics changed since: bring the global
        # totals and thresholds up to date first; if the thresholds move, this shard is stale too.
        ensure_thresholds(cfg, ensure_total_counts(cfg))
        done = provenance.is_current(stats_path, _stats_inputs(cfg, shard), rebuild=cfg.rebuild_stale,
                                     hint=STALE_HINT)
    if done:
        logging.info("shard %d is already filtered (%s)", shard, stats_path)
        if master:
            write_final_stats(cfg)
        return "done"
    prelim_path = cfg.prelim_path(shard, cfg.replica)
    if only_get_stats and not master and provenance.is_current(
            prelim_path, _shard_inputs(cfg, shard), rebuild=cfg.rebuild_stale, hint=STALE_HINT):
        logging.info("shard %d already has its prelim stats (%s)", shard, prelim_path)
        return "stats"

    key = (cfg.replica, shard)
    predictions = (cache.pop(key) if cache else None) or read_shard_predictions(cfg, shard)
    ensure_prelim_stats(cfg, shard, predictions)
    if master:
        ensure_thresholds(cfg, ensure_total_counts(cfg))
    if only_get_stats:
        if cache is not None:
            cache.put(key, predictions)
        return "stats"
    if not master:
        _wait_for(cfg, [cfg.threshold_path], "threshold file",
                  "Run phase 1 (--only_get_stats=1) for every shard first; the master (shard 0) writes it.")
    selected = load_thresholds(cfg)
    counts = write_filtered_shard(cfg, shard, predictions, selected)
    inputs = _stats_inputs(cfg, shard)
    storage.write_json(stats_path, counts)
    provenance.record(stats_path, inputs)
    if master:
        write_final_stats(cfg)
    return "filtered"


def run_all_shards(cfg: FilterConfig, num_workers: int | None = None) -> dict:
    """Both phases over every shard (and every task) in one process, shards in parallel threads."""
    tasks = [-1] if cfg.replica == -1 else list(range(cfg.total_replicas))
    jobs = [dataclasses.replace(cfg, replica=task) for task in tasks]
    master = jobs[0]
    others = [(job, shard) for job in jobs for shard in range(cfg.num_shards) if not job.is_master(shard)]
    workers = num_workers or os.cpu_count() or 1
    cache = PredictionCache(PREDICTION_CACHE_BYTES)
    storage.remove_dead_temporaries(cfg.prelim_stats_dir, cfg.output_dir)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for only_get_stats in (True, False):
            futures = [pool.submit(run_shard, job, shard, only_get_stats, cache, False) for job, shard in others]
            for future in futures:
                future.result()
            run_shard(master, 0, only_get_stats, cache, False)
    return storage.read_json(cfg.final_stats_path)
