"""The whole method in one command: train a teacher; then, per iteration, predict the unlabeled shards with the
current model, filter and balance them, train a noised student on labeled + pseudo-labeled data, evaluate it,
and make it the next teacher.

    python iterate.py --recipe=digits --output_dir=ckpt/digits

`run(DriverConfig)` composes each stage's config from the driver's (`dataclasses.replace`) and calls the real
job (train, eval, predict, filter) in this process; when a stage is done it writes
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
import time

from absl import logging

from noisy_student_tf import file_names
from noisy_student_tf import derivations, storage
from noisy_student_tf.config import (BeamConfig, DriverConfig, EvalConfig, FilterConfig, InputConfig, PredictConfig,
                                     TeacherConfig, TrainConfig)
from noisy_student_tf.errors import UserError
from noisy_student_tf.progress import format_duration
from noisy_student_tf.tasks import get_task

SETTINGS_FILE = "pipeline_flags.json"


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    describe: str
    run: object  # () -> dict, the stage's result (kept in its marker file)
    config: object = None  # the job config it runs, whose values are checked before any stage starts


def unlabeled_shards(directory: str, prefix: str) -> int:
    """The N of `<prefix>-SSSSS-of-NNNNN` files in `directory`, checking that shards 0..N-1 are all there."""
    if not storage.isdir(directory):
        raise UserError(f"--unlabel_data_dir={directory!r} does not exist")
    totals, indices = set(), set()
    for name in storage.listdir(directory):
        match = file_names.SHARD_PATTERN.match(name)
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

    return sum(shard_io.read_info(storage.join(info_dir, name)) for name in storage.listdir(info_dir)
               if file_names.is_info_name(name))


class Driver:
    """The stages of one `DriverConfig`, each a job config composed from the driver's."""

    def __init__(self, cfg: DriverConfig):
        self.cfg = cfg
        self.task = get_task(cfg.task_name)
        self.num_classes = self.task.num_classes or cfg.num_label_classes
        if cfg.iterations < 0:
            raise UserError(f"--iterations must be >= 0, got {cfg.iterations}")
        self.student_names = cfg.students()
        if cfg.init_student_from_teacher:
            previous = [cfg.teacher_model_name] + self.student_names[:-1]
            for k, (teacher, student) in enumerate(zip(previous, self.student_names), start=1):
                if teacher != student:
                    raise UserError(f"--init_student_from_teacher needs equal architectures, but iteration {k} "
                                    f"trains {student} from a {teacher} teacher")
        file_names.check_file_prefix(cfg.unlabel_file_prefix, "--unlabel_file_prefix")
        if cfg.offline_engine not in ("tools", "beam"):
            raise UserError(f"--offline_engine must be tools or beam, got {cfg.offline_engine!r}")
        if cfg.offline_engine == "beam":
            from noisy_student_tf.offline.beam_pipeline import check_pipeline_args

            check_pipeline_args(cfg.beam_options)
        if not cfg.unlabel_data_dir:
            raise UserError("--unlabel_data_dir is required: the directory of the unlabeled shards to pseudo-label")
        # The filter's values now, not after the teacher has trained (the shard count is a placeholder).
        self.num_shards = 1
        self.filter_config(storage.join(cfg.output_dir, "iter_1"), cfg.num_image or 1).validate()
        self.num_shards = unlabeled_shards(cfg.unlabel_data_dir, cfg.unlabel_file_prefix)

    # --- each stage's config, composed from the driver's ---
    def _model(self, model_name: str):
        cfg = self.cfg
        return derivations.model_config(self.task, model_name, cfg.num_label_classes, cfg.model_options)

    def train_config(self, model_dir: str, model_name: str, *, steps: int, seed: int, batch_size: int,
                     unlabel_data_dir: str = "", init_model_path: str | None = None) -> TrainConfig:
        """A training run: the teacher (no unlabeled data) or a student (its filtered data, stored targets)."""
        cfg = self.cfg
        period = max(1, steps // 10)  # ten summaries and checkpoints per run, twenty progress lines
        unlabel_ratio = cfg.unlabel_ratio if unlabel_data_dir else 0.0
        return TrainConfig(
            model_dir=model_dir, task=self.task, model=self._model(model_name),
            input=InputConfig.of(cfg.input, label_data_dir=cfg.label_data_dir, train_batch_size=batch_size,
                                 unlabel_data_dir=unlabel_data_dir, unlabel_ratio=unlabel_ratio),
            optim=dataclasses.replace(cfg.optim, train_steps=steps),
            augment=cfg.augment,
            teacher=TeacherConfig(softmax_temp=cfg.teacher_softmax_temp if unlabel_data_dir else -1.0),
            loop=dataclasses.replace(cfg.loop, iterations_per_loop=period, save_checkpoints_steps=period,
                                     log_step_count_steps=max(1, steps // 20)),
            runtime=cfg.runtime, init_model_path=init_model_path, seed=seed)

    def eval_config(self, model_dir: str, model_name: str) -> EvalConfig:
        cfg = self.cfg
        return EvalConfig(model_dir=model_dir, label_data_dir=cfg.label_data_dir, task=self.task,
                          model=self._model(model_name), eval_batch_size=cfg.eval_batch_size,
                          label_smoothing=cfg.optim.label_smoothing, weight_decay=cfg.optim.weight_decay,
                          use_ema=cfg.optim.moving_average_decay > 0)

    def predict_config(self, model_dir: str, model_name: str, iter_dir: str) -> PredictConfig:
        cfg = self.cfg
        return PredictConfig(
            checkpoint=model_dir, input_dir=cfg.unlabel_data_dir, output_dir=f"{iter_dir}/predict_label",
            info_dir=f"{iter_dir}/info", task=self.task, model=self._model(model_name),
            file_prefix=cfg.unlabel_file_prefix, num_shards=self.num_shards, shards=tuple(range(self.num_shards)),
            batch_size=cfg.predict_batch_size, use_ema=cfg.optim.moving_average_decay > 0,
            precision=cfg.runtime.precision)

    def filter_config(self, iter_dir: str, num_image: int):
        cfg = self.cfg
        return FilterConfig(
            input_dir=cfg.unlabel_data_dir, file_prefix=cfg.unlabel_file_prefix,
            prediction_dir=f"{iter_dir}/predict_label", info_dir=f"{iter_dir}/info",
            prelim_stats_dir=f"{iter_dir}/prelim_stats", output_dir=f"{iter_dir}/filter_data",
            num_shards=self.num_shards, num_classes=self.num_classes, replica=0, num_image=num_image,
            min_threshold=cfg.min_threshold, seed=cfg.seed, all_shards=True)

    # --- the stages ---
    @staticmethod
    def _train(train_cfg: TrainConfig) -> dict:
        from noisy_student_tf.jobs import train

        train.run(train_cfg)
        return {}

    @staticmethod
    def _eval(eval_cfg: EvalConfig) -> dict:
        from noisy_student_tf.jobs import evaluate

        results = evaluate.run(eval_cfg)
        return {subset: {"top_1_accuracy": r["top_1_accuracy"], "num_images": r["num_images"]}
                for subset, r in results.items()}

    @staticmethod
    def _predict(predict_cfg: PredictConfig) -> dict:
        from noisy_student_tf.jobs import predict

        predict.run(predict_cfg)
        return {}

    def _filter(self, iter_dir: str) -> dict:
        from noisy_student_tf.jobs import filter_unlabel

        cfg = self.cfg
        num_image = cfg.num_image or max(1, _predicted_images(f"{iter_dir}/info") // self.num_classes)
        return self._check_kept(filter_unlabel.run(self.filter_config(iter_dir, num_image)), num_image)

    def _pseudo_label_with_beam(self, predict_cfg: PredictConfig, iter_dir: str) -> dict:
        """predict + filter in one Apache Beam pipeline (pseudo_label_beam.py): the files of the two stages."""
        from noisy_student_tf.offline import beam_pipeline, shard_io

        cfg = self.cfg
        num_image = cfg.num_image
        if not num_image:  # unlabeled images / classes, counted before the pipeline (the tools read info files)
            images = sum(shard_io.count_records(predict_cfg.input_path(shard)) for shard in predict_cfg.shards)
            num_image = max(1, images // self.num_classes)
        stats = beam_pipeline.run(BeamConfig(
            predict=predict_cfg, filter=self.filter_config(iter_dir, num_image), write_predictions=True,
            pipeline_args=tuple(cfg.beam_options)))
        return self._check_kept(stats, num_image)

    def _check_kept(self, stats: dict, num_image: int) -> dict:
        if not stats["total_cnt"]:
            raise UserError(f"the filter kept no image: no prediction reached --min_threshold="
                            f"{self.cfg.min_threshold}. Train the teacher longer (--teacher_train_steps) or lower "
                            "--min_threshold")
        return {"num_image": num_image, "records": stats["total_cnt"]}

    def stages(self) -> list[Stage]:
        cfg = self.cfg
        teacher_dir = storage.join(cfg.output_dir, "teacher")
        # The teacher trains with the same input noise as the students (the paper's baselines use RandAugment
        # too); only the pseudo-labelling is done clean.
        teacher = self.train_config(teacher_dir, cfg.teacher_model_name, steps=cfg.teacher_train_steps,
                                    seed=cfg.seed * 100,
                                    batch_size=cfg.teacher_train_batch_size or cfg.train_batch_size)
        teacher_eval = self.eval_config(teacher_dir, cfg.teacher_model_name)
        stages = [
            Stage("teacher_train", f"train the teacher ({cfg.teacher_model_name}, labeled data only)",
                  lambda: self._train(teacher), teacher),
            Stage("teacher_eval", "evaluate the teacher", lambda c=teacher_eval: self._eval(c), teacher_eval),
        ]
        previous_dir, previous_name = teacher_dir, cfg.teacher_model_name
        for k, name in enumerate(self.student_names, start=1):
            iter_dir = storage.join(cfg.output_dir, f"iter_{k}")
            student_dir = storage.join(iter_dir, "student")
            student = self.train_config(
                student_dir, name, steps=cfg.student_train_steps, seed=cfg.seed * 100 + k,
                batch_size=cfg.train_batch_size, unlabel_data_dir=f"{iter_dir}/filter_data/data",
                init_model_path=previous_dir if cfg.init_student_from_teacher else None)
            predict_cfg = self.predict_config(previous_dir, previous_name, iter_dir)
            student_eval = self.eval_config(student_dir, name)
            if cfg.offline_engine == "beam":
                stages.append(Stage(f"iter_{k}_pseudo_label", f"iteration {k}: pseudo-label the unlabeled data with "
                                    f"{previous_dir}, filter and balance (Apache Beam)",
                                    lambda c=predict_cfg, i=iter_dir: self._pseudo_label_with_beam(c, i),
                                    predict_cfg))
            else:
                stages += [
                    Stage(f"iter_{k}_predict", f"iteration {k}: pseudo-label the unlabeled data with {previous_dir}",
                          lambda c=predict_cfg: self._predict(c), predict_cfg),
                    Stage(f"iter_{k}_filter", f"iteration {k}: filter by confidence and balance the classes",
                          lambda i=iter_dir: self._filter(i)),
                ]
            stages += [
                Stage(f"iter_{k}_student_train", f"iteration {k}: train the noised student ({name})",
                      lambda c=student: self._train(c), student),
                Stage(f"iter_{k}_student_eval", f"iteration {k}: evaluate the student",
                      lambda c=student_eval: self._eval(c), student_eval),
            ]
            previous_dir, previous_name = student_dir, name
        return stages

    # --- running ---
    def _marker(self, stage: Stage) -> str:
        return storage.join(self.cfg.output_dir, "stages", f"{stage.name}.json")

    def _settings(self) -> dict:
        if self.cfg.settings is not None:
            return self.cfg.settings
        record = dataclasses.asdict(self.cfg)
        del record["output_dir"], record["settings"]
        return json.loads(json.dumps(record))  # tuples as lists, as they read back

    def _check_settings(self) -> None:
        path = storage.join(self.cfg.output_dir, SETTINGS_FILE)
        settings = self._settings()
        if storage.exists(path):
            recorded = storage.read_json(path)
            changed = sorted(k for k in set(recorded) | set(settings) if recorded.get(k) != settings.get(k))
            if changed:
                raise UserError(f"--output_dir={self.cfg.output_dir!r} holds a run with other settings (changed: "
                                f"{', '.join(changed)}); use another --output_dir, or delete it to start over")
        else:
            storage.write_text(path, json.dumps(settings, indent=2, sort_keys=True) + "\n")

    @staticmethod
    def check_values(stages: list[Stage]) -> None:
        """Every stage's config values, before the first stage writes anything."""
        from noisy_student_tf.jobs import evaluate, train

        for stage in stages:
            if isinstance(stage.config, TrainConfig):
                train.validate(stage.config)
            elif isinstance(stage.config, EvalConfig):
                evaluate.check_values(stage.config)
            elif isinstance(stage.config, PredictConfig):
                stage.config.validate()

    def run(self) -> dict:
        stages = self.stages()
        self.check_values(stages)
        self._check_settings()
        started = time.monotonic()
        results = {}
        for number, stage in enumerate(stages, start=1):
            marker = self._marker(stage)
            if storage.exists(marker):
                results[stage.name] = storage.read_json(marker)
                logging.info("stage %d/%d %s: done before, skipped", number, len(stages), stage.name)
                continue
            logging.info("stage %d/%d %s: %s (%s since the start)", number, len(stages), stage.name, stage.describe,
                         format_duration(time.monotonic() - started))
            results[stage.name] = stage.run()
            storage.write_text(marker, json.dumps(results[stage.name], indent=2, sort_keys=True) + "\n")
        summary = self.summary(results)
        logging.info("all %d stages done in %s", len(stages), format_duration(time.monotonic() - started))
        return summary

    def summary(self, results: dict) -> dict:
        def top1(result):
            return {"dev_top1": result.get("dev", {}).get("top_1_accuracy"),
                    "test_top1": result.get("test", {}).get("top_1_accuracy")}

        out = self.cfg.output_dir
        summary = {"teacher": top1(results["teacher_eval"]),
                   "iterations": [top1(results[f"iter_{k}_student_eval"])
                                  for k in range(1, len(self.student_names) + 1)]}
        storage.write_text(storage.join(out, "summary.json"), json.dumps(summary, indent=2) + "\n")
        table = format_table(summary, self.cfg.teacher_model_name, self.student_names)
        print(table, flush=True)
        storage.write_text(storage.join(out, "summary.md"), table + "\n")
        plot_summary(summary, storage.join(out, "accuracy.png"))
        return summary


def run(cfg: DriverConfig) -> dict:
    """Runs every stage of `cfg` that is not done yet; returns the summary (top-1 of the teacher and each
    student on dev and test), also written to `<output_dir>/summary.json`."""
    return Driver(cfg).run()


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
    storage.write_bytes(path, storage.figure_png(figure))
    plt.close(figure)
