"""From absl flag values to the jobs' configs (noisy_student_tf/config.py): the only code that reads flags.

Each `*_config(F)` takes the parsed flags of one program and returns the resolved config its job runs, with
upstream main()'s derived values (noisy_student_tf/derivations.py); the `run_*` functions are what the command
lines run (`noisy_student_tf.cli`).
"""

from __future__ import annotations

import dataclasses

from absl import flags, logging

from noisy_student_tf import config as config_lib
from noisy_student_tf import derivations
from noisy_student_tf.config import (AugmentConfig, DriverConfig, EvalConfig, ExportConfig, InputConfig, LoopConfig,
                                     ModelOptions, OptimConfig, PredictConfig, RobustnessConfig, RuntimeConfig,
                                     TeacherConfig, TrainConfig)
from noisy_student_tf.errors import UserError
from noisy_student_tf.cli.flags import IGNORED_FLAGS, define_main_flags
from noisy_student_tf.tasks import get_task



# ------------------------------------------------------------------------------------------------------------
# main.py's flags -> the parts of a config.

def report_ignored_flags(F) -> None:
    for name in IGNORED_FLAGS:
        flag = F[name]
        if flag.present and flag.value != flag.default:
            logging.warning("--%s=%s only configured TPUs upstream (or was never read); ignored", name, flag.value)


def model_options(F) -> ModelOptions:
    return ModelOptions(small_image_model=F.small_image_model, input_image_size=F.input_image_size,
                        dropout_rate=F.dropout_rate, stochastic_depth_rate=F.stochastic_depth_rate,
                        width_coefficient=F.width_coefficient, depth_coefficient=F.depth_coefficient)


def precision(F) -> str:
    """--use_bfloat16 maps to mixed_bfloat16; --mixed_precision=float16 to mixed_float16 (with loss scaling)."""
    if F.mixed_precision not in (None, "", "float32", "bfloat16", "float16"):
        raise UserError(f"--mixed_precision must be float32, bfloat16 or float16, got {F.mixed_precision!r}")
    if F.mixed_precision == "float16":
        return "mixed_float16"
    if F.use_bfloat16 or F.mixed_precision == "bfloat16":
        return "mixed_bfloat16"
    return "float32"


def runtime_config(F) -> RuntimeConfig:
    return RuntimeConfig(strategy=F.strategy, tpu=F.tpu, cpu_replicas=F.cpu_replicas, precision=precision(F),
                         jit_compile=F.jit_compile, deterministic=F.deterministic)


def augment_config(F, task) -> AugmentConfig:
    return AugmentConfig(augment_name=F.augment_name,
                         unl_augment_name=config_lib.unlabeled_augment_name(F.augment_name, F.unl_aug),
                         randaug_layer=F.randaug_layer, randaug_mag=F.randaug_mag, cutout_op=F.cutout_op,
                         contrast_mode=F.randaug_contrast, remove_aug=F.remove_aug)


def optim_config(F, task) -> OptimConfig:
    return OptimConfig(num_train_images=F.num_train_images or task.num_train_images, train_steps=F.train_steps,
                       train_last_step_num=F.train_last_step_num, train_ratio=F.train_ratio,
                       base_learning_rate=F.base_learning_rate, final_base_lr=F.final_base_lr,
                       weight_decay=F.weight_decay, label_smoothing=F.label_smoothing,
                       moving_average_decay=F.moving_average_decay)


def loop_config(F) -> LoopConfig:
    return LoopConfig(iterations_per_loop=F.iterations_per_loop, save_checkpoints_steps=F.save_checkpoints_steps,
                      keep_checkpoint_max=F.keep_checkpoint_max, log_step_count_steps=F.log_step_count_steps,
                      skip_host_call=F.skip_host_call)


def input_config(F) -> InputConfig:
    return InputConfig(label_data_dir=F.label_data_dir or "", train_batch_size=F.train_batch_size,
                       unlabel_data_dir=F.unlabel_data_dir, unlabel_ratio=F.unlabel_ratio,
                       label_data_sample_prob=F.label_data_sample_prob, use_cache=F.use_cache,
                       num_train_shards=F.num_train_shards)


