"""Training checkpoints on any storage: written so that no file is ever partial under its final name, and the
leftovers of a killed save recognised and removed. (Reading a trained network for inference is
`models.restore`.)"""

from __future__ import annotations

import re

import tensorflow as tf
from absl import logging

from noisy_student_tf import storage
from noisy_student_tf.models import tf1_checkpoint

# A checkpoint is written under a temporary prefix and renamed into place, data files first and the index last:
# TF writes the merged `.index` directly under its final name, so a reader (or a kill) could otherwise meet a
# half-written index. Leftovers of a save that was killed midway are recognised by name and nothing reads them:
# `<prefix>_temp/` (our temporary prefix, and TF's own shard directory), `checkpoint.tmp<hex>` (the state
# file's temporary in TF's own writers and in earlier versions of this code; ours is now a storage temporary),
# `.worker_<id>_tmp/` (non-chief MultiWorkerMirrored workers), and data files whose index was never renamed into
# place.
_INTERRUPTED_SAVE = re.compile(r"^(model\.ckpt-\d+_temp|checkpoint\.tmp[0-9a-f]+|\.worker_\d+_tmp)$")
_DATA_FILE = re.compile(r"^(?P<prefix>.+)\.data-\d{5}-of-\d{5}$")


def save_atomically(checkpoint: tf.train.Checkpoint, model_dir: str, name: str, step: int,
                    keep: int) -> str:
    """Writes `<model_dir>/<name>-<step>` so that no file is ever partial under its final name, records it in
    the `checkpoint` state file (relative paths, as tf.train.CheckpointManager) and deletes the oldest beyond
    `keep` (all are kept when `keep` <= 0). Returns the checkpoint prefix."""
    base = f"{name}-{step}"
    final, temp_dir = storage.join(model_dir, base), storage.join(model_dir, f"{base}_temp")
    storage.remove_tree(temp_dir)
    checkpoint.save_counter.assign_add(1)  # as tf.train.CheckpointManager does: restores expect the counter
    written = checkpoint.write(storage.join(temp_dir, base))
    for data in storage.glob(written + ".data-*"):
        storage.rename(data, final + data[len(written):])
    storage.rename(written + ".index", final + ".index")
    storage.remove_tree(temp_dir)

    state = tf.train.get_checkpoint_state(model_dir)
    kept = [storage.basename(p) for p in (state.all_model_checkpoint_paths if state else []) if
            storage.basename(p) != base] + [base]
    dropped = kept[:-keep] if keep > 0 else []
    kept = kept[len(dropped):]
    tf1_checkpoint.write_checkpoint_state(model_dir, base, kept)
    for old in dropped:
        prefix = storage.join(model_dir, old)
        for path in [prefix + ".index"] + storage.glob(prefix + ".data-*"):  # index first: see above
            storage.remove(path)
    return final


def remove_interrupted_saves(model_dir: str) -> int:
    """Deletes what killed saves left in `model_dir`. Call before training starts (no save is under way then:
    one training job owns a model_dir). Returns how many entries were removed."""
    if not storage.isdir(model_dir):
        return 0
    removed = storage.remove_dead_temporaries(model_dir)  # e.g. FLAGS.json being written when the run was killed
    names = storage.listdir(model_dir)
    for name in names:
        data = _DATA_FILE.match(name)
        orphan = data is not None and f"{data['prefix']}.index" not in names
        if _INTERRUPTED_SAVE.match(name) or orphan:
            path = storage.join(model_dir, name)
            storage.remove_tree(path) if storage.isdir(path) else storage.remove(path)
            removed += 1
    if removed:
        logging.info("removed %d leftovers of interrupted checkpoint saves in %s", removed, model_dir)
    return removed
