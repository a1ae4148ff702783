"""Direct entry point for --mode=predict: python predict.py --shard=3 [the flags of main.py]."""

from absl import flags

from noisy_student_tf.flags import define_main_flags
from noisy_student_tf.jobs import common
from noisy_student_tf.jobs.main import main

if __name__ == "__main__":
    define_main_flags()
    flags.FLAGS.set_default("mode", "predict")
    common.run(main)
