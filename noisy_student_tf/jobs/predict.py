"""`--mode=predict` (upstream `predict_label.py`) and `--reassign_label=True`: label shards with a checkpoint's
EMA weights (noisy_student_tf/offline/label_shards.py does the work)."""

from __future__ import annotations

import keras
from absl import logging

from noisy_student_tf.config import PredictConfig
from noisy_student_tf.errors import UserError
from noisy_student_tf.models.restore import restore_model
from noisy_student_tf.offline import label_shards


def run(cfg: PredictConfig) -> dict:
    """Predicts (or, with `cfg.reassign`, re-labels) `cfg.shards`; shards whose output exists are skipped.

    Returns:
        {shard: "predicted" | "reassigned" | "skipped" | "absent"}.
    """
    cfg.validate()
    if not cfg.checkpoint:
        raise UserError("--predict_ckpt_path is required: the checkpoint (model_dir, prefix or original TF1 "
                        "checkpoint) whose predictions become the pseudo labels")
    keras.mixed_precision.set_global_policy(cfg.precision)
    model, description = restore_model(cfg.model, cfg.checkpoint, use_ema=cfg.use_ema, what="predict_ckpt_path")
    logging.info("%s with %s", "reassigning" if cfg.reassign else "predicting", description)
    return label_shards.run(label_shards.Classifier(model, cfg), cfg)
