"""absl flag definitions, grouped per entry point. Names follow the original code where it had the flag."""

import types

from absl import flags

from noisy_student_tf.config import FILTER_SEED


def define_convert_checkpoint_flags(flag_values=flags.FLAGS) -> None:
    fv = dict(flag_values=flag_values)
    flags.DEFINE_string("tf1_ckpt", None,
                        "TF1 checkpoint: a prefix such as ckpt/teacher_ckpt/model.ckpt, or a directory with a "
                        "'checkpoint' file. Input by default; the output with --to_tf1.", **fv)
    flags.DEFINE_string("keras_model", None, "Keras model file (.keras): the input with --to_tf1.", **fv)
    flags.DEFINE_string("output", None,
                        "Where to write: a .keras file, or with --to_tf1 a checkpoint prefix "
                        "(default: --tf1_ckpt).", **fv)
    flags.DEFINE_bool("to_tf1", False, "Convert a Keras model (--keras_model) to a TF1 checkpoint.", **fv)
    flags.DEFINE_string("model_name", None,
                        "efficientnet-b0 ... efficientnet-b7 or efficientnet-l2; default: read from the input.",
                        **fv)
    flags.DEFINE_integer("num_label_classes", None, "Number of classes; default: read from the checkpoint.", **fv)
    flags.DEFINE_bool("small_image_model", False, "The 32x32 variant (SVHN); strides are not stored in a "
                      "checkpoint, so say it when converting a small-image checkpoint.", **fv)
    flags.DEFINE_integer("input_image_size", None,
                         "Input size of the Keras model; default: the model's resolution, 32 when small.", **fv)
    flags.DEFINE_enum("scope", "auto", ["auto", "student", "teacher"],
                      "Which model of the checkpoint: 'student' (<model_name>/...), 'teacher' "
                      "(teacher_model/<model_name>/...), 'auto' = student if present else teacher. "
                      "With --to_tf1 ('auto' = student): the names to write.", **fv)
    flags.DEFINE_bool("use_ema", True, "Read the ExponentialMovingAverage shadows when present (as upstream "
                      "eval and predict do); false reads the raw variables first.", **fv)
    flags.DEFINE_integer("global_step", 0, "global_step stored in a checkpoint written with --to_tf1.", **fv)


def define_augment_flags(flag_values=flags.FLAGS) -> None:
    """The input-noise flags of the original main.py (read by upstream `data_input.py`), same names and
    defaults."""
    fv = dict(flag_values=flag_values)
    flags.DEFINE_string("augment_name", None, "None: crop/flip only; 'v1': RandAugment.", **fv)
    flags.DEFINE_integer("randaug_layer", 2, "RandAugment: number of ops applied in sequence (N).", **fv)
    flags.DEFINE_integer("randaug_mag", 27, "RandAugment: magnitude of every op (M); above 10 extrapolates.", **fv)
    flags.DEFINE_string("unl_aug", "default", "Augmentation of unlabeled images: 'default' = augment_name, "
                        "'v1', or '' for crop/flip only.", **fv)
    flags.DEFINE_bool("remove_aug", False, "Training images get the eval preprocessing (no crop, flip or "
                      "RandAugment), labeled and unlabeled.", **fv)
    flags.DEFINE_bool("cutout_op", True, "Include Cutout in the RandAugment op list.", **fv)
    flags.DEFINE_enum("randaug_contrast", "pil", ["pil", "upstream"],
                      "RandAugment Contrast: 'pil' blends towards the mean grey level (PIL's definition); "
                      "'upstream' keeps the original code's bug (grey level = pixel count / 256).", **fv)


# Upstream flags that only configured TPUs or were never read (upstream `main.py`): accepted so that
# existing command lines run unchanged, and reported as ignored when set to something else than the default.
IGNORED_FLAGS = ("master", "gcp_project", "tpu_zone", "steps_per_eval", "transpose_input", "num_shards_per_group",
                 "num_tpu_cores", "debug", "data_format", "data_type")


