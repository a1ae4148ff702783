"""The teacher as a Beam `RunInference` model handler (Keras 3).

Beam's own TensorFlow handler loads SavedModels through `tf.keras` and imports tensorflow_hub; Keras 3 refuses
the first and the package needs neither. This handler builds the network from its config, restores the
checkpoint's EMA weights (as predict.py does) once per worker, and classifies chunks of encoded images with
`offline.label_shards.Classifier`, the code predict.py runs, so both give the same probabilities.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from noisy_student_tf.config import PredictConfig


class TeacherModelHandler(ModelHandler[np.ndarray, PredictionResult, Any]):
    """Classifies chunks of encoded images (1-D object arrays of JPEG/PNG bytes) with a checkpoint's network.

    Each element is already a batch (a chunk of one shard, a multiple of `cfg.batch_size` images but for the
    last), so Beam's batching is set to one element: the model's batches are then those predict.py forms.

    Args:
        cfg: the predict job: its model, task (mean, std), resolved checkpoint prefix, `use_ema`, batch size and
            precision.
    """

    def __init__(self, cfg: PredictConfig):
        super().__init__()
        self._cfg = cfg

    def load_model(self):
        """Returns an `offline.label_shards.Classifier` of the checkpoint's weights (EMA shadows first)."""
        import keras

        from noisy_student_tf.models.restore import restore_model
        from noisy_student_tf.offline.label_shards import Classifier

        keras.mixed_precision.set_global_policy(self._cfg.precision)
        model, _ = restore_model(self._cfg.model, self._cfg.checkpoint, use_ema=self._cfg.use_ema,
                                 what="predict_ckpt_path")
        return Classifier(model, self._cfg)

    def run_inference(self, batch: Sequence[np.ndarray], model, inference_args=None) -> Iterable[PredictionResult]:
        """Returns a PredictionResult per chunk of `batch`: the chunk, and its [n, C] float32 probabilities."""
        return [PredictionResult(chunk, model.probabilities_of(chunk)) for chunk in batch]

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": 1}

    def get_num_bytes(self, batch: Sequence[np.ndarray]) -> int:
        return sum(sum(len(image) for image in chunk) for chunk in batch)

    def get_metrics_namespace(self) -> str:
        return "noisy_student_teacher"
