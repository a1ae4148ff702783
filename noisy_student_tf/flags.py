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
