"""What the file layer (noisy_student_tf/storage.py) costs on local disk: predict, filter_unlabel --all_shards and a
training job, each run with the code before the layer and with the code after it, in paired fresh processes one
after the other (the order alternating), on the same files.

    git worktree add /tmp/before <commit before the layer>
    python bench/storage_overhead.py --before=/tmp/before [--pairs=5]

Each timed run is the job's `run(config)` in its own process (imports and data preparation not timed), writing
into a new output directory. Prints the seconds of every run and, per stage, the median and range of the speed
ratio after / before (before's seconds over after's: above 1 means the layer is faster); writes the table to
bench/results/storage_overhead.md.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
AFTER = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results", "storage_overhead.md")
STAGES = ("predict", "filter", "train")
NUM_CLASSES = 10
PREDICT_SHARDS, PREDICT_IMAGES = 4, 8192
FILTER_SHARDS, FILTER_RECORDS = 8, 400_000
TRAIN_STEPS = 100


def model_config():
    from noisy_student_tf.config import ModelConfig

    return ModelConfig("efficientnet-b0", NUM_CLASSES, 32, small_image_model=True, width_coefficient=0.5,
                       depth_coefficient=0.5)


def train_config(model_dir, data, steps):
    """The digits recipe's student network and batch on the labeled shards, RandAugment (M=5), a checkpoint and a
    summary every 10 steps."""
    from noisy_student_tf.config import AugmentConfig, InputConfig, LoopConfig, OptimConfig, TrainConfig
    from noisy_student_tf.tasks import get_task

    return TrainConfig(model_dir=model_dir, task=get_task("svhn"), model=model_config(),
                       input=InputConfig(label_data_dir=data, train_batch_size=16),
                       optim=OptimConfig(train_steps=steps, num_train_images=800),
                       augment=AugmentConfig(augment_name="v1", randaug_mag=5),
                       loop=LoopConfig(iterations_per_loop=10, save_checkpoints_steps=10, log_step_count_steps=10),
                       seed=0)


def predict_config(teacher, data, out, num_shards):
    from noisy_student_tf.config import PredictConfig
    from noisy_student_tf.tasks import get_task

    return PredictConfig(checkpoint=teacher, input_dir=data, output_dir=os.path.join(out, "predict_label"),
                         info_dir=os.path.join(out, "info"), task=get_task("svhn"), model=model_config(),
                         file_prefix="extra", num_shards=num_shards, shards=tuple(range(num_shards)), batch_size=64)


def filter_config(work, out, num_shards):
    from noisy_student_tf.config import FilterConfig

    return FilterConfig(input_dir=os.path.join(work, "filter_in"), file_prefix="extra",
                        prediction_dir=os.path.join(work, "filter_pred", "predict_label"),
                        info_dir=os.path.join(work, "filter_pred", "info"),
                        prelim_stats_dir=os.path.join(out, "prelim_stats"), output_dir=os.path.join(out, "data"),
                        num_classes=NUM_CLASSES, num_shards=num_shards, replica=0, num_image=FILTER_RECORDS // 20,
                        all_shards=True)


def prepare(work):
    """Input files shared by every run (written once, with the code after the layer)."""
    import numpy as np
    import tensorflow as tf

    from noisy_student_tf import file_names
    from noisy_student_tf.data import records
    from noisy_student_tf.jobs import train

    rng = np.random.RandomState(0)
    pool = [tf.io.encode_jpeg(img, quality=95).numpy() for img in
            tf.image.resize(rng.randint(0, 256, (512, 8, 8, 3)), (32, 32)).numpy().astype(np.uint8)]
    for name, shards, total in (("predict_in", PREDICT_SHARDS, PREDICT_IMAGES), ("filter_in", FILTER_SHARDS,
                                                                                FILTER_RECORDS)):
        os.makedirs(os.path.join(work, name))
        for shard, indices in enumerate(np.array_split(np.arange(total), shards)):
            records.write_records(os.path.join(work, name, file_names.shard_name("extra", shard, shards)),
                                  (records.labeled_example(pool[i % len(pool)], 1) for i in indices))
    os.makedirs(os.path.join(work, "labeled"))
    for shard in range(4):
        records.write_records(os.path.join(work, "labeled", file_names.shard_name("train", shard, 4)),
                              (records.labeled_example(pool[(shard * 200 + i) % len(pool)], i % NUM_CLASSES + 1)
                               for i in range(200)))
    # Predictions of the filter's input: confident rows, so that the filter keeps and writes many records.
    predictions, info = os.path.join(work, "filter_pred", "predict_label"), os.path.join(work, "filter_pred", "info")
    os.makedirs(predictions)
    os.makedirs(info)
    for shard, indices in enumerate(np.array_split(np.arange(FILTER_RECORDS), FILTER_SHARDS)):
        probabilities = rng.dirichlet(np.full(NUM_CLASSES, 0.3), len(indices)).astype(np.float32)
        records.write_records(os.path.join(predictions, file_names.prediction_name(shard, FILTER_SHARDS, 0)),
                              (records.prediction_example(p, int(p.argmax())) for p in probabilities))
        with open(os.path.join(info, file_names.info_name(shard, FILTER_SHARDS, 0)), "w") as f:
            json.dump({"image_num": len(indices)}, f)
    # The predicting teacher: a checkpoint after one step.
    train.run(train_config(os.path.join(work, "teacher"), os.path.join(work, "labeled"), steps=1))


def run_stage(stage, work, out):
    """One timed run of `stage` with the code on sys.path; returns its seconds."""
    if stage == "predict":
        from noisy_student_tf.jobs import predict as job

        cfg = predict_config(os.path.join(work, "teacher"), os.path.join(work, "predict_in"), out, PREDICT_SHARDS)
    elif stage == "filter":
        from noisy_student_tf.jobs import filter_unlabel as job

        cfg = filter_config(work, out, FILTER_SHARDS)
    else:
        from noisy_student_tf.jobs import train as job

        cfg = train_config(out, os.path.join(work, "labeled"), steps=TRAIN_STEPS)
    start = time.perf_counter()
    job.run(cfg)
    return time.perf_counter() - start


def worker(args):
    sys.path.insert(0, args.code)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import noisy_student_tf

    assert os.path.dirname(os.path.dirname(noisy_student_tf.__file__)) == os.path.abspath(args.code)
    if args.worker == "prepare":
        prepare(args.work)
        return
    print(json.dumps({"seconds": run_stage(args.worker, args.work, args.out)}))


def spawn(code, stage, work, out=""):
    command = [sys.executable, os.path.abspath(__file__), f"--worker={stage}", f"--code={code}", f"--work={work}",
               f"--out={out}"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        sys.exit(f"{stage} with {code} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])["seconds"] if stage != "prepare" else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="a checkout of the code before the file layer")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--work", default="/tmp/storage_overhead")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated: predict, filter, train")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if not args.before:
        parser.error("--before is required: a checkout (git worktree) of the code before the file layer")
    if not os.path.isdir(os.path.join(args.work, "teacher")):
        spawn(AFTER, "prepare", args.work)
    shutil.rmtree(os.path.join(args.work, "runs"), ignore_errors=True)  # every run writes into a new directory
    stages = [stage for stage in args.stages.split(",") if stage]
    seconds = {stage: {"before": [], "after": []} for stage in stages}
    for pair in range(args.pairs):
        for stage in stages:
            order = ("before", "after") if pair % 2 == 0 else ("after", "before")
            for side in order:
                out = os.path.join(args.work, "runs", f"{stage}_{side}_{pair}")
                code = args.before if side == "before" else AFTER
                seconds[stage][side].append(spawn(code, stage, args.work, out))
            print(f"pair {pair}: {stage} before {seconds[stage]['before'][-1]:.2f} s, after "
                  f"{seconds[stage]['after'][-1]:.2f} s", flush=True)
    lines = [f"# Cost of the file layer on local disk ({args.pairs} pairs, {time.strftime('%Y-%m-%d')})", "",
             "Each run is the job's `run(config)` in a fresh process; a pair is the code before and after the layer one "
             "after the other (order alternating), on the same input files. Speed ratio = before's seconds / "
             "after's.", "",
             "| stage | what | before (s, median) | after (s, median) | speed ratio, median | range |",
             "|---|---|---|---|---|---|"]
    what = {"predict": f"{PREDICT_IMAGES} images in {PREDICT_SHARDS} shards, small-image B0, batch 64",
            "filter": f"`--all_shards`, {FILTER_RECORDS:,} records in {FILTER_SHARDS} shards",
            "train": f"{TRAIN_STEPS} steps, B0 at width/depth 0.5, batch 16, RandAugment, checkpoint every 10"}
    for stage in stages:
        before, after = seconds[stage]["before"], seconds[stage]["after"]
        ratios = [b / a for b, a in zip(before, after)]
        lines.append(f"| {stage} | {what[stage]} | {statistics.median(before):.2f} | {statistics.median(after):.2f} "
                     f"| {statistics.median(ratios):.3f} | {min(ratios):.3f}–{max(ratios):.3f} |")
    lines += ["", "Seconds per run:", "", "```", json.dumps(seconds, indent=1), "```"]
    print("\n".join(lines))
    with open(RESULTS, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
