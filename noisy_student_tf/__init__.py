"""Noisy Student Training (Xie et al., CVPR 2020) for TensorFlow 2 / Keras 3.

The Python API (TensorFlow is imported on first use, so `import noisy_student_tf` stays quick):

* `fit_noisy_student(labeled, unlabeled, teacher=..., student=...)`: the whole method in memory for your own Keras
  models, in one call (teacher, pseudo labels, filter, noised students), resumable.
* `run_noisy_student(recipe or DriverConfig, **changes)`: the whole method, as `iterate.py` runs it.
* `NoisyStudent`: the noisy-student step as a `keras.Model` to `compile()` and `fit()`.
* `noisy_student_dataset`, `clean_dataset`: training and evaluation batches from arrays or `tf.data`.
* `pseudo_label`, `select_pseudo_labels`, `indices_from_copies`: the teacher's labels and filter_unlabel's
  selection, in memory.
* `TF1RMSProp`, `UpstreamLearningRate`: the original optimizer and learning-rate schedule.
* `build_model`: the original EfficientNets (input: normalised images; see `tasks` for the mean and std).

After `import noisy_student_tf`, a saved `NoisyStudent` (`.keras`, or a `ModelCheckpoint` file) loads with plain
`keras.saving.load_model` (`keras_objects`).
"""

__version__ = "0.1.0"

from noisy_student_tf import keras_objects as _keras_objects  # noqa: E402 (TF-free)

# A saved NoisyStudent loads with plain keras.saving.load_model once the package is imported.
_keras_objects.register_when_keras_is_imported()

# Public name -> the module that defines it.
_EXPORTS = {
    "fit_noisy_student": "noisy_student_tf.self_training",
    "NoisyStudentResult": "noisy_student_tf.self_training",
    "run_noisy_student": "noisy_student_tf.api",
    "NoisyStudent": "noisy_student_tf.training.noisy_student",
    "noisy_student_dataset": "noisy_student_tf.data.fit_input",
    "clean_dataset": "noisy_student_tf.data.fit_input",
    "pseudo_label": "noisy_student_tf.offline.pseudo_labels",
    "select_pseudo_labels": "noisy_student_tf.offline.pseudo_labels",
    "indices_from_copies": "noisy_student_tf.offline.pseudo_labels",
    "TF1RMSProp": "noisy_student_tf.training.optimizer",
    "UpstreamLearningRate": "noisy_student_tf.training.schedule",
    "build_model": "noisy_student_tf.models.efficientnet",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'noisy_student_tf' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