def define_main_flags(flag_values=flags.FLAGS) -> None:
    """Every flag of the original main.py and predict_label.py, same names, types and defaults,
    plus the TF2 additions at the end."""
    fv = dict(flag_values=flag_values)
    from noisy_student_tf import robustness_names as robustness  # TF-free: --help must not import TF

    flags.DEFINE_string("task_name", "imagenet", "imagenet, svhn, digits, or the path of a task_info.json (svhn and "
                        "digits force 32x32 input, the small-image model "
                        "and 10 classes).", **fv)
    flags.DEFINE_string("label_data_dir", None, "Directory (or ';'-joined directories) of labeled TFRecords "
                        "(train*, dev*, test*), or tfds:<name> for a locally prepared TFDS data set.", **fv)
    flags.DEFINE_string("model_dir", None, "Checkpoints, summaries, FLAGS.json, eval_results.json.", **fv)
    flags.DEFINE_bool("init_model", False, "Initialise the student from --init_model_path (without a teacher).", **fv)
    flags.DEFINE_string("init_model_path", None, "Checkpoint for --init_model (model_dir, prefix or TF1).", **fv)
    flags.DEFINE_string("model_name", "efficientnet-b0", "Student architecture.", **fv)
    flags.DEFINE_string("mode", "train_and_eval", "train, eval, predict or train_and_eval (train, then eval).", **fv)
    flags.DEFINE_integer("train_steps", 109474, "Schedule length in steps (times train_ratio).", **fv)
    flags.DEFINE_integer("input_image_size", None, "Student input size; default: the model's resolution.", **fv)
    flags.DEFINE_float("train_ratio", 1.0, "Multiplies train_steps, train_last_step_num and the decay interval.", **fv)
    flags.DEFINE_integer("train_batch_size", 4096, "Labeled images per step (global).", **fv)
    flags.DEFINE_integer("eval_batch_size", 8, "Eval batch size (every image is evaluated).", **fv)
    flags.DEFINE_bool("use_tpu", True, "Upstream default; only --tpu selects a TPU here.", **fv)
    flags.DEFINE_string("master", None, "Ignored (TPU).", **fv)
    flags.DEFINE_string("tpu", None, "Cloud TPU name or address: selects TPUStrategy.", **fv)
    flags.DEFINE_string("gcp_project", None, "Ignored (TPU).", **fv)
    flags.DEFINE_string("tpu_zone", None, "Ignored (TPU).", **fv)
    flags.DEFINE_integer("num_train_images", None, "Size of the labeled training set (defines an epoch).", **fv)
    flags.DEFINE_integer("num_eval_images", None, "Size of dev (checked against what eval counts).", **fv)
    flags.DEFINE_integer("num_test_images", None, "Size of test (checked against what eval counts).", **fv)
    flags.DEFINE_integer("steps_per_eval", 3000, "Ignored (never read upstream).", **fv)
    flags.DEFINE_bool("skip_host_call", False, "No training summaries.", **fv)
    flags.DEFINE_integer("iterations_per_loop", 1000, "Steps per training loop; summaries are written every this "
                         "many steps; checkpoints every max(this, save_checkpoints_steps).", **fv)
    flags.DEFINE_string("data_format", "channels_last", "Ignored: models are channels_last.", **fv)
    flags.DEFINE_integer("num_label_classes", 1000, "Number of classes (svhn: 10).", **fv)
    flags.DEFINE_bool("transpose_input", True, "Ignored (TPU double-transpose trick, a no-op).", **fv)
    flags.DEFINE_bool("use_bfloat16", True, "Run in mixed bfloat16. Upstream default; scripts pass False.", **fv)
    flags.DEFINE_float("base_learning_rate", 0.016, "Learning rate for a batch of 256 (scaled linearly).", **fv)
    flags.DEFINE_float("moving_average_decay", 0.9999, "EMA decay; <= 0 disables EMA.", **fv)
    flags.DEFINE_float("weight_decay", 1e-5, "L2 coefficient.", **fv)
    flags.DEFINE_float("label_smoothing", 0.1, "Label smoothing (labeled loss; hard pseudo labels).", **fv)
    flags.DEFINE_float("dropout_rate", None, "Head dropout override.", **fv)
    flags.DEFINE_float("stochastic_depth_rate", None, "Stochastic depth base rate override (default 0.2).", **fv)
    flags.DEFINE_integer("log_step_count_steps", 64, "Progress log (loss, images/s, ETA) every this many steps.", **fv)
    flags.DEFINE_bool("use_cache", True, "Cache serialized training records in memory.", **fv)
    flags.DEFINE_float("depth_coefficient", None, "Depth multiplier override (student and teacher).", **fv)
    flags.DEFINE_float("width_coefficient", None, "Width multiplier override (student and teacher).", **fv)
    flags.DEFINE_integer("debug", 0, "Ignored.", **fv)
    flags.DEFINE_string("unlabel_data_dir", "", "Directory (or ';'-joined) of unlabeled TFRecords (train*, extra*).",
                        **fv)
    flags.DEFINE_float("unlabel_ratio", 0, "Unlabeled images per labeled image; 0 = supervised.", **fv)
    flags.DEFINE_float("teacher_softmax_temp", -1, "-1: hard pseudo labels; otherwise soft at this temperature.", **fv)
    flags.DEFINE_integer("train_last_step_num", -1, "Train only this many steps, at the end of the schedule.", **fv)
    flags.DEFINE_string("teacher_model_name", None, "Online teacher architecture (None: stored predictions).", **fv)
    flags.DEFINE_string("teacher_model_path", None, "Teacher checkpoint (model_dir, prefix or original TF1).", **fv)
    define_augment_flags(flag_values)
    flags.DEFINE_integer("save_checkpoints_steps", 1000, "Checkpoint interval.", **fv)
    flags.DEFINE_integer("fix_layer_num", -1, "Freeze the stem and the first N blocks (-1: train everything).", **fv)
    flags.DEFINE_integer("num_shards_per_group", -1, "Ignored (TPU cross-replica BN groups).", **fv)
    flags.DEFINE_float("label_data_sample_prob", 1, "Keep each labeled example in the loss with this probability.",
                       **fv)
    flags.DEFINE_integer("num_tpu_cores", None, "Ignored (TPU).", **fv)
    flags.DEFINE_bool("small_image_model", False, "32x32 variant (forced for svhn).", **fv)
    flags.DEFINE_float("final_base_lr", None, "Choose the decay interval so the LR ends near this (per 256).", **fv)
    flags.DEFINE_integer("num_train_shards", None, "Use only the first N labeled training files.", **fv)
    flags.DEFINE_integer("keep_checkpoint_max", 5, "Checkpoints kept.", **fv)
    # predict_label.py
    flags.DEFINE_string("predict_ckpt_path", "", "Checkpoint for --mode=predict (model_dir, prefix or TF1).", **fv)
    flags.DEFINE_string("output_dir", "", "Where predictions / reassigned records go.", **fv)
    flags.DEFINE_string("info_dir", "", "Where per-shard info-*.txt image counts go.", **fv)
    flags.DEFINE_integer("num_shards", 128, "Number of shards of the data set being predicted.", **fv)
    flags.DEFINE_string("shard_id", "0", "Shard index, or comma-separated indices (also --shard).", **fv)
    flags.DEFINE_alias("shard", "shard_id", **fv)
    flags.DEFINE_integer("total_replicas", 1, "Split each shard round-robin into this many parts.", **fv)
    flags.DEFINE_integer("worker_id", 0, "Which part this job predicts.", **fv)
    flags.DEFINE_bool("reassign_label", False, "Re-label already filtered shards.", **fv)
    flags.DEFINE_string("data_type", "tfrecord", "Only tfrecord.", **fv)
    flags.DEFINE_string("file_prefix", "train", "Shard file prefix (extra for raw unlabeled data).", **fv)
    flags.DEFINE_integer("predict_batch_size", 64, "Images per inference batch in predict and reassign (upstream: "
                         "always 8; the results do not depend on it).", **fv)
    # TF2 additions.
    flags.DEFINE_string("strategy", "auto", "auto, default, one_device, mirrored, multi_worker_mirrored or tpu "
                        "(auto: tpu with --tpu, multi-worker from TF_CONFIG, mirrored with several GPUs).", **fv)
    flags.DEFINE_integer("cpu_replicas", 0, "Split the CPU into N logical devices (MirroredStrategy on CPU).", **fv)
    flags.DEFINE_bool("jit_compile", False, "Compile the training step with XLA.", **fv)
    flags.DEFINE_string("mixed_precision", None, "float32, bfloat16 or float16 (float16 uses loss scaling); "
                        "default: bfloat16 if --use_bfloat16 else float32.", **fv)
    flags.DEFINE_bool("deterministic", False, "Deterministic ops (with the seed, a resumed run equals an "
                      "uninterrupted one).", **fv)
    flags.DEFINE_integer("seed", None, "Random seed of the run (default: drawn once and stored in the "
                         "checkpoint and FLAGS.json).", **fv)
    flags.DEFINE_bool("robustness", False, "eval: also top-1 under common corruptions (5 severities each) and FGSM, "
                      "on --robustness_subset; written to model_dir/robustness_results.json.", **fv)
    flags.DEFINE_list("corruptions", list(robustness.CORRUPTIONS), "Corruptions for --robustness.", **fv)
    flags.DEFINE_list("fgsm_epsilons", list(robustness.DEFAULT_EPSILONS), "FGSM step sizes for --robustness, in "
                      "0..255 pixel units.", **fv)
    flags.DEFINE_string("robustness_subset", "test", "The eval subset (dev, test or validation) --robustness uses.",
                        **fv)


