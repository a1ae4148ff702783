"""Direct entry point for --mode=train: python train.py [the flags of main.py]."""

from noisy_student_tf import cli

if __name__ == "__main__":
    cli.train()
