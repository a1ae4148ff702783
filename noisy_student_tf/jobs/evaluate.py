"""`--mode=eval` (spec §5.10): top-1, top-5 and loss on dev and test with the EMA weights of model_dir's latest
checkpoint, every image counted; also written to model_dir/eval_results.json."""

from __future__ import annotations

import json
import os

import tensorflow as tf
from absl import logging

from noisy_student_tf import robustness
from noisy_student_tf.data import pipeline
from noisy_student_tf.errors import UserError, first_line
from noisy_student_tf.io_utils import atomic_write_text, remove_dead_temporaries
from noisy_student_tf.jobs import settings as settings_lib
from noisy_student_tf.training import checkpoints, losses
from noisy_student_tf.training.trainer import normalize

RESULTS_FILE = "eval_results.json"
ROBUSTNESS_FILE = "robustness_results.json"


def evaluate_subset(model, dataset, *, mean, std, num_classes: int, label_smoothing: float) -> dict:
    top_k = min(5, num_classes)

    @tf.function
    def batch_sums(images, labels):
        logits = tf.cast(model(normalize(images, mean, std), training=False), tf.float32)
        targets = losses.smoothed_one_hot(labels, num_classes, label_smoothing)
        top1 = tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels)
        top5 = tf.math.in_top_k(labels, logits, top_k)
        return (tf.reduce_sum(losses.cross_entropy(targets, logits)), tf.reduce_sum(tf.cast(top1, tf.float32)),
                tf.reduce_sum(tf.cast(top5, tf.float32)), tf.shape(labels)[0])

    totals = [0.0, 0.0, 0.0, 0]
    for images, labels in dataset:
        for i, value in enumerate(batch_sums(images, labels)):
            totals[i] += value.numpy()
    ce, top1, top5, count = totals
    if not count:
        raise UserError("no images to evaluate")
    return {"top_1_accuracy": float(top1 / count), "top_5_accuracy": float(top5 / count),
            "loss": float(ce / count), "num_images": int(count)}


def run(F) -> dict:
    settings = settings_lib.resolve(F)
    if not F.model_dir:
        raise UserError("--model_dir is required: the training run to evaluate")
    if not F.label_data_dir:
        raise UserError("--label_data_dir is required: the directory of the dev*/test* shards")
    if F.eval_batch_size <= 0:
        raise UserError(f"--eval_batch_size must be positive, got {F.eval_batch_size}")
    if F.robustness:  # flag errors before the work
        corruptions = robustness.check_corruptions(F.corruptions)
        epsilons = robustness.parse_epsilons(F.fgsm_epsilons)
        subsets = pipeline.eval_subsets(F.label_data_dir)
        if F.robustness_subset not in subsets:
            raise UserError(f"--robustness_subset={F.robustness_subset!r}: {F.label_data_dir} has "
                            f"{', '.join(subsets)} to evaluate")
    model = settings.model.build()
    description = checkpoints.load_inference_weights(model, F.model_dir, prefer_ema=F.moving_average_decay > 0,
                                                     what="model", model_name=settings.model.model_name)
    logging.info("evaluating %s", description)
    wd_loss = float(losses.weight_decay_loss(model.trainable_variables, F.weight_decay))
    expected = {"dev": settings.num_eval_images, "test": settings.num_test_images}
    results = {}
    for subset in pipeline.eval_subsets(F.label_data_dir):
        dataset = pipeline.eval_dataset(F.label_data_dir, subset, F.eval_batch_size,
                                        image_size=settings.model.image_size,
                                        small_image_model=settings.model.small_image_model,
                                        num_classes=settings.model.num_classes)
        try:
            result = evaluate_subset(model, dataset, mean=settings.task.mean, std=settings.task.std,
                                     num_classes=settings.model.num_classes, label_smoothing=F.label_smoothing)
        except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as e:
            raise UserError(f"bad {subset} data in {F.label_data_dir}: {first_line(e)}") from None
        result["loss"] += wd_loss  # upstream's eval loss includes the weight decay term
        flag = {"dev": "num_eval_images", "test": "num_test_images"}.get(subset)
        if flag and F[flag].present and expected[subset] != result["num_images"]:
            logging.warning("%s: counted %d images, --%s=%d", subset, result["num_images"], flag, expected[subset])
        logging.info("%s: top-1 %.4f  top-5 %.4f  loss %.4f  (%d images)", subset, result["top_1_accuracy"],
                     result["top_5_accuracy"], result["loss"], result["num_images"])
        results[subset] = result
    os.makedirs(F.model_dir, exist_ok=True)
    remove_dead_temporaries(F.model_dir)  # a results file whose writer was killed (live writers' are kept)
    atomic_write_text(os.path.join(F.model_dir, RESULTS_FILE), json.dumps(results, indent=2) + "\n")
    if F.robustness:
        results["robustness"] = evaluate_robustness(F, settings, model, corruptions, epsilons)
    return results


def evaluate_robustness(F, settings, model, corruptions, epsilons) -> dict:
    """Paper §4.3-4.4: top-1 under corruptions and FGSM, in its own file (eval_results.json keeps upstream's
    shape)."""
    dataset = pipeline.eval_dataset(F.label_data_dir, F.robustness_subset, F.eval_batch_size,
                                    image_size=settings.model.image_size,
                                    small_image_model=settings.model.small_image_model,
                                    num_classes=settings.model.num_classes)
    logging.info("robustness on %s: %d corruptions x 5 severities, FGSM at %s", F.robustness_subset,
                 len(corruptions), ", ".join(f"{e:g}" for e in epsilons) or "no epsilon")
    result = robustness.evaluate(model, dataset, mean=settings.task.mean, std=settings.task.std,
                                 corruptions=corruptions, epsilons=epsilons, seed=F.seed or 0, log=logging.info)
    result["subset"] = F.robustness_subset
    atomic_write_text(os.path.join(F.model_dir, ROBUSTNESS_FILE), json.dumps(result, indent=2) + "\n")
    return result
