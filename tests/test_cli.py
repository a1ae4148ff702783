"""Every entry point's --help (top-level script and `python -m noisy_student_tf <program>`): exit 0, the
program's own flags, and no TensorFlow import (it is what makes --help slow and noisy)."""

import os
import subprocess
import sys

import pytest
from absl import flags

import noisy_student_tf.cli.flags
from noisy_student_tf import cli
from noisy_student_tf.cli import adapters

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A few flags that only (or characteristically) belong to each program.
CHARACTERISTIC = {
    "main": ["--teacher_model_name", "--unlabel_ratio", "--mode"],
    "train": ["--teacher_model_name", "--unlabel_ratio"],
    "eval": ["--teacher_model_name", "--robustness"],
    "predict": ["--shard_id", "--predict_batch_size"],
    "reassign": ["--reassign_label", "--predict_batch_size"],
    "filter_unlabel": ["--min_threshold", "--only_get_stats"],
    "pseudo_label_beam": ["--predict_ckpt_path", "--min_threshold", "--prelim_stats_dir", "--predict_only"],
    "iterate": ["--student_model_names", "--iterations"],
    "export": ["--overwrite", "--output", "--model_name"],
    "convert_checkpoint": ["--to_tf1", "--tf1_ckpt"],
    "proc_svhn": ["--raw_data_dir", "--full_train_data", "--tfds_name"],
    "prepro_digits": ["--output_dir", "--seed"],
    "prepro_images": ["--input_dir", "--on_bad_image"],
}


def _run(args, cwd):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-X", "importtime", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def _check_help(result, program):
    assert result.returncode == 0, result.stderr[-2000:]
    for flag in CHARACTERISTIC[program]:
        assert f"  {flag} (" in result.stdout, (flag, result.stdout[:2000])
    assert "Try --helpfull" not in result.stdout
    # -X importtime writes one line per imported module to stderr: "import time: self | cumulative | name".
    modules = [line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
               if line.startswith("import time:") and line.count("|") == 2]
    assert "noisy_student_tf" in modules and "absl.flags" in modules  # the parse sees the imports
    loaded = [m for m in modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras")]
    assert not loaded, loaded[:5]


def test_programs_match_the_scripts():
    assert sorted(cli.PROGRAMS) == sorted(CHARACTERISTIC)
    for program in cli.PROGRAMS:
        assert os.path.exists(os.path.join(ROOT, f"{program}.py"))


@pytest.mark.parametrize("program", sorted(CHARACTERISTIC))
def test_script_help(program, tmp_path):
    result = _run([os.path.join(ROOT, f"{program}.py"), "--help"], tmp_path)
    _check_help(result, program)
    # The script's docstring comes first, as absl's --help prints it.
    doc = cli.PROGRAMS[program].__doc__.strip().splitlines()[0]
    assert result.stdout.startswith(doc)


@pytest.mark.parametrize("program", sorted(CHARACTERISTIC))
def test_module_help(program, tmp_path):
    _check_help(_run(["-m", "noisy_student_tf", program, "--help"], tmp_path), program)


@pytest.mark.parametrize("arg", ["-h", "--helpshort"])
def test_short_help_spellings(arg, tmp_path):
    _check_help(_run([os.path.join(ROOT, "filter_unlabel.py"), arg], tmp_path), "filter_unlabel")


def test_help_shows_the_programs_defaults(tmp_path):
    result = _run([os.path.join(ROOT, "reassign.py"), "--help"], tmp_path)
    assert "  --mode (string, default: predict)" in result.stdout
    assert "  --reassign_label (bool, default: True)" in result.stdout
    result = _run(["-m", "noisy_student_tf", "train", "--help"], tmp_path)
    assert "  --mode (string, default: train)" in result.stdout


@pytest.mark.parametrize("args", [[], ["nonsense"]])
def test_module_without_a_known_program(args, tmp_path):
    result = _run(["-m", "noisy_student_tf", *args], tmp_path)
    assert result.returncode == 2
    assert "programs: main, train, eval" in result.stderr and "prepro_images" in result.stderr


# Tests the command line's adapter: the data-preparation flags' defaults give the libraries' defaults.
def test_flag_defaults_are_those_of_the_libraries():
    # flags.py stays free of TensorFlow, so it states these defaults itself; they must be the libraries' own.
    import dataclasses

    from noisy_student_tf.data.sources import image_folder, svhn

    values = flags.FlagValues()
    noisy_student_tf.cli.flags.define_prepro_images_flags(flag_values=values)
    for field in dataclasses.fields(image_folder.Options):
        if field.name in values:
            assert values[field.name].default == getattr(image_folder.Options(), field.name), field.name
    assert values["labels"].parser.enum_values == list(image_folder.LABEL_MODES)
    assert values["on_bad_image"].parser.enum_values == list(image_folder.BAD_IMAGE_MODES)
    values(["prepro_images.py"])
    assert adapters.image_folder_options(values) == image_folder.Options()
    values = flags.FlagValues()
    noisy_student_tf.cli.flags.define_proc_svhn_flags(flag_values=values)
    assert values["seed"].default == svhn.UPSTREAM_SEED


def test_corruption_names_are_those_of_robustness():
    from noisy_student_tf import robustness, robustness_names

    assert robustness_names.CORRUPTIONS == tuple(robustness.SEVERITIES)
    assert robustness.CORRUPTIONS is robustness_names.CORRUPTIONS
