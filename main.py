"""Upstream-compatible entry point: python main.py --mode=train|eval|predict|train_and_eval [upstream flags]."""

from noisy_student_tf import cli

if __name__ == "__main__":
    cli.main()
