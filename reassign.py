"""Direct entry point for re-labelling filtered shards (main.py --mode=predict --reassign_label=True)."""

from noisy_student_tf import cli

if __name__ == "__main__":
    cli.reassign()
