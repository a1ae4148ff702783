"""Kill a job with SIGKILL at chosen points, run it again, and watch its output directory the whole time.

A `Watcher` reads every final-named file under the output directory every few milliseconds while the jobs run:
any content other than the uninterrupted run's is a partial (or wrong) file that a reader could have seen.
After the last run, the tree must equal the uninterrupted run's and hold no temporary file.
"""

import fnmatch
import os
import re
import signal
import subprocess
import sys
import threading
import time

import prewarmed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Not compared: provenance sidecars (they hold the paths of a run's inputs) and TensorBoard event files (named
# and stamped with the wall time; a resumed run adds one).
DEFAULT_IGNORE = ("*.inputs", "events.out.tfevents.*")
# Temporaries: ours are hidden and tagged (`.name.tmp-host-pid-random`); checkpoint saves use `<prefix>_temp/`,
# `checkpoint.tmp<hex>` and, on non-chief workers, `.worker_<id>_tmp/`.
_TEMPORARY = re.compile(r"^\..+\.tmp-|_temp$|^checkpoint\.tmp[0-9a-f]+$|^\.worker_\d+_tmp$")


def ignored(name, ignore):
    return bool(_TEMPORARY.search(name)) or any(fnmatch.fnmatch(name, pattern) for pattern in ignore)


def tree(directory, ignore=DEFAULT_IGNORE):
    """{relative path: bytes} of the final-named files under `directory`."""
    files = {}
    for base, dirs, names in os.walk(directory):
        dirs[:] = [d for d in dirs if not _TEMPORARY.search(d)]
        for name in names:
            if not ignored(name, ignore):
                path = os.path.join(base, name)
                with open(path, "rb") as f:
                    files[os.path.relpath(path, directory)] = f.read()
    return files


def temporaries(directory):
    return [os.path.join(base, name) for base, dirs, names in os.walk(directory) for name in names + dirs
            if _TEMPORARY.search(name)]


class Watcher(threading.Thread):
    def __init__(self, directory, reference, ignore=DEFAULT_IGNORE):
        super().__init__(daemon=True)
        self.directory, self.reference, self.ignore = str(directory), reference, ignore
        self.violations, self.checks, self.running = [], 0, True

    def run(self):
        while self.running:
            for base, dirs, names in os.walk(self.directory):
                dirs[:] = [d for d in dirs if not _TEMPORARY.search(d)]
                for name in names:
                    if ignored(name, self.ignore):
                        continue
                    path = os.path.join(base, name)
                    try:
                        with open(path, "rb") as f:
                            content = f.read()
                    except (FileNotFoundError, IsADirectoryError):
                        continue
                    self.checks += 1
                    if content != self.reference.get(os.path.relpath(path, self.directory)):
                        self.violations.append(path)
            time.sleep(0.003)


def start(command, fresh=False):
    """Starts `command` (`[sys.executable, script, *args]`) in ROOT with stdin closed and its output captured.

    By default the run is a fork of a pre-imported interpreter (prewarmed.py), which starts in milliseconds
    instead of seconds. `fresh` runs a new interpreter, for jobs so short without its start-up that a kill
    point would rarely find them still running."""
    if fresh:
        return subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    assert command[0] == sys.executable, command
    return prewarmed.Process(command[1:], cwd=ROOT)


def run(command, timeout=600, fresh=False):
    process = start(command, fresh)
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def run_with_kills(command, out_dir, reference, triggers, ignore=DEFAULT_IGNORE, fresh=False):
    """Runs `command` once per trigger, killing it when the trigger fires, then once to completion.

    A trigger is a function of nothing, made fresh for its run, returning True when the kill point is reached.
    Returns how many runs were killed (a run that ends before its trigger fires is not)."""
    watcher = Watcher(out_dir, reference, ignore)
    watcher.start()
    kills = 0
    try:
        for make_trigger in triggers:
            trigger = make_trigger()
            process = start(command, fresh)
            deadline = time.time() + 300
            while process.poll() is None and not trigger() and time.time() < deadline:
                time.sleep(0.001)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.communicate()
        run(command, fresh=fresh)
    finally:
        watcher.running = False
        watcher.join()
    assert watcher.checks > 0, "the watcher never saw an output file"
    assert watcher.violations == [], f"partial or wrong files under final names: {sorted(set(watcher.violations))}"
    return kills


# --- kill points ---

def after(low, high=None):
    """Early: a random moment in the start-up (flag parsing, TF start, model building, first reads)."""
    import random

    def make():
        start, delay = time.time(), random.uniform(low, high or low)
        return lambda: time.time() - start > delay
    return make


def temp_appears(directory):
    """Mid-write: a temporary output file exists (ours or a checkpoint save's)."""
    directory = str(directory)

    def make():
        return lambda: any(_TEMPORARY.search(n) for _, dirs, names in os.walk(directory) for n in names + dirs)
    return make


def final_appears(directory, prefix, count=1):
    """Between outputs: `count` final-named files starting with `prefix` exist directly in `directory`."""
    directory = str(directory)

    def make():
        return lambda: os.path.isdir(directory) and sum(
            n.startswith(prefix) for n in os.listdir(directory)) >= count
    return make
