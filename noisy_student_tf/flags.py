"""absl flag definitions, grouped per entry point. Names follow the original code where it had the flag."""

from absl import flags


def define_convert_checkpoint_flags() -> None:
    flags.DEFINE_string("tf1_ckpt", None,
                        "TF1 checkpoint: a prefix such as ckpt/teacher_ckpt/model.ckpt, or a directory with a "
                        "'checkpoint' file. Input by default; the output with --to_tf1.")
    flags.DEFINE_string("keras_model", None, "Keras model file (.keras): the input with --to_tf1.")
    flags.DEFINE_string("output", None,
                        "Where to write: a .keras file, or with --to_tf1 a checkpoint prefix "
                        "(default: --tf1_ckpt).")
    flags.DEFINE_bool("to_tf1", False, "Convert a Keras model (--keras_model) to a TF1 checkpoint.")
    flags.DEFINE_string("model_name", None,
                        "efficientnet-b0 ... efficientnet-b7 or efficientnet-l2; default: read from the input.")
    flags.DEFINE_integer("num_label_classes", None, "Number of classes; default: read from the checkpoint.")
    flags.DEFINE_bool("small_image_model", False, "The 32x32 variant (SVHN); strides are not stored in a "
                      "checkpoint, so say it when converting a small-image checkpoint.")
    flags.DEFINE_integer("input_image_size", None,
                         "Input size of the Keras model; default: the model's resolution, 32 when small.")
    flags.DEFINE_enum("scope", "auto", ["auto", "student", "teacher"],
                      "Which model of the checkpoint: 'student' (<model_name>/...), 'teacher' "
                      "(teacher_model/<model_name>/...), 'auto' = student if present else teacher. "
                      "With --to_tf1 ('auto' = student): the names to write.")
    flags.DEFINE_bool("use_ema", True, "Read the ExponentialMovingAverage shadows when present (as upstream "
                      "eval and predict do); false reads the raw variables first.")
    flags.DEFINE_integer("global_step", 0, "global_step stored in a checkpoint written with --to_tf1.")


def define_augment_flags(flag_values=flags.FLAGS) -> None:
    """The input-noise flags of the original main.py (spec §1.1, §9.4-9.6), same names and defaults."""
    flags.DEFINE_string("augment_name", None, "None: crop/flip only; 'v1': RandAugment.", flag_values=flag_values)
    flags.DEFINE_integer("randaug_layer", 2, "RandAugment: number of ops applied in sequence (N).",
                         flag_values=flag_values)
    flags.DEFINE_integer("randaug_mag", 27, "RandAugment: magnitude of every op (M); above 10 extrapolates.",
                         flag_values=flag_values)
    flags.DEFINE_string("unl_aug", "default", "Augmentation of unlabeled images: 'default' = augment_name, "
                        "'v1', or '' for crop/flip only.", flag_values=flag_values)
    flags.DEFINE_bool("remove_aug", False, "Training images get the eval preprocessing (no crop, flip or "
                      "RandAugment), labeled and unlabeled.", flag_values=flag_values)
    flags.DEFINE_bool("cutout_op", True, "Include Cutout in the RandAugment op list.", flag_values=flag_values)
    flags.DEFINE_enum("randaug_contrast", "pil", ["pil", "upstream"],
                      "RandAugment Contrast: 'pil' blends towards the mean grey level (PIL's definition); "
                      "'upstream' keeps the original code's bug (grey level = pixel count / 256).",
                      flag_values=flag_values)
