"""Only the command lines' adapters read flags: the jobs, the driver, tests, benchmarks and experiments talk to
the library in configs, never in flag strings parsed back into absl `FlagValues`."""

import ast
import glob
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Where flags are defined and turned into configs.
ADAPTERS = {"noisy_student_tf/flags.py", "noisy_student_tf/flag_adapters.py", "noisy_student_tf/flag_reference.py",
            "noisy_student_tf/cli.py", "noisy_student_tf/jobs/common.py"}
# Tests whose subject is a command line (its flags, their parsing and their adapter).
ADAPTER_TESTS = {"tests/test_cli.py", "tests/test_flags.py", "tests/test_flag_reference.py",
                 "tests/test_proc_svhn.py", "tests/test_prepro_images.py", "tests/test_pipeline.py",
                 "tests/test_layering.py", "tests/flag_helper.py", "tests/ram_programs.py", "tests/ram_main_job.py",
                 "tests/test_beam_pipeline.py"}


def python_files(*patterns):
    for pattern in patterns:
        for path in sorted(glob.glob(os.path.join(ROOT, pattern), recursive=True)):
            yield os.path.relpath(path, ROOT)


def names_used(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            yield node.attr
        elif isinstance(node, ast.Name):
            yield node.id


def test_nothing_outside_the_adapters_builds_flag_values():
    offenders = [path for path in python_files("noisy_student_tf/**/*.py", "tests/**/*.py", "bench/*.py",
                                               "experiments/*.py")
                 if path not in ADAPTERS | ADAPTER_TESTS and "FlagValues" in set(names_used(path))]
    assert offenders == []


def test_only_the_adapters_read_the_global_flags():
    offenders = [path for path in python_files("noisy_student_tf/**/*.py")
                 if path not in ADAPTERS and ({"FLAGS", "flag_values_dict"} & set(names_used(path)))]
    assert offenders == []


def test_the_library_does_not_import_the_adapters():
    """Jobs take configs: apart from the train job's record of a Python-configured run (FLAGS.json), nothing
    below the command lines imports the flag modules."""
    importers = []
    for path in python_files("noisy_student_tf/**/*.py"):
        if path in ADAPTERS:
            continue
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            module = getattr(node, "module", None) or ""
            names = [a.name for a in getattr(node, "names", [])] if isinstance(node, ast.ImportFrom) else []
            if module in ("noisy_student_tf.flags", "noisy_student_tf.flag_adapters", "absl.flags") or \
                    (module == "absl" and "flags" in names):
                importers.append(path)
    assert sorted(set(importers)) == ["noisy_student_tf/jobs/train.py"]
