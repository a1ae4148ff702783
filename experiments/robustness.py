"""The paper's robustness claim on digits: the noisy student is more robust than its teacher.

For each seed's main job (experiments/digits_seeds.py, in --seeds_dir) this runs the eval job with robustness
(`eval.py --robustness`) on the teacher and on the last student (and on the same network trained on all training
labels, from digits_seeds.py, as a reference of higher clean accuracy without pseudo labels): test top-1 under 8
common corruptions at 5 severities (noisy_student_tf/robustness.py) and under FGSM at epsilon 1, 2, 4, 8, 16
(0..255 units). Every model sees the same corrupted images. The models' eval configs are the digits recipe's
(noisy_student_tf/recipes.py). Prints a table (mean ± std over seeds, and the paired student-minus-teacher
difference) and writes it to experiments/results/robustness.{md,json} with a plot.

    python experiments/robustness.py [--seeds=0,1,2] [--seeds_dir=/tmp/digits_seeds]

Not run in CI; about a minute per model on a 2-core CPU.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import numpy as np
from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from noisy_student_tf import recipes  # noqa: E402
from spawn import spawn_logged  # noqa: E402 (experiments/spawn.py)
from noisy_student_tf.config import RobustnessConfig  # noqa: E402
from noisy_student_tf.robustness_names import CORRUPTIONS, DEFAULT_EPSILONS  # noqa: E402

RESULTS = os.path.join(ROOT, "experiments", "results")

flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds: each one's main job must be in --seeds_dir.")
flags.DEFINE_string("seeds_dir", "/tmp/digits_seeds", "experiments/digits_seeds.py's --work_dir.")
FLAGS = flags.FLAGS

# eval.py --robustness's defaults: every corruption at 5 severities, FGSM at 1, 2, 4, 8, 16, on test, seed 0.
ROBUSTNESS = RobustnessConfig(corruptions=tuple(CORRUPTIONS), fgsm_epsilons=tuple(float(e) for e in DEFAULT_EPSILONS))


def main_job(seed: int, iterations: int):
    """The Driver of the seed's main job (the digits recipe on its data) with `iterations` students: it gives
    each model's eval config as the job evaluated it."""
    from noisy_student_tf.jobs.iterate import Driver

    data = os.path.join(FLAGS.seeds_dir, f"data_{seed}")
    return Driver(recipes.get("digits", label_data_dir=data, unlabel_data_dir=os.path.join(data, "unlabeled"),
                              iterations=iterations))


def robustness(driver, model_dir: str, model_name: str, seed: int, name: str) -> dict:
    path = os.path.join(model_dir, "robustness_results.json")
    if not os.path.exists(path):
        from noisy_student_tf.jobs import evaluate

        cfg = dataclasses.replace(driver.eval_config(model_dir, model_name), robustness=ROBUSTNESS)
        spawn_logged(evaluate.run, (cfg,), os.path.join(FLAGS.seeds_dir, f"robustness_{seed}_{name}.log"),
                     f"the robustness eval of {model_dir}")
    with open(path) as f:
        return json.load(f)


def summary_values(result: dict) -> dict:
    """The figures of one model: clean, each corruption averaged over severities, the mean, FGSM per epsilon."""
    values = {"clean": result["clean_top1"]}
    for name, by_severity in result["corruptions"].items():
        values[name] = float(np.mean(list(by_severity.values())))
    values["mean corruption"] = result["corruption_mean_top1"]
    for severity in "12345":
        values[f"corruptions at severity {severity}"] = float(
            np.mean([by_severity[severity] for by_severity in result["corruptions"].values()]))
    for epsilon, value in result["fgsm"].items():
        values[f"FGSM ε={epsilon}"] = value
    return values


def fmt(values, signed=False) -> str:
    values = 100 * np.asarray(values, float)
    std = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():+.1f} ± {std:.1f}" if signed else f"{values.mean():.1f} ± {std:.1f}"