def _task_and_model(F):
    task = get_task(F.task_name)
    return task, derivations.model_config(task, F.model_name, F.num_label_classes, model_options(F))


def train_config(F) -> TrainConfig:
    task, model = _task_and_model(F)
    teacher = TeacherConfig(softmax_temp=F.teacher_softmax_temp)
    if F.teacher_model_name:
        teacher = TeacherConfig(model_name=F.teacher_model_name, checkpoint=F.teacher_model_path,
                                image_size=derivations.teacher_image_size(model, F.teacher_model_name),
                                softmax_temp=F.teacher_softmax_temp)
    init = F.init_model_path if F.init_model else None
    if F.init_model and not F.init_model_path and not F.teacher_model_name:
        raise UserError("--init_model is set but --init_model_path is empty")
    if F.init_model and F.teacher_model_name:
        logging.warning("--init_model is ignored with a teacher (as upstream): the student starts from scratch")
        init = None
    return TrainConfig(model_dir=F.model_dir or "", task=task, model=model, input=input_config(F),
                       optim=optim_config(F, task), augment=augment_config(F, task), teacher=teacher,
                       loop=loop_config(F), runtime=runtime_config(F), init_model_path=init,
                       fix_layer_num=F.fix_layer_num, seed=F.seed, flag_values=F.flag_values_dict())


def eval_config(F) -> EvalConfig:
    task, model = _task_and_model(F)
    robustness = None
    if F.robustness:
        from noisy_student_tf import robustness as robustness_lib  # flag errors before the work

        robustness = RobustnessConfig(corruptions=tuple(robustness_lib.check_corruptions(F.corruptions)),
                                      fgsm_epsilons=tuple(robustness_lib.parse_epsilons(F.fgsm_epsilons)),
                                      subset=F.robustness_subset, seed=F.seed or 0)
    # Counts are only checked against sizes the user gave (a task's own sizes are what it has).
    num_eval = (F.num_eval_images or task.num_eval_images) if F["num_eval_images"].present else None
    num_test = (F.num_test_images or task.num_test_images) if F["num_test_images"].present else None
    return EvalConfig(model_dir=F.model_dir or "", label_data_dir=F.label_data_dir or "", task=task, model=model,
                      eval_batch_size=F.eval_batch_size, label_smoothing=F.label_smoothing,
                      weight_decay=F.weight_decay, use_ema=F.moving_average_decay > 0, num_eval_images=num_eval,
                      num_test_images=num_test, robustness=robustness)


