"""--label_data_dir=tfds:<name> reads a locally prepared TFDS data set (here TFDS's own mock of svhn_cropped)."""

import json
import os

import tensorflow_datasets as tfds

import jobs_helper


def test_train_and_eval_from_tfds(tmp_path):
    args = jobs_helper.TINY_SVHN + ["--label_data_dir=tfds:svhn_cropped", f"--model_dir={tmp_path}/model",
                                    "--train_steps=4", "--train_batch_size=8", "--num_train_images=24",
                                    "--iterations_per_loop=2", "--save_checkpoints_steps=2", "--eval_batch_size=5"]
    with tfds.testing.mock_data(num_examples=24):
        jobs_helper.train_job(args)
        results = jobs_helper.eval_job(args)
    assert results["test"]["num_images"] == 24  # every image, with a partial last batch of 4
    with open(os.path.join(tmp_path, "model", "eval_results.json")) as f:
        assert json.load(f)["test"]["num_images"] == 24
