"""The whole method in memory, in one call, for the user's own Keras models: `fit_noisy_student`.

Teacher -> pseudo labels -> filter and balance -> noised student -> the student teaches the next one, with the
package's pieces: `NoisyStudent` (the step), `pseudo_label`, `select_pseudo_labels`, `indices_from_copies` and
`noisy_student_dataset`. `run_noisy_student` runs the same loop over TFRecord files with the package's
EfficientNets; this one takes arrays or `tf.data` and any Keras classifier.

Resuming: given a `directory`, every finished stage is saved as `<stage>.keras` (with `<stage>.json`, its
record) and a stage in progress is backed up every epoch by `keras.callbacks.BackupAndRestore`; calling again with
the same arguments loads the finished stages and goes on from the last epoch of the unfinished one.
"""

from __future__ import annotations

import dataclasses
import io
import json
import time

import keras
import numpy as np
import tensorflow as tf

from noisy_student_tf import storage
from noisy_student_tf.config import FILTER_SEED, AugmentConfig
from noisy_student_tf.data.fit_input import clean_dataset, noisy_student_dataset
from noisy_student_tf.models.efficientnet import is_package_efficientnet
from noisy_student_tf.offline.pseudo_labels import indices_from_copies, pseudo_label, select_pseudo_labels
from noisy_student_tf.training.noisy_student import NoisyStudent, check_classifier
from noisy_student_tf.training.optimizer import TF1RMSProp
from noisy_student_tf.training.schedule import UpstreamLearningRate

CALLER = "fit_noisy_student"
# The digits recipe's learning rate per 256 images (upstream main.py's --base_learning_rate default).
UPSTREAM_BASE_LEARNING_RATE = 0.016
# The default for networks the package did not build (chosen on the digits dev split: experiments/README.md).
ADAM_LEARNING_RATE = 3e-3
ADAM_WARMUP_FRACTION = 0.05
SETTINGS_FILE = "settings.json"
BACKUP_DIR = "backup"


@dataclasses.dataclass
class NoisyStudentResult:
    """What `fit_noisy_student` returns.

    Attributes:
        model: the last stage's trained `NoisyStudent` (`evaluate()` and `predict()` use its averaged weights;
            `model.ema_student(include_normalization=True)` is the network alone, for 0..255 images).
        history: one record per stage, teacher first (see `fit_noisy_student`).
        pseudo_labels: per student stage name, `{"probabilities": [N, classes], "copies": [N]}`: its teacher's
            probabilities for every unlabeled image and how many times each went into its data.
    """

    model: NoisyStudent
    history: list
    pseudo_labels: dict


