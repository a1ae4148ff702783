"""The full noisy-student training step beside the ideal composed from plain Keras calls.

Ours: the Trainer's step fed by the real input pipeline from TFRecord shards: JPEG decode, RandAugment (N2, M5)
and crop on 32 labeled + 96 unlabeled images, the online teacher's soft labels on the clean unlabeled view, the
student's forward and backward pass on 128 images, RMSProp, EMA (the SVHN recipe of local_scripts/svhn/run.sh at
B = 32, unlabel_ratio = 3, small-image EfficientNet-B0).
Ideal: the same model's `train_on_batch` on 128 preloaded, already augmented images (RMSProp, soft-label cross
entropy) plus the teacher's `predict_on_batch` on 96 preloaded images: the model work alone, with no input
pipeline, no augmentation, no EMA, no weight decay, no metrics.
Also ours with --jit_compile (XLA) against ours without.

Blocks of steps alternate between the contenders and the table gives the median of the paired ratios (this VM's
speed drifts too much for separate runs). Writes bench/results/student_step.md.

    python bench/student_step.py [--blocks=4] [--steps_per_block=5]
"""

import argparse
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

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import logging  # noqa: E402

from noisy_student_tf import file_names
from noisy_student_tf import derivations  # noqa: E402
from noisy_student_tf.config import (InputConfig, ModelOptions, OptimConfig,  # noqa: E402
                                     TeacherConfig, TrainConfig)
from noisy_student_tf.data import records  # noqa: E402
from noisy_student_tf.jobs import train  # noqa: E402
from noisy_student_tf.models import build_model  # noqa: E402
from noisy_student_tf.tasks import get_task  # noqa: E402
from noisy_student_tf.training.trainer import Trainer  # noqa: E402
from offline_throughput import jpeg_pool  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "student_step.md")
BATCH, RATIO, CLASSES = 32, 3, 10


def supervised_config(model_dir, label_data_dir, *, batch, steps=100_000, seed=1, task_name="svhn",
                      num_label_classes=CLASSES, options=ModelOptions()) -> TrainConfig:
    """EfficientNet-B0 trained on labeled images alone, with main.py's defaults (TrainConfig's: float32, no input
    noise, weight decay 1e-5). The schedule is long, so that a benchmark never reaches its end."""
    task = get_task(task_name)
    return TrainConfig(model_dir=model_dir, task=task,
                       model=derivations.model_config(task, "efficientnet-b0", num_label_classes, options),
                       input=InputConfig(label_data_dir=label_data_dir, train_batch_size=batch),
                       optim=OptimConfig(train_steps=steps), seed=seed)


def with_randaugment(cfg: TrainConfig, magnitude) -> TrainConfig:
    """RandAugment (N2) at `magnitude` on labeled and unlabeled images."""
    return dataclasses.replace(cfg, augment=dataclasses.replace(cfg.augment, augment_name="v1", unl_augment_name="v1",
                                                                randaug_mag=magnitude))


def with_online_teacher(cfg: TrainConfig, unlabel_data_dir, teacher_dir, ratio=RATIO) -> TrainConfig:
    """A noisy student of the same architecture as its teacher, which runs in every step on the clean view of
    `ratio` unlabeled images per labeled one and gives soft targets (T = 1)."""
    name = cfg.model.model_name
    teacher = TeacherConfig(model_name=name, checkpoint=teacher_dir, softmax_temp=1.0,
                            image_size=derivations.teacher_image_size(cfg.model, name))
    return dataclasses.replace(cfg, teacher=teacher, input=dataclasses.replace(
        cfg.input, unlabel_data_dir=unlabel_data_dir, unlabel_ratio=ratio))


def start_training(cfg: TrainConfig):
    """The Trainer of `cfg` and an iterator over the batches `jobs.train.run` would feed it, after two traced
    steps. Returns (trainer, iterator)."""
    cfg = train.validate(cfg)
    trainer = Trainer(cfg)
    trainer.initialize()
    make_dataset = train.dataset_fn(cfg, trainer.num_replicas)
    iterator = iter(trainer.strategy.distribute_datasets_from_function(lambda ctx: make_dataset(ctx, 0)))
    trainer.train_function(iterator, 2)  # tracing
    return trainer, iterator


def write_data(work):
    _, pool = jpeg_pool(2048, 32, seed=2)
    labeled, unlabeled = os.path.join(work, "labeled"), os.path.join(work, "unlabeled")
    os.makedirs(labeled)
    os.makedirs(unlabeled)
    for shard in range(2):
        records.write_records(os.path.join(labeled, file_names.shard_name("train", shard, 2)),
                              (records.labeled_example(pool[i], 1 + i % CLASSES) for i in range(shard, 512, 2)))
    for shard in range(4):
        records.write_records(os.path.join(unlabeled, file_names.shard_name("extra", shard, 4)),
                              (records.unlabeled_example(pool[i], np.zeros(CLASSES), 0, 0.0)
                               for i in range(shard, len(pool), 4)))
    return labeled, unlabeled


def our_trainer(work, labeled, unlabeled, teacher, name, jit_compile=False):
    cfg = with_online_teacher(with_randaugment(supervised_config(f"{work}/{name}", labeled, batch=BATCH), 5),
                              unlabeled, teacher)
    # The SVHN recipe's weight decay (local_scripts/svhn/run.sh).
    cfg = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, weight_decay=1e-4),
                              runtime=dataclasses.replace(cfg.runtime, jit_compile=jit_compile))
    trainer, iterator = start_training(cfg)
    return lambda steps: trainer.train_function(iterator, steps)