def parse_shard_ids(text) -> tuple[int, ...]:
    """--shard_id: one index or a comma-separated list (upstream predict_label.py)."""
    try:
        return tuple(int(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        raise UserError(f"--shard_id={text!r}: expected an index or comma-separated indices, e.g. 3 or 0,1,2") from None


def predict_config(F) -> PredictConfig:
    task, model = _task_and_model(F)
    if F.data_type != "tfrecord":
        raise UserError(f"--data_type={F.data_type!r}: only tfrecord is supported (as upstream)")
    return PredictConfig(
        checkpoint=F.predict_ckpt_path, input_dir=F.label_data_dir or "", output_dir=F.output_dir, task=task,
        model=model, info_dir=F.info_dir, file_prefix=F.file_prefix, num_shards=F.num_shards,
        shards=parse_shard_ids(F.shard_id), batch_size=F.predict_batch_size, total_replicas=F.total_replicas,
        worker_id=F.worker_id, seed=F.seed if F.seed is not None else config_lib.FILTER_SEED,
        reassign=F.reassign_label, use_ema=F.moving_average_decay > 0, precision=precision(F))


def export_config(F) -> ExportConfig:
    task, model = _task_and_model(F)
    if F.predict_ckpt_path:
        checkpoint, flag = F.predict_ckpt_path, "--predict_ckpt_path"
    elif F.model_dir:
        checkpoint, flag = F.model_dir, "--model_dir"
    else:
        raise UserError("--model_dir (or --predict_ckpt_path) is required: the checkpoint to export")
    return ExportConfig(checkpoint=checkpoint, checkpoint_flag=flag, output=F.output or "", task=task,
                        model=model, task_name=F.task_name, overwrite=F.overwrite,
                        use_ema=F.moving_average_decay > 0)


def convert_config(F) -> config_lib.ConvertConfig:
    return config_lib.ConvertConfig(**{f.name: F[f.name].value
                                       for f in dataclasses.fields(config_lib.ConvertConfig)})


# ------------------------------------------------------------------------------------------------------------
# filter_unlabel.py's flags.

def filter_config(F):
    from noisy_student_tf.config import FilterConfig

    if F.data_type != "tfrecord":
        raise UserError(f"--data_type={F.data_type!r}: only tfrecord is supported (as upstream)")
    if F.only_get_stats not in (0, 1):
        raise UserError(f"--only_get_stats must be 0 or 1, got {F.only_get_stats}")
    if F.all_shards and F.num_workers < 0:
        raise UserError(f"--num_workers must be >= 0, got {F.num_workers}")
    for name in ("total_label_replicas", "eval_imagenet_p"):
        if F[name].present:
            logging.warning("--%s is ignored (upstream never used the value given)", name)
    return FilterConfig(
        input_dir=F.input_dir, prediction_dir=F.prediction_dir, info_dir=F.info_dir,
        prelim_stats_dir=F.prelim_stats_dir, output_dir=F.output_dir, num_classes=F.num_label_classes,
        num_shards=F.num_shards, only_use_num_shards=F.only_use_num_shards, num_image=F.num_image,
        total_replicas=F.total_replicas, replica=F.task, debug=F.debug, min_threshold=F.min_threshold,
        max_prob=F.max_prob, upsample=bool(F.upsample), file_prefix=F.file_prefix, use_top=bool(F.use_top),
        use_all=F.use_all, seed=F.seed, rebuild_stale=F.rebuild_stale, poll_seconds=F.poll_seconds,
        wait_timeout=F.wait_timeout, shard_id=F.shard_id, only_get_stats=bool(F.only_get_stats),
        all_shards=F.all_shards, num_workers=F.num_workers or None)


# ------------------------------------------------------------------------------------------------------------
# pseudo_label_beam.py's flags: main.py's (the teacher) and filter_unlabel.py's.

def beam_config(F, pipeline_args=()):
    from noisy_student_tf.config import BeamConfig
    from noisy_student_tf.offline.beam_pipeline import check_pipeline_args
    from noisy_student_tf.config import FilterConfig

    if F.input_dir and F.label_data_dir and F.input_dir != F.label_data_dir:
        raise UserError(f"--input_dir={F.input_dir!r} and --label_data_dir={F.label_data_dir!r} name the same "
                        "input (filter_unlabel.py's and predict.py's names): give one")
    if F["shard_id"].present:
        logging.warning("--shard_id is ignored: the pipeline handles every shard (0..--num_shards-1)")
    check_pipeline_args(pipeline_args)
    input_dir = F.input_dir or F.label_data_dir or ""
    base = predict_config(F)
    if F.reassign_label:
        predict = dataclasses.replace(base, input_dir=input_dir, shards=tuple(range(F.num_shards)))
        return BeamConfig(predict=predict, pipeline_args=tuple(pipeline_args))
    write_predictions = bool(F.prediction_dir) or F.predict_only
    if write_predictions and not (F.prediction_dir and F.info_dir):
        raise UserError("--prediction_dir and --info_dir are both needed to write the predictions")
    predict = dataclasses.replace(base, input_dir=input_dir, output_dir=F.prediction_dir, info_dir=F.info_dir,
                                  shards=tuple(range(F.num_shards)))
    if F.predict_only:
        return BeamConfig(predict=predict, write_predictions=True, pipeline_args=tuple(pipeline_args))
    seed = F.seed if F.seed is not None else config_lib.FILTER_SEED
    filter_cfg = FilterConfig(
        input_dir=input_dir, prediction_dir=F.prediction_dir, info_dir=F.info_dir if write_predictions else "",
        prelim_stats_dir=F.prelim_stats_dir, output_dir=F.output_dir, num_classes=predict.model.num_classes,
        num_shards=F.num_shards, only_use_num_shards=F.only_use_num_shards, num_image=F.num_image,
        total_replicas=F.total_replicas, replica=F.task, min_threshold=F.min_threshold, max_prob=F.max_prob,
        upsample=bool(F.upsample), file_prefix=F.file_prefix, use_top=bool(F.use_top), use_all=F.use_all, seed=seed,
        rebuild_stale=F.rebuild_stale, all_shards=True)
    return BeamConfig(predict=predict, filter=filter_cfg, write_predictions=write_predictions,
                      pipeline_args=tuple(pipeline_args))


# ------------------------------------------------------------------------------------------------------------
# iterate.py's flags.

def _main_flags_of(args: list[str]):
    """main.py's flags as `args` set them (iterate.py's --train_flags)."""
    values = flags.FlagValues()
    define_main_flags(values)
    try:
        values(["main.py", *args])
    except flags.Error as e:
        raise UserError(f"--train_flags: {e}") from None
    return values


# iterate.py's flags that live in a sub-config of DriverConfig (the others are its fields of the same name).
_DRIVER_NESTED = {"augment_name": ("augment", "augment_name"), "randaug_mag": ("augment", "randaug_mag"),
                  "randaug_layer": ("augment", "randaug_layer"),
                  "base_learning_rate": ("optim", "base_learning_rate"), "weight_decay": ("optim", "weight_decay"),
                  "final_base_lr": ("optim", "final_base_lr"), "deterministic": ("runtime", "deterministic")}
# The main.py flags --train_flags may set, and where they go. iterate.py sets the others itself (model names,
# directories, steps, batch sizes, seeds, the learning rate, weight decay and the noise have its own flags).
_TRAIN_FLAGS = {
    **{name: ("model_options", name) for name in ("small_image_model", "input_image_size", "dropout_rate",
                                                   "stochastic_depth_rate", "width_coefficient",
                                                   "depth_coefficient")},
    **{name: ("optim", name) for name in ("num_train_images", "train_last_step_num", "train_ratio",
                                           "final_base_lr", "label_smoothing", "moving_average_decay")},
    **{name: ("input", name) for name in ("label_data_sample_prob", "use_cache", "num_train_shards")},
    **{name: ("loop", name) for name in ("keep_checkpoint_max", "skip_host_call")},
    **{name: ("runtime", name) for name in ("strategy", "tpu", "cpu_replicas", "jit_compile")},
    **{name: ("augment", name) for name in ("cutout_op", "remove_aug")},
    "randaug_contrast": ("augment", "contrast_mode"),
    "predict_batch_size": (None, "predict_batch_size"),
    # Accepted as before, with the values iterate.py always passed.
    "use_tpu": None, "use_bfloat16": None, "mixed_precision": None, "unl_aug": None,
}


def _replace_in(cfg, part: str | None, field: str, value):
    if part is None:
        return dataclasses.replace(cfg, **{field: value})
    return dataclasses.replace(cfg, **{part: dataclasses.replace(getattr(cfg, part), **{field: value})})


def driver_config(F) -> DriverConfig:
    """iterate.py's flags: the recipe (`--recipe`, or iterate.py's defaults), then every flag given on the
    command line, then --train_flags (main.py flags for every training, eval and predict run)."""
    from noisy_student_tf import recipes

    cfg = recipes.get(F.recipe) if F.recipe else DriverConfig()
    names = _driver_flag_names()
    given = [name for name in names if F[name].present or not F.recipe]
    T = _main_flags_of(list(F.train_flags))
    for name, value in T.flag_values_dict().items():
        if not T[name].present:
            continue
        if name not in _TRAIN_FLAGS:
            raise UserError(f"--train_flags=--{name}: iterate.py sets it for every run (use its own flag if it "
                            "has one)")
        if _TRAIN_FLAGS[name] is not None:
            cfg = _replace_in(cfg, *_TRAIN_FLAGS[name], value)
    if any(T[name].present for name in ("use_bfloat16", "mixed_precision")):
        cfg = _replace_in(cfg, "runtime", "precision", precision(T))
    for name in given:
        value = F[name].value
        if name in ("train_flags", "recipe"):
            continue
        if name in ("student_model_names", "beam_options"):
            value = tuple(value)
        part, field = _DRIVER_NESTED.get(name, (None, name))
        cfg = _replace_in(cfg, part, field, value)
    if "augment_name" in given or T["unl_aug"].present:
        cfg = _replace_in(cfg, "augment", "unl_augment_name",
                          config_lib.unlabeled_augment_name(cfg.augment.augment_name, T.unl_aug))
    # The record of the run (pipeline_flags.json): iterate.py's flag values; with a recipe, those that give the
    # resolved config, so that the same run reads the same with or without --recipe.
    settings = {name: F[name].value if not F.recipe else _driver_flag_value(cfg, name)
                for name in sorted(names) if name not in ("output_dir", "recipe")}
    return dataclasses.replace(cfg, settings=settings)


def _driver_flag_value(cfg: DriverConfig, name: str):
    """The value of iterate.py's flag `name` that gives `cfg`'s setting."""
    if name == "train_flags":
        return _train_flags_of(cfg)
    part, field = _DRIVER_NESTED.get(name, (None, name))
    value = getattr(getattr(cfg, part) if part else cfg, field)
    return list(value) if isinstance(value, tuple) else value


def _train_flags_of(cfg: DriverConfig) -> list[str]:
    """--train_flags that give `cfg`'s settings where they differ from iterate.py's defaults."""
    default, given = DriverConfig(), []
    for flag, where in _TRAIN_FLAGS.items():
        if where is not None:
            part, field = where
            value = getattr(getattr(cfg, part) if part else cfg, field)
            if value != getattr(getattr(default, part) if part else default, field):
                given.append(f"--{flag}={value}")
    if cfg.runtime.precision != default.runtime.precision:
        given.append({"mixed_bfloat16": "--use_bfloat16=True"}.get(cfg.runtime.precision, "--mixed_precision=float16"))
    if cfg.augment.unl_augment_name != cfg.augment.augment_name:
        given.append(f"--unl_aug={cfg.augment.unl_augment_name or ''}")
    return given


def _driver_flag_names() -> list[str]:
    from noisy_student_tf.cli.flags import define_driver_flags

    values = flags.FlagValues()
    define_driver_flags(values)
    return list(values)


# ------------------------------------------------------------------------------------------------------------
# What each program runs (noisy_student_tf/cli/__init__.py).

MODES = ("train", "eval", "predict", "train_and_eval")


def run_main(argv, F=flags.FLAGS) -> None:
    """main.py (and train.py, eval.py, predict.py, reassign.py): --mode=train|eval|predict|train_and_eval."""
    report_ignored_flags(F)
    if F.use_tpu and not F.tpu and F["use_tpu"].present:
        logging.warning("--use_tpu without --tpu: no TPU to connect to, running on the local devices")
    if F.mode not in MODES:
        raise UserError(f"unknown --mode={F.mode!r}: choose one of {', '.join(MODES)}")
    from noisy_student_tf.jobs import evaluate, predict, train

    if F.mode == "predict":
        predict.run(predict_config(F))
        return
    # Upstream's default train_and_eval only wrote FLAGS.json and exited; here it trains, then evaluates. Both
    # configs are made (and eval's values checked) first: a bad eval flag must not wait for training to end.
    train_cfg = train_config(F) if F.mode in ("train", "train_and_eval") else None
    eval_cfg = eval_config(F) if F.mode in ("eval", "train_and_eval") else None
    if train_cfg is not None and eval_cfg is not None:
        evaluate.check_values(eval_cfg)
    if train_cfg is not None:
        train.run(train_cfg)
    if eval_cfg is not None:
        evaluate.run(eval_cfg)


def run_filter_unlabel(argv, F=flags.FLAGS):
    from noisy_student_tf.jobs import filter_unlabel

    return filter_unlabel.run(filter_config(F))


def run_pseudo_label_beam(argv, F=flags.FLAGS):
    """pseudo_label_beam.py: `argv[1:]` are the arguments that are not its flags, Beam's pipeline options."""
    report_ignored_flags(F)
    from noisy_student_tf.jobs import pseudo_label_beam

    return pseudo_label_beam.run(beam_config(F, argv[1:]))


def run_iterate(argv, F=flags.FLAGS):
    from noisy_student_tf.api import run_noisy_student

    return run_noisy_student(driver_config(F))


def run_export(argv, F=flags.FLAGS):
    report_ignored_flags(F)
    from noisy_student_tf.jobs import export

    return export.run(export_config(F))


def run_convert_checkpoint(argv, F=flags.FLAGS):
    from noisy_student_tf.jobs import convert_checkpoint

    return convert_checkpoint.run(convert_config(F))


# The data-preparation programs: their libraries are data/sources/*.prepare.

def run_prepro_digits(argv, F=flags.FLAGS) -> dict:
    if not F.output_dir:
        raise UserError("--output_dir is required")
    from noisy_student_tf.data.sources import digits

    counts = digits.prepare(F.output_dir, seed=F.seed)
    logging.info("digits in %s: %s (use --task_name=digits)", F.output_dir,
                 ", ".join(f"{k} {v}" for k, v in counts.items()))
    return counts


def run_proc_svhn(argv, F=flags.FLAGS) -> dict:
    """proc_svhn.py: SVHN as TFRecord shards, like upstream's script but from local files only."""
    from noisy_student_tf.data.sources import svhn

    if F.task_name != "svhn":
        raise UserError(f"--task_name={F.task_name!r}: proc_svhn.py only prepares svhn "
                        f"(for scikit-learn's digits use prepro_digits.py)")
    if not F.output_dir:
        raise UserError("--output_dir is required: the directory for the TFRecord shards")
    # TFDS finds its own data directory; scripts pass --raw_data_dir either way, so it is not reused then.
    source = svhn.TfdsSource(F.tfds_name) if F.tfds_name else svhn.MatSource(F.raw_data_dir)
    counts = svhn.prepare(source, F.output_dir, seed=F.seed, full_train_data=F.full_train_data)
    logging.info("svhn in %s: %s", F.output_dir, ", ".join(f"{k} {v}" for k, v in counts.items()))
    return counts


def image_folder_options(F):
    from noisy_student_tf.data.sources import image_folder

    return image_folder.Options(labels=F.labels, image_size=F.image_size, dev_fraction=F.dev_fraction,
                                test_fraction=F.test_fraction, num_shards=F.num_shards, seed=F.seed,
                                on_bad_image=F.on_bad_image, num_classes=F.num_classes, name=F.name,
                                flip=F.flip, num_threads=F.num_threads)


def run_prepro_images(argv, F=flags.FLAGS):
    """prepro_images.py: a folder of your own images as shards."""
    from noisy_student_tf.data.sources import image_folder

    summary = image_folder.prepare(F.input_dir or "", F.output_dir or "", image_folder_options(F))
    counts = ", ".join(f"{split} {n} ({len(summary.shards[split])} shards)" for split, n in summary.counts.items())
    logging.info("wrote %s to %s; %d unreadable files skipped", counts, summary.shard_dir, len(summary.bad_images))
    if summary.labeled:
        logging.info("train with: --task_name=%s --label_data_dir=%s", summary.task_file, F.output_dir)
    else:
        logging.info("use as --unlabel_data_dir=%s; predict/filter with --file_prefix=%s --num_shards=%d",
                     summary.shard_dir, image_folder.UNLABELED_PREFIX, len(summary.shards["extra"]))
    return summary
