"""Runs the real training/eval jobs in-process with their own flag values (no TF start-up per run)."""

from absl import flags

from noisy_student_tf.flags import define_main_flags
from noisy_student_tf.jobs import evaluate, train

# Flags every small test run shares: 16x16 images on the small-image path, 10 classes, a tiny EfficientNet
# (one block per stage, 8-channel stem), float32 on CPU.
TINY = ["--task_name=imagenet", "--small_image_model", "--input_image_size=16", "--num_label_classes=10",
        "--model_name=efficientnet-b0", "--width_coefficient=0.25", "--depth_coefficient=0.25",
        "--use_tpu=False", "--use_bfloat16=False"]
TINY_SIZE = 16
# The same tiny network on the SVHN task (32x32, 10 classes, SVHN normalisation, no flips).
TINY_SVHN = ["--task_name=svhn", "--model_name=efficientnet-b0", "--width_coefficient=0.25",
             "--depth_coefficient=0.25", "--use_tpu=False", "--use_bfloat16=False"]


def parse(args):
    values = flags.FlagValues()
    define_main_flags(values)
    values(["main.py", *args])
    return values


def train_job(args):
    return train.run(parse(args))


def eval_job(args):
    return evaluate.run(parse(args))


def predict_job(args):
    from noisy_student_tf.jobs import predict

    return predict.run(parse(args))


def filter_job(args):
    from noisy_student_tf.flags import define_filter_flags
    from noisy_student_tf.jobs import filter_unlabel

    values = flags.FlagValues()
    define_filter_flags(values)
    values(["filter_unlabel.py", *args])
    return filter_unlabel.run(values)
