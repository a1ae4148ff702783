"""The main job over several seeds, plus a model trained on all the training labels.

For each seed this runs `bash local_scripts/digits/run.sh` exactly as a user would (the seed moves both the
data split and the training), timing it, then trains the same network on every labeled training image of that
split (the 100 labeled ones plus the 997 of the unlabeled pool with their true labels) with a student's settings
from the digits recipe (noisy_student_tf/recipes.py: network, noise, optimiser, steps) and as many images per step
as a student sees. It prints a table of mean ± std over the seeds and writes it, with the per-seed figures, to
experiments/results/digits_seeds.{md,json} and a plot to digits_seeds.png.

    python experiments/digits_seeds.py [--seeds=0,1,2] [--work_dir=/tmp/digits_seeds]

Not run in CI: each seed takes about 12 minutes on a 2-core CPU.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

import numpy as np
from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from noisy_student_tf import recipes  # noqa: E402
from spawn import spawn_logged  # noqa: E402 (experiments/spawn.py)

RESULTS = os.path.join(ROOT, "experiments", "results")

flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (each one a data split and a training run).")
flags.DEFINE_string("work_dir", "/tmp/digits_seeds", "Where data, checkpoints and logs go.")
flags.DEFINE_integer("reference_steps", None, "Training steps of the all-labels model (default: a student's, "
                                              "from the digits recipe).")
flags.DEFINE_integer("reference_batch", None, "Images per step of the all-labels model (default: a student's "
                                              "labeled + pseudo-labeled images per step, from the digits recipe).")
FLAGS = flags.FLAGS


def run_logged(command, log_path, env=None):
    with open(log_path, "w") as log:
        result = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL)
    if result.returncode:
        sys.exit(f"{' '.join(command[:3])} failed (exit {result.returncode}); see {log_path}")


def main_job(seed: int, work: str) -> tuple[dict, float]:
    out, data = os.path.join(work, f"seed_{seed}"), os.path.join(work, f"data_{seed}")
    summary = os.path.join(out, "summary.json")
    if not os.path.exists(summary):
        env = {**os.environ, "SEED": str(seed), "OUTPUT_DIR": out, "DATA_DIR": data, "PYTHON": sys.executable}
        start = time.time()
        run_logged(["bash", "local_scripts/digits/run.sh"], os.path.join(work, f"main_job_{seed}.log"), env)
        with open(os.path.join(work, f"main_job_{seed}.seconds"), "w") as f:
            f.write(f"{time.time() - start:.1f}\n")
    with open(summary) as f, open(os.path.join(work, f"main_job_{seed}.seconds")) as g:
        return json.load(f), float(g.read())


def all_labels_dir(seed: int, work: str) -> str:
    """The seed's split with the unlabeled pool's true labels used: links named so the labeled reader takes them
    (`extra` records carry image/encoded and the 1-based image/class/label like the train records)."""
    data, ref = os.path.join(work, f"data_{seed}"), os.path.join(work, f"all_labels_data_{seed}")
    os.makedirs(ref, exist_ok=True)
    links = {name: os.path.join(data, name) for name in os.listdir(data) if name.startswith(("train", "dev", "test"))}
    pool = os.path.join(data, "unlabeled")
    links.update({f"train-pool-{name}": os.path.join(pool, name) for name in os.listdir(pool)
                  if name.startswith("extra")})
    for name, target in links.items():
        if not os.path.lexists(os.path.join(ref, name)):
            os.symlink(target, os.path.join(ref, name))
    return ref


def train_and_eval(train_cfg, eval_cfg) -> None:
    from noisy_student_tf.jobs import evaluate, train

    train.run(train_cfg)
    evaluate.run(eval_cfg)


def all_labels_model(seed: int, work: str) -> dict:
    data, model_dir = all_labels_dir(seed, work), os.path.join(work, f"all_labels_{seed}")
    results = os.path.join(model_dir, "eval_results.json")
    if not os.path.exists(results):
        from noisy_student_tf.jobs.iterate import Driver

        # A student of the main job's recipe, trained on labels only: the driver composes its training and eval
        # configs (network, noise, optimiser, checkpoint periods) as for the teacher, which has no unlabeled data.
        recipe = recipes.get("digits", label_data_dir=data,
                             unlabel_data_dir=os.path.join(work, f"data_{seed}", "unlabeled"))
        driver, student = Driver(recipe), recipe.students()[0]
        steps = FLAGS.reference_steps or recipe.student_train_steps
        # B labeled + ceil(B * r) pseudo-labeled images in a student's step.
        batch = FLAGS.reference_batch or math.ceil(recipe.train_batch_size * (1 + recipe.unlabel_ratio))
        train_cfg = driver.train_config(model_dir, student, steps=steps, seed=seed * 100 + 99, batch_size=batch)
        spawn_logged(train_and_eval, (train_cfg, driver.eval_config(model_dir, student)),
                     os.path.join(work, f"all_labels_{seed}.log"), "training the all-labels model")
    with open(results) as f:
        return json.load(f)


def mean_std(values) -> str:
    values = 100 * np.asarray(values, dtype=float)
    return f"{values.mean():.1f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.1f}"


def main(_):
    work = FLAGS.work_dir
    os.makedirs(work, exist_ok=True)
    seeds = [int(s) for s in FLAGS.seeds]
    runs = []
    for seed in seeds:
        summary, seconds = main_job(seed, work)
        reference = all_labels_model(seed, work)
        runs.append({"seed": seed, "seconds": seconds, "summary": summary,
                     "all_labels": {k: reference[k]["top_1_accuracy"] for k in ("dev", "test")}})
        print(f"seed {seed}: main job {seconds / 60:.1f} min, teacher test {summary['teacher']['test_top1']:.3f}, "
              f"students {[round(i['test_top1'], 3) for i in summary['iterations']]}, all labels "
              f"{reference['test']['top_1_accuracy']:.3f}", flush=True)

    iterations = len(runs[0]["summary"]["iterations"])
    rows = [("teacher (100 labels)", [r["summary"]["teacher"] for r in runs])]
    rows += [(f"student {k + 1}", [r["summary"]["iterations"][k] for r in runs]) for k in range(iterations)]
    rows.append(("all 1,097 labels (reference)", [{"dev_top1": r["all_labels"]["dev"],
                                                    "test_top1": r["all_labels"]["test"]} for r in runs]))
    lines = [f"Digits main job (`bash local_scripts/digits/run.sh`), seeds {', '.join(map(str, seeds))}: top-1 in %, "
             "mean ± std over seeds (sample std).", "",
             "| model | dev top-1 | test top-1 | test per seed |", "|---|---|---|---|"]
    for name, values in rows:
        lines.append(f"| {name} | {mean_std([v['dev_top1'] for v in values])} | "
                     f"{mean_std([v['test_top1'] for v in values])} | "
                     f"{', '.join('%.1f' % (100 * v['test_top1']) for v in values)} |")
    gain = [r["summary"]["iterations"][-1]["test_top1"] - r["summary"]["teacher"]["test_top1"] for r in runs]
    lines += ["", f"Final student minus teacher, test: {mean_std(gain)} points "
                  f"(per seed: {', '.join('%+.1f' % (100 * g) for g in gain)}).",
              f"Main job wall time per seed: {', '.join('%.1f' % (r['seconds'] / 60) for r in runs)} min "
              "(2-core CPU; wall times include whatever else ran on the machine meanwhile)."]
    table = "\n".join(lines) + "\n"
    print(table)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "digits_seeds.md"), "w") as f:
        f.write(table)
    with open(os.path.join(RESULTS, "digits_seeds.json"), "w") as f:
        json.dump(runs, f, indent=2)
    plot(rows, os.path.join(RESULTS, "digits_seeds.png"))


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name.split(" (")[0] for name, _ in rows]
    tests = [100 * np.array([v["test_top1"] for v in values]) for _, values in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(rows))
    means = [t.mean() for t in tests]
    stds = [t.std(ddof=1) if len(t) > 1 else 0 for t in tests]
    # Teacher and students are one chain (a line); the all-labels model is a reference beside it (a band).
    ax.errorbar(x[:-1], means[:-1], yerr=stds[:-1], fmt="o-", capsize=4, label="teacher → students, mean ± std")
    ax.axhspan(means[-1] - stds[-1], means[-1] + stds[-1], color="tab:green", alpha=0.15)
    ax.errorbar(x[-1:], means[-1:], yerr=stds[-1:], fmt="s", color="tab:green", capsize=4,
                label="all training labels (reference)")
    for k, t in enumerate(tests):
        ax.scatter(np.full(len(t), k), t, s=12, color="grey", zorder=3)
    ax.legend(loc="lower right")
    ax.set_xticks(x, names, rotation=15)
    ax.set_ylabel("test top-1 (%)")
    ax.set_title("Noisy Student on digits: teacher, students, all-labels reference")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    app.run(main)
