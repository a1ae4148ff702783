"""Atomic file output: write under a temporary name in the same directory, then rename.

A crash therefore never leaves a half-written file under its final name, and readers never see one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile


def temp_path_for(final_path: str, suffix: str = "") -> str:
    """A fresh, hidden temporary path beside `final_path` (same file system, so rename is atomic)."""
    directory, base = os.path.split(os.path.abspath(final_path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.tmp-", suffix=suffix, dir=directory)
    os.close(fd)
    os.unlink(tmp)  # callers (TF writers, Keras) create the file themselves
    return tmp


@contextlib.contextmanager
def atomic_output(final_path: str, suffix: str = ""):
    """Yields a temporary path; on success it is renamed to `final_path`, on error it is removed."""
    tmp = temp_path_for(final_path, suffix)
    try:
        yield tmp
        os.replace(tmp, final_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str, text: str) -> None:
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
