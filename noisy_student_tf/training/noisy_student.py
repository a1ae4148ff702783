"""The noisy-student step as a Keras model (upstream `main.py`, `model_fn`).

`NoisyStudent` wraps a student (and optionally a frozen teacher) and trains it with `fit()`. Its `step()` is the
one implementation of the step: the command-line trainer (`training/train_function.py`) calls it too.

What one step does, as upstream:
* one forward pass of the student over the labeled and the unlabeled (noised) images together, so batch-norm
  statistics are computed over both;
* targets for the unlabeled images: the clean teacher in inference mode on the clean view (online), or the
  probabilities / labels stored with the images (offline); soft (`softmax(logits / T)`, or stored
  `probs^(1/T)` renormalised) or hard (label-smoothed one-hot of the teacher's class) when T = -1;
* loss = labeled smoothed cross-entropy + r * unlabeled cross-entropy + L2 weight decay on every trainable weight
  but batch-norm gamma/beta;
* the optimizer step, then the exponential moving average of the weights and batch-norm statistics with
  `num_updates` = the step just completed (evaluation and prediction use the averaged weights).
"""

from __future__ import annotations

import inspect
import warnings

import keras
import tensorflow as tf

from noisy_student_tf.models.inference import normalize
from noisy_student_tf.training import losses, objective
from noisy_student_tf.training.ema import WeightEMA, ema_variables
from noisy_student_tf.training.schedule import UpstreamLearningRate

# Upstream's summary names (TensorBoard scalars of the command-line trainer) -> the names `fit()` logs.
KERAS_METRIC_NAMES = {
    "train/loss": "loss",
    "lab/acc": "accuracy",
    "lab/loss": "labeled_loss",
    "lab/pred_prob": "labeled_confidence",
    "train/data_loss": "data_loss",
    "ext/loss": "unlabeled_loss",
    "unl/acc_to_dump": "teacher_agreement",
    "unl/pred_prob": "unlabeled_confidence",
    "unl/target_prob": "target_confidence",
}
EVAL_METRIC_NAMES = ("loss", "accuracy", "top_5_accuracy")


def _output_classes(model) -> int | None:
    """The last dimension of a built model's output, when Keras knows it."""
    try:
        shape = model.output_shape
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(shape, list) or not isinstance(shape, tuple) or not shape:
        return None
    return shape[-1]


def _output_activation(model) -> str | None:
    """'softmax' or 'sigmoid' when the model's last layer applies one (its output is then probabilities)."""
    layers = getattr(model, "layers", None)
    if not layers:
        return None
    activation = getattr(layers[-1], "activation", None)
    name = getattr(activation, "__name__", None) or (activation if isinstance(activation, str) else None)
    return name if name in ("softmax", "sigmoid") else None


