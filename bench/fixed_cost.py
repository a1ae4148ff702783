"""Where the fixed cost of a training step goes, and what the CPU thread settings do to it and to the main job's
step, in one sitting.

(a) Parts of an almost arithmetic-free step (EfficientNet-B0 at width and depth 0.1, 2 labeled 32x32 images, no
    teacher), each in a traced loop of 40 and of 840 steps, (t840 - t40) / 800: reading the batch alone; the
    forward pass and loss; + the backward pass; + the weight-decay term; + the optimizer update (TF1 RMSProp);
    + the weight EMA (the full step). Each row adds one part, so the differences are the parts' costs.
(b) The full tiny step and the main job's student step (the digits recipe: B0 at width and depth 0.5, 16 labeled
    + 32 pseudo-labelled images with stored soft targets, RandAugment M=5, dropout, stochastic depth) under
    oneDNN on / off (TF_ENABLE_ONEDNN_OPTS, read when TensorFlow loads) and 2 / 1 intra-op threads, each setting
    in its own process, the settings alternating within each round.

Writes bench/results/fixed_cost.md.

    python bench/fixed_cost.py [--rounds=1]
"""

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results", "fixed_cost.md")
SETTINGS = (("1", 2), ("1", 1), ("0", 2), ("0", 1))  # (TF_ENABLE_ONEDNN_OPTS, intra-op threads); first = default
PARTS = ("input", "forward", "backward", "weight decay", "optimizer", "EMA")


def tiny_trainer(work):
    from noisy_student_tf.config import ModelOptions
    from student_step import start_training, supervised_config, write_data

    labeled, _ = write_data(work)
    options = ModelOptions(width_coefficient=0.1, depth_coefficient=0.1)
    return start_training(supervised_config(f"{work}/tiny", labeled, batch=2, options=options))


def per_extra_step(run):
    """Seconds per extra step: (t840 - t40) / 800 of `run(num_steps)`."""
    seconds = {}
    for steps in (40, 840):
        start = time.perf_counter()
        run(steps)
        seconds[steps] = time.perf_counter() - start
    return (seconds[840] - seconds[40]) / 800


def parts(work):
    """{part: ms per extra step} of loops that stop after each part of the tiny step."""
    import tensorflow as tf

    from noisy_student_tf.training import losses

    trainer, iterator = tiny_trainer(work)
    model = trainer.model
    variables = model.student.trainable_variables

    def make(last):
        upto = PARTS.index(last)

        def one(batch):
            images, labels = batch["labeled"]["image"], batch["labeled"]["label"]
            if upto == 0:
                return tf.reduce_sum(tf.cast(images, tf.float32))
            with tf.GradientTape() as tape:
                logits = model.student(model._normalize(images), training=True)
                loss = tf.reduce_mean(losses.cross_entropy(tf.one_hot(labels, model.num_classes), logits))
                if upto >= 3:
                    loss += losses.weight_decay_loss(variables, model.weight_decay)
            if upto == 1:
                return loss
            grads = tape.gradient(loss, variables)
            if upto < 4:
                return tf.add_n([tf.reduce_sum(g) for g in grads])
            model.optimizer.apply_gradients(zip(grads, variables))
            if upto == 5:
                model.ema.update(model.optimizer.iterations)
            return loss

        @tf.function
        def steps(n):
            def body(i, total):
                return i + 1, total + trainer.strategy.run(one, args=(next(iterator),))
            # One step at a time, as in training (where each step reads the weights the last one wrote): a
            # loop without updates would otherwise overlap its iterations and hide part of their cost.
            return tf.while_loop(lambda i, _: i < n, body, [tf.constant(0), tf.constant(0.0)],
                                 parallel_iterations=1)[1]

        steps(tf.constant(2))
        return lambda n: steps(tf.constant(n))

    loops = {part: make(part) for part in PARTS}
    return {part: 1000 * per_extra_step(loop) for part, loop in loops.items()}


def tiny(work):
    trainer, iterator = tiny_trainer(work)
    return {"ms": 1000 * per_extra_step(lambda n: trainer.train_function(iterator, n))}