def define_filter_flags(flag_values=flags.FLAGS) -> None:
    """The flags of the original filter_unlabel.py, same names, types and defaults, plus ours."""
    fv = dict(flag_values=flag_values)
    flags.DEFINE_string("input_dir", "", "Directory of the unlabeled shards that were predicted.", **fv)
    flags.DEFINE_string("prediction_dir", "", "Directory of the train-info-* prediction files.", **fv)
    flags.DEFINE_string("info_dir", "", "Directory of the info-*.txt image counts.", **fv)
    flags.DEFINE_string("prelim_stats_dir", "", "Directory for per-shard histograms and global totals.", **fv)
    flags.DEFINE_string("output_dir", "", "Root of the filtered output (data/, samples/, stats/, threshold.json).",
                        **fv)
    flags.DEFINE_integer("num_shards", 128, "Number of unlabeled shards.", **fv)
    flags.DEFINE_integer("only_use_num_shards", -1, "If not -1, the totals use only shards 0..N-1.", **fv)
    flags.DEFINE_integer("shard_id", 0, "The shard this invocation handles (also --shard).", **fv)
    flags.DEFINE_alias("shard", "shard_id", **fv)
    flags.DEFINE_integer("num_image", 1300, "Target number of images per class after balancing.", **fv)
    flags.DEFINE_integer("total_replicas", 1, "Number of prediction workers per shard (predict's --total_replicas).",
                         **fv)
    flags.DEFINE_integer("total_label_replicas", -1, "Ignored: upstream overwrote it from the files.", **fv)
    flags.DEFINE_integer("task", -1, "Which prediction worker this job handles (-1: all); part of output names.", **fv)
    flags.DEFINE_integer("debug", 0, "1: only replica 0 and only this shard's stats files.", **fv)
    flags.DEFINE_float("min_threshold", 0.0, "Minimum confidence; one of 0.0, 0.01, ..., 1.0.", **fv)
    flags.DEFINE_float("max_prob", 2, "Images more confident than this are dropped (2: none).", **fv)
    flags.DEFINE_integer("num_label_classes", 1000, "Number of classes.", **fv)
    flags.DEFINE_integer("upsample", 1, "0: never duplicate images of scarce classes.", **fv)
    flags.DEFINE_integer("only_get_stats", 0, "1: phase 1 (statistics); 0: phase 2 (write the filtered data).", **fv)
    flags.DEFINE_string("file_prefix", "train", "Prefix of the input shards (extra for raw unlabeled shards).", **fv)
    flags.DEFINE_string("data_type", "tfrecord", "Only tfrecord.", **fv)
    flags.DEFINE_integer("use_top", 1, "1: the highest threshold that keeps >= num_image images; 0: min_threshold.",
                         **fv)
    flags.DEFINE_bool("eval_imagenet_p", False, "Ignored (never read upstream).", **fv)
    flags.DEFINE_bool("use_all", False, "Keep every image above min_threshold once (no balancing).", **fv)
    # Additions (MIGRATION.md).
    flags.DEFINE_integer("seed", FILTER_SEED, "Seed of the stochastic copies, the shuffle and the samples: the "
                         "same seed gives the same files.", **fv)
    flags.DEFINE_bool("all_shards", False, "Run both phases over every shard in this one process, shards in "
                      "parallel (ignores --shard_id and --only_get_stats).", **fv)
    flags.DEFINE_integer("num_workers", 0, "Threads for --all_shards (0: one per CPU core).", **fv)
    flags.DEFINE_bool("rebuild_stale", False, "Recompute outputs left by an earlier run with other inputs or flags, "
                      "instead of stopping.", **fv)
    flags.DEFINE_float("poll_seconds", 10, "How often to look for the files of other shards' jobs.", **fv)
    flags.DEFINE_float("wait_timeout", 3600, "Give up (naming the missing files) after waiting this many seconds.",
                       **fv)


