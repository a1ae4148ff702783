"""How the costs grow: training step time with batch size and image size, predict throughput with batch size
and image size, filter time with the number of records. Each series gets a least-squares line and its R²; a
plot shows the points beside the line.

- step vs batch: our noisy-student step with an online teacher (RandAugment, EMA, RMSProp; small-image
  EfficientNet-B0 at width and depth 0.5, unlabel_ratio 3), B labeled images per step.
- step vs image size: our supervised step (RandAugment, crop, EMA, RMSProp) of EfficientNet-B0 on the ImageNet
  path, 16 images per step, against the number of pixels S².
- predict vs batch and image size: predict.py's shard loop (TFRecord -> JPEG decode -> eval view -> model ->
  prediction records) with EfficientNet-B0; sizes against S².
- filter vs records: filter_unlabel --all_shards, both phases, 2 threads.

Writes bench/results/scaling.{md,png}.

    python bench/scaling.py [--quick]
"""

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dataclasses  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import logging  # noqa: E402

from noisy_student_tf import file_names
from noisy_student_tf.config import ModelConfig, ModelOptions, PredictConfig  # noqa: E402
from noisy_student_tf.data import records  # noqa: E402
from noisy_student_tf.jobs import train  # noqa: E402
from noisy_student_tf.models.inference import model_from_config  # noqa: E402
from noisy_student_tf.offline import label_shards  # noqa: E402
from noisy_student_tf.tasks import get_task  # noqa: E402
from offline_throughput import bench_filter, jpeg_pool, write_image_shards  # noqa: E402
from student_step import (start_training, supervised_config, with_online_teacher, with_randaugment,  # noqa: E402
                          write_data)

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
HALF = ModelOptions(width_coefficient=0.5, depth_coefficient=0.5)


def timed_steps(cfg, steps):
    trainer, iterator = start_training(cfg)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        trainer.train_function(iterator, 1)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def step_vs_batch(work, batches, steps):
    labeled, unlabeled = write_data(work)
    teacher = os.path.join(work, "teacher")
    train.run(supervised_config(teacher, labeled, batch=8, steps=1, seed=0, options=HALF))
    out = []
    for batch in batches:
        cfg = supervised_config(f"{work}/student_b{batch}", labeled, batch=batch, options=HALF)
        out.append(timed_steps(with_online_teacher(with_randaugment(cfg, 5), unlabeled, teacher), steps))
        print(f"step, batch {batch}: {out[-1]:.3f} s", flush=True)
    return out


def step_vs_size(work, sizes, steps, batch=16):
    _, pool = jpeg_pool(256, 64, seed=3)
    data = os.path.join(work, "imagenet_like")
    os.makedirs(data)
    records.write_records(os.path.join(data, file_names.shard_name("train", 0, 1)),
                          (records.labeled_example(b, 1 + i % 10) for i, b in enumerate(pool)))
    out = []
    for size in sizes:
        cfg = supervised_config(f"{work}/size_{size}", data, batch=batch, task_name="imagenet", num_label_classes=1000,
                                options=ModelOptions(input_image_size=size))
        out.append(timed_steps(with_randaugment(cfg, 15), steps))
        print(f"step, {size}x{size}: {out[-1]:.3f} s", flush=True)
    return out


def predict_rate(work, name, image_size, small, batch, num_images, repeats=2):
    task = get_task("svhn")
    _, pool = jpeg_pool(min(num_images, 512), max(32, image_size), seed=4)
    data = os.path.join(work, f"predict_{name}")
    os.makedirs(data)
    write_image_shards(data, pool, num_images, 2)
    model_cfg = ModelConfig("efficientnet-b0", 10, image_size, small_image_model=small)
    # No checkpoint: a random network predicts as fast as a trained one.
    cfg = PredictConfig(checkpoint="", input_dir=data, output_dir="", info_dir="", task=task, model=model_cfg,
                        file_prefix="extra", num_shards=2, shards=(0, 1), batch_size=batch)
    classifier = label_shards.Classifier(model_from_config(model_cfg), cfg)
    rates = []
    for k in range(repeats + 1):
        out = os.path.join(work, f"predict_{name}_out_{k}")
        start = time.perf_counter()
        label_shards.run(classifier, dataclasses.replace(cfg, output_dir=out, info_dir=out))
        if k:  # the first run traces
            rates.append(num_images / (time.perf_counter() - start))
    return float(np.median(rates))


