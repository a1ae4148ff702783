"""The whole method in one command (spec §13 "Method"): train a teacher; then, per iteration, predict the
unlabeled shards with the current model, filter and balance them, train a noised student on labeled +
pseudo-labeled data, evaluate it, and make it the next teacher.

    python iterate.py --task_name=digits --label_data_dir=data/digits/proc \\
        --unlabel_data_dir=data/digits/proc/unlabeled --output_dir=ckpt/digits

Each stage runs the real job (train, eval, predict, filter_unlabel) in this process and, when done, writes
`<output_dir>/stages/<stage>.json`. A re-run (after a crash, Ctrl-C or SIGKILL) skips finished stages and
resumes the unfinished one (training from its last checkpoint, predict and filter from their finished shards).
The run's settings are kept in `<output_dir>/pipeline_flags.json`; a re-run with other settings into the same
directory is refused, so results of different settings never mix. At the end: `summary.json`, a table in the
log and `accuracy.png`.

    output_dir/teacher/                          teacher model_dir (eval_results.json)
    output_dir/iter_K/{predict_label,info}/      predictions of the previous model
    output_dir/iter_K/{prelim_stats,filter_data}/ filtered, balanced pseudo-labelled shards
    output_dir/iter_K/student/                   student K model_dir
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time

from absl import flags, logging

from noisy_student_tf.errors import UserError
from noisy_student_tf.io_utils import atomic_write_text
from noisy_student_tf.progress import format_duration

SHARD_PATTERN = re.compile(r"^(?P<prefix>.+)-(?P<index>\d{5})-of-(?P<total>\d{5})$")


def define_flags(flag_values=flags.FLAGS) -> None:
    fv = dict(flag_values=flag_values)
    f = flags
    f.DEFINE_string("task_name", "digits", "imagenet, svhn, digits or a task_info.json path (as main.py).", **fv)
    f.DEFINE_string("label_data_dir", "data/digits/proc", "Labeled train*/dev*/test* shards.", **fv)
    f.DEFINE_string("unlabel_data_dir", "data/digits/proc/unlabeled", "Unlabeled shards to pseudo-label.", **fv)
    f.DEFINE_string("unlabel_file_prefix", "extra", "Prefix of the unlabeled shards (<prefix>-SSSSS-of-NNNNN).",
                    **fv)
    f.DEFINE_string("output_dir", "ckpt/digits", "Where every stage's output goes.", **fv)
    f.DEFINE_integer("iterations", 3, "Student iterations after the teacher.", **fv)
    f.DEFINE_string("teacher_model_name", "efficientnet-b0", "The first teacher's architecture.", **fv)
    f.DEFINE_list("student_model_names", [], "Each iteration's student (one name for all, or one per "
                  "iteration; default: the teacher's). Equal or larger than the model before, as in the paper.", **fv)
    f.DEFINE_integer("num_label_classes", 10, "Classes (tasks with a fixed count override it).", **fv)
    f.DEFINE_integer("train_batch_size", 32, "Labeled images per step.", **fv)
    f.DEFINE_integer("teacher_train_batch_size", None, "Labeled images per step of the first teacher "
                     "(default: --train_batch_size).", **fv)
    f.DEFINE_integer("teacher_train_steps", 600, "Teacher training steps.", **fv)
    f.DEFINE_integer("student_train_steps", 600, "Each student's training steps.", **fv)
    f.DEFINE_float("unlabel_ratio", 3, "Unlabeled images per labeled image in a student's batch.", **fv)
    f.DEFINE_float("teacher_softmax_temp", 1, "-1: hard pseudo labels; else soft labels at this temperature.",
                   **fv)
    f.DEFINE_string("augment_name", "v1", "Student input noise: 'v1' = RandAugment, '' = crop only.", **fv)
    f.DEFINE_integer("randaug_mag", 5, "RandAugment magnitude (upstream's SVHN recipe: 5).", **fv)
    f.DEFINE_integer("randaug_layer", 2, "RandAugment ops per image.", **fv)
    f.DEFINE_float("base_learning_rate", 0.016, "Learning rate per 256 images.", **fv)
    f.DEFINE_float("weight_decay", 1e-4, "L2 coefficient (upstream's SVHN recipe: 1e-4).", **fv)
    f.DEFINE_float("final_base_lr", None, "As main.py: the LR to decay to by the end.", **fv)
    f.DEFINE_integer("num_image", 0, "Images per class after filtering/balancing (0: unlabeled images / classes).",
                     **fv)
    f.DEFINE_float("min_threshold", 0.3, "Minimum teacher confidence (upstream scripts: 0.3).", **fv)
    f.DEFINE_list("train_flags", [], "More main.py flags for every training run, e.g. "
                  "--train_flags=--width_coefficient=0.5,--dropout_rate=0.3.", **fv)
    f.DEFINE_bool("init_student_from_teacher", False, "Start each student from its teacher's weights (upstream's "
                  "--init_model) instead of from scratch: needs equal architectures; a shortcut for small compute "
                  "budgets, not the paper's recipe.", **fv)
    f.DEFINE_integer("seed", 0, "Seed of every stage (training, filtering).", **fv)
    f.DEFINE_bool("deterministic", True, "Deterministic ops, so a resumed run ends as an uninterrupted one.", **fv)


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    describe: str
    run: object  # () -> dict, the stage's result (kept in its marker file)


def unlabeled_shards(directory: str, prefix: str) -> int:
    """The N of `<prefix>-SSSSS-of-NNNNN` files in `directory`, checking that shards 0..N-1 are all there."""
    if not os.path.isdir(directory):
        raise UserError(f"--unlabel_data_dir={directory!r} does not exist")
    totals, indices = set(), set()
    for name in os.listdir(directory):
        match = SHARD_PATTERN.match(name)
        if match and match["prefix"] == prefix:
            totals.add(int(match["total"]))
            indices.add(int(match["index"]))
    if len(totals) != 1:
        raise UserError(f"--unlabel_data_dir={directory!r}: expected shards {prefix}-SSSSS-of-NNNNN with one N, "
                        f"found {sorted(totals) or 'none'}")
    total = totals.pop()
    missing = sorted(set(range(total)) - indices)
    if missing:
        raise UserError(f"--unlabel_data_dir={directory!r}: shards {missing[:5]} of {total} are missing")
    return total


def _predicted_images(info_dir: str) -> int:
    """The unlabeled images predict counted (its info files), instead of reading every record again."""
    from noisy_student_tf.offline import shard_io

    return sum(shard_io.read_info(os.path.join(info_dir, name)) for name in sorted(os.listdir(info_dir))
               if name.startswith("info-") and name.endswith(".txt"))


class Pipeline:
    def __init__(self, F):
        self.F = F
        self.out = F.output_dir
        if F.iterations < 0:
            raise UserError(f"--iterations must be >= 0, got {F.iterations}")
        names = F.student_model_names or [F.teacher_model_name]
        if len(names) == 1:
            names = names * F.iterations
        if len(names) != F.iterations:
            raise UserError(f"--student_model_names lists {len(names)} models for {F.iterations} iterations: "
                            "give one name, or one per iteration")
        self.student_names = names
        if F.init_student_from_teacher:
            previous = [F.teacher_model_name] + names[:-1]
            for k, (teacher, student) in enumerate(zip(previous, names), start=1):
                if teacher != student:
                    raise UserError(f"--init_student_from_teacher needs equal architectures, but iteration {k} "
                                    f"trains {student} from a {teacher} teacher")
        from noisy_student_tf.data.records import check_file_prefix

        check_file_prefix(F.unlabel_file_prefix, "--unlabel_file_prefix")
        self.num_shards = unlabeled_shards(F.unlabel_data_dir, F.unlabel_file_prefix)

    # --- the settings every job shares ---
    def _main_args(self, model_name: str) -> list[str]:
        F = self.F
        return [f"--task_name={F.task_name}", f"--model_name={model_name}",
                f"--num_label_classes={F.num_label_classes}", "--use_tpu=False", "--use_bfloat16=False",
                *F.train_flags]

    def _train_args(self, model_dir: str, model_name: str, steps: int, seed: int, extra=(),
                    batch_size: int | None = None) -> list[str]:
        F = self.F
        args = self._main_args(model_name) + [
            f"--label_data_dir={F.label_data_dir}", f"--model_dir={model_dir}",
            f"--train_batch_size={batch_size or F.train_batch_size}",
            f"--train_steps={steps}", f"--iterations_per_loop={max(1, steps // 10)}",
            f"--save_checkpoints_steps={max(1, steps // 10)}", f"--log_step_count_steps={max(1, steps // 20)}",
            f"--base_learning_rate={F.base_learning_rate}", f"--weight_decay={F.weight_decay}", f"--seed={seed}"]
        if F.final_base_lr is not None:
            args.append(f"--final_base_lr={F.final_base_lr}")
        if F.deterministic:
            args.append("--deterministic")
        return args + list(extra)

    def _noise_args(self) -> list[str]:
        F = self.F
        return [f"--augment_name={F.augment_name}", f"--randaug_mag={F.randaug_mag}",
                f"--randaug_layer={F.randaug_layer}"]

    def _eval_args(self, model_dir: str, model_name: str) -> list[str]:
        return self._main_args(model_name) + [f"--label_data_dir={self.F.label_data_dir}", f"--model_dir={model_dir}",
                                              "--eval_batch_size=100"]

    @staticmethod
    def _main_flags(args: list[str]):
        from noisy_student_tf.flags import define_main_flags

        values = flags.FlagValues()
        define_main_flags(values)
        values(["main.py", *args])
        return values

    def _train(self, args):
        from noisy_student_tf.jobs import train

        train.run(self._main_flags(args))
        return {}

    def _eval(self, args):
        from noisy_student_tf.jobs import evaluate

        results = evaluate.run(self._main_flags(args))
        return {subset: {"top_1_accuracy": r["top_1_accuracy"], "num_images": r["num_images"]}
                for subset, r in results.items()}

    def _predict(self, model_dir: str, model_name: str, iter_dir: str):
        from noisy_student_tf.jobs import predict

        F = self.F
        args = self._main_args(model_name) + [
            f"--predict_ckpt_path={model_dir}", f"--label_data_dir={F.unlabel_data_dir}",
            f"--file_prefix={F.unlabel_file_prefix}", f"--num_shards={self.num_shards}",
            "--shard_id=" + ",".join(str(s) for s in range(self.num_shards)),
            f"--output_dir={iter_dir}/predict_label", f"--info_dir={iter_dir}/info"]
        predict.run(self._main_flags(args))
        return {}

    def _filter(self, iter_dir: str):
        from noisy_student_tf.jobs import filter_unlabel
        from noisy_student_tf.flags import define_filter_flags
        from noisy_student_tf.tasks import get_task

        F = self.F
        num_classes = get_task(F.task_name).num_classes or F.num_label_classes
        num_image = F.num_image or max(1, _predicted_images(f"{iter_dir}/info") // num_classes)
        values = flags.FlagValues()
        define_filter_flags(values)
        values(["filter_unlabel.py", "--all_shards", f"--input_dir={F.unlabel_data_dir}",
                f"--file_prefix={F.unlabel_file_prefix}", f"--prediction_dir={iter_dir}/predict_label",
                f"--info_dir={iter_dir}/info", f"--prelim_stats_dir={iter_dir}/prelim_stats",
                f"--output_dir={iter_dir}/filter_data", f"--num_shards={self.num_shards}",
                f"--num_label_classes={num_classes}", "--task=0", f"--num_image={num_image}",
                f"--min_threshold={F.min_threshold}", f"--seed={F.seed}"])
        stats = filter_unlabel.run(values)
        if not stats["total_cnt"]:
            raise UserError(f"the filter kept no image: no prediction reached --min_threshold={F.min_threshold}. "
                            "Train the teacher longer (--teacher_train_steps) or lower --min_threshold")
        return {"num_image": num_image, "records": stats["total_cnt"]}

    def stages(self) -> list[Stage]:
        F = self.F
        teacher_dir = os.path.join(self.out, "teacher")
        stages = [
            # The teacher trains with the same input noise as the students (the paper's baselines use
            # RandAugment too); only the pseudo-labelling is done clean.
            Stage("teacher_train", f"train the teacher ({F.teacher_model_name}, labeled data only)",
                  lambda: self._train(self._train_args(teacher_dir, F.teacher_model_name, F.teacher_train_steps,
                                                       F.seed * 100, self._noise_args(),
                                                       batch_size=F.teacher_train_batch_size))),
            Stage("teacher_eval", "evaluate the teacher",
                  lambda: self._eval(self._eval_args(teacher_dir, F.teacher_model_name))),
        ]
        previous_dir, previous_name = teacher_dir, F.teacher_model_name
        for k, name in enumerate(self.student_names, start=1):
            iter_dir = os.path.join(self.out, f"iter_{k}")
            student_dir = os.path.join(iter_dir, "student")
            init = ["--init_model", f"--init_model_path={previous_dir}"] if F.init_student_from_teacher else []
            student_args = self._train_args(
                student_dir, name, F.student_train_steps, F.seed * 100 + k,
                [f"--unlabel_data_dir={iter_dir}/filter_data/data", f"--unlabel_ratio={F.unlabel_ratio}",
                 f"--teacher_softmax_temp={F.teacher_softmax_temp}", *self._noise_args(), *init])
            stages += [
                Stage(f"iter_{k}_predict", f"iteration {k}: pseudo-label the unlabeled data with {previous_dir}",
                      lambda d=previous_dir, n=previous_name, i=iter_dir: self._predict(d, n, i)),
                Stage(f"iter_{k}_filter", f"iteration {k}: filter by confidence and balance the classes",
                      lambda i=iter_dir: self._filter(i)),
                Stage(f"iter_{k}_student_train", f"iteration {k}: train the noised student ({name})",
                      lambda a=student_args: self._train(a)),
                Stage(f"iter_{k}_student_eval", f"iteration {k}: evaluate the student",
                      lambda d=student_dir, n=name: self._eval(self._eval_args(d, n))),
            ]
            previous_dir, previous_name = student_dir, name
        return stages

    # --- running ---
    def _marker(self, stage: Stage) -> str:
        return os.path.join(self.out, "stages", f"{stage.name}.json")

    def _check_settings(self) -> None:
        path = os.path.join(self.out, "pipeline_flags.json")
        settings = {name: self.F[name].value for name in sorted(self.F) if name in _OWN_FLAGS}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                recorded = json.load(f)
            changed = sorted(k for k in set(recorded) | set(settings) if recorded.get(k) != settings.get(k))
            if changed:
                raise UserError(f"--output_dir={self.out!r} holds a run with other settings (changed: "
                                f"{', '.join(changed)}); use another --output_dir, or delete it to start over")
        else:
            os.makedirs(self.out, exist_ok=True)
            atomic_write_text(path, json.dumps(settings, indent=2, sort_keys=True) + "\n")

    def run(self) -> dict:
        self._check_settings()
        stages = self.stages()
        started = time.monotonic()
        results = {}
        for number, stage in enumerate(stages, start=1):
            marker = self._marker(stage)
            if os.path.exists(marker):
                with open(marker, encoding="utf-8") as f:
                    results[stage.name] = json.load(f)
                logging.info("stage %d/%d %s: done before, skipped", number, len(stages), stage.name)
                continue
            logging.info("stage %d/%d %s: %s (%s since the start)", number, len(stages), stage.name, stage.describe,
                         format_duration(time.monotonic() - started))
            results[stage.name] = stage.run()
            os.makedirs(os.path.dirname(marker), exist_ok=True)
            atomic_write_text(marker, json.dumps(results[stage.name], indent=2, sort_keys=True) + "\n")
        summary = self.summary(results)
        logging.info("all %d stages done in %s", len(stages), format_duration(time.monotonic() - started))
        return summary

    def summary(self, results: dict) -> dict:
        def top1(result):
            return {"dev_top1": result.get("dev", {}).get("top_1_accuracy"),
                    "test_top1": result.get("test", {}).get("top_1_accuracy")}

        summary = {"teacher": top1(results["teacher_eval"]),
                   "iterations": [top1(results[f"iter_{k}_student_eval"])
                                  for k in range(1, len(self.student_names) + 1)]}
        atomic_write_text(os.path.join(self.out, "summary.json"), json.dumps(summary, indent=2) + "\n")
        table = format_table(summary, self.F.teacher_model_name, self.student_names)
        print(table, flush=True)
        atomic_write_text(os.path.join(self.out, "summary.md"), table + "\n")
        plot_summary(summary, os.path.join(self.out, "accuracy.png"))
        return summary


_OWN_FLAGS = ("task_name", "label_data_dir", "unlabel_data_dir", "unlabel_file_prefix", "iterations",
              "teacher_model_name", "student_model_names", "num_label_classes", "train_batch_size",
              "teacher_train_batch_size",
              "teacher_train_steps", "student_train_steps", "unlabel_ratio", "teacher_softmax_temp", "augment_name",
              "randaug_mag", "randaug_layer", "base_learning_rate", "weight_decay", "final_base_lr", "num_image",
              "min_threshold", "train_flags", "init_student_from_teacher", "seed", "deterministic")


def _percent(value) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def format_table(summary: dict, teacher_name: str, student_names: list[str]) -> str:
    rows = [("teacher", teacher_name, summary["teacher"])]
    rows += [(f"student {k}", name, r) for k, (name, r) in enumerate(zip(student_names, summary["iterations"]), 1)]
    lines = ["| model | architecture | dev top-1 | test top-1 |", "|---|---|---|---|"]
    lines += [f"| {who} | {name} | {_percent(r['dev_top1'])} | {_percent(r['test_top1'])} |" for who, name, r in rows]
    return "\n".join(lines)


def plot_summary(summary: dict, path: str) -> None:
    """Top-1 accuracy of the teacher (iteration 0) and each student, dev and test."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from noisy_student_tf.io_utils import atomic_output

    points = [summary["teacher"]] + summary["iterations"]
    xs = list(range(len(points)))
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    for key, label in (("dev_top1", "dev"), ("test_top1", "test")):
        axes.plot(xs, [100 * (p[key] or 0) for p in points], marker="o", label=label)
    axes.set_xticks(xs, ["teacher"] + [f"student {k}" for k in xs[1:]])
    axes.set_ylabel("top-1 accuracy (%)")
    axes.set_title("Noisy Student: accuracy per iteration")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    with atomic_output(path, suffix=".png") as tmp:
        figure.savefig(tmp)
    plt.close(figure)


def main(argv) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; flags are written --name=value")
    Pipeline(flags.FLAGS).run()


if __name__ == "__main__":
    from noisy_student_tf.jobs import common

    define_flags()
    common.run(main)
