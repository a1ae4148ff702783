"""Direct entry point for --mode=predict: python predict.py --shard=3 [the flags of main.py]."""

from noisy_student_tf import cli

if __name__ == "__main__":
    cli.predict()
