"""The main job (`run_noisy_student` on the digits recipe, shrunk as tests/test_pipeline.py's SHRUNK) in this one
process with every path on TensorFlow's in-memory filesystem (ram://, standing in for gs://), the prepared data
copied there first. Compares its output with the same run's on local disk and writes a JSON report
(tests/test_pipeline.py reads it).

    python tests/ram_main_job.py LOCAL_ROOT WORK_DIR REPORT.json

LOCAL_ROOT holds the local run: data/ (prepro_digits.py) and out/ (iterate.py, both by local_scripts/digits/run.sh).
The ram:// run starts in WORK_DIR/cwd with WORK_DIR/tmp as the temporary directory, both empty: any local write
would show in one of them.
"""

import json
import os
import sys
import tempfile

from absl import flags

from noisy_student_tf.cli import adapters
from noisy_student_tf import storage
from noisy_student_tf.api import run_noisy_student
from noisy_student_tf.cli.flags import define_driver_flags
from ram_programs import comparable, copy_tree, local_listing, scalars, tree

RAM_ROOT = "ram://noisy-student-tf/main-job"


def driver_config(root, shrunk):
    """run.sh's iterate.py command line (its SHRUNK variables) with every path under `root`."""
    values = flags.FlagValues()
    define_driver_flags(values)
    values(["iterate.py", "--recipe=digits", f"--label_data_dir={root}/data", f"--unlabel_data_dir={root}/data/unlabeled",
            f"--output_dir={root}/out", "--seed=0", f"--iterations={shrunk['ITERATIONS']}",
            f"--teacher_train_batch_size={shrunk['TEACHER_BATCH_SIZE']}",
            f"--teacher_train_steps={shrunk['TEACHER_STEPS']}", f"--student_train_steps={shrunk['STUDENT_STEPS']}",
            *shrunk["EXTRA_FLAGS"].split()])
    return adapters.driver_config(values)


def main(local_root, work_dir, report_path, shrunk):
    copy_tree(os.path.join(local_root, "data"), f"{RAM_ROOT}/data")
    cwd, tmp = os.path.join(work_dir, "cwd"), os.path.join(work_dir, "tmp")
    os.makedirs(cwd)
    os.makedirs(tmp)
    os.chdir(cwd)
    os.environ["TMPDIR"] = tmp
    tempfile.tempdir = None
    summary = run_noisy_student(driver_config(RAM_ROOT, shrunk))
    left_locally = {"cwd": local_listing(cwd), "tmp": local_listing(tmp)}
    os.chdir(work_dir)

    local, ram = tree(os.path.join(local_root, "out")), tree(f"{RAM_ROOT}/out")
    events = {name: sorted(k for k in files if "tfevents" in k) for name, files in (("local", local), ("ram", ram))}
    skipped = set(events["local"]) | set(events["ram"])
    report = {
        "left_locally": left_locally, "files": len(local), "summary": summary,
        "local_summary": json.loads(local["summary.json"]),
        "only_local": sorted(set(local) - set(ram) - skipped), "only_ram": sorted(set(ram) - set(local) - skipped),
        "differ": sorted(name for name in set(local) & set(ram) - skipped
                         if comparable(name, local[name], local_root) != comparable(name, ram[name], RAM_ROOT)),
        "events": [[storage.parent(name) for name in events[side]] for side in ("local", "ram")],
        "scalars_equal": all(scalars(os.path.join(local_root, "out", a)) == scalars(f"{RAM_ROOT}/out/{b}")
                             for a, b in zip(events["local"], events["ram"])),
    }
    with open(report_path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main(os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4]))
