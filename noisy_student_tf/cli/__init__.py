"""The command-line wing: everything that knows about absl flags, and nothing below it imports it.

- this module: the entry points, one function per program. The top-level scripts (main.py, train.py, ...), the
  console scripts of an installed package (noisy-student-main, ...) and `python -m noisy_student_tf <program>`
  all call these;
- `cli.flags`: the flag definitions (upstream names and defaults), TF-free;
- `cli.adapters`: flags -> config -> `job.run(config)`, one function per program;
- `cli.runner`: what every program shares (a quick `--help`, one-line errors, exit codes);
- `cli.reference`: each program's `--help` text and FLAGS.md.

Each entry point defines its program's flags and hands its adapter to `runner.run`, which prints `--help` before
anything imports TensorFlow; the adapters (which do) are imported only to run. Defining flags must therefore not
import TensorFlow."""

from __future__ import annotations

import importlib

from absl import flags as absl_flags  # not `flags`: the submodule cli.flags takes that name here

from noisy_student_tf.cli.flags import (define_beam_flags, define_convert_checkpoint_flags, define_driver_flags,
                                        define_export_flags,
                                        define_filter_flags, define_main_flags, define_prepro_digits_flags,
                                        define_prepro_images_flags, define_proc_svhn_flags)
from noisy_student_tf.cli import runner


def _run(adapter: str, program: str, pass_through: bool = False) -> None:
    """Runs `cli.adapters.<adapter>(argv)` (flags -> config -> job), imported once --help had its chance: the
    adapters import the jobs, which import TF."""

    def main(argv):
        return getattr(importlib.import_module("noisy_student_tf.cli.adapters"), adapter)(argv)

    runner.run(main, program=program, pass_through=pass_through)


def _main_program(program: str, **defaults) -> None:
    define_main_flags()
    for name, value in defaults.items():
        absl_flags.FLAGS.set_default(name, value)
    _run("run_main", program)


def main() -> None:
    """Upstream-compatible entry point: python main.py --mode=train|eval|predict|train_and_eval [upstream flags]."""
    _main_program("main")


def train() -> None:
    """Direct entry point for --mode=train: python train.py [the flags of main.py]."""
    _main_program("train", mode="train")


def evaluate() -> None:
    """Direct entry point for --mode=eval: python eval.py [the flags of main.py]."""
    _main_program("eval", mode="eval")


def predict() -> None:
    """Direct entry point for --mode=predict: python predict.py --shard=3 [the flags of main.py]."""
    _main_program("predict", mode="predict")


def reassign() -> None:
    """Direct entry point for re-labelling filtered shards (main.py --mode=predict --reassign_label=True)."""
    _main_program("reassign", mode="predict", reassign_label=True, file_prefix="train")


def filter_unlabel() -> None:
    """Entry point of the filtering and balancing step (upstream filter_unlabel.py, same flags)."""
    define_filter_flags()
    _run("run_filter_unlabel", "filter_unlabel")


def pseudo_label_beam() -> None:
    """predict + filter_unlabel (or reassign) as one Apache Beam pipeline, on any runner:

      python pseudo_label_beam.py --task_name=svhn --model_name=efficientnet-b0 --predict_ckpt_path=ckpt/teacher \\
          --input_dir=data/svhn/proc/unlabeled --file_prefix=extra --num_shards=128 \\
          --prelim_stats_dir=ckpt/prelim_stats --output_dir=ckpt/filtered --num_image=130000 \\
          --runner=FnApiRunner --direct_num_workers=2 --direct_running_mode=multi_processing

    Flags that are not this program's are Beam pipeline options (--runner, --project, ...).
    """
    define_main_flags()
    define_beam_flags()
    _run("run_pseudo_label_beam", "pseudo_label_beam", pass_through=True)


def iterate() -> None:
    """One command for the whole method: teacher, then N iterations of predict -> filter -> student -> eval.

      python iterate.py --recipe=digits --output_dir=ckpt/digits

    See noisy_student_tf/jobs/iterate.py and noisy_student_tf/recipes.py."""
    define_driver_flags()
    _run("run_iterate", "iterate")


def export() -> None:
    """Export a trained model (EMA weights) for serving: model.keras, a SavedModel and export_info.json.

      python export.py --model_dir=ckpt/student --output=export/student [the flags the model was trained with]

    --predict_ckpt_path, when given, is exported instead of --model_dir's latest checkpoint.
    """
    define_main_flags()
    define_export_flags()
    _run("run_export", "export")


def convert_checkpoint() -> None:
    """Convert an original TF1 EfficientNet checkpoint to a Keras model file, or back (--to_tf1).

      python convert_checkpoint.py --tf1_ckpt=ckpt/teacher_ckpt/model.ckpt --small_image_model --output=teacher.keras
      python convert_checkpoint.py --to_tf1 --keras_model=teacher.keras --output=ckpt/converted/model.ckpt-0
    """
    define_convert_checkpoint_flags()
    _run("run_convert_checkpoint", "convert_checkpoint")


def proc_svhn() -> None:
    """Prepare SVHN from local files: python proc_svhn.py --raw_data_dir=data/svhn/raw --output_dir=data/svhn/proc
    [--full_train_data] [--tfds_name=svhn_cropped] [--seed=0]. Nothing is downloaded."""
    define_proc_svhn_flags()
    _run("run_proc_svhn", "proc_svhn")


def prepro_digits() -> None:
    """Prepare the bundled digits task: python prepro_digits.py [--output_dir=data/digits/proc] [--seed=0]."""
    define_prepro_digits_flags()
    _run("run_prepro_digits", "prepro_digits")


def prepro_images() -> None:
    """Your own images as shards: python prepro_images.py --input_dir=DIR --output_dir=OUT [--image_size=32] ...

    DIR holds one sub-folder per class (labeled: train/dev/test shards) or only images (unlabeled: OUT/unlabeled/extra
    shards). Then train with --task_name=OUT/task_info.json --label_data_dir=OUT.
    """
    define_prepro_images_flags()
    _run("run_prepro_images", "prepro_images")


# `python -m noisy_student_tf <program>` and the console scripts (pyproject.toml) use these names.
PROGRAMS = {
    "main": main, "train": train, "eval": evaluate, "predict": predict, "reassign": reassign,
    "filter_unlabel": filter_unlabel, "pseudo_label_beam": pseudo_label_beam, "iterate": iterate, "export": export,
    "convert_checkpoint": convert_checkpoint,
    "proc_svhn": proc_svhn, "prepro_digits": prepro_digits, "prepro_images": prepro_images,
}
