"""The offline stage on Apache Beam against the per-shard tools, as commands a user runs, in one sitting.

On the same unlabeled shards (32x32 JPEGs) and the same teacher (the digits recipe's EfficientNet-B0, small-image
path, 10 classes), each pair of runs times
  tools: python predict.py --shard_id=0,...,N-1  then  python filter_unlabel.py --all_shards
  beam:  python pseudo_label_beam.py --runner=FnApiRunner --direct_num_workers=2
         --direct_running_mode=multi_processing   (predictions written too, so both write the same files)
wall clock from process start to exit, alternating which goes first. The ratio is images/s of Beam over images/s
of the tools (tools time / Beam time) per pair; the table gives each pair and the median, and checks that both
wrote the same files. Results: bench/results/beam_throughput.md.

    python bench/beam_throughput.py [--images=16000] [--shards=8] [--pairs=3]
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from noisy_student_tf import file_names
from noisy_student_tf.config import ModelConfig  # noqa: E402
from noisy_student_tf.data import records  # noqa: E402
from noisy_student_tf.models.inference import model_from_config  # noqa: E402

RESULTS = os.path.join(ROOT, "bench", "results", "beam_throughput.md")
TEACHER = ["--task_name=digits", "--model_name=efficientnet-b0", "--use_bfloat16=False", "--predict_batch_size=64"]


def write_data(root, images, shards):
    rng = np.random.RandomState(0)
    pool = rng.randint(0, 256, (512, 8, 8, 3)).astype(np.uint8)
    pool = tf.image.resize(pool, (32, 32)).numpy().astype(np.uint8)  # smooth, like the digits' upscaled pixels
    jpegs = [tf.io.encode_jpeg(img, quality=95).numpy() for img in pool]
    for shard, indices in enumerate(np.array_split(np.arange(images), shards)):
        records.write_records(os.path.join(root, "unl", file_names.shard_name("extra", shard, shards)),
                              (records.labeled_example(jpegs[i % len(jpegs)], 1) for i in indices))
    model = model_from_config(ModelConfig("efficientnet-b0", 10, 32, small_image_model=True))
    tf.train.Checkpoint(model=model).write(os.path.join(root, "teacher", "model.ckpt-1"))


def commands(root, out, shards, num_image):
    data = [f"--num_shards={shards}", "--file_prefix=extra"]
    dirs = [f"--prediction_dir={out}/predict_label", f"--info_dir={out}/info",
            f"--prelim_stats_dir={out}/prelim_stats", f"--output_dir={out}/filter_data"]
    filter_flags = [f"--num_image={num_image}", "--min_threshold=0.0", "--num_label_classes=10"]
    tools = [
        [sys.executable, "predict.py", *TEACHER, *data, f"--predict_ckpt_path={root}/teacher",
         f"--label_data_dir={root}/unl", f"--shard_id={','.join(map(str, range(shards)))}",
         f"--output_dir={out}/predict_label", f"--info_dir={out}/info"],
        [sys.executable, "filter_unlabel.py", *data, *dirs, *filter_flags, f"--input_dir={root}/unl", "--all_shards"],
    ]
    beam = [[sys.executable, "pseudo_label_beam.py", *TEACHER, *data, *dirs, *filter_flags,
             f"--predict_ckpt_path={root}/teacher", f"--input_dir={root}/unl", "--runner=FnApiRunner",
             "--direct_num_workers=2", "--direct_running_mode=multi_processing"]]
    return tools, beam


def timed(command_list):
    start = time.perf_counter()
    for command in command_list:
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if result.returncode:
            sys.exit(f"{command[1]} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def files(directory):
    found = {}
    for parent, _, names in os.walk(directory):
        for name in names:
            if not name.endswith(".inputs"):
                with open(os.path.join(parent, name), "rb") as f:
                    found[os.path.relpath(os.path.join(parent, name), directory)] = f.read()
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="beam_bench_")
    try:
        write_data(root, args.images, args.shards)
        rows, ratios = [], []
        for pair in range(args.pairs):
            times = {}
            order = ("tools", "beam") if pair % 2 == 0 else ("beam", "tools")
            for name in order:
                out = os.path.join(root, f"{name}_{pair}")
                tools, beam = commands(root, out, args.shards, args.images // 10)
                times[name] = timed(tools if name == "tools" else beam)
            same = files(os.path.join(root, f"tools_{pair}")) == files(os.path.join(root, f"beam_{pair}"))
            ratios.append(times["tools"] / times["beam"])
            rows.append(f"| {pair + 1} | {' then '.join(order)} | {times['tools']:.1f} | "
                        f"{args.images / times['tools']:.0f} | {times['beam']:.1f} | {args.images / times['beam']:.0f} | "
                        f"{ratios[-1]:.2f} | {'yes' if same else 'NO'} |")
            print(rows[-1], flush=True)
            for name in ("tools", "beam"):
                shutil.rmtree(os.path.join(root, f"{name}_{pair}"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    table = "\n".join([
        "# Apache Beam offline stage vs the per-shard tools", "",
        f"{args.images} unlabeled 32x32 JPEGs in {args.shards} shards; teacher EfficientNet-B0 (digits, small-image "
        f"path, 10 classes); {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"TF {tf.__version__}. Each command's wall time from start to exit (TF import, model load, "
        "predict, filter, writing), in one sitting; ratio = Beam images/s / tools images/s.", "",
        "| pair | order | tools s | tools img/s | Beam s | Beam img/s | ratio | same files |",
        "|---|---|---|---|---|---|---|---|", *rows, "",
        f"Median ratio: {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f}).", ""])
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w", encoding="utf-8") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    main()
