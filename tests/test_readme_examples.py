"""The README's Python examples run as written, each in a fresh directory (relative paths start empty), as
`python example.py` (a fork of a pre-imported interpreter, prewarmed.py).

Examples that read what an earlier step of the README wrote get it first, made by the package's own commands:
a TF1-format checkpoint (convert_checkpoint.py --to_tf1) and an exported student (main.py, then the README's
export command)."""

import os
import re
import subprocess
import sys

from PIL import Image

import prewarmed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


def run(args, cwd):
    """Runs `python *args` in `cwd`: a script in a fork of the pre-imported interpreter (prewarmed.py)."""
    if args[0] == "-c":
        result = subprocess.run([sys.executable, *args], cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, timeout=900)
    else:
        result = prewarmed.run(args, cwd=cwd, timeout=900)
    assert result.returncode == 0, f"{args}:\n{result.stderr[-3000:]}"


def original_checkpoint(directory):
    """ckpt/teacher_ckpt/model.ckpt: a B0 in the original code's TF1 names."""
    run(["-c", "from noisy_student_tf.models import build_model\n"
               "build_model('efficientnet-b0', 10, small_image_model=True).save('b0.keras')"], directory)
    run([os.path.join(ROOT, "convert_checkpoint.py"), "--to_tf1", "--keras_model=b0.keras",
         "--output=ckpt/teacher_ckpt/model.ckpt"], directory)


def exported_student(directory):
    """export/digits (the README's export command on a one-step digits model) and a digit.png to classify."""
    run([os.path.join(ROOT, "prepro_digits.py"), "--output_dir=data/digits/proc"], directory)
    run([os.path.join(ROOT, "main.py"), "--task_name=digits", "--model_name=efficientnet-b0",
         "--label_data_dir=data/digits/proc", "--model_dir=ckpt/digits/iter_3/student", "--train_steps=1",
         "--train_batch_size=8"], directory)
    export = next(b for b in re.findall(r"```bash\n(.*?)```", readme(), flags=re.S) if "python export.py" in b)
    args = export.replace("\\\n", " ").split()[1:]
    run([os.path.join(ROOT, args[0]), *args[1:]], directory)
    from noisy_student_tf.data.sources import digits

    images, _ = digits.load_splits()["test"]
    Image.fromarray(images[0]).save(os.path.join(directory, "digit.png"))


SETUPS = {"ckpt/teacher_ckpt/model.ckpt": original_checkpoint, "export/digits/saved_model": exported_student}


def test_every_python_example_runs_and_prints_its_numbers(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", readme(), flags=re.S)
    assert len(blocks) >= 4  # TF1 checkpoints, configs, the Python API, serving
    processes = []
    for i, code in enumerate(blocks):
        directory = tmp_path / f"example_{i}"
        directory.mkdir()
        for marker, setup in SETUPS.items():
            if marker in code:
                setup(str(directory))
        (directory / "example.py").write_text(code)
        processes.append(prewarmed.Process(["example.py"], cwd=directory))
    for code, process in zip(blocks, processes):
        out, err = process.communicate(timeout=1500)
        assert process.returncode == 0, f"README example failed:\n{code}\n{err[-3000:]}"
        assert out.strip(), f"README example printed nothing:\n{code}"
        if "fit(" in code or "run_noisy_student" in code:
            # The training examples end by printing test accuracies: real fractions, not placeholders.
            values = [float(v) for v in re.findall(r"(\d+\.\d+)\s*$", out, flags=re.M)]
            assert values and all(0.0 <= v <= 1.0 for v in values), out[-2000:]
