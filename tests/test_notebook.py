"""The notebook runs end to end (with its parameters shrunk, as papermill injects them) and shows its plots."""

import ast
import os

import nbformat
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "notebooks", "noisy_student_digits.ipynb")
# Tiny networks and few steps: the test checks that every cell runs, not the accuracy. The filter's threshold
# is lowered because a barely trained teacher is never confident.
SMALL = {"TEACHER_STEPS": 20, "STUDENT_STEPS": 10, "STEPS_PER_EPOCH": 10, "ITERATIONS": 1, "WIDTH": 4,
         "MIN_THRESHOLD": 0.0}


def test_notebook_runs_and_shows_the_sample_grid_and_the_accuracy_plot(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    index = next(i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", []))
    defined = {t.id for node in ast.parse(notebook.cells[index].source).body for t in getattr(node, "targets", [])
               if isinstance(t, ast.Name)}
    assert set(SMALL) <= defined, "the parameters cell no longer defines what the test shrinks"
    injected = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in SMALL.items()))
    notebook.cells.insert(index + 1, injected)
    # Raises CellExecutionError, naming the cell, if any cell fails.
    NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
                   ).execute()
    images = [cell for cell in notebook.cells if cell.cell_type == "code"
              and any("image/png" in output.get("data", {}) for output in cell.get("outputs", []))]
    assert len(images) == 2  # the pseudo-label grid and the accuracy plot
    printed = "".join(output.get("text", "") for output in notebook.cells[-2].outputs
                      if output.get("output_type") == "stream")
    summary = ast.literal_eval(printed.strip().splitlines()[-1])
    assert list(summary) == ["teacher", "student 1"] and all(0.0 <= v <= 1.0 for v in summary.values())
