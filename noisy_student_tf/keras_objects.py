"""The package's Keras classes, known to `keras.saving.load_model` as soon as `noisy_student_tf` is imported.

A saved `NoisyStudent` (a `.keras` file, or a `ModelCheckpoint` of one) names its classes by registered name:
`noisy_student_tf>NoisyStudent`, and in its compile config `noisy_student_tf>TF1RMSProp` and
`noisy_student_tf>UpstreamLearningRate`. Keras finds a class by that name only once the module defining it has
run its `register_keras_serializable` decorator. Importing those modules here would import TensorFlow with the
package, and the programs' `--help` must not wait for that; so each name is registered with a stand-in that
imports the real class when Keras first deserializes it (and the real class takes the name over from then on).

Keras keeps its registry in the `keras` module, so the stand-ins are put in when Keras is imported: at once if it
already is, else right after `import keras` runs (a finder on `sys.meta_path`, removed after its one use).
Nothing here imports TensorFlow or Keras itself.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

PACKAGE = "noisy_student_tf"
# Registered name (package>class) -> the module whose import registers the real class.
CLASSES = {
    "NoisyStudent": "noisy_student_tf.training.noisy_student",
    "TF1RMSProp": "noisy_student_tf.training.optimizer",
    "UpstreamLearningRate": "noisy_student_tf.training.schedule",
}


def _stand_in(name: str, module: str) -> type:
    """A class Keras can hold under `package>name` whose `from_config` is the real class's."""

    def from_config(cls, config, *args, **kwargs):
        real = getattr(importlib.import_module(module), name)
        return real.from_config(config, *args, **kwargs)

    return type(name, (), {"from_config": classmethod(from_config), "__module__": module,
                           "__doc__": f"Stands for {module}.{name} until that module is imported."})


def register(keras_module) -> None:
    """Puts a stand-in under each name that has no class yet (a real class, once imported, keeps its place)."""
    registry = keras_module.saving.get_custom_objects()
    for name, module in CLASSES.items():
        registry.setdefault(f"{PACKAGE}>{name}", _stand_in(name, module))


class _AfterKerasImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Runs `register` right after the `keras` package has been executed."""

    def __init__(self):
        self._loader = None

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)  # once, and the real finders below find Keras
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return spec
        self._loader, spec.loader = spec.loader, self
        return spec

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        module.__spec__.loader = module.__loader__ = self._loader  # Keras's own loader from now on
        self._loader.exec_module(module)
        register(module)


def register_when_keras_is_imported() -> None:
    """Registers the stand-ins now if Keras is imported, else as soon as it is."""
    if "keras" in sys.modules and hasattr(sys.modules["keras"], "saving"):
        register(sys.modules["keras"])
    elif not any(isinstance(finder, _AfterKerasImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterKerasImport())
