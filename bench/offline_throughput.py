"""Offline pseudo-labelling throughput, each stage beside its ideal, measured in one run.

(a) predict: our predict stage (TFRecord shards -> JPEG decode -> eval preprocessing -> EMA model -> prediction
    records on disk) vs the same model's `predict` on the same images already decoded in memory.
(b) filter_unlabel: both phases over 1,000,000 prediction records and their image shards (`--all_shards`,
    one thread per core) vs a plain TFRecord read + write of the same bytes with the same threads (the I/O
    limit: every image and prediction record read once, every image record written once).

Prints a table and writes it to bench/results/offline_throughput.md.

    python bench/offline_throughput.py [--records=1000000] [--predict_images=4096]
"""

import argparse
import concurrent.futures
import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import logging  # noqa: E402

from noisy_student_tf import file_names
from noisy_student_tf.config import ModelConfig, PredictConfig  # noqa: E402
from noisy_student_tf.data import records  # noqa: E402
from noisy_student_tf.jobs import filter_unlabel  # noqa: E402
from noisy_student_tf.models.inference import model_from_config  # noqa: E402
from noisy_student_tf.offline import label_shards  # noqa: E402
from noisy_student_tf.config import FilterConfig  # noqa: E402
from noisy_student_tf.tasks import get_task  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "offline_throughput.md")
NUM_CLASSES = 10