def ideal_step():
    task = get_task("svhn")
    student = build_model("efficientnet-b0", CLASSES, small_image_model=True)
    teacher = build_model("efficientnet-b0", CLASSES, small_image_model=True)
    student.compile(optimizer=keras.optimizers.RMSprop(0.01, rho=0.9, momentum=0.9, epsilon=1e-3),
                    loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    images = ((rng.uniform(0, 255, (BATCH * (1 + RATIO), 32, 32, 3)) - task.mean) / task.std).astype(np.float32)
    targets = rng.dirichlet(np.ones(CLASSES), BATCH * (1 + RATIO)).astype(np.float32)
    unlabeled = images[BATCH:]

    def steps(n):
        for _ in range(n):
            teacher.predict_on_batch(unlabeled)
            student.train_on_batch(images, targets)

    steps(2)
    return steps


def depthwise_probe():
    """Why XLA is slow here: one depthwise convolution, forward and backward, with and without XLA."""
    images = tf.random.normal([128, 16, 16, 96])
    kernel = tf.Variable(tf.random.normal([3, 3, 96, 1]))
    out = {}
    for jit in (False, True):
        @tf.function(jit_compile=jit)
        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], "SAME")
                loss = tf.reduce_sum(y * y)
            return tape.gradient(loss, [x, kernel])

        step(images)
        start = time.perf_counter()
        for _ in range(5):
            step(images)[1].numpy()
        out[jit] = (time.perf_counter() - start) / 5 * 1000
    return out


def probe_note(probe):
    return (f"XLA on this CPU: one 3x3 depthwise convolution (128x16x16x96), forward + backward, takes "
            f"{probe[True]:.0f} ms compiled against {probe[False]:.1f} ms without XLA (TensorFlow's own kernels use "
            "oneDNN); EfficientNet's MBConv blocks are built on depthwise convolutions.")


def paired(a, b, blocks, steps):
    times = {"a": [], "b": []}
    for _ in range(blocks):
        for key, fn in (("a", a), ("b", b)):
            start = time.perf_counter()
            fn(steps)
            times[key].append((time.perf_counter() - start) / steps)
    return times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--steps_per_block", type=int, default=5)
    parser.add_argument("--jit_blocks", type=int, default=2)
    parser.add_argument("--jit_steps_per_block", type=int, default=1, help="An XLA step takes about a minute "
                        "on a 2-core CPU (see the depthwise probe).")
    args = parser.parse_args()
    logging.set_verbosity(logging.WARNING)
    work = tempfile.mkdtemp(prefix="student_step_")
    images = BATCH * (1 + RATIO)
    try:
        labeled, unlabeled = write_data(work)
        # A teacher checkpoint of ours: one training step is enough for a speed test.
        train.run(supervised_config(f"{work}/teacher", labeled, batch=8, steps=1, seed=0))
        ours = our_trainer(work, labeled, unlabeled, f"{work}/teacher", "student")
        ideal = ideal_step()
        t = paired(ours, ideal, args.blocks, args.steps_per_block)
        ratio = float(np.median([i / o for o, i in zip(t["a"], t["b"])]))
        print(f"ours {images / np.median(t['a']):.1f} img/s, ideal {images / np.median(t['b']):.1f}, "
              f"ratio {ratio:.2f}", flush=True)
        jit = our_trainer(work, labeled, unlabeled, f"{work}/teacher", "student_jit", jit_compile=True)
        j = paired(jit, ours, args.jit_blocks, args.jit_steps_per_block)
        gain = float(np.median([o / x for x, o in zip(j["a"], j["b"])]))
        print(f"jit {images / np.median(j['a']):.1f} img/s vs {images / np.median(j['b']):.1f}: {gain:.2f}x",
              flush=True)
        probe = depthwise_probe()
        print(probe_note(probe), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = ["| step | student images/s (labeled + unlabeled) | seconds/step | ratio | goal |", "|---|---|---|---|---|",
             f"| ours: full noisy-student step from TFRecord shards | {images / np.median(t['a']):,.1f} | "
             f"{np.median(t['a']):.2f} | {ratio:.2f} of the ideal | ≥ 0.85 |",
             f"| ideal: train_on_batch({images}) + teacher predict_on_batch({BATCH * RATIO}), preloaded | "
             f"{images / np.median(t['b']):,.1f} | {np.median(t['b']):.2f} | 1 | |",
             f"| ours with --jit_compile (XLA) | {images / np.median(j['a']):,.1f} | {np.median(j['a']):.2f} | "
             f"{gain:.2f}× ours without | report |"]
    header = (f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores, TensorFlow "
              f"{tf.__version__}; `python bench/student_step.py` (small-image EfficientNet-B0 student and online "
              f"teacher, B = {BATCH}, unlabel_ratio = {RATIO}; {args.blocks} paired blocks of "
              f"{args.steps_per_block} steps, medians; XLA: {args.jit_blocks} blocks of "
              f"{args.jit_steps_per_block}).\n\n{probe_note(probe)}\n\n")
    table = "\n".join(lines)
    print(header + table)
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as out:
        out.write("# The noisy-student training step vs its ideal\n\n" + header + table + "\n")


if __name__ == "__main__":
    main()
