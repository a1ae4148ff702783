"""Atomic file output: write under a temporary name in the same directory, then rename.

A crash therefore never leaves a half-written file under its final name, and readers never see one.
Temporary names are hidden and say which host and process wrote them
(`.<final name>.tmp-<host>-<pid>-<random>`), so a later run can remove the ones whose writer died without
touching those of jobs still running (other shards' jobs often share a directory).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile

from absl import logging

from noisy_student_tf.errors import OutputError, is_write_failure, write_failure_message

_HOST = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname())[:40] or "host"
_TEMP = re.compile(r"^\..+\.tmp-(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)-[^/]*$")


def temp_path_for(final_path: str, suffix: str = "") -> str:
    """A fresh, hidden temporary path beside `final_path` (same file system, so rename is atomic)."""
    directory, base = os.path.split(os.path.abspath(final_path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.tmp-{_HOST}-{os.getpid()}-", suffix=suffix, dir=directory)
    os.close(fd)
    os.unlink(tmp)  # callers (TF writers, Keras) create the file themselves
    return tmp


@contextlib.contextmanager
def atomic_output(final_path: str, suffix: str = ""):
    """Yields a temporary path; on success it is renamed to `final_path`, on error it is removed."""
    try:
        tmp = temp_path_for(final_path, suffix)
    except OSError as e:
        if is_write_failure(e):
            raise OutputError(write_failure_message(e, final_path)) from None
        raise
    try:
        yield tmp
        os.replace(tmp, final_path)
    except Exception as e:  # noqa: BLE001 - only storage failures are translated; the rest propagate unchanged
        if is_write_failure(e):
            raise OutputError(write_failure_message(e, final_path)) from None
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str, text: str) -> None:
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_dead_temporaries(*directories: str) -> int:
    """Deletes temporary files (anywhere under `directories`) left by killed processes of this host.

    Temporaries of live processes and of other hosts are kept. Returns how many were removed.
    """
    removed = 0
    for top in directories:
        if not top or not os.path.isdir(top):
            continue
        for directory, subdirs, names in os.walk(top):
            for name in names + subdirs:
                match = _TEMP.match(name)
                if not match or match["host"] != _HOST or int(match["pid"]) == os.getpid() or _alive(
                        int(match["pid"])):
                    continue
                path = os.path.join(directory, name)
                try:
                    if os.path.isdir(path):
                        shutil.rmtree(path)
                    else:
                        os.unlink(path)
                    removed += 1
                except FileNotFoundError:
                    pass
    if removed:
        logging.info("removed %d temporary files left by interrupted runs", removed)
    return removed