def jpeg_pool(count, size, seed=0):
    rng = np.random.RandomState(seed)
    images = rng.randint(0, 256, (count, size, size, 3)).astype(np.uint8)
    # Smooth noise compresses like a photo crop rather than like white noise.
    images = tf.image.resize(tf.image.resize(images, (size // 4, size // 4)), (size, size)).numpy().astype(np.uint8)
    return images, [tf.io.encode_jpeg(img, quality=95).numpy() for img in images]


def write_image_shards(directory, pool, total, num_shards):
    paths = []
    for shard, indices in enumerate(np.array_split(np.arange(total), num_shards)):
        path = os.path.join(directory, file_names.shard_name("extra", shard, num_shards))
        records.write_records(path, (records.labeled_example(pool[i % len(pool)], 1) for i in indices))
        paths.append(path)
    return paths


def bench_predict(work, num_images, batch_size, repeats):
    task = get_task("svhn")
    images, pool = jpeg_pool(num_images, 32)
    data = os.path.join(work, "predict_in")
    os.makedirs(data)
    write_image_shards(data, pool, num_images, 4)
    model_cfg = ModelConfig("efficientnet-b0", NUM_CLASSES, 32, small_image_model=True)
    model = model_from_config(model_cfg)
    # No checkpoint: a random network predicts as fast as a trained one.
    cfg = PredictConfig(checkpoint="", input_dir=data, output_dir="", info_dir="", task=task, model=model_cfg,
                        file_prefix="extra", num_shards=4, shards=tuple(range(4)), batch_size=batch_size)
    classifier = label_shards.Classifier(model, cfg)
    decoded = np.stack([tf.io.decode_jpeg(b).numpy() for b in pool]).astype(np.float32)
    normalized = (decoded - np.asarray(task.mean, np.float32)) / np.asarray(task.std, np.float32)

    def ours():
        out = os.path.join(work, f"predict_out_{time.monotonic_ns()}")
        label_shards.run(classifier, dataclasses.replace(cfg, output_dir=out, info_dir=out))

    def ideal():
        model.predict(normalized, batch_size=batch_size, verbose=0)

    ours()
    ideal()  # warm-up: tracing
    # This VM's speed drifts by tens of percent from minute to minute: pair each run of ours with a run of the
    # ideal right after it and report the median of the paired ratios (and the median rates).
    times = {"ours": [], "ideal": []}
    for _ in range(repeats):
        for name, fn in (("ours", ours), ("ideal", ideal)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    ratios = [i / o for o, i in zip(times["ours"], times["ideal"])]
    logging.warning("predict pairs (ours s, ideal s): %s",
                    ", ".join(f"({o:.1f}, {i:.1f})" for o, i in zip(times["ours"], times["ideal"])))
    return {"ours": num_images / float(np.median(times["ours"])),
            "ideal": num_images / float(np.median(times["ideal"])), "ratio": float(np.median(ratios)),
            "spread": f"{min(ratios):.2f}–{max(ratios):.2f} over {repeats} pairs"}


def prediction_shards(directory, info_dir, labels, confidences, num_shards):
    os.makedirs(directory, exist_ok=True)
    os.makedirs(info_dir, exist_ok=True)
    for shard, indices in enumerate(np.array_split(np.arange(len(labels)), num_shards)):
        rows = np.full((len(indices), NUM_CLASSES), 0.0, np.float32)
        rows[:] = ((1 - confidences[indices]) / (NUM_CLASSES - 1))[:, None]
        rows[np.arange(len(indices)), labels[indices]] = confidences[indices]
        records.write_records(os.path.join(directory, file_names.prediction_name(shard, num_shards, 0)),
                              (records.prediction_example(r, int(c)) for r, c in zip(rows, labels[indices])))
        with open(os.path.join(info_dir, file_names.info_name(shard, num_shards, 0)), "w") as f:
            json.dump({"image_num": len(indices)}, f)


def plain_copy(image_paths, prediction_paths, out_dir, threads):
    """Read every image and prediction record, write every image record: the I/O this filter cannot avoid."""
    os.makedirs(out_dir, exist_ok=True)

    def copy(pair):
        image_path, prediction_path = pair
        with tf.io.TFRecordWriter(os.path.join(out_dir, os.path.basename(image_path))) as writer:
            for batch in tf.data.TFRecordDataset(image_path, buffer_size=8 << 20).batch(4096).as_numpy_iterator():
                for record in batch:
                    writer.write(record)
            for _ in tf.data.TFRecordDataset(prediction_path, buffer_size=8 << 20).batch(4096):
                pass

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(copy, zip(image_paths, prediction_paths)))


def bench_filter(work, total, num_shards, threads):
    rng = np.random.RandomState(0)
    labels = rng.randint(0, NUM_CLASSES, total)
    confidences = rng.uniform(0.3, 1.0, total).astype(np.float32)
    _, pool = jpeg_pool(1000, 32, seed=1)
    unl = os.path.join(work, "unl")
    os.makedirs(unl)
    t = time.perf_counter()
    image_paths = write_image_shards(unl, pool, total, num_shards)
    prediction_shards(os.path.join(work, "predict_label"), os.path.join(work, "info"), labels, confidences,
                      num_shards)
    logging.info("wrote the filter inputs in %.0f s", time.perf_counter() - t)
    prediction_paths = [os.path.join(work, "predict_label", file_names.prediction_name(s, num_shards, 0))
                        for s in range(num_shards)]
    # Warm the page cache for both contenders alike.
    plain_copy(image_paths, prediction_paths, os.path.join(work, "warm"), threads)
    shutil.rmtree(os.path.join(work, "warm"))

    start = time.perf_counter()
    plain_copy(image_paths, prediction_paths, os.path.join(work, "copy"), threads)
    plain = time.perf_counter() - start

    # The target keeps about every image: num_image = total / classes. Both phases of every shard, as
    # `filter_unlabel.py --all_shards`.
    cfg = FilterConfig(input_dir=unl, prediction_dir=os.path.join(work, "predict_label"),
                       info_dir=os.path.join(work, "info"), prelim_stats_dir=os.path.join(work, "prelim"),
                       output_dir=os.path.join(work, "filter"), num_classes=NUM_CLASSES, num_shards=num_shards,
                       num_image=total // NUM_CLASSES, replica=0, min_threshold=0.3, file_prefix="extra",
                       all_shards=True, num_workers=threads)
    start = time.perf_counter()
    stats = filter_unlabel.run(cfg)
    ours = time.perf_counter() - start
    return {"ours": total / ours, "plain": total / plain, "written": stats["total_cnt"], "ours_s": ours,
            "plain_s": plain}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--filter_shards", type=int, default=16)
    parser.add_argument("--predict_images", type=int, default=4096)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    logging.set_verbosity(logging.WARNING)
    threads = args.threads
    work = tempfile.mkdtemp(prefix="offline_bench_")
    try:
        p = bench_predict(work, args.predict_images, args.batch_size, args.repeats)
        f = bench_filter(work, args.records, args.filter_shards, threads)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [
        ("predict (EfficientNet-B0 small-image, 32x32, batch %d)" % args.batch_size,
         f"{p['ours']:,.0f} images/s", f"{p['ideal']:,.0f} images/s (model.predict, in memory)",
         p["ratio"], "≥ 0.9", f" (median; {p['spread']})"),
        (f"filter_unlabel, both phases, {args.records:,} records, {args.filter_shards} shards, {threads} threads",
         f"{f['ours']:,.0f} records/s ({f['ours_s']:.1f} s)",
         f"{f['plain']:,.0f} records/s ({f['plain_s']:.1f} s; TFRecord read + write)", f["ours"] / f["plain"],
         "≥ 0.5", ""),
    ]
    lines = ["| stage | ours | ideal | ratio | goal |", "|---|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {r:.2f}{spread} | {g} |" for a, b, c, r, g, spread in rows]
    table = "\n".join(lines)
    header = (f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {threads} cores, "
              f"TensorFlow {tf.__version__}; `python bench/offline_throughput.py` "
              f"(filter wrote {f['written']:,} records).\n\n")
    print(header + table)
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as out:
        out.write("# Offline pseudo-labelling throughput\n\n" + header + table + "\n")


if __name__ == "__main__":
    main()
