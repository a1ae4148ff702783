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