def fit_noisy_student(labeled, unlabeled, *, teacher, student=None, iterations: int = 1, validation_data=None,
                      test_data=None, teacher_steps: int = 400, steps: int = 600, steps_per_epoch: int = 100,
                      teacher_batch_size: int = 32, batch_size: int = 16, unlabel_ratio: float = 2.0,
                      teacher_softmax_temp: float = 1.0, num_image: int | None = None, min_threshold: float = 0.3,
                      max_prob: float = 2.0, upsample: bool = True, randaug_layers: int = 2,
                      randaug_magnitude: float = 5, flip: bool = True, optimizer=None, weight_decay: float = 1e-4,
                      label_smoothing: float = 0.1, moving_average_decay: float = 0.9999, mean=None, std=None,
                      callbacks=None, directory: str | None = None, seed: int = 0, verbose="auto",
                      ) -> NoisyStudentResult:
    """Noisy Student Training of your own Keras models on data in memory, teacher and students, in one call.

    The teacher is trained on the labeled images (unless already trained); then, `iterations` times: it
    pseudo-labels the unlabeled images (`pseudo_label`), the confident ones are kept and balanced per class
    (`select_pseudo_labels`, upstream `filter_unlabel.py`), a student is trained with noise (RandAugment, and the
    dropout and stochastic depth of its own layers) on labeled + pseudo-labelled images (`NoisyStudent`), and
    the student (its averaged weights) becomes the next teacher. Defaults are the digits recipe's
    (`recipes.digits`), upstream's SVHN values where it has them; the optimizer depends on the network (see
    `optimizer`).

    Args:
        labeled: `(images, labels)`: images [N, H, W, 3] 0..255 and 0-based integer labels [N]; or a
            `tf.data.Dataset` of single (image, label) pairs.
        unlabeled: images [M, H, W, 3] 0..255, or a dataset of single images (no labels) that yields the same
            images in the same order each time it is read.
        teacher: a Keras model from images to logits, trained in place for `teacher_steps` (as `fit()` would),
            or already trained (`teacher_steps=0`, or a trained `NoisyStudent`, which teaches with its averaged
            weights).
        student: the student: a Keras model (each iteration trains a fresh copy, `keras.models.clone_model`
            with the weights it has when passed), or a function `k -> model` building the student of iteration k
            (1, 2, ...; needed for models clone_model cannot copy), called after the random seed is set; None: the
            teacher's architecture, newly initialised.
        iterations: students, each teaching the next; calling again with more resumes a run in `directory`.
        validation_data: `(images, labels)` or a dataset of (image, label) pairs: evaluated (averaged weights,
            clean images) after every epoch of every stage, and in the history.
        test_data: like `validation_data`, evaluated once at the end of every stage, for the history only.
        teacher_steps, steps: training steps of the teacher and of each student.
        steps_per_epoch: steps of one Keras epoch (callbacks, validation and backups run between epochs); it
            must divide `teacher_steps` and `steps`.
        teacher_batch_size, batch_size: labeled images per step of the teacher and of the students.
        unlabel_ratio: pseudo-labelled images per labeled one in a student's step, and their loss weight
            (upstream `--unlabel_ratio`).
        teacher_softmax_temp: temperature of the soft targets; -1 for hard targets (upstream
            `--teacher_softmax_temp`).
        num_image: images kept per class (upstream `--num_image`); None: unlabeled images / classes.
        min_threshold, max_prob, upsample: the filter's lowest confidence threshold, highest kept confidence and
            whether rare classes repeat their images (upstream `--min_threshold`, `--max_prob`, `--upsample`).
        randaug_layers, randaug_magnitude: RandAugment's N and M for teacher and students (upstream
            `--randaug_layer`, `--randaug_mag`); 0 layers: no RandAugment.
        flip: random horizontal flips (turn off for digits and text).
        optimizer: None: upstream's (`TF1RMSProp` with `UpstreamLearningRate`) for the package's EfficientNets
            (`build_model`), Adam with warm-up and cosine decay for other networks; "upstream" or "adam" to
            choose; a Keras optimizer, copied (fresh state) for every stage; or a function `steps -> optimizer`.
        weight_decay, label_smoothing, moving_average_decay: as `NoisyStudent`'s.
        mean, std: per-channel normalisation in 0..255 units given to `NoisyStudent` (the package's EfficientNets
            need their task's); None for networks that normalise inside (keras.applications).
        callbacks: Keras callbacks for every stage's `fit()`, or a function `stage name -> list of callbacks`.
        directory: where finished stages and backups go, so that calling again after a kill resumes; None keeps
            nothing.
        seed: the seed of the students' initial weights, the data order, the augmentation and the labeled-image
            draws (stage k uses seed * 100 + k, as `run_noisy_student`'s training runs); the filter draws with
            filter_unlabel.py's default seed.
        verbose: `fit()`'s verbosity; 0 also silences the stage lines.

    Returns:
        A `NoisyStudentResult`: the final `model`, and the `history`: per stage `{"stage", "steps",
        "seconds", "validation", "test"` (`evaluate()` results or None), `"epochs"` (the per-epoch logs of
        `fit()` run in this call), and for students `"pseudo_labels": {"images", "kept", "copies",
        "mean_confidence", "per_class"}}`.

    Raises:
        ValueError, TypeError: bad arguments (models returning probabilities, classes that differ between the
            teacher, the student and the labels, empty or labeled unlabeled data, a student function returning no
            model, ...), each naming the argument, before anything is trained or written.
    """
    run = _Run(locals())
    return run.fit()


def _fail(argument: str, message: str, error=ValueError):
    raise error(f"{CALLER}: `{argument}` {message}")