def define_beam_flags(flag_values=flags.FLAGS) -> None:
    """pseudo_label_beam.py's flags beside main.py's (which describe the teacher): filter_unlabel.py's, under the
    same names, where main.py has none of that name. Beam's pipeline options (--runner, ...) pass through."""
    fv = dict(flag_values=flag_values)
    flags.DEFINE_string("input_dir", "", "Directory of the unlabeled shards (filter_unlabel.py's name; predict.py's "
                        "--label_data_dir is the same).", **fv)
    flags.DEFINE_string("prediction_dir", "", "If given, also write predict.py's train-info-* files here (and the "
                        "info-*.txt counts to --info_dir).", **fv)
    flags.DEFINE_string("prelim_stats_dir", "", "Directory for per-shard histograms and global totals.", **fv)
    flags.DEFINE_integer("num_image", 1300, "Target number of images per class after balancing.", **fv)
    flags.DEFINE_integer("only_use_num_shards", -1, "If not -1, the totals use only shards 0..N-1.", **fv)
    flags.DEFINE_float("min_threshold", 0.0, "Minimum confidence; one of 0.0, 0.01, ..., 1.0.", **fv)
    flags.DEFINE_float("max_prob", 2, "Images more confident than this are dropped (2: none).", **fv)
    flags.DEFINE_integer("upsample", 1, "0: never duplicate images of scarce classes.", **fv)
    flags.DEFINE_integer("use_top", 1, "1: the highest threshold that keeps >= num_image images; 0: min_threshold.",
                         **fv)
    flags.DEFINE_bool("use_all", False, "Keep every image above min_threshold once (no balancing).", **fv)
    flags.DEFINE_bool("rebuild_stale", False, "Run again over outputs of an earlier run with other inputs or flags, "
                      "instead of stopping.", **fv)
    flags.DEFINE_bool("predict_only", False, "Only predict: write --prediction_dir and --info_dir, no filtering.",
                      **fv)
    flags.DEFINE_integer("task", -1, "With --total_replicas > 1: -1 filters every replica's predictions together; "
                         "N >= 0 filters each replica's on its own, as upstream's per-replica filter_unlabel.py jobs "
                         "(output names carry the replica).", **fv)


