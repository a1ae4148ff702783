"""--label_data_dir=tfds:<name> reads a locally prepared TFDS data set (here TFDS's own mock of svhn_cropped)."""

import json
import os

import tensorflow_datasets as tfds

import jobs_helper


def test_train_and_eval_from_tfds(tmp_path):
    model_dir, data = tmp_path / "model", "tfds:svhn_cropped"
    with tfds.testing.mock_data(num_examples=24):
        jobs_helper.train_job(model_dir, data, svhn=True, optim__train_steps=4, input__train_batch_size=8,
                              optim__num_train_images=24, loop__iterations_per_loop=2, loop__save_checkpoints_steps=2)
        results = jobs_helper.eval_job(model_dir, data, svhn=True, eval_batch_size=5)
    assert results["test"]["num_images"] == 24  # every image, with a partial last batch of 4
    with open(os.path.join(tmp_path, "model", "eval_results.json")) as f:
        assert json.load(f)["test"]["num_images"] == 24
