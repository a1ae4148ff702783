"""The paper's ablations on the digits task: noise, pseudo labels, student size.

Every variant is one student iteration (the digits recipe of noisy_student_tf/recipes.py with `iterations=1`,
run by `noisy_student_tf.jobs.iterate.run`) from the teacher of the main job of the same seed (run
experiments/digits_seeds.py first: it leaves the teachers, their pseudo labels and student 1 in --seeds_dir). A
variant changes one thing of the recipe (`dataclasses.replace`) against student 1 of the main job, which is the
"all noise, soft labels, filtered and balanced, equal size" reference; the student's seed is the same in all of
them, so the comparison is paired per seed.

    noise:        all noise (reference) · no RandAugment (crop only) · no dropout and no stochastic depth ·
                  no noise at all · noised teacher (pseudo labels predicted with RandAugment, dropout and
                  stochastic depth on; the student as the reference)
    pseudo labels: soft (reference) · hard (teacher_softmax_temp=-1) · no filtering and no balancing
                  (every unlabeled image once: the filter with use_all and min_threshold=0)
    student size: equal (B0 at width/depth 0.5, reference) · larger (B0 at width/depth 0.75)

It prints three tables (test top-1, mean ± std over seeds, and the paired difference to the reference) and
writes them to experiments/results/ablations.{md,json} with one plot per table.

    python experiments/ablations.py [--seeds=0,1,2] [--seeds_dir=/tmp/digits_seeds] [--work_dir=/tmp/ablations]

Not run in CI: a variant takes 4-10 minutes per seed on a 2-core CPU. A re-run skips finished variants.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from typing import Callable

import numpy as np
from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from noisy_student_tf import file_names
from noisy_student_tf import recipes  # noqa: E402
from spawn import spawn_logged  # noqa: E402 (experiments/spawn.py)
from noisy_student_tf.config import DriverConfig  # noqa: E402
from noisy_student_tf import storage  # noqa: E402

RESULTS = os.path.join(ROOT, "experiments", "results")

flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds: each one's main job must be in --seeds_dir.")
flags.DEFINE_string("seeds_dir", "/tmp/digits_seeds", "experiments/digits_seeds.py's --work_dir.")
flags.DEFINE_string("work_dir", "/tmp/ablations", "Where the variants' runs go.")
flags.DEFINE_list("variants", [], "Run only these variant keys (default: all).")
FLAGS = flags.FLAGS


# A variant's one change to the main job's recipe (noisy_student_tf/recipes.py, `digits`).
def no_randaugment(cfg: DriverConfig) -> DriverConfig:
    return dataclasses.replace(cfg, augment=dataclasses.replace(cfg.augment, augment_name=None, unl_augment_name=None))


def no_model_noise(cfg: DriverConfig) -> DriverConfig:
    return dataclasses.replace(cfg, model_options=dataclasses.replace(cfg.model_options, dropout_rate=0.0,
                                                                      stochastic_depth_rate=0.0))


def hard_labels(cfg: DriverConfig) -> DriverConfig:
    return dataclasses.replace(cfg, teacher_softmax_temp=-1.0)


def larger_network(cfg: DriverConfig) -> DriverConfig:
    # Every network of the run gets it, but the teacher's stages are the main job's (linked, not run again).
    return dataclasses.replace(cfg, model_options=dataclasses.replace(cfg.model_options, width_coefficient=0.75,
                                                                      depth_coefficient=0.75))


@dataclasses.dataclass(frozen=True)
class Variant:
    key: str
    label: str
    table: str
    change: Callable[[DriverConfig], DriverConfig] = lambda cfg: cfg
    pseudo_labels: str = "main"  # main: the main job's; noised: a noised teacher's; unfiltered: all images once


REFERENCE = "reference"
VARIANTS = [
    Variant("no_randaugment", "no RandAugment (crop only)", "noise", no_randaugment),
    Variant("no_model_noise", "no dropout, no stochastic depth", "noise", no_model_noise),
    Variant("no_noise", "no noise at all", "noise", lambda cfg: no_model_noise(no_randaugment(cfg))),
    Variant("noised_teacher", "noised teacher (pseudo labels with noise)", "noise", pseudo_labels="noised"),
    Variant("hard_labels", "hard pseudo labels", "labels", hard_labels),
    Variant("unfiltered", "no filtering, no balancing", "labels", pseudo_labels="unfiltered"),
    Variant("larger_student", "larger student (B0 width/depth 0.75)", "size", larger_network),
]
_NETWORK = recipes.get("digits").model_options
TABLES = {
    "noise": ("Noise (paper §4.5, Table 6): the student with all noise against students with noise removed, and "
              "against a student of a noised teacher", "all noise (student 1 of the main job)"),
    "labels": ("Pseudo labels: soft against hard labels; filtered and balanced against every image once",
               "soft, filtered and balanced (student 1 of the main job)"),
    "size": ("Student size: equal to the teacher against larger",
             f"equal: B0 width/depth {_NETWORK.width_coefficient:g} (student 1)"),
}


def main_job_config(seed: int, out: str) -> DriverConfig:
    """The main job's recipe on the seed's data (as local_scripts/digits/run.sh runs it), for one iteration."""
    data = os.path.join(FLAGS.seeds_dir, f"data_{seed}")
    return recipes.get("digits", label_data_dir=data, unlabel_data_dir=os.path.join(data, "unlabeled"),
                       output_dir=out, seed=seed, iterations=1)


def copy_stage(main_dir: str, out: str, name: str) -> None:
    os.makedirs(os.path.join(out, "stages"), exist_ok=True)
    with open(os.path.join(main_dir, "stages", f"{name}.json")) as f:
        storage.write_text(os.path.join(out, "stages", f"{name}.json"), f.read())


def link(target: str, path: str) -> None:
    if not os.path.lexists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.symlink(target, path)


def unlabeled_shards(cfg: DriverConfig) -> list[str]:
    pool = cfg.unlabel_data_dir
    return sorted(os.path.join(pool, n) for n in os.listdir(pool) if n.startswith(f"{cfg.unlabel_file_prefix}-"))


def noised_predictions(cfg: DriverConfig, teacher_dir: str, iter_dir: str) -> None:
    """The teacher predicts as a student of `cfg` trains: its RandAugment on the input, dropout and stochastic
    depth on. Batch norm keeps its moving statistics (frozen layers run in inference mode), so only the paper's
    three kinds of noise differ from a clean prediction. Files are the ones predict.py writes."""
    import keras
    import tensorflow as tf

    from noisy_student_tf import derivations
    from noisy_student_tf.data import preprocessing, records
    from noisy_student_tf.models.restore import restore_model
    from noisy_student_tf.models.inference import normalize
    from noisy_student_tf.offline import shard_io
    from noisy_student_tf.tasks import get_task

    task = get_task(cfg.task_name)
    model_cfg = derivations.model_config(task, cfg.teacher_model_name, cfg.num_label_classes, cfg.model_options)
    model, _ = restore_model(model_cfg, teacher_dir, use_ema=True, what="teacher")
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    tf.random.set_seed(cfg.seed)
    aug = cfg.augment

    @tf.function
    def probabilities(image_bytes):
        images = tf.map_fn(
            lambda b: preprocessing.preprocess_image(
                b, is_training=True, image_size=model_cfg.image_size, small_image_model=model_cfg.small_image_model,
                augment_name=aug.unl_augment_name, randaug_layer=aug.randaug_layer, randaug_mag=aug.randaug_mag,
                cutout_op=aug.cutout_op, contrast_mode=aug.contrast_mode, flip=task.flip),
            image_bytes, fn_output_signature=tf.float32)
        logits = model(normalize(images, task.mean, task.std), training=True)
        return tf.nn.softmax(tf.cast(logits, tf.float32))

    shards = unlabeled_shards(cfg)
    for shard, path in enumerate(shards):
        dataset = tf.data.TFRecordDataset(path).map(
            lambda r: tf.io.parse_single_example(r, records.IMAGE_FEATURES)["image/encoded"]).batch(100)
        rows = np.concatenate([probabilities(batch).numpy() for batch in dataset])
        records.write_records(os.path.join(iter_dir, "predict_label", file_names.prediction_name(shard, len(shards), 0)),
                              (records.prediction_example(row, int(row.argmax())) for row in rows))
        shard_io.write_info(os.path.join(iter_dir, "info", file_names.info_name(shard, len(shards), 0)), len(rows))


def prepare(variant: Variant, cfg: DriverConfig) -> None:
    """The variant's output directory with the main job's finished stages in it, so the driver starts at the
    first stage the variant changes."""
    out, seed = cfg.output_dir, cfg.seed
    main_dir = os.path.join(FLAGS.seeds_dir, f"seed_{seed}")
    iter_dir = os.path.join(out, "iter_1")
    link(os.path.join(main_dir, "teacher"), os.path.join(out, "teacher"))
    copy_stage(main_dir, out, "teacher_train")
    copy_stage(main_dir, out, "teacher_eval")
    if variant.pseudo_labels == "noised":
        if not os.path.exists(os.path.join(out, "stages", "iter_1_predict.json")):
            for name in ("predict_label", "info"):
                shutil.rmtree(os.path.join(iter_dir, name), ignore_errors=True)
            noised_predictions(cfg, os.path.join(main_dir, "teacher"), iter_dir)
            storage.write_text(os.path.join(out, "stages", "iter_1_predict.json"), "{}\n")
        return
    for name in ("predict_label", "info"):
        link(os.path.join(main_dir, "iter_1", name), os.path.join(iter_dir, name))
    copy_stage(main_dir, out, "iter_1_predict")
    if variant.pseudo_labels == "main":
        for name in ("prelim_stats", "filter_data"):
            link(os.path.join(main_dir, "iter_1", name), os.path.join(iter_dir, name))
        copy_stage(main_dir, out, "iter_1_filter")
    elif not os.path.exists(os.path.join(out, "stages", "iter_1_filter.json")):
        from noisy_student_tf.jobs import filter_unlabel
        from noisy_student_tf.jobs.iterate import Driver

        # The driver's filter stage, keeping every image above 0 once (`filter_unlabel.py --use_all
        # --min_threshold=0`); num_image is not used then.
        filter_cfg = dataclasses.replace(Driver(cfg).filter_config(iter_dir, num_image=1), use_all=True,
                                         min_threshold=0.0)
        spawn_logged(filter_unlabel.run, (filter_cfg,), os.path.join(out, "filter.log"), "the filter")
        storage.write_text(os.path.join(out, "stages", "iter_1_filter.json"), "{}\n")


def run_variant(variant: Variant, seed: int) -> dict:
    out = os.path.join(FLAGS.work_dir, f"{variant.key}_{seed}")
    summary = os.path.join(out, "summary.json")
    if not os.path.exists(summary):
        from noisy_student_tf.jobs import iterate

        cfg = variant.change(main_job_config(seed, out))
        prepare(variant, cfg)
        iterate_log = os.path.join(FLAGS.work_dir, f"{variant.key}_{seed}.log")
        spawn_logged(iterate.run, (cfg,), iterate_log, f"variant {variant.key}, seed {seed}")
    with open(summary) as f:
        return json.load(f)["iterations"][0]


def reference(seed: int) -> dict:
    with open(os.path.join(FLAGS.seeds_dir, f"seed_{seed}", "summary.json")) as f:
        return json.load(f)["iterations"][0]


def mean_std(values) -> str:
    values = 100 * np.asarray(values, dtype=float)
    return f"{values.mean():.1f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.1f}"


def signed(values) -> str:
    values = 100 * np.asarray(values, dtype=float)
    return f"{values.mean():+.1f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.1f}"


def table_lines(table: str, results: dict, seeds: list[int]) -> list[str]:
    title, reference_label = TABLES[table]
    ref = [results[REFERENCE][s]["test_top1"] for s in seeds]
    lines = [f"### {title}", "", "| student | test top-1 | minus reference (paired) | test per seed |",
             "|---|---|---|---|",
             f"| {reference_label} | {mean_std(ref)} | | {', '.join('%.1f' % (100 * v) for v in ref)} |"]
    for variant in VARIANTS:
        if variant.table != table or variant.key not in results:
            continue
        got = [results[variant.key][s]["test_top1"] for s in seeds]
        lines.append(f"| {variant.label} | {mean_std(got)} | {signed(np.subtract(got, ref))} | "
                     f"{', '.join('%.1f' % (100 * v) for v in got)} |")
    return lines + [""]


def plot(table: str, results: dict, seeds: list[int], path: str) -> None:
    """Each variant's per-seed difference to the reference student: the comparison is paired, so the spread
    between seeds (different splits and teachers) is left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(v.label, v.key) for v in VARIANTS if v.table == table and v.key in results]
    reference = 100 * np.array([results[REFERENCE][s]["test_top1"] for s in seeds])
    fig, ax = plt.subplots(figsize=(8, 0.7 * len(rows) + 1.8))
    for y, (label, key) in enumerate(rows):
        diff = 100 * np.array([results[key][s]["test_top1"] for s in seeds]) - reference
        std = diff.std(ddof=1) if len(diff) > 1 else 0
        ax.errorbar([diff.mean()], [y], xerr=[std], fmt="o", capsize=4, color="tab:orange")
        ax.scatter(diff, np.full(len(diff), y), s=14, color="grey", zorder=3)
    ax.axvline(0, color="tab:blue", label=TABLES[table][1])
    ax.set_yticks(range(len(rows)), [label for label, _ in rows])
    ax.invert_yaxis()
    ax.set_xlabel("test top-1 minus reference, points (grey: each seed)")
    ax.set_title(f"{TABLES[table][0].split(':')[0]}, seeds {', '.join(map(str, seeds))}", fontsize=10)
    ax.margins(y=0.5)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(_):
    seeds = [int(s) for s in FLAGS.seeds]
    os.makedirs(FLAGS.work_dir, exist_ok=True)
    chosen = [v for v in VARIANTS if not FLAGS.variants or v.key in FLAGS.variants]
    results = {REFERENCE: {s: reference(s) for s in seeds}}
    for variant in chosen:  # variant by variant, so an interrupted run has whole rows
        results[variant.key] = {}
        for seed in seeds:
            results[variant.key][seed] = run_variant(variant, seed)
            print(f"{variant.key} seed {seed}: test {results[variant.key][seed]['test_top1']:.3f} "
                  f"(reference {results[REFERENCE][seed]['test_top1']:.3f})", flush=True)
    lines = [f"Digits ablations, seeds {', '.join(map(str, seeds))}: one student iteration from the main job's "
             "teacher; test top-1 in %, mean ± std over seeds (sample std), and the mean ± std of the per-seed "
             "difference to the reference student (same teacher, same student seed).", ""]
    for table in TABLES:
        lines += table_lines(table, results, seeds)
        lines.append(f"![{table}](ablations_{table}.png)")
        lines.append("")
        plot(table, results, seeds, os.path.join(RESULTS, f"ablations_{table}.png"))
    text = "\n".join(lines)
    print(text)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "ablations.md"), "w") as f:
        f.write(text)
    with open(os.path.join(RESULTS, "ablations.json"), "w") as f:
        json.dump({k: {str(s): v for s, v in r.items()} for k, r in results.items()}, f, indent=2)


if __name__ == "__main__":
    app.run(main)