def define_driver_flags(flag_values=flags.FLAGS) -> None:
    """iterate.py's flags (noisy_student_tf/jobs/iterate.py)."""
    fv = dict(flag_values=flag_values)
    flags.DEFINE_string("task_name", "digits", "imagenet, svhn, digits or a task_info.json path (as main.py).", **fv)
    flags.DEFINE_string("label_data_dir", "data/digits/proc", "Labeled train*/dev*/test* shards.", **fv)
    flags.DEFINE_string("unlabel_data_dir", "data/digits/proc/unlabeled", "Unlabeled shards to pseudo-label.", **fv)
    flags.DEFINE_string("unlabel_file_prefix", "extra", "Prefix of the unlabeled shards (<prefix>-SSSSS-of-NNNNN).",
                        **fv)
    flags.DEFINE_string("output_dir", "ckpt/digits", "Where every stage's output goes.", **fv)
    flags.DEFINE_integer("iterations", 3, "Student iterations after the teacher.", **fv)
    flags.DEFINE_string("teacher_model_name", "efficientnet-b0", "The first teacher's architecture.", **fv)
    flags.DEFINE_list("student_model_names", [], "Each iteration's student (one name for all, or one per "
                      "iteration; default: the teacher's). Equal or larger than the model before, as in the paper.",
                      **fv)
    flags.DEFINE_integer("num_label_classes", 10, "Classes (tasks with a fixed count override it).", **fv)
    flags.DEFINE_integer("train_batch_size", 32, "Labeled images per step.", **fv)
    flags.DEFINE_integer("teacher_train_batch_size", None, "Labeled images per step of the first teacher "
                         "(default: --train_batch_size).", **fv)
    flags.DEFINE_integer("teacher_train_steps", 600, "Teacher training steps.", **fv)
    flags.DEFINE_integer("student_train_steps", 600, "Each student's training steps.", **fv)
    flags.DEFINE_float("unlabel_ratio", 3, "Unlabeled images per labeled image in a student's batch.", **fv)
    flags.DEFINE_float("teacher_softmax_temp", 1, "-1: hard pseudo labels; else soft labels at this temperature.",
                       **fv)
    flags.DEFINE_string("augment_name", "v1", "Student input noise: 'v1' = RandAugment, '' = crop only.", **fv)
    flags.DEFINE_integer("randaug_mag", 5, "RandAugment magnitude (upstream's SVHN recipe: 5).", **fv)
    flags.DEFINE_integer("randaug_layer", 2, "RandAugment ops per image.", **fv)
    flags.DEFINE_float("base_learning_rate", 0.016, "Learning rate per 256 images.", **fv)
    flags.DEFINE_float("weight_decay", 1e-4, "L2 coefficient (upstream's SVHN recipe: 1e-4).", **fv)
    flags.DEFINE_float("final_base_lr", None, "As main.py: the LR to decay to by the end.", **fv)
    flags.DEFINE_integer("num_image", 0, "Images per class after filtering/balancing (0: unlabeled images / classes).",
                         **fv)
    flags.DEFINE_float("min_threshold", 0.3, "Minimum teacher confidence (upstream scripts: 0.3).", **fv)
    flags.DEFINE_list("train_flags", [], "More main.py flags for every training run, e.g. "
                      "--train_flags=--width_coefficient=0.5,--dropout_rate=0.3.", **fv)
    flags.DEFINE_bool("init_student_from_teacher", False, "Start each student from its teacher's weights (upstream's "
                      "--init_model) instead of from scratch: needs equal architectures; a shortcut for small compute "
                      "budgets, not the paper's recipe.", **fv)
    flags.DEFINE_integer("seed", 0, "Seed of every stage (training, filtering).", **fv)
    flags.DEFINE_bool("deterministic", True, "Deterministic ops, so a resumed run ends as an uninterrupted one.", **fv)
    flags.DEFINE_enum("offline_engine", "tools", ["tools", "beam"], "How each iteration pseudo-labels: tools (predict "
                      "and filter_unlabel in this process) or beam (pseudo_label_beam.py's Apache Beam pipeline; same "
                      "files).", **fv)
    flags.DEFINE_list("beam_options", [], "Beam pipeline options with --offline_engine=beam, e.g. "
                      "--beam_options=--direct_num_workers=2,--direct_running_mode=multi_processing (without "
                      "--runner: Beam's FnApiRunner).", **fv)
    # Additions.
    flags.DEFINE_enum("recipe", None, ["digits", "svhn", "imagenet"], "Start from a named recipe "
                      "(noisy_student_tf/recipes.py) instead of these defaults; the flags given still win.", **fv)


