"""Prepare the bundled digits task: python prepro_digits.py [--output_dir=data/digits/proc] [--seed=0]."""

from noisy_student_tf.jobs import common, prepro_digits

if __name__ == "__main__":
    prepro_digits.define_flags()
    common.run(prepro_digits.main)
