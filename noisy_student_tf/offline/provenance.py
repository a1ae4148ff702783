"""Knowing what a derived file was computed from, so results of an earlier run are never reused by mistake.

Upstream reused `total_counts.json`, `threshold.json`, prelim stats and the per-shard "done" markers whenever they
existed (`filter_unlabel.py`, `get_threshold` and `main`), even when the predictions or flags had changed since.
Here each such file gets a sidecar `<file>.inputs` (JSON) describing its inputs: flag values, hashes of small
input files, and size and modification time of large ones. A file whose sidecar disagrees with the current inputs
is stale: the run stops with a message saying what changed, or, when asked, recomputes it. The files themselves
keep upstream's exact format. A file without a sidecar (written by the original tools) is used as upstream would,
with a warning that it cannot be checked.
"""

from __future__ import annotations

import json

from absl import logging

from noisy_student_tf import storage
from noisy_student_tf.errors import UserError

SUFFIX = ".inputs"


class StaleOutput(UserError):
    """A derived file was computed from other inputs than the current run's."""


def file_stamp(path: str):
    """Size and modification time of a large input (reading it again only to hash it would be slow)."""
    return storage.stamp(path)


def file_hash(path: str) -> str:
    return storage.sha256(path)


def _differences(recorded: dict, current: dict) -> list[str]:
    keys = sorted(set(recorded) | set(current))
    return [key for key in keys if recorded.get(key) != current.get(key)]


def is_current(path: str, inputs: dict, *, rebuild: bool, hint: str) -> bool:
    """True when `path` exists and was computed from `inputs`.

    A stale file raises StaleOutput (naming what changed), or with `rebuild` is deleted and False returned.
    """
    if not storage.exists(path):
        return False
    sidecar = path + SUFFIX
    if not storage.exists(sidecar):
        logging.warning("%s has no %s record (written by another tool?): using it unchecked", path, SUFFIX)
        return True
    try:
        recorded = storage.read_json(sidecar)
    except UserError:  # unreadable: a record of nothing, so the file counts as stale
        recorded = {}
    changed = _differences(recorded, inputs)
    if not changed:
        return True
    what = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    if rebuild:
        logging.warning("%s is from an earlier run with other inputs (%s): recomputing it", path, what)
        discard(path)
        return False
    raise StaleOutput(f"{path} is left from an earlier run with other inputs (changed: {what}). {hint}")


def record(path: str, inputs: dict) -> None:
    """Call after `path` is written: notes the inputs it came from."""
    storage.write_text(path + SUFFIX, json.dumps(inputs, sort_keys=True) + "\n")


def discard(path: str) -> None:
    """Removes a derived file and its sidecar (the sidecar first, so a crash never leaves a wrong pairing)."""
    for name in (path + SUFFIX, path):
        storage.remove(name)
