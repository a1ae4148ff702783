"""The README and CI stay true: CI runs the README's commands, and the README's model table is right."""

import os
import re

import pytest

from reference_efficientnet import SPEC_TABLE, reference_param_count, reference_trainable_count

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        return f.read()


def readme_commands():
    blocks = re.findall(r"```bash\n(.*?)```", read("README.md"), flags=re.S)
    lines = [line.split("#")[0].strip() for block in blocks[:2] for line in block.splitlines()]
    return [line for line in lines if line]


def test_ci_runs_the_readme_install_and_test_commands():
    install, _main_job, test = readme_commands()
    ci = [line.strip() for line in read(".ci/run").splitlines()]
    assert install in ci
    assert any(line.startswith(test) for line in ci)
    assert ci.index(install) < next(i for i, line in enumerate(ci) if line.startswith(test))


@pytest.mark.parametrize("name", list(SPEC_TABLE))
def test_readme_parameter_table_matches_the_spec(name):
    row = next(line for line in read("README.md").splitlines() if line.startswith(f"| {name} |"))
    cells = [c.strip().replace(",", "") for c in row.strip("|").split("|")]
    assert int(cells[-3]) == reference_trainable_count(name, 1000)
    assert int(cells[-2]) == reference_param_count(name, 1000)
    assert int(cells[-1]) == reference_param_count(name, 10)


def layout_entries():
    """The package's files and folders named in the README's Layout section, as paths."""
    section = read("README.md").split("## Layout", 1)[1]
    block = re.search(r"```\n(.*?)```", section, flags=re.S).group(1)
    entries, parents = set(), []
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        names = re.match(r"\s*((?:[\w./-]+(?:, )?)+)", line)
        if not names or indent % 2 or not line.strip() or line[indent].isupper():
            continue
        parents = parents[:indent // 2]
        parts = [n for n in names.group(1).split(", ") if n]
        if parents or parts[0] == "noisy_student_tf/":
            for name in parts:
                entries.add("".join(parents) + name)
        if parts[-1].endswith("/"):
            parents.append(parts[-1])
    return {e for e in entries if e.startswith("noisy_student_tf/")}


def test_the_readme_layout_names_every_module_of_the_package_and_nothing_else():
    """Each module is named, or its folder is named without naming any of its files (a summarised folder such as
    jobs/); every name is a real path."""
    listed = layout_entries()
    package = {os.path.relpath(os.path.join(d, f), ROOT) for d, _, files in os.walk(os.path.join(ROOT, "noisy_student_tf"))
               for f in files if f.endswith(".py")}

    def summarised(folder):
        return folder in listed and not any(e.startswith(folder) and e.endswith(".py") for e in listed)

    unnamed = {m for m in package if m not in listed and not summarised(os.path.dirname(m) + "/")
               and not (m.endswith("/__init__.py") and os.path.dirname(m) + "/" in listed)}
    assert unnamed == set()
    assert {e for e in listed if not os.path.exists(os.path.join(ROOT, e))} == set() and len(listed) > 40