def student(work):
    """ms per step of the digits recipe's student, 3 blocks of 30 steps after 5."""
    import numpy as np

    from noisy_student_tf import recipes
    from noisy_student_tf import file_names
    from noisy_student_tf.data import records
    from noisy_student_tf.jobs import iterate
    from offline_throughput import jpeg_pool
    from student_step import start_training

    _, pool = jpeg_pool(1100, 32, seed=3)
    rng = np.random.default_rng(0)
    labeled, unlabeled = os.path.join(work, "labeled"), os.path.join(work, "unlabeled")
    os.makedirs(labeled)
    os.makedirs(unlabeled)
    records.write_records(os.path.join(labeled, file_names.shard_name("train", 0, 1)),
                          (records.labeled_example(pool[i], 1 + i % 10) for i in range(100)))
    probs = rng.dirichlet(np.ones(10) * 0.3, len(pool)).astype(np.float32)
    # Pseudo-labelled as a filter stage leaves them; named like raw unlabeled shards, which the driver looks for.
    records.write_records(os.path.join(unlabeled, file_names.shard_name("extra", 0, 1)),
                          (records.unlabeled_example(pool[i], probs[i], int(probs[i].argmax()), float(probs[i].max()))
                           for i in range(100, len(pool))))
    driver_cfg = dataclasses.replace(recipes.digits(), task_name="digits", label_data_dir=labeled,
                                     unlabel_data_dir=unlabeled, output_dir=os.path.join(work, "out"))
    driver = iterate.Driver(driver_cfg)
    cfg = driver.train_config(os.path.join(work, "student"), driver_cfg.teacher_model_name,
                              steps=driver_cfg.student_train_steps, seed=1,
                              batch_size=driver_cfg.train_batch_size, unlabel_data_dir=unlabeled)
    trainer, iterator = start_training(cfg)
    trainer.train_function(iterator, 5)
    blocks = []
    for _ in range(3):
        start = time.perf_counter()
        trainer.train_function(iterator, 30)
        blocks.append(1000 * (time.perf_counter() - start) / 30)
    return {"ms": float(np.median(blocks))}


def worker(case, intra):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(intra)
    sys.path.insert(0, ROOT)
    sys.path.insert(0, HERE)
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    work = tempfile.mkdtemp(prefix="fixed_cost_")
    try:
        result = {"parts": parts, "tiny": tiny, "student": student}[case](work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("RESULT " + json.dumps(result), flush=True)


def spawn(case, onednn, intra):
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn}
    out = subprocess.run([sys.executable, __file__, "--worker", case, f"--intra={intra}"], env=env,
                         capture_output=True, text=True, stdin=subprocess.DEVNULL)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode or not lines:
        sys.exit(f"worker {case} (oneDNN {onednn}, intra {intra}) failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--worker", choices=("parts", "tiny", "student"))
    parser.add_argument("--intra", type=int, default=2)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.intra)
    part_ms = spawn("parts", "1", 2)
    print(part_ms, flush=True)
    times = {(case, setting): [] for case in ("tiny", "student") for setting in SETTINGS}
    for _ in range(args.rounds):
        for setting in SETTINGS:
            for case in ("tiny", "student"):
                times[case, setting].append(spawn(case, *setting)["ms"])
                print(case, setting, times[case, setting][-1], flush=True)
    import tensorflow as tf

    rows, previous = [], 0.0
    for part in PARTS:
        rows.append(f"| + {part} | {part_ms[part]:.1f} | {part_ms[part] - previous:+.1f} |")
        previous = part_ms[part]
    setting_rows = []
    base = {case: statistics.median(times[case, SETTINGS[0]]) for case in ("tiny", "student")}
    for onednn, intra in SETTINGS:
        cells = []
        for case in ("tiny", "student"):
            ms = statistics.median(times[case, (onednn, intra)])
            cells.append(f"{ms:.1f} ({base[case] / ms:.2f}x)")
        setting_rows.append(f"| {'on' if onednn == '1' else 'off'} | {intra} | {' | '.join(cells)} |")
    text = "\n".join([
        "# The fixed cost of a training step", "",
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores, TensorFlow "
        f"{tf.__version__}; `python bench/fixed_cost.py --rounds={args.rounds}`, one sitting, nothing else running.",
        "",
        "(a) Parts of a tiny step (B0 at width and depth 0.1, 2 labeled 32x32 images, no teacher), each loop "
        "stopping after the named part; ms per extra step, (t840 - t40) / 800, oneDNN on, 2 intra-op threads:", "",
        "| loop runs | ms/step | this part |", "|---|---|---|", *rows, "",
        "(b) The full step under thread settings, each in its own process (median of the rounds; speed vs the "
        "default, oneDNN on with 2 threads, in brackets). Tiny: ms per extra step as in (a). Student: the digits "
        "recipe's student step (B0 at width and depth 0.5, 16 + 32 images, stored soft targets, RandAugment), "
        "ms per step:", "",
        "| oneDNN | intra-op threads | tiny step, ms | main job's student step, ms |", "|---|---|---|---|",
        *setting_rows, ""])
    with open(RESULTS, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
