"""The typed configuration of every job: frozen dataclasses, nested, with the upstream flag each field comes from.

Each job is `run(config)`: `jobs.train.run(TrainConfig)`, `jobs.evaluate.run(EvalConfig)`,
`jobs.predict.run(PredictConfig)`, `jobs.filter_unlabel.run(FilterConfig)`, `jobs.export.run(ExportConfig)`,
`jobs.convert_checkpoint.run(ConvertConfig)`, `jobs.pseudo_label_beam.run(BeamConfig)` and the iterative driver
`jobs.iterate.run(DriverConfig)`. The offline configs also name the files their stage reads and writes
(`PredictConfig.input_path`, `FilterConfig.data_path`, ...; the names themselves are in `file_names`), so every
stage, the Beam pipeline and the driver ask the same place. The command lines build these from their absl flags
(`noisy_student_tf.cli.adapters`, with upstream main()'s derived values); Python callers build them directly or
take a named recipe (`noisy_student_tf.recipes`) and change fields with `dataclasses.replace`.

Values here are resolved: no "default from somewhere else" is left for a job to work out, except where a field
says so (`seed=None`: drawn once and kept in the checkpoint). Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math

from noisy_student_tf import file_names
from noisy_student_tf.errors import UserError
from noisy_student_tf.robustness_names import CORRUPTIONS, DEFAULT_EPSILONS
from noisy_student_tf.tasks import TaskInfo

# Upstream `filter_unlabel.py` and `utils.py` seed their random draws with 12345: the filter's stochastic copies,
# its shuffle of the kept records and its sample images, and reassign's sample images.
FILTER_SEED = 12345

# Upstream `autoaugment.py` has one policy name for RandAugment; None (or '') is crop and flip only.
AUGMENT_NAMES = ("v1",)
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def _join(*parts: str) -> str:
    """`storage.join`, imported when a path is first asked for: this module stays free of TensorFlow."""
    from noisy_student_tf import storage

    return storage.join(*parts)


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
class InputOptions:
    """The input settings the driver gives every training run; it sets the data and batch sizes per stage.

    Args:
        label_data_sample_prob, use_cache, num_train_shards: as in `InputConfig`.
    """

    label_data_sample_prob: float = 1.0
    use_cache: bool = True
    num_train_shards: int | None = None


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

    @classmethod
    def of(cls, options: InputOptions, **data) -> InputConfig:
        """The input of one training run: `options` with its data and batch sizes (`data`: the other fields)."""
        return cls(**dataclasses.asdict(options), **data)

    @property
    def unlabeled_batch_size(self) -> int:
        """Unlabeled images per step, over all replicas (`unlabeled_batch_size`)."""
        return unlabeled_batch_size(self.train_batch_size, self.unlabel_ratio, self.label_data_sample_prob)


def unlabeled_batch_size(train_batch_size: int, unlabel_ratio: float, label_data_sample_prob: float = 1.0) -> int:
    """Unlabeled images per step for `train_batch_size` labeled ones: ceil(B * p * r), upstream `data_input.py`
    (`unl_bsz = int(math.ceil(bsz * FLAGS.label_data_sample_prob * FLAGS.unlabel_ratio))`). The command line
    and the Python API both size their batches with this."""
    return int(math.ceil(train_batch_size * label_data_sample_prob * unlabel_ratio))


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
        flag_values: the command line's flag values, written as FLAGS.json as upstream `main.py` does; a run
            configured in Python (None) writes its resolved config as config.json instead.
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
    seed: int = FILTER_SEED
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

    # --- the files of one shard (upstream `predict_label.py`'s names) ---
    def input_path(self, shard: int) -> str:
        """The file this job reads for `shard`: `<input_dir>/<file_prefix>-SSSSS-of-NNNNN`, or with `reassign` the
        filtered shard `<input_dir>/<file_prefix>-W-SSSSS-of-NNNNN` (upstream `utils.py`, `get_reassign_filename`)."""
        if self.reassign:
            return _join(self.input_dir, self._filtered_name(shard))
        return _join(self.input_dir, file_names.shard_name(self.file_prefix, shard, self.num_shards))

    def prediction_path(self, shard: int, worker: int | None = None) -> str:
        """Its predictions for replica `worker` (default: this job's `worker_id`)."""
        worker = self.worker_id if worker is None else worker
        return _join(self.output_dir, file_names.prediction_name(shard, self.num_shards, worker))

    def info_path(self, shard: int, worker: int | None = None) -> str:
        """Its image count for replica `worker` (default: this job's `worker_id`)."""
        worker = self.worker_id if worker is None else worker
        return _join(self.info_dir, file_names.info_name(shard, self.num_shards, worker))

    def reassign_output_path(self, shard: int) -> str:
        """Where reassign writes the re-labelled `input_path(shard)`: the same name in `output_dir`."""
        return _join(self.output_dir, self._filtered_name(shard))

    def _filtered_name(self, shard: int) -> str:
        return file_names.filtered_name(self.worker_id, shard, self.num_shards, prefix=self.file_prefix)


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
        input: the input options of every training run (its data and batch sizes come from the fields above).
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
    input: InputOptions = InputOptions()
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


@dataclasses.dataclass(frozen=True)
class FilterConfig:
    """The flags of upstream filter_unlabel.py plus the additions described in MIGRATION.md; `jobs.filter_unlabel.run`
    runs it. The methods below name every file the filter reads and writes."""

    input_dir: str
    prediction_dir: str
    info_dir: str
    prelim_stats_dir: str
    output_dir: str
    num_classes: int = 1000
    num_shards: int = 128
    only_use_num_shards: int = -1
    num_image: int = 1300
    total_replicas: int = 1
    replica: int = -1  # upstream --task: the prediction replica this job filters; -1 all of them
    debug: int = 0
    min_threshold: float = 0.0
    max_prob: float = 2.0
    upsample: bool = True
    file_prefix: str = "train"
    use_top: bool = True
    use_all: bool = False
    seed: int = FILTER_SEED
    rebuild_stale: bool = False
    poll_seconds: float = 10.0
    wait_timeout: float = 3600.0
    # Which invocation this is: one shard's phase (upstream), or both phases of every shard (--all_shards).
    shard_id: int = 0
    only_get_stats: bool = False
    all_shards: bool = False
    num_workers: int | None = None  # --all_shards threads; None: one per CPU core

    def validate(self) -> None:
        for name in ("num_classes", "num_shards", "num_image", "total_replicas"):
            if getattr(self, name) <= 0:
                flag = "num_label_classes" if name == "num_classes" else name
                raise UserError(f"--{flag} must be positive, got {getattr(self, name)}")
        if not (self.replica == -1 or 0 <= self.replica < self.total_replicas):
            raise UserError(f"--task={self.replica} must be -1 (all prediction replicas) or "
                            f"0..{self.total_replicas - 1}")
        if self.only_use_num_shards != -1 and not 0 < self.only_use_num_shards <= self.num_shards:
            raise UserError(f"--only_use_num_shards={self.only_use_num_shards} must be -1 or 1..{self.num_shards}")
        if not 0.0 <= self.min_threshold <= 1.0:
            # Upstream `get_threshold` walks the grid 0.00..1.00 down to min_threshold: above 1 no class can stop.
            raise UserError(f"--min_threshold={self.min_threshold:g} must be a confidence in 0..1 (e.g. 0.3)")
        if self.max_prob <= self.min_threshold:
            raise UserError(f"--max_prob={self.max_prob} must be above --min_threshold={self.min_threshold}")
        for name in ("prediction_dir", "info_dir", "prelim_stats_dir", "output_dir", "input_dir"):
            if not getattr(self, name):
                raise UserError(f"--{name} is required")
        file_names.check_file_prefix(self.file_prefix)

    # --- names (upstream filter_unlabel.py's and local_scripts/svhn/filter_unlabel.sh's) ---
    def prelim_path(self, shard: int, replica: int) -> str:
        return _join(self.prelim_stats_dir, file_names.prelim_stats_name(shard, replica))

    def stats_path(self, shard: int, replica: int) -> str:
        return _join(self.output_dir, "stats", file_names.stats_name(shard, replica))

    def data_path(self, shard: int) -> str:
        return _join(self.output_dir, "data", file_names.filtered_name(self.replica, shard, self.num_shards))

    def input_shard(self, shard: int) -> str:
        return _join(self.input_dir, file_names.shard_name(self.file_prefix, shard, self.num_shards))

    def prediction_paths(self, shard: int, worker: int) -> tuple[str, str]:
        """predict's files of one shard and replica that the filter reads: predictions and image count."""
        return (_join(self.prediction_dir, file_names.prediction_name(shard, self.num_shards, worker)),
                _join(self.info_dir, file_names.info_name(shard, self.num_shards, worker)))

    @property
    def total_counts_path(self) -> str:
        return _join(self.prelim_stats_dir, "total_counts.json")

    @property
    def total_counts_sum_path(self) -> str:
        return _join(self.prelim_stats_dir, "total_counts_sum.json")

    @property
    def final_stats_path(self) -> str:
        return _join(self.output_dir, "stats", "final_stats.json")

    @property
    def threshold_path(self) -> str:
        return _join(self.output_dir, "threshold.json")

    # --- who reads what ---
    def workers(self) -> list[int]:
        """The prediction replicas this job reads (upstream `filter_unlabel.py`, `main`)."""
        if self.debug == 1:
            return [0]
        if self.replica != -1:
            return [self.replica]  # one replica per job: total_label_replicas must equal total_replicas
        return list(range(self.total_replicas))

    def aggregated(self) -> list[tuple[int, int]]:
        """(shard, replica) pairs whose files the master sums (upstream `filter_unlabel.py`, `main`: one file per
        shard and task)."""
        if self.debug == 1:
            return [(0, self.replica)]
        shards = self.num_shards if self.only_use_num_shards == -1 else self.only_use_num_shards
        # Upstream always summed tasks 0..R-1, so a run with --task=-1 waited forever for files named _0.
        replicas = [-1] if self.replica == -1 else range(self.total_replicas)
        return [(shard, replica) for shard in range(shards) for replica in replicas]

    def is_master(self, shard: int) -> bool:
        return shard == 0 and self.replica in (-1, 0)


@dataclasses.dataclass(frozen=True)
class BeamConfig:
    """The offline stage on a Beam runner (`pseudo_label_beam.py`; `jobs.pseudo_label_beam.run`, which runs
    `offline.beam_pipeline.run`).

    Args:
        predict: the teacher (`checkpoint`, `model`, `task`, `use_ema`, `precision`), the unlabeled shards
            (`input_dir`, `file_prefix`, `num_shards`, `total_replicas`) and `batch_size`; where predictions go
            (`output_dir`, `info_dir`) when `write_predictions`. With `predict.reassign`: the filtered shards to
            re-label (`input_dir`, `shards`, `worker_id`) and where the re-labelled ones go (`output_dir`).
        filter: the filter's settings (its `input_dir`, `num_shards`, `file_prefix`, `total_replicas` and
            `num_classes` must be predict's); None: no filtering (predictions only, or reassign).
        write_predictions: also write predict.py's `train-info-*` and `info-*.txt` files.
        pipeline_args: Beam pipeline options, e.g. `("--runner=FnApiRunner", "--direct_num_workers=2",
            "--direct_running_mode=multi_processing")`; without `--runner`, `offline.beam_pipeline.DEFAULT_RUNNER`.
    """

    predict: PredictConfig
    filter: FilterConfig | None = None
    write_predictions: bool = False
    pipeline_args: tuple[str, ...] = ()

    def validate(self) -> None:
        self.predict.validate(writes_files=self.predict.reassign or self.write_predictions)
        file_names.check_file_prefix(self.predict.file_prefix)
        if self.predict.reassign:
            if self.filter is not None or self.write_predictions:
                raise UserError("--reassign_label re-labels filtered shards: it neither filters nor writes "
                                "predictions; run it on its own")
            return
        if self.filter is None:
            if not self.write_predictions:
                raise UserError("nothing to do: give the filter's directories, or write the predictions "
                                "(--predict_only with --prediction_dir and --info_dir)")
            return
        f, p = self.filter, self.predict
        # The filter reads no prediction files here: they are written only when asked (write_predictions).
        dataclasses.replace(f, prediction_dir=f.prediction_dir or "-", info_dir=f.info_dir or "-").validate()
        if f.debug:
            raise UserError("--debug=1 reads only replica 0's files of one shard: use filter_unlabel.py for that")
        for name, ours, theirs in (("input_dir", f.input_dir, p.input_dir), ("num_shards", f.num_shards, p.num_shards),
                                   ("file_prefix", f.file_prefix, p.file_prefix),
                                   ("total_replicas", f.total_replicas, p.total_replicas),
                                   ("num_label_classes", f.num_classes, p.model.num_classes)):
            if ours != theirs:
                raise UserError(f"the filter's {name} ({ours!r}) differs from predict's ({theirs!r})")