def _positive_int(value, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        _fail(argument, f"must be a positive integer, got {value!r}")
    return int(value)


def _labeled_arrays(labeled):
    """(images, labels) as arrays when given as arrays, else None (a dataset is checked by noisy_student_dataset)."""
    if isinstance(labeled, tf.data.Dataset):
        return None
    if not (isinstance(labeled, (tuple, list)) and len(labeled) == 2):
        _fail("labeled", "must be (images, labels) or a tf.data.Dataset of (image, label) pairs")
    return np.asarray(labeled[0]), np.asarray(labeled[1])


def _check_unlabeled(unlabeled):
    if isinstance(unlabeled, tf.data.Dataset):
        spec = unlabeled.element_spec
        if not isinstance(spec, tf.TensorSpec):
            _fail("unlabeled", f"must yield single images without labels, got elements {spec} (to drop labels: "
                               "dataset.map(lambda image, label: image))")
        if spec.shape.rank != 3:
            _fail("unlabeled", f"must yield single images [H, W, 3] (unbatched), got {spec.shape}")
        return unlabeled
    if isinstance(unlabeled, (tuple, list)):
        _fail("unlabeled", "is a tuple: unlabeled data has no labels; pass the images only")
    images = np.asarray(unlabeled)
    if images.ndim != 4 or images.shape[-1] != 3:
        _fail("unlabeled", f"must be images [M, H, W, 3], got shape {images.shape}")
    if len(images) == 0:
        _fail("unlabeled", "holds no images")
    return images


def _eval_data(data, argument: str):
    if data is None:
        return None
    if isinstance(data, tf.data.Dataset):
        return clean_dataset(data)
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        _fail(argument, "must be (images, labels) or a tf.data.Dataset of (image, label) pairs")
    return clean_dataset(*data)


class _Run:
    """One call of `fit_noisy_student`: its checked arguments and the stages."""

    def __init__(self, args: dict):
        self.args = args
        self.iterations = _positive_int(args["iterations"], "iterations")
        self.steps_per_epoch = _positive_int(args["steps_per_epoch"], "steps_per_epoch")
        self.steps = self._stage_steps(args["steps"], "steps", allow_zero=False)
        self.teacher_batch_size = _positive_int(args["teacher_batch_size"], "teacher_batch_size")
        self.batch_size = _positive_int(args["batch_size"], "batch_size")
        self.verbose = args["verbose"]
        self.seed = args["seed"]
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            _fail("seed", f"must be a non-negative integer, got {self.seed!r}")
        if args["unlabel_ratio"] <= 0:
            _fail("unlabel_ratio", f"must be positive (pseudo-labelled images per labeled one), got "
                                   f"{args['unlabel_ratio']}")
        if (args["mean"] is None) != (args["std"] is None):
            _fail("mean", "and `std` go together: give both or neither")
        self.arrays = _labeled_arrays(args["labeled"])
        if self.arrays is not None:
            self._check_images(*self.arrays)
        self.unlabeled = _check_unlabeled(args["unlabeled"])
        self.teacher, self.teacher_steps = self._check_teacher(args["teacher"], args["teacher_steps"])
        self.num_classes = self._classes_of(self.teacher_network(), "teacher")
        if self.arrays is not None:
            self._check_labels(self.arrays[1])
        self.student_factory = self._student_factory(args["student"])
        keras.utils.set_random_seed(self.stage_seed(1))
        first = self._check_student(self.student_factory(1), 1)  # before anything is trained or written
        if self.arrays is None and self._optimizer_kind(first) == "upstream":
            _fail("optimizer", "'upstream' (the default for the package's EfficientNets) needs the number of "
                               "labeled images (an epoch of its schedule): give `labeled` as arrays, or pass an "
                               "optimizer")
        self.validation = _eval_data(args["validation_data"], "validation_data")
        self.test = _eval_data(args["test_data"], "test_data")
        self.augment = self._augment()
        self.directory = _StageDirectory(args["directory"], self.settings()) if args["directory"] else None

    # ---------------------------------------------------------------------------------------------
    # Checks.

    def _stage_steps(self, value, argument: str, allow_zero: bool) -> int:
        if allow_zero and value == 0:
            return 0
        value = _positive_int(value, argument)
        if value % self.steps_per_epoch:
            _fail(argument, f"({value}) must be a multiple of steps_per_epoch ({self.steps_per_epoch})")
        return value

    def _check_teacher(self, teacher, teacher_steps):
        if isinstance(teacher, NoisyStudent):
            return teacher, 0  # a trained NoisyStudent is a finished teacher
        if not isinstance(teacher, keras.Model):
            _fail("teacher", f"must be a keras.Model from images to logits (or a trained NoisyStudent), got "
                             f"{type(teacher).__name__}", TypeError)
        return teacher, self._stage_steps(teacher_steps, "teacher_steps", allow_zero=True)

    def teacher_network(self) -> keras.Model:
        return self.teacher.student if isinstance(self.teacher, NoisyStudent) else self.teacher

    def _check_images(self, images, labels):
        if images.ndim != 4 or images.shape[-1] != 3:
            _fail("labeled", f"images must be [N, H, W, 3] (RGB, 0..255), got shape {images.shape}")
        if len(images) != len(labels):
            _fail("labeled", f"holds {len(images)} images but {len(labels)} labels")
        if len(images) == 0:
            _fail("labeled", "holds no images")

    def _classes_of(self, model, argument: str) -> int:
        classes = check_classifier(model, argument, None, caller=CALLER)
        if classes is None:
            _fail(argument, "has no known output size: build it with a fixed number of classes")
        return int(classes)

    def _check_labels(self, labels):
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            _fail("labeled", f"labels must be 0-based integer class indices [N], got {labels.dtype} of shape "
                             f"{labels.shape}")
        if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
            _fail("labeled", f"labels run from {labels.min()} to {labels.max()}, but the teacher has "
                             f"{self.num_classes} classes (0..{self.num_classes - 1}): build the models for the "
                             "data's classes")

    def _student_factory(self, student):
        if student is None:
            template = self.teacher_network()
            return lambda k: _clone(template, "teacher")
        if isinstance(student, keras.Model):
            initial = [w.numpy() for w in student.weights]

            def fresh_copy(k):
                copy = _clone(student, "student")
                copy.set_weights(initial)
                return copy

            return fresh_copy
        if callable(student):
            return student
        _fail("student", f"must be a keras.Model or a function k -> keras.Model, got {type(student).__name__}",
              TypeError)

    def _check_student(self, model, k: int) -> keras.Model:
        if not isinstance(model, keras.Model):
            _fail("student", f"(a function) returned {type(model).__name__} for iteration {k}, not a keras.Model",
                  TypeError)
        classes = self._classes_of(model, "student")
        if classes != self.num_classes:
            _fail("student", f"returns {classes} logits per image but the teacher {self.num_classes}: both must "
                             "classify the same classes")
        return model

    def _augment(self) -> AugmentConfig:
        layers = self.args["randaug_layers"]
        if isinstance(layers, bool) or not isinstance(layers, (int, np.integer)) or layers < 0:
            _fail("randaug_layers", f"must be a non-negative integer, got {layers!r}")
        name = "v1" if layers else None
        return AugmentConfig(augment_name=name, unl_augment_name=name, randaug_layer=max(int(layers), 1),
                             randaug_mag=self.args["randaug_magnitude"], flip=bool(self.args["flip"]))

    def settings(self) -> dict:
        """What decides the results, recorded in the directory: a later call there must give the same."""
        # Not `iterations`: a run may be resumed with more students.
        names = ("teacher_steps", "steps", "steps_per_epoch", "teacher_batch_size", "batch_size",
                 "unlabel_ratio", "teacher_softmax_temp", "num_image", "min_threshold", "max_prob", "upsample",
                 "randaug_layers", "randaug_magnitude", "flip", "weight_decay", "label_smoothing",
                 "moving_average_decay", "mean", "std", "seed")
        settings = {name: self.args[name] for name in names}
        settings["teacher_steps"] = self.teacher_steps
        settings["optimizer"] = _describe(self.args["optimizer"])
        settings["mean"] = None if settings["mean"] is None else [float(v) for v in np.ravel(settings["mean"])]
        settings["std"] = None if settings["std"] is None else [float(v) for v in np.ravel(settings["std"])]
        return json.loads(json.dumps(settings, default=str))

    # ---------------------------------------------------------------------------------------------
    # The stages.

    def stage_seed(self, k: int) -> int:
        # As the driver's training runs (jobs/iterate.py): seed * 100 + iteration.
        return int(self.seed) * 100 + k

    def fit(self) -> NoisyStudentResult:
        names = ["teacher"] + [f"student_{k}" for k in range(1, self.iterations + 1)]
        history, pseudo_labels, model = [], {}, None
        for k, name in enumerate(names):
            finished = self.directory.load(name) if self.directory else None
            if finished is not None:
                model, record, labels = finished
                self._say(f"{name}: finished earlier ({self.directory.path}), loaded")
            elif k == 0:
                model, record, labels = self.fit_teacher()
            else:
                model, record, labels = self.fit_student(k, name, model)
            history.append(record)
            if labels is not None:
                pseudo_labels[name] = labels
        return NoisyStudentResult(model=model, history=history, pseudo_labels=pseudo_labels)

    def _say(self, line: str) -> None:
        if self.verbose != 0:
            print(f"{CALLER}: {line}", flush=True)

    def new_model(self, network, k: int, **kwargs) -> NoisyStudent:
        a = self.args
        options = dict(weight_decay=a["weight_decay"], label_smoothing=a["label_smoothing"],
                       moving_average_decay=a["moving_average_decay"], mean=a["mean"], std=a["std"],
                       seed=self.stage_seed(k))
        options.update(kwargs)
        return NoisyStudent(network, **options)

    def fit_teacher(self):
        if self.teacher_steps == 0:
            model = self.teacher
            if not isinstance(model, NoisyStudent):
                # A trained network: evaluated as it is (no moving average to take).
                model = self.new_model(model, 0, unlabel_ratio=0, moving_average_decay=0)
                model.compile()
            return model, self.finish("teacher", model, 0, time.monotonic(), None, None), None
        # Each stage starts from the seed: the data order depends on TensorFlow's global seed too.
        keras.utils.set_random_seed(self.stage_seed(0))
        model = self.new_model(self.teacher, 0, unlabel_ratio=0)
        data = noisy_student_dataset(self.args["labeled"], batch_size=self.teacher_batch_size, augment=self.augment,
                                     seed=self.stage_seed(0))
        started = time.monotonic()
        epochs = self.train("teacher", model, data, self.teacher_steps, self.teacher_batch_size)
        return model, self.finish("teacher", model, self.teacher_steps, started, epochs, None), None

    def select(self, teacher, name: str):
        """The teacher's probabilities for every unlabeled image and the copies of each kept."""
        started = time.monotonic()
        normalization = {} if isinstance(teacher, NoisyStudent) else {"mean": self.args["mean"],
                                                                        "std": self.args["std"]}
        probabilities = pseudo_label(teacher, self.unlabeled, **normalization)
        if probabilities.shape[1] != self.num_classes:
            _fail("teacher", f"gave {probabilities.shape[1]} class probabilities, expected {self.num_classes}")
        num_image = self.args["num_image"] or max(len(probabilities) // self.num_classes, 1)
        copies = select_pseudo_labels(probabilities, num_image=num_image, min_threshold=self.args["min_threshold"],
                                      max_prob=self.args["max_prob"], upsample=self.args["upsample"],
                                      seed=FILTER_SEED)
        kept = copies > 0
        if not kept.any():
            raise ValueError(f"{CALLER}: no pseudo label of {name}'s teacher reached `min_threshold` "
                             f"({self.args['min_threshold']}); lower it, or train the teacher longer")
        confidence = probabilities.max(axis=1)
        summary = {"images": int(len(copies)), "kept": int(kept.sum()), "copies": int(copies.sum()),
                   "mean_confidence": float(np.average(confidence, weights=copies)),
                   "per_class": np.bincount(probabilities.argmax(axis=1), weights=copies,
                                            minlength=self.num_classes).astype(int).tolist()}
        self._say(f"{name}: {summary['kept']} of {summary['images']} unlabeled images kept ({summary['copies']} "
                  f"with copies, mean confidence {summary['mean_confidence']:.3f}) in "
                  f"{time.monotonic() - started:.1f} s")
        return probabilities, copies, summary

    def student_unlabeled(self, probabilities, copies):
        """The kept images with their probabilities, each as many times as selected."""
        if isinstance(self.unlabeled, np.ndarray):
            keep = indices_from_copies(copies)
            return self.unlabeled[keep], probabilities[keep]
        probs, counts = tf.constant(probabilities), tf.constant(copies)

        def repeated(index, image):
            return tf.data.Dataset.from_tensors((image, probs[index])).repeat(counts[index])

        return self.unlabeled.enumerate().flat_map(repeated)

    def fit_student(self, k: int, name: str, teacher):
        probabilities, copies, summary = self.select(teacher, name)
        # The seed is set before building, so a resumed call builds the student (and orders the data) as an
        # uninterrupted one would.
        keras.utils.set_random_seed(self.stage_seed(k))
        network = self._check_student(self.student_factory(k), k)
        a = self.args
        model = self.new_model(network, k, unlabel_ratio=a["unlabel_ratio"],
                               teacher_softmax_temp=a["teacher_softmax_temp"])
        data = noisy_student_dataset(a["labeled"], self.student_unlabeled(probabilities, copies),
                                     batch_size=self.batch_size, unlabel_ratio=a["unlabel_ratio"],
                                     augment=self.augment, seed=self.stage_seed(k))
        started = time.monotonic()
        epochs = self.train(name, model, data, self.steps, self.batch_size)
        labels = {"probabilities": probabilities, "copies": copies}
        return model, self.finish(name, model, self.steps, started, epochs, summary, labels), labels

    def _optimizer_kind(self, network) -> object:
        spec = self.args["optimizer"]
        if spec is None:
            return "upstream" if is_package_efficientnet(network) else "adam"
        return spec

    def optimizer(self, model: NoisyStudent, steps: int, batch_size: int):
        spec = self._optimizer_kind(model.student)
        if spec == "upstream":
            if self.arrays is None:
                _fail("optimizer", "'upstream' needs the number of labeled images (an epoch of its schedule): give "
                                   "`labeled` as arrays, or pass an optimizer")
            return TF1RMSProp(UpstreamLearningRate(UPSTREAM_BASE_LEARNING_RATE, batch_size, len(self.arrays[1]),
                                                   steps))
        if spec == "adam":
            warmup = int(steps * ADAM_WARMUP_FRACTION)
            return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(
                0.0, steps - warmup, warmup_target=ADAM_LEARNING_RATE, warmup_steps=warmup))
        if isinstance(spec, keras.optimizers.Optimizer):
            return spec.__class__.from_config(spec.get_config())
        if callable(spec):
            optimizer = spec(steps)
            if not isinstance(optimizer, keras.optimizers.Optimizer):
                _fail("optimizer", f"(a function) returned {type(optimizer).__name__}, not a Keras optimizer",
                      TypeError)
            return optimizer
        _fail("optimizer", f"must be None, 'upstream', 'adam', a Keras optimizer or a function steps -> optimizer; "
                           f"got {spec!r}")

    def train(self, name: str, model: NoisyStudent, data, steps: int, batch_size: int) -> list:
        """`fit()` for `steps`, in epochs of `steps_per_epoch`, resuming from this stage's backup if any."""
        model.compile(optimizer=self.optimizer(model, steps, batch_size))
        callbacks = self.args["callbacks"]
        callbacks = list(callbacks(name) if callable(callbacks) else callbacks or [])
        done_epochs = 0
        if self.directory:
            backup = self.directory.backup_dir(name)
            done_epochs = _backed_up_epochs(backup)
            callbacks.insert(0, keras.callbacks.BackupAndRestore(backup, delete_checkpoint=False))
        if done_epochs:
            # fit() resumes at that epoch; the data goes on where the interrupted run was.
            data = data.skip(done_epochs * self.steps_per_epoch)
        epochs = steps // self.steps_per_epoch
        self._say(f"{name}: {steps} steps of {batch_size} labeled images"
                  + (f", resuming after epoch {done_epochs} of {epochs}" if done_epochs else ""))
        fitted = model.fit(data, epochs=epochs, steps_per_epoch=self.steps_per_epoch, validation_data=self.validation,
                           callbacks=callbacks, verbose=self.verbose, shuffle=False)
        return [{key: float(values[i]) for key, values in fitted.history.items()}
                for i in range(len(next(iter(fitted.history.values()), [])))]

    def finish(self, name, model, steps, started, epochs, summary, labels=None) -> dict:
        record = {"stage": name, "steps": steps, "seconds": round(time.monotonic() - started, 1)}
        for key, data in (("validation", self.validation), ("test", self.test)):
            record[key] = None if data is None else {
                metric: float(value) for metric, value in model.evaluate(data, return_dict=True, verbose=0).items()}
        record["epochs"] = epochs
        if summary is not None:
            record["pseudo_labels"] = summary
        shown = ", ".join(f"{key} accuracy {record[key]['accuracy']:.4f}" for key in ("validation", "test")
                          if record[key])
        self._say(f"{name}: done in {record['seconds']:.0f} s" + (f"; {shown}" if shown else ""))
        if self.directory and steps:
            self.directory.save(name, model, record, labels)
        return record


def _clone(model, argument: str) -> keras.Model:
    try:
        return keras.models.clone_model(model)
    except (NotImplementedError, TypeError, ValueError) as e:
        _fail("student", f"cannot be made from the {argument} model (keras.models.clone_model: {e}): pass a "
                         "function k -> model that builds each student")


def _describe(optimizer) -> str | None:
    if optimizer is None or isinstance(optimizer, str):
        return optimizer
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return json.dumps(keras.optimizers.serialize(optimizer), sort_keys=True, default=str)
    return getattr(optimizer, "__qualname__", type(optimizer).__name__)


def _backed_up_epochs(backup_dir: str) -> int:
    """The epochs BackupAndRestore has saved in `backup_dir` (it restores them at the start of fit())."""
    path = storage.join(backup_dir, "training_metadata.json")
    if not storage.exists(path) or not storage.exists(storage.join(backup_dir, "latest.weights.h5")):
        return 0
    return int(storage.read_json(path, "BackupAndRestore's record").get("epoch", 0))


class _StageDirectory:
    """Finished stages (`<stage>.keras` + `<stage>.json`, and the pseudo labels `<stage>.pseudo_labels.npz`) and
    the backups of the stage in progress, under one directory."""

    def __init__(self, path: str, settings: dict):
        self.path = path
        record = storage.join(path, SETTINGS_FILE)
        if storage.exists(record):
            earlier = storage.read_json(record, "the settings of an earlier run")
            if earlier != settings:
                changed = sorted(key for key in set(earlier) | set(settings) if earlier.get(key) != settings.get(key))
                _fail("directory", f"{path} holds a run with other settings ({', '.join(changed)}): give another "
                                   "directory, or the same arguments as that run to resume it")
        else:
            storage.makedirs(path)
            storage.write_json(record, settings, indent=1, sort_keys=True)

    def backup_dir(self, name: str) -> str:
        return storage.join(self.path, BACKUP_DIR, name)

    def load(self, name: str):
        model_path = storage.join(self.path, f"{name}.keras")
        if not storage.exists(model_path):
            return None
        record = storage.read_json(storage.join(self.path, f"{name}.json"), f"the record of stage {name}")
        model = keras.saving.load_model(model_path, compile=False)
        labels = None
        labels_path = storage.join(self.path, f"{name}.pseudo_labels.npz")
        if storage.exists(labels_path):
            with np.load(io.BytesIO(storage.read_bytes(labels_path, "pseudo labels"))) as arrays:
                labels = {key: arrays[key] for key in arrays.files}
        model.compile()  # evaluate() needs a compiled model; a finished stage does not train again
        return model, record, labels

    def save(self, name: str, model, record: dict, labels) -> None:
        if labels is not None:
            arrays = io.BytesIO()
            np.savez(arrays, **labels)
            storage.write_bytes(storage.join(self.path, f"{name}.pseudo_labels.npz"), arrays.getvalue())
        storage.write_json(storage.join(self.path, f"{name}.json"), record, indent=1)
        # The model last: a stage is finished when its .keras exists.
        with storage.atomic_output(storage.join(self.path, f"{name}.keras"), ".keras") as tmp:
            model.save(tmp)
        if storage.exists(self.backup_dir(name)):
            storage.remove_tree(self.backup_dir(name))
