"""pseudo_label_beam.py: predict + filter_unlabel (or reassign) as one Apache Beam pipeline
(noisy_student_tf/offline/beam_pipeline.py does the work)."""

from __future__ import annotations

from noisy_student_tf.config import BeamConfig
from noisy_student_tf.offline import beam_pipeline


def run(cfg: BeamConfig) -> dict:
    """Runs the pipeline `cfg` describes on the runner its `pipeline_args` choose (Beam's FnApiRunner by default).

    Returns:
        final_stats.json's content when it filters; else {"shards": shards predicted or reassigned}.
    """
    return beam_pipeline.run(cfg)
