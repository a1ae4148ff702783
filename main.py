"""Upstream-compatible entry point: python main.py --mode=train|eval|predict|train_and_eval [upstream flags]."""

from noisy_student_tf.jobs import common
from noisy_student_tf.flags import define_main_flags
from noisy_student_tf.jobs.main import main

if __name__ == "__main__":
    define_main_flags()
    common.run(main)
