"""Entry point of the filtering and balancing step (upstream filter_unlabel.py, same flags)."""

from noisy_student_tf.flags import define_filter_flags
from noisy_student_tf.jobs import common
from noisy_student_tf.jobs.filter_unlabel import main

if __name__ == "__main__":
    define_filter_flags()
    common.run(main)