def fit(x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    r2 = 1 - (residual ** 2).sum() / ((y - y.mean()) ** 2).sum()
    return slope, intercept, r2


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="Fewer, smaller points (a smoke test).")
    parser.add_argument("--replot", action="store_true", help="Redo the table and plot from scaling.json.")
    args = parser.parse_args()
    if args.replot:
        with open(os.path.join(RESULTS, "scaling.json")) as f:
            saved = json.load(f)
        write_results({k: tuple(v) for k, v in saved["series"].items()}, saved["quick"])
        return
    logging.set_verbosity(logging.WARNING)
    quick = args.quick
    batches = [4, 8] if quick else [8, 16, 32, 64]
    sizes = [32, 64] if quick else [32, 64, 96, 128, 160, 224]
    predict_batches = [16, 64] if quick else [8, 32, 128, 512]
    predict_sizes = [32, 64] if quick else [32, 64, 128, 224]
    filter_records = [2000, 4000] if quick else [50_000, 100_000, 200_000, 400_000]
    steps = 2 if quick else 4
    work = tempfile.mkdtemp(prefix="scaling_")
    series = {}
    try:
        series["step_batch"] = (batches, step_vs_batch(os.path.join(work, "a"), batches, steps))
        series["step_size"] = (sizes, step_vs_size(os.path.join(work, "b"), sizes, steps))
        images = 512 if quick else 2048
        series["predict_batch"] = (predict_batches, [
            predict_rate(work, f"b{b}", 32, True, b, images) for b in predict_batches])
        print("predict vs batch", series["predict_batch"], flush=True)
        series["predict_size"] = (predict_sizes, [
            predict_rate(work, f"s{s}", s, False, 64, images if s <= 64 else images // 4) for s in predict_sizes])
        print("predict vs size", series["predict_size"], flush=True)
        seconds = []
        for total in filter_records:
            part = os.path.join(work, f"filter_{total}")
            os.makedirs(part)
            seconds.append(bench_filter(part, total, 16, os.cpu_count() or 1)["ours_s"])
            shutil.rmtree(part)
            print(f"filter {total}: {seconds[-1]:.2f} s", flush=True)
        series["filter_records"] = (filter_records, seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_results(series, quick)


PANELS = {
    # key: (title, x label, y label, x transform for the fit, y transform)
    "step_batch": ("noisy-student step vs batch (B0 w/d 0.5, r=3)", "labeled images per step B (4B images)",
                   "seconds per step", lambda x: x, lambda y, x: y),
    "step_size": ("supervised step vs image size (B0, 16 images)", "pixels S²", "seconds per step",
                  lambda s: s * s, lambda y, s: y),
    # Throughput saturates with the batch size; the time of one batch is what grows linearly (the intercept is
    # the fixed cost of a batch).
    "predict_batch": ("predict vs batch (small-image B0, 32x32)", "predict batch size", "ms per batch",
                      lambda x: x, lambda rate, batch: 1000.0 * batch / rate),
    "predict_size": ("predict vs image size (B0, batch 64)", "pixels S²", "seconds per 1,000 images",
                     lambda s: s * s, lambda rate, size: 1000.0 / rate),
    "filter_records": ("filter_unlabel vs records (2 threads)", "records", "seconds",
                       lambda x: x, lambda y, x: y),
}


def write_results(series, quick):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.6))
    lines = ["| what | x | measured | linear fit (y = a·x + b) | R² |", "|---|---|---|---|---|"]
    for ax, (key, (title, xlabel, ylabel, fx, fy)) in zip(axes, PANELS.items()):
        xs, raw = series[key]
        x = np.array([fx(v) for v in xs], float)
        y = np.array([fy(v, x) for v, x in zip(raw, xs)], float)
        slope, intercept, r2 = fit(x, y)
        ax.plot(x, y, "o", label="measured")
        grid = np.linspace(0, x.max(), 50)
        ax.plot(grid, slope * grid + intercept, "-", alpha=0.6, label=f"line, R² = {r2:.3f}")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        measured = ", ".join(f"{v:g}: {w:.3g}" for v, w in zip(xs, y))
        if key == "predict_batch":
            measured += " (" + ", ".join(f"{r:.0f}" for r in raw) + " images/s)"
        lines.append(f"| {title}: {ylabel} | {xlabel} | {measured} | a = {slope:.3g}, b = {intercept:.3g} | "
                     f"{r2:.3f} |")
    fig.tight_layout()
    os.makedirs(RESULTS, exist_ok=True)
    fig.savefig(os.path.join(RESULTS, "scaling.png"), dpi=110)
    with open(os.path.join(RESULTS, "scaling.json"), "w") as f:
        json.dump({"quick": quick, "series": series}, f, indent=1)
    header = (f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores, TensorFlow "
              f"{tf.__version__}; `python bench/scaling.py{' --quick' if quick else ''}` (medians of a few runs "
              "per point).\n\n")
    table = "\n".join(lines)
    print(header + table)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "scaling.md"), "w") as out:
        out.write("# Scaling\n\n" + header + table + "\n\n![scaling](scaling.png)\n")


if __name__ == "__main__":
    main()