# prepro_images.py's defaults: data/sources/image_folder.py's Options() and modes (tests/test_cli.py compares them).
_IMAGE_FOLDER_LABEL_MODES = ("auto", "folders", "none")
_IMAGE_FOLDER_BAD_IMAGE_MODES = ("skip", "fail")
_IMAGE_FOLDER_DEFAULTS = types.SimpleNamespace(labels="auto", image_size=0, dev_fraction=0.1, test_fraction=0.1,
                                               num_shards=16, seed=0, on_bad_image="skip", num_classes=0, name="",
                                               flip=True, num_threads=0)
_SVHN_UPSTREAM_SEED = 0  # data/sources/svhn.py's UPSTREAM_SEED


def define_prepro_digits_flags(flag_values=flags.FLAGS) -> None:
    """prepro_digits.py's flags."""
    fv = dict(flag_values=flag_values)
    flags.DEFINE_string("output_dir", "data/digits/proc", "Where the shards go (unlabeled/ below it).", **fv)
    flags.DEFINE_integer("seed", 0, "Seed of the split.", **fv)


def define_export_flags(flag_values=flags.FLAGS) -> None:
    """What export.py adds to main.py's flags."""
    fv = dict(flag_values=flag_values)
    flags.DEFINE_string("output", None, "Local directory to create with model.keras, saved_model/ and "
                        "export_info.json; must not exist or be empty unless --overwrite.", **fv)
    flags.DEFINE_bool("overwrite", False, "Replace a non-empty --output directory (only once the new export "
                      "is complete).", **fv)


