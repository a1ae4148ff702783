"""Direct entry point for re-labelling filtered shards (main.py --mode=predict --reassign_label=True)."""

from absl import flags

from noisy_student_tf.flags import define_main_flags
from noisy_student_tf.jobs import common
from noisy_student_tf.jobs.main import main

if __name__ == "__main__":
    define_main_flags()
    flags.FLAGS.set_default("mode", "predict")
    flags.FLAGS.set_default("reassign_label", True)
    flags.FLAGS.set_default("file_prefix", "train")
    common.run(main)
