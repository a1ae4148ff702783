"""FLAGS.md, the flag reference of every entry point, generated from the absl definitions themselves so it
cannot drift from the code: `python -m noisy_student_tf.flag_reference` rewrites it (a test compares)."""

from __future__ import annotations

import os

from absl import flags

from noisy_student_tf import pipeline
from noisy_student_tf.flags import define_convert_checkpoint_flags, define_filter_flags, define_main_flags
from noisy_student_tf.jobs import export, prepro_digits, prepro_images, proc_svhn

PROGRAMS = [
    ("main.py, train.py, eval.py, predict.py, reassign.py",
     "The original main.py's flags (and predict_label.py's), same names, types and defaults. train.py, eval.py "
     "and predict.py only change the default `--mode`; reassign.py also sets `--reassign_label=True`.",
     [define_main_flags]),
    ("filter_unlabel.py", "The original filter_unlabel.py's flags, then ours.", [define_filter_flags]),
    ("iterate.py", "The whole method in one command (noisy_student_tf/pipeline.py).", [pipeline.define_flags]),
    ("proc_svhn.py", "SVHN .mat files or TFDS svhn_cropped -> shards.", [proc_svhn.define_flags]),
    ("prepro_digits.py", "scikit-learn's digits -> shards.", [prepro_digits.define_flags]),
    ("prepro_images.py", "A folder of images -> shards and task_info.json.", [prepro_images.define_flags]),
    ("export.py", "main.py's flags (those describing the model), plus:", [export.define_export_flags]),
    ("convert_checkpoint.py", "Original TF1 checkpoint <-> Keras model file.", [define_convert_checkpoint_flags]),
]
PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "FLAGS.md")


def _cell(value) -> str:
    text = "" if value is None else str(value)
    if isinstance(value, list):
        text = ",".join(map(str, value))
    return text.replace("|", "\\|").replace("\n", " ")


def program_table(definers) -> str:
    values = flags.FlagValues()
    for define in definers:
        define(flag_values=values)
    rows = ["| flag | type | default | meaning |", "|---|---|---|---|"]
    for name in values.flag_values_dict():
        flag = values[name]
        default = "" if flag.default is None else f"`{_cell(flag.default)}`"
        rows.append(f"| `--{name}` | {flag.flag_type()} | {default} | {_cell(flag.help)} |")
    return "\n".join(rows)


def render() -> str:
    parts = ["# Flag reference", "",
             "Generated from the absl flag definitions by `python -m noisy_student_tf.flag_reference`; "
             "`python <program> --help` prints the same.", ""]
    for program, about, definers in PROGRAMS:
        parts += [f"## {program}", "", about, "", program_table(definers), ""]
    return "\n".join(parts)


if __name__ == "__main__":
    with open(PATH, "w", encoding="utf-8") as f:
        f.write(render())
    print(f"wrote {PATH}")
