"""Prepare SVHN from local files: python proc_svhn.py --raw_data_dir=data/svhn/raw --output_dir=data/svhn/proc
[--full_train_data] [--tfds_name=svhn_cropped] [--seed=0]. Nothing is downloaded."""

from noisy_student_tf import cli

if __name__ == "__main__":
    cli.proc_svhn()