def define_proc_svhn_flags(flag_values=flags.FLAGS) -> None:
    """proc_svhn.py's flags."""
    fv = dict(flag_values=flag_values)
    # Upstream's four flags, with upstream's defaults (upstream proc_svhn.py).
    flags.DEFINE_string("task_name", "svhn", "Task to prepare; only svhn exists.", **fv)
    flags.DEFINE_string("raw_data_dir", None,
                        "Directory holding train_32x32.mat, test_32x32.mat and extra_32x32.mat (directly or in "
                        "downloaded_data/). Nothing is downloaded. Not used with --tfds_name.", **fv)
    flags.DEFINE_string("output_dir", "", "TFRecord output root; extra goes to <output_dir>/unlabeled/.", **fv)
    flags.DEFINE_bool("full_train_data", False,
                      "No dev split: train keeps all images, dev is a copy of test, and every file is named "
                      "<split>_full-*.", **fv)
    # Additions.
    flags.DEFINE_string("tfds_name", "",
                        "Read a locally prepared TFDS data set instead of the .mat files, e.g. svhn_cropped "
                        "(splits train/test/extra; from TFDS's data directory, $TFDS_DATA_DIR or "
                        "~/tensorflow_datasets; never downloaded).", **fv)
    flags.DEFINE_integer("seed", _SVHN_UPSTREAM_SEED,
                         "Seed of the train/dev split and of the extra order; the default gives upstream's split.",
                         **fv)


def define_prepro_images_flags(flag_values=flags.FLAGS) -> None:
    """prepro_images.py's flags."""
    fv = dict(flag_values=flag_values)
    defaults = _IMAGE_FOLDER_DEFAULTS
    flags.DEFINE_string("input_dir", None, "Folder of images: one sub-folder per class (labeled), or flat "
                        "(unlabeled).", **fv)
    flags.DEFINE_string("output_dir", None, "Where the shards, task_info.json and class_names.json go; unlabeled "
                        "shards go to <output_dir>/unlabeled.", **fv)
    flags.DEFINE_enum("labels", defaults.labels, _IMAGE_FOLDER_LABEL_MODES,
                      "folders: each sub-folder is a class; none: every image is unlabeled; auto: folders if "
                      "--input_dir has sub-folders.", **fv)
    flags.DEFINE_integer("image_size", defaults.image_size, "0: keep sizes (ImageNet-style path); S: centre "
                         "square crop resized to SxS, small-image model (32 as SVHN).", **fv)
    flags.DEFINE_float("dev_fraction", defaults.dev_fraction, "Share of each class for dev.", **fv)
    flags.DEFINE_float("test_fraction", defaults.test_fraction, "Share of each class for test.", **fv)
    flags.DEFINE_integer("num_shards", defaults.num_shards, "Shards of train and of unlabeled extra (dev and test "
                         "get half as many); never more than images.", **fv)
    flags.DEFINE_integer("seed", defaults.seed, "Seed of the split and of the record order.", **fv)
    flags.DEFINE_enum("on_bad_image", defaults.on_bad_image, _IMAGE_FOLDER_BAD_IMAGE_MODES,
                      "skip: leave unreadable files out and list them in bad_images.txt; fail: stop at the first.",
                      **fv)
    flags.DEFINE_integer("num_classes", defaults.num_classes, "Unlabeled images only: length of the stored "
                         "(dummy) teacher probabilities; 0 = from <output_dir>/task_info.json of labeled data.", **fv)
    flags.DEFINE_string("name", defaults.name, "Task name in task_info.json; default: the input folder's name.",
                        **fv)
    flags.DEFINE_bool("flip", defaults.flip, "Random horizontal flips in training (turn off for text, digits).",
                      **fv)
    flags.DEFINE_integer("num_threads", defaults.num_threads, "Decoding threads; 0 = one per core (at most 8).",
                         **fv)
