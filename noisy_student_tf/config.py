"""The typed configuration of every job: frozen dataclasses, nested, with the upstream flag each field comes from.

Each job is `run(config)`: `jobs.train.run(TrainConfig)`, `jobs.evaluate.run(EvalConfig)`,
`jobs.predict.run(PredictConfig)`, `jobs.filter_unlabel.run(FilterConfig)`, `jobs.export.run(ExportConfig)` and
the iterative driver `jobs.iterate.run(DriverConfig)`. The command lines build these from their absl flags
(`noisy_student_tf.flag_adapters`, with upstream main()'s derived values); Python callers build them directly or
take a named recipe (`noisy_student_tf.recipes`) and change fields with `dataclasses.replace`.

Values here are resolved: no "default from somewhere else" is left for a job to work out, except where a field
says so (`seed=None`: drawn once and kept in the checkpoint). Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math

from noisy_student_tf.errors import UserError
from noisy_student_tf.robustness_names import CORRUPTIONS, DEFAULT_EPSILONS
from noisy_student_tf.tasks import TaskInfo

# Upstream `autoaugment.py` has one policy name for RandAugment; None (or '') is crop and flip only.
AUGMENT_NAMES = ("v1",)
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def check_augment_name(augment_name, flag: str = "augment_name"):
    """None or '' (crop/flip only) or 'v1' (RandAugment); anything else is an error (upstream: assert)."""
    if augment_name in (None, "") or augment_name in AUGMENT_NAMES:
        return augment_name or None
    raise UserError(f"unknown {flag} {augment_name!r}: use 'v1' for RandAugment, or leave it empty "
                    "for crop/flip only")


def unlabeled_augment_name(augment_name, unl_aug="default"):
    """Upstream `data_input.py`, `TFExampleInput.unl_dst_parser`: unl_aug 'default' follows augment_name; any
    other value is used for unlabeled images."""
    name = augment_name if unl_aug == "default" else unl_aug
    try:
        return check_augment_name(name)
    except UserError:
        raise UserError(f"unknown unl_aug {unl_aug!r}: use 'default' (same as augment_name), 'v1', "
                        "or '' for crop/flip only") from None


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The network: an EfficientNet of upstream `efficientnet_builder.py` and its overrides.

    Args:
        model_name: `efficientnet-b0` ... `efficientnet-b7` or `efficientnet-l2` (`--model_name`).
        num_classes: classifier width (`--num_label_classes`, or the task's).
        image_size: input side in pixels (`--input_image_size`, the task's, or the model table's resolution).
        small_image_model: the 32x32 variant (stride 1 in stages 2 and 3).
        dropout_rate, stochastic_depth_rate, width_coefficient, depth_coefficient: overrides of the model
            table (None keeps the table's value).
    """

    model_name: str
    num_classes: int
    image_size: int
    small_image_model: bool = False
    dropout_rate: float | None = None
    stochastic_depth_rate: float | None = None
    width_coefficient: float | None = None
    depth_coefficient: float | None = None


