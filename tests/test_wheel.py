"""The package as a user installs it: build the wheel, install it (without dependencies) into a fresh virtual
environment outside the repository, then run a console script's --help and a tiny real job (prepro_digits:
scikit-learn's bundled digits, nothing downloaded) from a directory that is not the checkout."""

import os
import shutil
import subprocess
import sys
import sysconfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    # Build from a copy of what the wheel is made of: building in the checkout would leave build/ there.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), source / name)
    shutil.copytree(os.path.join(ROOT, "noisy_student_tf"), source / "noisy_student_tf",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    wheels = tmp_path / "wheels"
    # With build isolation: pyproject.toml's build backend (setuptools>=77, for the SPDX license) comes from PyPI.
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)])
    (wheel,) = wheels.glob("noisy_student_tf-*.whl")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)])
    new_site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    # The dependencies (TF, scikit-learn, ...) from this environment's site-packages, added by a .pth line: a
    # path in a .pth is appended to sys.path but its own .pth files are not run, so the editable install of this
    # checkout (__editable__.noisy_student_tf-*.pth and its finder) stays out, and the wheel's copy is imported.
    with open(os.path.join(new_site, "dependencies.pth"), "w", encoding="utf-8") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    where = _run([str(python), "-c", "import noisy_student_tf; print(noisy_student_tf.__file__)"], cwd=work,
                 env=env).stdout.strip()
    assert where.startswith(new_site) and not where.startswith(ROOT), where

    helped = _run([str(venv / "bin" / "noisy-student-filter-unlabel"), "--help"], cwd=work, env=env)
    assert "  --min_threshold (" in helped.stdout and "  --only_get_stats (" in helped.stdout

    out = work / "digits"
    _run([str(python), "-m", "noisy_student_tf", "prepro_digits", f"--output_dir={out}"], cwd=work, env=env)
    names = sorted(os.listdir(out))
    for prefix in ("train-", "dev-", "test-"):
        assert any(name.startswith(prefix) for name in names), names
    assert any(name.startswith("extra-") for name in os.listdir(out / "unlabeled"))
