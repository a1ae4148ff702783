"""Prepare the bundled digits task: python prepro_digits.py [--output_dir=data/digits/proc] [--seed=0]."""

from noisy_student_tf import cli

if __name__ == "__main__":
    cli.prepro_digits()
