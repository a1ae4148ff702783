"""FLAGS.md, the flag reference of every entry point, generated from the absl definitions themselves so it
cannot drift from the code: `python -m noisy_student_tf.cli.reference` rewrites it (a test compares). Every
entry point's `--help` prints its section as plain text (`program_help`). Nothing here imports TensorFlow: the
definers come from the TF-free `cli.flags`."""

from __future__ import annotations

import os
import textwrap

from absl import flags

from noisy_student_tf.cli.flags import (define_beam_flags, define_convert_checkpoint_flags, define_driver_flags,
                                        define_export_flags,
                                        define_filter_flags, define_main_flags, define_prepro_digits_flags,
                                        define_prepro_images_flags, define_proc_svhn_flags)

PROGRAMS = [
    ("main.py, train.py, eval.py, predict.py, reassign.py",
     "The original main.py's flags (and predict_label.py's), same names, types and defaults. train.py, eval.py "
     "and predict.py only change the default `--mode`; reassign.py also sets `--reassign_label=True`.",
     [define_main_flags]),
    ("filter_unlabel.py", "The original filter_unlabel.py's flags, then ours.", [define_filter_flags]),
    ("pseudo_label_beam.py",
     "predict.py + filter_unlabel.py (or reassign.py with `--reassign_label`) as one Apache Beam pipeline. main.py's "
     "flags describe the teacher (`--predict_ckpt_path`, `--model_name`, `--predict_batch_size`, ...) and "
     "`--num_shards`, `--file_prefix`, `--total_replicas`, `--info_dir`, `--seed`; `--output_dir` is the filter's "
     "output root (with `--reassign_label`: where the re-labelled shards go). Then these, filter_unlabel.py's names; "
     "any other `--name=value` is a Beam pipeline option (`--runner`, `--direct_num_workers`, ...).",
     [define_beam_flags]),
    ("iterate.py", "The whole method in one command (noisy_student_tf/jobs/iterate.py).", [define_driver_flags]),
    ("proc_svhn.py", "SVHN .mat files or TFDS svhn_cropped -> shards.", [define_proc_svhn_flags]),
    ("prepro_digits.py", "scikit-learn's digits -> shards.", [define_prepro_digits_flags]),
    ("prepro_images.py", "A folder of images -> shards and task_info.json.", [define_prepro_images_flags]),
    ("export.py", "main.py's flags (those describing the model), plus:", [define_export_flags]),
    ("convert_checkpoint.py", "Original TF1 checkpoint <-> Keras model file.", [define_convert_checkpoint_flags]),
]
PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "FLAGS.md")


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
             "Generated from the absl flag definitions by `python -m noisy_student_tf.cli.reference`; "
             "`python <program> --help` prints the same.", ""]
    for program, about, definers in PROGRAMS:
        parts += [f"## {program}", "", about, "", program_table(definers), ""]
    return "\n".join(parts)


def _default_text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return "''" if value == "" else str(value)


def _groups(program: str):
    """(heading, about, definers) of `program` (main, train, ..., prepro_images) as in FLAGS.md; export also
    takes main.py's flags, which its section only mentions."""
    script = f"{program}.py"
    for heading, about, definers in PROGRAMS:
        if script in heading.split(", "):
            if program in ("export", "pseudo_label_beam"):
                yield PROGRAMS[0][0], "The flags describing the model, as it was trained.", [define_main_flags]
            yield heading, about, definers
            return
    raise KeyError(f"unknown program {program!r}")


def program_help(program: str, flag_values=flags.FLAGS, doc: str | None = None) -> str:
    """`--help` of `program`: its docstring, then its flags grouped as in FLAGS.md (name, type, default and
    meaning), with the defaults of `flag_values` (train.py and the others change some)."""
    parts = [textwrap.dedent(doc).strip(), ""] if doc else []
    parts += [f"Flags of {program}.py (as in FLAGS.md; --helpfull also lists absl's own):"]
    for heading, about, definers in _groups(program):
        names = flags.FlagValues()
        for define in definers:
            define(flag_values=names)
        parts += [""] + textwrap.wrap(f"{heading}: {about}", width=100)
        for name in names:
            flag = flag_values[name] if name in flag_values else names[name]
            parts.append(f"  --{name} ({flag.flag_type()}, default: {_default_text(flag.default)})")
            parts += textwrap.wrap(flag.help, width=100, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    with open(PATH, "w", encoding="utf-8") as f:
        f.write(render())
    print(f"wrote {PATH}")
