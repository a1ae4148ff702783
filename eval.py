"""Direct entry point for --mode=eval: python eval.py [the flags of main.py]."""

from noisy_student_tf import cli

if __name__ == "__main__":
    cli.evaluate()