@dataclasses.dataclass(frozen=True)
class ModelOptions:
    """The network overrides a command line gives once for every model it builds (teacher and students).

    Args:
        small_image_model: the 32x32 variant (forced by the svhn and digits tasks).
        input_image_size: input side; None: the task's, else the model table's resolution.
        dropout_rate, stochastic_depth_rate, width_coefficient, depth_coefficient: as in `ModelConfig`.
    """

    small_image_model: bool = False
    input_image_size: int | None = None
    dropout_rate: float | None = None
    stochastic_depth_rate: float | None = None
    width_coefficient: float | None = None
    depth_coefficient: float | None = None


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Input noise of the student's training images (upstream `main.py` flags of the same names).

    `unl_augment_name` is already resolved from `--unl_aug` (`unlabeled_augment_name`); `flip` None follows the
    task (never for SVHN and digits). Names are checked when the config is made.
    """

    augment_name: str | None = None
    unl_augment_name: str | None = None
    randaug_layer: int = 2
    randaug_mag: float = 27
    cutout_op: bool = True
    contrast_mode: str = "pil"
    remove_aug: bool = False
    flip: bool | None = None

    def __post_init__(self):
        object.__setattr__(self, "augment_name", check_augment_name(self.augment_name))
        object.__setattr__(self, "unl_augment_name", check_augment_name(self.unl_augment_name, "unl_aug"))
        if self.contrast_mode not in ("pil", "upstream"):
            raise UserError(f"--randaug_contrast must be pil or upstream, got {self.contrast_mode!r}")


@dataclasses.dataclass(frozen=True)
class InputConfig:
    """What one training step reads (upstream `data_input.py`).

    Args:
        label_data_dir: labeled `train*` shards (or `tfds:<name>`).
        train_batch_size: labeled images per step, over all replicas.
        unlabel_data_dir: pseudo-labelled (`train*`) or raw (`extra*`) shards; needed when `unlabel_ratio > 0`.
        unlabel_ratio: unlabeled images per labeled image; 0 is supervised training.
        label_data_sample_prob: each labeled example enters the loss with this probability.
        use_cache: cache the serialized records in memory.
        num_train_shards: read only the first N labeled `train*` files.
    """

    label_data_dir: str = ""
    train_batch_size: int = 4096
    unlabel_data_dir: str = ""
    unlabel_ratio: float = 0.0
    label_data_sample_prob: float = 1.0
    use_cache: bool = True
    num_train_shards: int | None = None

    @property
    def unlabeled_batch_size(self) -> int:
        """Unlabeled images per step, over all replicas: ceil(B * p * r) (upstream `main.py`, `model_fn`)."""
        return int(math.ceil(self.train_batch_size * self.label_data_sample_prob * self.unlabel_ratio))


@dataclasses.dataclass(frozen=True)
class TeacherConfig:
    """Where the pseudo labels of a student's unlabeled images come from.

    Args:
        model_name: an online teacher's architecture (`--teacher_model_name`), run clean in every step on the
            unlabeled images; None takes the teacher's predictions stored in the unlabeled records.
        checkpoint: the online teacher's weights (`--teacher_model_path`): a model_dir, prefix or TF1 checkpoint.
        image_size: the online teacher's input size (None: upstream's, `derivations.teacher_image_size`).
        softmax_temp: -1 for hard pseudo labels (label-smoothed one-hot), otherwise soft targets at this
            temperature (`--teacher_softmax_temp`).
    """

    model_name: str | None = None
    checkpoint: str | None = None
    image_size: int | None = None
    softmax_temp: float = -1.0


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """What the step optimises and how: the upstream schedule, losses and weight EMA (`main.py` flags).

    `num_train_images` defines an epoch (warm-up and decay are in epochs; None: the task's size); the learning
    rate is given for 256 images and scaled with the labeled batch.
    """

    num_train_images: int | None = None
    train_steps: int = 109474
    train_last_step_num: int = -1
    train_ratio: float = 1.0
    base_learning_rate: float = 0.016
    final_base_lr: float | None = None
    weight_decay: float = 1e-5
    label_smoothing: float = 0.1
    moving_average_decay: float = 0.9999


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """How often the training loop stops for summaries, the progress line and checkpoints."""

    iterations_per_loop: int = 1000
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 5
    log_step_count_steps: int = 64
    skip_host_call: bool = False

    @property
    def save_every(self) -> int:
        """Upstream's TPUEstimator saves at loop boundaries: every max(save_checkpoints_steps, loop length)."""
        return max(self.save_checkpoints_steps, self.iterations_per_loop)


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    """Devices and numerics.

    Args:
        strategy: auto, default, one_device, mirrored, multi_worker_mirrored or tpu (`--strategy`).
        tpu: a Cloud TPU's name or address (`--tpu`).
        cpu_replicas: split the CPU into this many logical devices.
        precision: a Keras policy: float32, mixed_bfloat16 or mixed_float16 (from `--use_bfloat16` and
            `--mixed_precision`).
        jit_compile: compile the training step with XLA.
        deterministic: deterministic TF ops.
    """

    strategy: str = "auto"
    tpu: str | None = None
    cpu_replicas: int = 0
    precision: str = "float32"
    jit_compile: bool = False
    deterministic: bool = False

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run into `model_dir` (`main.py --mode=train`): a teacher, a student or a supervised model.

    Args:
        model_dir: checkpoints, summaries, FLAGS.json and model_params.txt.
        task: the task's facts (normalisation, sizes; `noisy_student_tf.tasks`).
        model: the student (or supervised) network.
        input: the labeled and unlabeled data of a step.
        optim: schedule, losses and EMA.
        augment: input noise of the training images.
        teacher: where the unlabeled images' targets come from.
        loop: summary, progress and checkpoint periods.
        runtime: strategy and precision.
        init_model_path: start from these weights (`--init_model --init_model_path`; not with an online teacher).
        fix_layer_num: freeze the stem and the first N blocks (-1: none).
        seed: the run's seed; None draws one. A resumed run keeps the seed stored in its checkpoint.
        flag_values: the command line's flag values, written as FLAGS.json as upstream `main.py` does; None
            writes the values this config stands for, under main.py's flag names.
    """

    model_dir: str
    task: TaskInfo
    model: ModelConfig
    input: InputConfig
    optim: OptimConfig
    augment: AugmentConfig = AugmentConfig()
    teacher: TeacherConfig = TeacherConfig()
    loop: LoopConfig = LoopConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    init_model_path: str | None = None
    fix_layer_num: int = -1
    seed: int | None = None
    flag_values: dict | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def online_teacher(self) -> bool:
        """A teacher network runs in the step (otherwise the targets are stored in the unlabeled records)."""
        return bool(self.teacher.model_name and self.input.unlabel_ratio)


@dataclasses.dataclass(frozen=True)
class RobustnessConfig:
    """`eval.py --robustness` (paper section 4.3-4.4): top-1 under common corruptions and FGSM."""

    corruptions: tuple[str, ...] = CORRUPTIONS
    fgsm_epsilons: tuple[float, ...] = tuple(float(e) for e in DEFAULT_EPSILONS)  # in 0..255 pixel units
    subset: str = "test"
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """`main.py --mode=eval`: top-1, top-5 and loss of model_dir's latest checkpoint on dev and test.

    Args:
        model_dir: the training run; eval_results.json is written there.
        label_data_dir: the `dev*`/`test*` (or `validation*`) shards.
        task, model: as the run was trained.
        eval_batch_size: images per batch (every image is counted).
        label_smoothing, weight_decay: upstream's eval loss is the training loss on clean images.
        use_ema: evaluate the EMA weights (`--moving_average_decay > 0`).
        num_eval_images, num_test_images: expected counts; a different count is logged (None: not checked).
        robustness: also evaluate under corruptions and FGSM.
    """

    model_dir: str
    label_data_dir: str
    task: TaskInfo
    model: ModelConfig
    eval_batch_size: int = 8
    label_smoothing: float = 0.1
    weight_decay: float = 1e-5
    use_ema: bool = True
    num_eval_images: int | None = None
    num_test_images: int | None = None
    robustness: RobustnessConfig | None = None


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    """`main.py --mode=predict` (upstream `predict_label.py`) and `--reassign_label`: label shards with a
    checkpoint.

    Args:
        checkpoint: `--predict_ckpt_path`: a model_dir, prefix or original TF1 checkpoint.
        input_dir: the shards to label (`--label_data_dir`).
        output_dir: `train-info-*` predictions (or reassigned shards).
        info_dir: `info-*.txt` image counts (predict only).
        task, model: the teacher as it was trained.
        file_prefix, num_shards, shards: which input files (`<prefix>-SSSSS-of-NNNNN`, or filtered names).
        batch_size: images per inference batch (the results do not depend on it).
        total_replicas, worker_id: this job predicts records i with i % total_replicas == worker_id.
        seed: reassign's sample-image draws.
        reassign: re-label filtered shards instead of predicting.
        use_ema: read the EMA weights.
        precision: a Keras policy (see RuntimeConfig).
    """

    checkpoint: str
    input_dir: str
    output_dir: str
    task: TaskInfo
    model: ModelConfig
    info_dir: str = ""
    file_prefix: str = "train"
    num_shards: int = 128
    shards: tuple[int, ...] = (0,)
    batch_size: int = 64
    total_replicas: int = 1
    worker_id: int = 0
    seed: int = 12345
    reassign: bool = False
    use_ema: bool = True
    precision: str = "float32"

    def validate(self, writes_files: bool = True) -> None:
        """Checks the values; `writes_files=False` (the Beam pipeline filtering without writing predictions)
        needs no output or info directory."""
        if self.num_shards <= 0:
            raise UserError(f"--num_shards must be positive, got {self.num_shards}")
        if self.total_replicas <= 0:
            raise UserError(f"--total_replicas must be positive, got {self.total_replicas}")
        if not 0 <= self.worker_id < self.total_replicas:
            raise UserError(f"--worker_id={self.worker_id} must be in 0..{self.total_replicas - 1} "
                            f"(--total_replicas={self.total_replicas})")
        if self.batch_size <= 0:
            raise UserError(f"--predict_batch_size must be positive, got {self.batch_size}")
        if not self.input_dir:
            raise UserError("--label_data_dir is required: the directory holding the shards to predict")
        if writes_files and not self.output_dir:
            raise UserError("--output_dir is required: where the predictions go")
        if not self.shards:
            raise UserError("--shard_id is empty")
        for shard in self.shards:
            if not 0 <= shard < self.num_shards:
                raise UserError(f"--shard_id: {shard} is not in 0..{self.num_shards - 1} "
                                f"(--num_shards={self.num_shards})")
        if writes_files and not self.reassign and not self.info_dir:
            raise UserError("--info_dir is required: where the per-shard image counts (info-*.txt) go")


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """`export.py`: a checkpoint's EMA weights as model.keras, a SavedModel and export_info.json.

    Args:
        checkpoint: a model_dir, prefix or TF1 checkpoint; `checkpoint_flag` names it in messages.
        output: the directory to create.
        task, model: as the model was trained; `task_name` is recorded as given.
        overwrite: replace a non-empty `output` once the new export is complete.
        use_ema: export the EMA weights.
    """

    checkpoint: str
    output: str
    task: TaskInfo
    model: ModelConfig
    task_name: str = ""
    checkpoint_flag: str = "--model_dir"
    overwrite: bool = False
    use_ema: bool = True


@dataclasses.dataclass(frozen=True)
class ConvertConfig:
    """`convert_checkpoint.py`: an original TF1 checkpoint to a .keras file, or back with `to_tf1` (the fields
    are its flags: model name and class count are read from the checkpoint when None or 0)."""

    tf1_ckpt: str | None = None
    keras_model: str | None = None
    output: str | None = None
    to_tf1: bool = False
    model_name: str | None = None
    num_label_classes: int | None = None
    small_image_model: bool = False
    input_image_size: int | None = None
    scope: str = "auto"
    use_ema: bool = True
    global_step: int = 0


@dataclasses.dataclass(frozen=True)
class DriverConfig:
    """The whole method (`iterate.py`): a teacher, then `iterations` rounds of predict -> filter -> noised
    student -> eval, each student the next teacher. The defaults are iterate.py's; `noisy_student_tf.recipes`
    has the digits recipe and those of the original SVHN and ImageNet scripts.

    The stages' training, eval, predict and filter configs are composed from these fields with
    `dataclasses.replace` (`jobs.iterate.Driver`).

    Args:
        output_dir: where every stage's output goes.
        task_name: imagenet, svhn, digits or a task_info.json path.
        label_data_dir, unlabel_data_dir, unlabel_file_prefix: the labeled shards and the unlabeled ones
            (`<prefix>-SSSSS-of-NNNNN`).
        iterations: student iterations after the teacher.
        teacher_model_name, student_model_names: architectures (no student name: the teacher's; one name for
            all iterations, or one per iteration).
        num_label_classes: classes (tasks with a fixed count override it).
        train_batch_size, teacher_train_batch_size: labeled images per step of the students and of the first
            teacher (None: train_batch_size).
        teacher_train_steps, student_train_steps: steps of each training run.
        unlabel_ratio, teacher_softmax_temp: the students' unlabeled images per labeled one, and their targets
            (-1: hard labels).
        num_image, min_threshold: the filter's images per class (0: unlabeled images / classes) and minimum
            confidence.
        init_student_from_teacher: start each student from its teacher's weights (needs equal architectures).
        seed: seed of every stage (training runs get seed * 100 + iteration).
        model_options: overrides every network gets (width, depth, dropout, ...).
        augment: the training input noise, teacher and students.
        optim: schedule and losses (`train_steps` is set per stage).
        input: input options (directories, batch sizes and the unlabeled ratio are set per stage).
        loop: checkpoint and summary options (the periods are set per stage from its steps).
        runtime: strategy and precision.
        eval_batch_size, predict_batch_size: batch sizes of the eval and predict stages.
        offline_engine: "tools" (predict and filter_unlabel in this process) or "beam" (the Apache Beam pipeline of
            pseudo_label_beam.py, one stage per iteration; the same files).
        beam_options: Beam pipeline options for "beam", e.g. ("--direct_num_workers=2",
            "--direct_running_mode=multi_processing"); without --runner, Beam's FnApiRunner.
        settings: the run's record in pipeline_flags.json; a re-run into the same output_dir with other
            settings is refused. None records this config's fields.
    """

    output_dir: str = "ckpt/digits"
    task_name: str = "digits"
    label_data_dir: str = "data/digits/proc"
    unlabel_data_dir: str = "data/digits/proc/unlabeled"
    unlabel_file_prefix: str = "extra"
    iterations: int = 3
    teacher_model_name: str = "efficientnet-b0"
    student_model_names: tuple[str, ...] = ()
    num_label_classes: int = 10
    train_batch_size: int = 32
    teacher_train_batch_size: int | None = None
    teacher_train_steps: int = 600
    student_train_steps: int = 600
    unlabel_ratio: float = 3.0
    teacher_softmax_temp: float = 1.0
    num_image: int = 0
    min_threshold: float = 0.3
    init_student_from_teacher: bool = False
    seed: int = 0
    model_options: ModelOptions = ModelOptions()
    # iterate.py's noise: RandAugment at upstream's SVHN magnitude 5.
    augment: AugmentConfig = AugmentConfig(augment_name="v1", unl_augment_name="v1", randaug_mag=5)
    # Upstream's SVHN recipe's weight decay, 1e-4.
    optim: OptimConfig = OptimConfig(weight_decay=1e-4)
    input: InputConfig = InputConfig()
    loop: LoopConfig = LoopConfig()
    runtime: RuntimeConfig = RuntimeConfig(deterministic=True)
    eval_batch_size: int = 100
    predict_batch_size: int = 64
    offline_engine: str = "tools"
    beam_options: tuple[str, ...] = ()
    settings: dict | None = dataclasses.field(default=None, compare=False, repr=False)

    def students(self) -> list[str]:
        """Each iteration's student architecture."""
        names = list(self.student_model_names) or [self.teacher_model_name]
        if len(names) == 1:
            names = names * self.iterations
        if len(names) != self.iterations:
            raise UserError(f"--student_model_names lists {len(names)} models for {self.iterations} iterations: "
                            "give one name, or one per iteration")
        return names