def check_classifier(model, argument: str, num_classes: int | None, caller: str = "NoisyStudent") -> int | None:
    """Checks that `model` is a built Keras model returning logits (not probabilities) for `num_classes` classes.

    Args:
        model: the model to check.
        argument: its argument's name, for the error message.
        num_classes: the expected output size, or None to accept any.
        caller: the function or class named in the error message.

    Returns:
        The model's output size when Keras knows it, else None.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"{caller}: `{argument}` must be a keras.Model returning logits [batch, classes], "
                        f"got {type(model).__name__}")
    if not model.built:
        raise ValueError(f"{caller}: `{argument}` is not built; build it first (call it on a batch, or give "
                         "its Input shape) so that its weights exist")
    activation = _output_activation(model)
    if activation is not None:
        raise ValueError(f"{caller}: `{argument}` ends in a {activation} ({model.layers[-1].name!r}), so it "
                         "returns probabilities, but the losses take logits: build its last layer without an "
                         "activation (keras.applications: classifier_activation=None)")
    classes = _output_classes(model)
    if classes is not None and num_classes is not None and classes != num_classes:
        raise ValueError(f"{caller}: `{argument}` returns {classes} logits per image but num_classes is "
                         f"{num_classes}; the student and the teacher must classify the same classes")
    return classes


@keras.saving.register_keras_serializable(package="noisy_student_tf")
class NoisyStudent(keras.Model):
    """Noisy Student training of `student` as a Keras model (Xie et al., CVPR 2020).

    Train with `compile()` and `fit()` on batches of `noisy_student_tf.data.noisy_student_dataset` (or the
    command line's `data.inputs.train_dataset`): `{"labeled": {"image", "label"}, "unlabeled": {"image",
    "teacher_image"}}` for an online teacher, or with `"probs"` (and `"label"`) instead of `"teacher_image"` for
    stored pseudo labels. A plain `(images, labels)` batch trains the student supervised (a teacher).
    `evaluate()` and `predict()` use the moving average of the weights; calling the model uses the current ones.

    `fit()` logs the epoch means of: `loss` (the whole loss, weight decay included), `accuracy` (top-1 on the
    *noised* labeled images of the step, not a clean accuracy), `labeled_loss`, `labeled_confidence`, `data_loss`
    (the loss without weight decay), `unlabeled_loss`, `teacher_agreement` (the student's top-1 against the
    targets' class), `unlabeled_confidence`, `target_confidence` (upstream's summary names are in
    `KERAS_METRIC_NAMES`). `evaluate()` reports `loss`, `accuracy` and `top_5_accuracy` with the averaged weights
    on clean images. `summary()` shows the student.

    Images are float 0..255, channels last. With `mean` and `std` the model normalises them ((x - mean) / std per
    channel, as upstream; the EfficientNets of this package expect that); without, they reach the networks as
    they are (keras.applications networks normalise inside).

    Args:
        student: a built `keras.Model` from images to logits [batch, num_classes] (not probabilities).
        teacher: a built `keras.Model` with the same classes, used frozen and in inference mode on the clean view
            (online teacher); None when the pseudo labels come with the data, or for supervised training. A
            trained `NoisyStudent` teaches with its averaged weights (`ema_student()`; it must normalise as this
            model does).
        num_classes: the number of classes; default: the student's output size.
        unlabel_ratio: r, the weight of the unlabeled loss (upstream `--unlabel_ratio`); the data should hold r
            unlabeled images per labeled one. 0 trains on the labeled images only.
        teacher_softmax_temp: T of the soft targets; -1 for hard targets (upstream `--teacher_softmax_temp`).
        label_smoothing: of the labeled loss and of hard targets (upstream `--label_smoothing`).
        weight_decay: L2 coefficient (upstream `--weight_decay`): `weight_decay * sum(w^2) / 2` in the loss.
        moving_average_decay: decay of the weight EMA (upstream `--moving_average_decay`); 0 turns it off.
        label_data_sample_prob: keep each labeled image with this probability (upstream
            `--label_data_sample_prob`).
        mean, std: per-channel normalisation in 0..255 units, or None.
        seed: seed of the labeled-image sampling.
        **kwargs: `keras.Model` arguments (e.g. `name`).
    """

    def __init__(self, student, teacher=None, *, num_classes: int | None = None, unlabel_ratio: float = 1.0,
                 teacher_softmax_temp: float = -1.0, label_smoothing: float = 0.1, weight_decay: float = 1e-5,
                 moving_average_decay: float = 0.9999, label_data_sample_prob: float = 1.0, mean=None, std=None,
                 seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        classes = check_classifier(student, "student", num_classes)
        if num_classes is None:
            if classes is None:
                raise ValueError("NoisyStudent: pass num_classes (the student's output size is not known)")
            num_classes = classes
        if (mean is None) != (std is None):
            raise ValueError("NoisyStudent: give both mean and std, or neither")
        if isinstance(teacher, NoisyStudent):
            # A trained NoisyStudent teaches with its averaged weights, as pseudo_label() and predict() do.
            if (teacher.mean, teacher.std) != (_floats(mean), _floats(std)):
                raise ValueError(f"NoisyStudent: the teacher normalises with mean={teacher.mean}, std={teacher.std} "
                                 f"but this model with mean={_floats(mean)}, std={_floats(std)}: give both the same "
                                 "normalisation, or pass a plain network as the teacher")
            teacher = teacher.ema_student()
        if teacher is not None:
            check_classifier(teacher, "teacher", num_classes)
        if unlabel_ratio < 0:
            raise ValueError(f"NoisyStudent: unlabel_ratio must be >= 0, got {unlabel_ratio}")
        if teacher_softmax_temp != -1 and teacher_softmax_temp <= 0:
            raise ValueError(f"NoisyStudent: teacher_softmax_temp must be positive or -1 (hard targets), "
                             f"got {teacher_softmax_temp}")
        self.student = student
        self.teacher = teacher
        if teacher is not None:
            teacher.trainable = False
        self.num_classes = int(num_classes)
        self.unlabel_ratio = float(unlabel_ratio)
        self.teacher_softmax_temp = float(teacher_softmax_temp)
        self.label_smoothing = float(label_smoothing)
        self.weight_decay = float(weight_decay)
        self.moving_average_decay = float(moving_average_decay)
        self.label_data_sample_prob = float(label_data_sample_prob)
        self.mean, self.std = _floats(mean), _floats(std)
        self.run_seed = keras.Variable(int(seed), dtype="int64", trainable=False, name="seed")
        self.ema = None
        if self.moving_average_decay > 0:
            self.ema = WeightEMA(ema_variables(student), self.moving_average_decay)
            # Tracked by Keras too, so that save_weights, BackupAndRestore and .keras files carry the averages.
            self._ema_weights = list(self.ema.shadows.values())
        self._trackers = {name: keras.metrics.Mean(name=name)
                          for name in list(KERAS_METRIC_NAMES.values()) + list(EVAL_METRIC_NAMES[2:])}
        self.built = True

    # ------------------------------------------------------------------------------------------------
    # Keras plumbing.

    def compile(self, optimizer="rmsprop", **kwargs):
        """Configures training as `keras.Model.compile`, without `loss` or `metrics` (the model has its own).

        Args:
            optimizer: the optimizer; upstream's is `TF1RMSProp(learning_rate=UpstreamLearningRate(...))`.
            **kwargs: other `keras.Model.compile` arguments (`steps_per_execution`, `jit_compile`, ...).
        """
        for name in ("loss", "metrics", "weighted_metrics", "loss_weights"):
            if kwargs.get(name) is not None:
                raise ValueError(f"NoisyStudent.compile: `{name}` is not used: the model computes the "
                                 "noisy-student loss and its metrics itself")
        super().compile(optimizer=optimizer, **kwargs)
        # Built now, in the caller's strategy scope, so that checkpoints and BackupAndRestore find its slots.
        self.optimizer.build(self.student.trainable_variables)

    def fit(self, *args, **kwargs):
        """`keras.Model.fit`, with two checks first.

        An endless dataset (`noisy_student_dataset` repeats forever) without `steps_per_epoch` is refused: its
        epoch would never end. With the upstream schedule (`UpstreamLearningRate`), a warning says when
        `epochs x steps_per_epoch` from step 0 does not end where the schedule does.

        Args:
            *args, **kwargs: `keras.Model.fit`'s.

        Returns:
            `fit()`'s `History`.
        """
        bound = inspect.signature(keras.Model.fit).bind(self, *args, **kwargs).arguments
        data, steps = bound.get("x"), bound.get("steps_per_epoch")
        if steps is None and isinstance(data, tf.data.Dataset) and \
                int(data.cardinality()) == int(tf.data.INFINITE_CARDINALITY):
            raise ValueError("NoisyStudent.fit: `x` never ends (noisy_student_dataset repeats forever), so an epoch "
                             "would never end: pass steps_per_epoch (e.g. the schedule's train_steps, with epochs=1)")
        schedule = getattr(self.optimizer, "_learning_rate", None)
        if steps and isinstance(schedule, UpstreamLearningRate) and int(self.optimizer.iterations.numpy()) == 0:
            planned = (bound.get("epochs", 1) - bound.get("initial_epoch", 0)) * steps
            if planned != schedule.schedule.last_step:
                warnings.warn(f"NoisyStudent.fit: {planned} steps (epochs x steps_per_epoch), but the learning-rate "
                              f"schedule runs {schedule.schedule.last_step} (UpstreamLearningRate's train_steps): "
                              "training stops before it ends, or goes on at its last rate", stacklevel=2)
        return super().fit(*args, **kwargs)

    def get_compile_config(self):
        return super().get_compile_config()

    def compile_from_config(self, config):
        """Recompiles a loaded model (its optimizer and `compile()` arguments), so training can go on."""
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**{k: v for k, v in config.items() if v is not None})

    def seed_generator_states(self) -> list:
        """The student's Keras seed-generator states (dropout, stochastic depth). Keras' weight files leave them
        out; a resumed run needs them to draw the noise an uninterrupted one would, so this model saves them."""
        return [v for v in self.student.variables if "seed_generator_state" in v.path]

    def _own_variable_count(self) -> int:
        return len(self._trainable_variables) + len(self._non_trainable_variables)

    def save_own_variables(self, store):
        super().save_own_variables(store)
        own = self._own_variable_count()
        for i, variable in enumerate(self.seed_generator_states()):
            store[f"{own + i}"] = variable

    def load_own_variables(self, store):
        own, states = self._own_variable_count(), self.seed_generator_states()
        if len(store.keys()) == own + len(states):
            for i, variable in enumerate(states):
                variable.assign(store[f"{own + i}"])
            store = {f"{i}": store[f"{i}"] for i in range(own)}
        super().load_own_variables(store)

    def summary(self, *args, **kwargs):
        """`keras.Model.summary` of the student (the network `fit()` trains), then a line on what this model holds
        besides it: the frozen teacher and the moving averages (a second copy of the averaged weights).

        Args:
            *args, **kwargs: `keras.Model.summary`'s.
        """
        self.student.summary(*args, **kwargs)
        held = []
        if self.teacher is not None:
            held.append(f"the teacher {self.teacher.name!r} ({self.teacher.count_params():,} parameters, frozen)")
        if self.ema is not None:
            values = sum(int(v.shape.num_elements()) for v in self.ema.shadows.values())
            held.append(f"moving averages of {values:,} values (not trained)")
        if held:
            (kwargs.get("print_fn") or print)(f"{self.name} also holds " + " and ".join(held) + ".")

    @property
    def metrics(self):
        """The running means `fit()` and `evaluate()` report (Keras resets them every epoch)."""
        return list(self._trackers.values())

    def call(self, images, training=False):
        """The student's logits with its current weights."""
        return self.student(self._normalize(images), training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            student=keras.saving.serialize_keras_object(self.student),
            teacher=None if self.teacher is None else keras.saving.serialize_keras_object(self.teacher),
            num_classes=self.num_classes, unlabel_ratio=self.unlabel_ratio,
            teacher_softmax_temp=self.teacher_softmax_temp, label_smoothing=self.label_smoothing,
            weight_decay=self.weight_decay, moving_average_decay=self.moving_average_decay,
            label_data_sample_prob=self.label_data_sample_prob, mean=self.mean, std=self.std,
            seed=int(self.run_seed.numpy()))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["student"] = keras.saving.deserialize_keras_object(config["student"])
        if config.get("teacher") is not None:
            config["teacher"] = keras.saving.deserialize_keras_object(config["teacher"])
        return cls(**config)

    # ------------------------------------------------------------------------------------------------
    # The step.

    def _normalize(self, images):
        if self.mean is None:
            return tf.cast(images, tf.float32)
        return normalize(images, self.mean, self.std)

    def reset_ema(self) -> None:
        """Restarts the moving average at the student's current weights (after loading weights into it)."""
        if self.ema is not None:
            self.ema.reset()

    def _label_mask(self, lab_batch):
        """Upstream keeps each labeled example with probability p: floor(p + U[0, 1)), seeded by (seed, step,
        replica)."""
        ctx = tf.distribute.get_replica_context()
        seed = tf.random.experimental.stateless_fold_in(
            tf.stack([self.run_seed.value, tf.cast(self.optimizer.iterations, tf.int64)]),
            ctx.replica_id_in_sync_group)
        return tf.floor(self.label_data_sample_prob + tf.random.stateless_uniform([lab_batch], seed))

    def _targets(self, unlabeled):
        teacher_logits = None
        if self.teacher is not None:
            if "teacher_image" not in unlabeled:
                raise ValueError("NoisyStudent: with a teacher, batch['unlabeled'] must hold 'teacher_image' (the "
                                 "clean view); make the data with noisy_student_dataset(...)")
            # The teacher sees the clean view, in inference mode.
            teacher_logits = self.teacher(self._normalize(unlabeled["teacher_image"]), training=False)
            _check_logits(teacher_logits, self.num_classes, "teacher")
        elif "probs" not in unlabeled:
            raise ValueError("NoisyStudent: batch['unlabeled'] has no 'probs' (stored pseudo labels) and the model "
                             "has no teacher; pass teacher=... or pseudo-label the images first")
        return losses.unlabeled_targets(
            num_classes=self.num_classes, temperature=self.teacher_softmax_temp,
            label_smoothing=self.label_smoothing, teacher_logits=teacher_logits,
            stored_probs=unlabeled.get("probs"), stored_labels=unlabeled.get("label"))

    def step(self, batch) -> dict:
        """One noisy-student step on this replica's batch: forward, loss, optimizer update, EMA update.

        Args:
            batch: `{"labeled": {"image", "label"}, "unlabeled": {...}}` (see the class docstring); the
                "unlabeled" part is ignored when `unlabel_ratio` is 0.

        Returns:
            The step's scalars under upstream's summary names (`KERAS_METRIC_NAMES` maps them to `fit()`'s).
        """
        labeled = batch["labeled"]
        unlabeled = batch.get("unlabeled") if self.unlabel_ratio else None
        labels = labeled["label"]
        _check_batch(labeled["image"], labels, "batch['labeled']")
        labels = tf.cast(labels, tf.int32)  # any integer type (NumPy's int64 labels too)
        lab_batch = labels.shape[0] if labels.shape[0] is not None else tf.shape(labels)[0]
        images = labeled["image"]
        if unlabeled is not None:
            images = tf.concat([tf.cast(images, tf.float32), tf.cast(unlabeled["image"], tf.float32)], 0)
        variables = self.student.trainable_variables
        num_replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        with tf.GradientTape() as tape:
            # One forward pass over labeled + unlabeled images: batch-norm statistics over both, as upstream.
            logits = tf.cast(self.student(self._normalize(images), training=True), tf.float32)
            _check_logits(logits, self.num_classes, "student")
            lab_logits = logits[:lab_batch]
            mask = self._label_mask(lab_batch) if self.label_data_sample_prob < 1 else None
            unl_logits = targets = None
            if unlabeled is not None:
                unl_logits = logits[lab_batch:]
                targets = self._targets(unlabeled)
            data_loss, metrics = objective.noisy_student_loss(
                lab_logits, labels, num_classes=self.num_classes, label_smoothing=self.label_smoothing,
                mask=mask, unl_logits=unl_logits, targets=targets, unlabel_ratio=self.unlabel_ratio,
                unl_labels=None if unlabeled is None else unlabeled.get("label"),
                soft_targets=self.teacher_softmax_temp != -1)
            loss = data_loss + losses.weight_decay_loss(variables, self.weight_decay)
            # Gradients are summed over replicas, so each replica contributes its share of the mean.
            scaled = self.optimizer.scale_loss(loss / num_replicas)
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        if self.ema is not None:
            self.ema.update(self.optimizer.iterations)  # num_updates = the step just completed, as upstream
        metrics["train/loss"] = loss
        return metrics

    def train_step(self, data):
        """`fit()`'s step: `step()` on the batch, then the epoch means of its scalars under Keras names."""
        metrics = self.step(_as_batch(data))
        logs = {}
        for name, value in metrics.items():
            tracker = self._trackers[KERAS_METRIC_NAMES[name]]
            tracker.update_state(value)
            logs[tracker.name] = tracker.result()
        return logs

    # ------------------------------------------------------------------------------------------------
    # Evaluation and prediction with the averaged weights.

    def inference_logits(self, images):
        """float32 logits of the student in inference mode with the averaged weights (the current ones without
        an EMA), on 0..255 images."""
        inputs = self._normalize(images)
        if self.ema is None:
            return tf.cast(self.student(inputs, training=False), tf.float32)
        logits, _ = self.student.stateless_call(self._averaged(self.student.trainable_variables),
                                                self._averaged(self.student.non_trainable_variables), inputs,
                                                training=False)
        return tf.cast(logits, tf.float32)

    def _averaged(self, variables) -> list:
        """Each variable's moving average where it has one (trainable weights, batch-norm statistics), else the
        variable itself."""
        shadows = self.ema.shadows if self.ema is not None else {}
        return [shadows.get(v.path, v) for v in variables]

    def test_step(self, data):
        """`evaluate()`'s step on (images, labels) with the averaged weights: loss (smoothed cross-entropy plus
        weight decay, as upstream's eval), top-1 and top-5, averaged over images."""
        images, labels = _unpack_labeled(data)
        logits = self.inference_logits(images)
        _check_logits(logits, self.num_classes, "student")
        sums = objective.eval_sums(logits, tf.cast(labels, tf.int32), num_classes=self.num_classes,
                                   label_smoothing=self.label_smoothing)
        count = tf.cast(sums["count"], tf.float32)
        # Upstream's eval loss is the smoothed cross-entropy plus the weight decay term.
        loss = sums["loss"] / count + losses.weight_decay_loss(self.student.trainable_variables, self.weight_decay)
        for name, value in zip(EVAL_METRIC_NAMES, (loss, sums["top_1"] / count, sums["top_5"] / count)):
            self._trackers[name].update_state(value, sample_weight=count)
        return {name: self._trackers[name].result() for name in EVAL_METRIC_NAMES}

    def predict_step(self, data):
        """`predict()`'s step: logits of the averaged weights."""
        images = data[0] if isinstance(data, (tuple, list)) else data
        return self.inference_logits(images)

    def ema_student(self, include_normalization: bool = False) -> keras.Model:
        """A copy of the student holding the averaged weights (as the next student or teacher, or for export).

        Note: by default the copy is the bare network, which takes *normalised* images: the `mean` and `std` this
        model was given are not in it (a `NoisyStudent` built around it applies its own). For a model that takes
        0..255 images, as this one's `predict()` does, pass `include_normalization=True`.

        Args:
            include_normalization: put this model's normalisation in front of the copy, as a Keras
                `Normalization` layer (so the result loads with plain `keras.saving.load_model`).

        Returns:
            A new `keras.Model` (`keras.models.clone_model` of the student) with the averaged weights and batch-norm
            statistics, and the student's other weights; with `include_normalization`, from 0..255 images to the
            logits of `predict()`.
        """
        copy = keras.models.clone_model(self.student)
        copy.set_weights([v.numpy() for v in self._averaged(self.student.weights)])
        if not include_normalization or self.mean is None:
            return copy
        images = keras.Input(self.student.input_shape[1:], name="images")
        normalized = keras.layers.Normalization(mean=self.mean, variance=[s * s for s in self.std],
                                                name="normalization")(images)
        return keras.Model(images, copy(normalized), name=f"{copy.name}_on_images")


def _shape_text(shape) -> str:
    return "unknown" if shape.rank is None else str(tuple(shape))


def _floats(values):
    return None if values is None else [float(v) for v in values]


def _check_logits(logits, num_classes: int, who: str) -> None:
    if logits.shape.rank != 2 or (logits.shape[-1] is not None and logits.shape[-1] != num_classes):
        raise ValueError(f"NoisyStudent: the {who} must return logits [batch, {num_classes}], got shape "
                         f"{_shape_text(logits.shape)}")


def _check_batch(images, labels, where: str) -> None:
    if images.shape.rank != 4:
        hint = (" (unknown rank: after a tf.py_function, set it, e.g. image.set_shape([height, width, 3]))"
                if images.shape.rank is None else "")
        raise ValueError(f"NoisyStudent: {where}['image'] must be images [batch, height, width, channels], got "
                         f"shape {_shape_text(images.shape)}{hint}")
    if labels.shape.rank != 1 or not labels.dtype.is_integer:
        raise ValueError(f"NoisyStudent: {where}['label'] must be integer class indices [batch], got "
                         f"{labels.dtype.name} of shape {_shape_text(labels.shape)}")


def _unpack_labeled(data):
    if isinstance(data, dict) and "labeled" in data:
        return data["labeled"]["image"], data["labeled"]["label"]
    if isinstance(data, (tuple, list)) and len(data) >= 2:
        return data[0], data[1]
    raise ValueError("NoisyStudent: evaluation data must be (images, labels) batches")


def _as_batch(data) -> dict:
    """A training batch as `step()` takes it: dicts as they are, (images, labels) as a labeled-only batch."""
    if isinstance(data, dict):
        if "labeled" not in data:
            raise ValueError("NoisyStudent: a training batch must be (images, labels) or a dict with 'labeled' "
                             f"(and 'unlabeled'); got keys {sorted(data)}")
        return data
    images, labels = _unpack_labeled(data)
    return {"labeled": {"image": images, "label": labels}}
