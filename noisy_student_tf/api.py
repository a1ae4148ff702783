"""The whole method from Python: teacher -> pseudo labels -> filtered, balanced data -> noised student, repeated
(what `iterate.py` runs), from a named recipe or a `DriverConfig`."""

from __future__ import annotations

import dataclasses

from noisy_student_tf import recipes
from noisy_student_tf.config import DriverConfig


def run_noisy_student(config: str | DriverConfig = "digits", **changes) -> dict:
    """Runs Noisy Student Training end to end, with the stages, files and resuming of `iterate.py`.

    The teacher is trained on the labeled shards, predicts the unlabeled ones, `filter_unlabel` keeps and balances
    the confident images, and a noised student trains on both; each student becomes the next teacher. Every stage
    writes its files under `output_dir` and a marker when done, so calling this again after an interruption (or
    with more `iterations`) runs only what is missing.

    Args:
        config: a recipe name (`recipes.RECIPES`: "digits", "svhn", "imagenet") or a `DriverConfig`.
        **changes: `DriverConfig` fields to replace, e.g. `output_dir`, `label_data_dir`, `seed`, `iterations`,
            `offline_engine="beam"` (pseudo-label through the Apache Beam pipeline) with `beam_options`.

    Returns:
        The summary (also `<output_dir>/summary.json`): dev and test top-1 of the teacher and of each student.
    """
    if isinstance(config, str):
        cfg = recipes.get(config, **changes)
    elif isinstance(config, DriverConfig):
        cfg = dataclasses.replace(config, **changes)
    else:
        raise TypeError(f"run_noisy_student: `config` must be a recipe name ({', '.join(recipes.RECIPES)}) or a "
                        f"DriverConfig, got {type(config).__name__}")
    from noisy_student_tf.jobs import iterate

    return iterate.run(cfg)
