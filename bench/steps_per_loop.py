"""Steps inside one traced loop: student-step throughput at loop lengths 1, 10 and 100, and the fixed cost of a
step, in one sitting.

(a) The noisy-student step (small-image EfficientNet-B0 student and online teacher, RandAugment N2/M5, soft
    targets, EMA, RMSProp; from TFRecord shards) at the main job's batch, 16 labeled + 32 unlabeled (r = 2), and at
    B = 128, r = 3. Blocks of 100 steps alternate between loop lengths 1, 10 and 100 (100 calls of 1 step, 10 of
    10, 1 of 100); the table gives the median of the paired ratios against length 1.
(b) The fixed cost of a step: a B0 at width and depth 0.1 on 2 labeled 32x32 images (no teacher; almost no
    arithmetic), timed over 40 and over 840 steps: (t840 - t40) / 800, at loop length 1 and at the longest loop
    the trainer runs (one call per block), paired.

Writes bench/results/steps_per_loop.md (or --results).

    python bench/steps_per_loop.py [--blocks=3]
    python bench/steps_per_loop.py --blocks=1 --batches=128 --skip_fixed_cost \
        --results=bench/results/steps_per_loop_b128.md   # a B = 128 step takes seconds: about 40 min
"""

import argparse
import dataclasses
import os
import platform
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import logging  # noqa: E402

from noisy_student_tf.config import ModelOptions  # noqa: E402
from noisy_student_tf.jobs import train  # noqa: E402
from student_step import (start_training, supervised_config, with_online_teacher, with_randaugment,  # noqa: E402
                          write_data)

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "steps_per_loop.md")
LENGTHS = (1, 10, 100)
BLOCK = 100


def student(work, labeled, unlabeled, teacher, name, batch, ratio):
    cfg = with_online_teacher(with_randaugment(supervised_config(f"{work}/{name}", labeled, batch=batch), 5),
                              unlabeled, teacher, ratio=ratio)
    cfg = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, weight_decay=1e-4))
    return start_training(cfg)


def run_block(trainer, iterator, length, steps):
    start = time.perf_counter()
    for _ in range(steps // length):
        trainer.train_function(iterator, length)
    return time.perf_counter() - start


def throughput(trainer, iterator, blocks):
    """{length: [seconds per block of BLOCK steps]}, the lengths alternating within each round."""
    times = {length: [] for length in LENGTHS}
    for _ in range(blocks):
        for length in LENGTHS:
            times[length].append(run_block(trainer, iterator, length, BLOCK))
    return times


def fixed_cost(work, labeled, blocks):
    """Seconds per extra step of an almost arithmetic-free step, at loop length 1 and at one call per block."""
    options = ModelOptions(width_coefficient=0.1, depth_coefficient=0.1)
    cfg = supervised_config(f"{work}/tiny", labeled, batch=2, options=options)
    trainer, iterator = start_training(cfg)
    costs = {"1": [], "long": []}
    for _ in range(blocks):
        for key in costs:
            seconds = {}
            for steps in (40, 840):
                start = time.perf_counter()
                if key == "1":
                    for _ in range(steps):
                        trainer.train_function(iterator, 1)
                else:
                    trainer.train_function(iterator, steps)
                seconds[steps] = time.perf_counter() - start
            costs[key].append((seconds[840] - seconds[40]) / 800)
    return costs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--batches", default="16,128", help="Labeled batch sizes of (a): 16 (r = 2, the main "
                        "job's) and/or 128 (r = 3); a B = 128 step takes seconds on a 2-core CPU.")
    parser.add_argument("--skip_fixed_cost", action="store_true")
    parser.add_argument("--results", default=RESULTS, help="Where to write the table.")
    args = parser.parse_args()
    logging.set_verbosity(logging.WARNING)
    work = tempfile.mkdtemp(prefix="steps_per_loop_")
    rows = []
    try:
        labeled, unlabeled = write_data(work)
        train.run(supervised_config(f"{work}/teacher", labeled, batch=8, steps=1, seed=0))
        sizes = [(name, batch, ratio) for name, batch, ratio in (("main job's batch", 16, 2), ("B = 128", 128, 3))
                 if str(batch) in args.batches.split(",")]
        for name, batch, ratio in sizes:
            trainer, iterator = student(work, labeled, unlabeled, f"{work}/teacher", f"student_{batch}", batch, ratio)
            times = throughput(trainer, iterator, args.blocks)
            images = batch * (1 + ratio)
            for length in LENGTHS:
                ratios = [one / this for one, this in zip(times[1], times[length])]
                rows.append(f"| {name} ({batch} + {batch * ratio}) | {length} | "
                            f"{images * BLOCK / np.median(times[length]):.1f} | "
                            f"{1000 * np.median(times[length]) / BLOCK:.0f} | {np.median(ratios):.3f} "
                            f"({min(ratios):.3f}–{max(ratios):.3f}) |")
                print(rows[-1], flush=True)
        costs = {} if args.skip_fixed_cost else fixed_cost(work, labeled, args.blocks)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cost_rows = [f"| {'1 (one call per step)' if key == '1' else '40 or 840 (one call)'} | "
                 f"{1000 * np.median(values):.1f} | {', '.join(f'{1000 * v:.1f}' for v in values)} |"
                 for key, values in costs.items()]
    text = "\n".join([
        "# Steps per traced loop", "",
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores, TensorFlow "
        f"{tf.__version__}; `python bench/steps_per_loop.py --blocks={args.blocks} --batches={args.batches}"
        f"{' --skip_fixed_cost' if args.skip_fixed_cost else ''}"
        f"{'' if args.results == RESULTS else ' --results=' + os.path.relpath(args.results)}`, one sitting.", "",
        "Student step (small-image B0 student and online teacher, RandAugment, EMA, RMSProp), blocks of "
        f"{BLOCK} steps alternating between loop lengths; ratio = length-1 time / this length's time (median of "
        "the paired blocks, and their range):", "",
        "| batch | loop length | student images/s | ms/step | speed vs length 1 |", "|---|---|---|---|---|",
        *rows, ""])
    if cost_rows:
        text += "\n".join([
            "", "Fixed cost of a step (B0 at width and depth 0.1, 2 images of 32x32, no teacher): (t840 - t40) / 800:",
            "", "| steps per call | ms per step (median) | each pair |", "|---|---|---|", *cost_rows, ""])
    os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
    with open(args.results, "w", encoding="utf-8") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
