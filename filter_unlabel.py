"""Entry point of the filtering and balancing step (upstream filter_unlabel.py, same flags)."""

from noisy_student_tf import cli

if __name__ == "__main__":
    cli.filter_unlabel()