def main(_):
    seeds = [int(s) for s in FLAGS.seeds]
    teacher, student, reference = {}, {}, {}
    for seed in seeds:
        main_dir = os.path.join(FLAGS.seeds_dir, f"seed_{seed}")
        last = max(int(n[len("iter_"):]) for n in os.listdir(main_dir) if n.startswith("iter_"))
        driver = main_job(seed, last)
        teacher_name, student_name = driver.cfg.teacher_model_name, driver.student_names[-1]
        teacher[seed] = robustness(driver, os.path.join(main_dir, "teacher"), teacher_name, seed, "teacher")
        student[seed] = robustness(driver, os.path.join(main_dir, f"iter_{last}", "student"), student_name, seed,
                                   "student")
        # digits_seeds.py trains it as a student of the recipe.
        reference[seed] = robustness(driver, os.path.join(FLAGS.seeds_dir, f"all_labels_{seed}"),
                                     driver.student_names[0], seed, "all_labels")
        print(f"seed {seed}: teacher clean {teacher[seed]['clean_top1']:.3f} corrupted "
              f"{teacher[seed]['corruption_mean_top1']:.3f}; student clean {student[seed]['clean_top1']:.3f} "
              f"corrupted {student[seed]['corruption_mean_top1']:.3f}", flush=True)
    t = {s: summary_values(teacher[s]) for s in seeds}
    u = {s: summary_values(student[s]) for s in seeds}
    r = {s: summary_values(reference[s]) for s in seeds}
    keys = list(t[seeds[0]])
    lines = [f"Digits, seeds {', '.join(map(str, seeds))}: test top-1 in % of the teacher and of the last student "
             "of the main job under corruptions (mean over 5 severities unless said) and FGSM (ε in 0..255 "
             "units); mean ± std over seeds, and the paired student-minus-teacher difference.", "",
             "The reference is the same network trained on all 1,097 training labels (no pseudo labels).", "",
             "| condition | teacher | last student | student − teacher | student better on | all-labels reference |",
             "|---|---|---|---|---|---|"]
    for key in keys:
        a, b = [t[s][key] for s in seeds], [u[s][key] for s in seeds]
        wins = sum(y > x for x, y in zip(a, b))
        lines.append(f"| {key} | {fmt(a)} | {fmt(b)} | {fmt(np.subtract(b, a), True)} | {wins} of {len(seeds)} "
                     f"seeds | {fmt([r[s][key] for s in seeds])} |")
    drop_t = [t[s]["clean"] - t[s]["mean corruption"] for s in seeds]
    drop_u = [u[s]["clean"] - u[s]["mean corruption"] for s in seeds]
    drop_r = [r[s]["clean"] - r[s]["mean corruption"] for s in seeds]
    lines += ["", f"Drop from clean to the corruption mean: teacher {fmt(drop_t)} points, last student "
                  f"{fmt(drop_u)} points, all-labels reference {fmt(drop_r)} points.", "",
              "![robustness](robustness.png)", ""]
    text = "\n".join(lines)
    print(text)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "robustness.md"), "w") as f:
        f.write(text)
    with open(os.path.join(RESULTS, "robustness.json"), "w") as f:
        json.dump({"teacher": {str(s): teacher[s] for s in seeds}, "student": {str(s): student[s] for s in seeds},
                   "all_labels": {str(s): reference[s] for s in seeds}}, f, indent=2)
    plot(t, u, r, seeds, os.path.join(RESULTS, "robustness.png"))


def plot(t, u, r, seeds, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    severity_keys = ["clean"] + [f"corruptions at severity {s}" for s in "12345"]
    fgsm_keys = ["clean"] + [k for k in t[seeds[0]] if k.startswith("FGSM")]
    for ax, keys, ticks, title in ((left, severity_keys, ["clean", "1", "2", "3", "4", "5"],
                                    "8 corruptions (mean) by severity"),
                                   (right, fgsm_keys, ["0"] + [k.split("=")[1] for k in fgsm_keys[1:]],
                                    "FGSM by ε (0..255 units)")):
        for name, values, color in (("teacher", t, "tab:blue"), ("last student", u, "tab:orange"),
                                    ("all-labels reference", r, "tab:green")):
            data = 100 * np.array([[values[s][k] for k in keys] for s in seeds])
            ax.errorbar(range(len(keys)), data.mean(0), yerr=data.std(0, ddof=1) if len(seeds) > 1 else None,
                        fmt="o-", capsize=3, color=color, label=f"{name}, mean ± std")
        ax.set_xticks(range(len(keys)), ticks)
        ax.set_ylabel("test top-1 (%)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"Robustness on digits, seeds {', '.join(map(str, seeds))}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    app.run(main)
