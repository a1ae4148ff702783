"""`--mode=eval` (upstream `main.py`, `model_fn` in eval mode): top-1, top-5 and loss on dev and test with the
EMA weights of model_dir's latest checkpoint, every image counted; also written to model_dir/eval_results.json."""

from __future__ import annotations

import json

import tensorflow as tf
from absl import logging

from noisy_student_tf import robustness, storage
from noisy_student_tf.data import records
from noisy_student_tf.data.inputs import TFDS_PREFIX, eval_dataset, eval_subsets
from noisy_student_tf.errors import UserError, first_line
from noisy_student_tf.config import EvalConfig
from noisy_student_tf.models.restore import restore_model
from noisy_student_tf.models.inference import clean_logits
from noisy_student_tf.training import losses, objective

RESULTS_FILE = "eval_results.json"
ROBUSTNESS_FILE = "robustness_results.json"


def evaluate_subset(model, dataset, *, mean, std, num_classes: int, label_smoothing: float) -> dict:
    """Top-1, top-5 and the smoothed cross-entropy of `model` (clean view, inference mode) over every image of
    `dataset`; the same sums as `NoisyStudent.test_step` (`objective.eval_sums`)."""

    @tf.function(autograph=False)  # inputs.no_autograph says why
    def batch_sums(images, labels):
        sums = objective.eval_sums(clean_logits(model, images, mean, std), labels, num_classes=num_classes,
                                   label_smoothing=label_smoothing)
        return sums["loss"], sums["top_1"], sums["top_5"], sums["count"]

    totals = [0.0, 0.0, 0.0, 0]
    for images, labels in dataset:
        for i, value in enumerate(batch_sums(images, labels)):
            totals[i] += value.numpy()
    ce, top1, top5, count = totals
    if not count:
        raise UserError("no images to evaluate")
    return {"top_1_accuracy": float(top1 / count), "top_5_accuracy": float(top5 / count),
            "loss": float(ce / count), "num_images": int(count)}


def check_values(cfg: EvalConfig) -> None:
    """The checks of `cfg` that read no file (main.py's train_and_eval makes them before training)."""
    if not cfg.model_dir:
        raise UserError("--model_dir is required: the training run to evaluate")
    if not cfg.label_data_dir:
        raise UserError("--label_data_dir is required: the directory of the dev*/test* shards")
    if cfg.eval_batch_size <= 0:
        raise UserError(f"--eval_batch_size must be positive, got {cfg.eval_batch_size}")
    if cfg.robustness is not None:
        robustness.check_corruptions(cfg.robustness.corruptions)
        robustness.parse_epsilons(cfg.robustness.fgsm_epsilons)


def validate(cfg: EvalConfig) -> None:
    """Checks `cfg` before any work (the data directory only under robustness: otherwise a missing checkpoint
    is reported first, as before)."""
    check_values(cfg)
    if cfg.robustness is not None:
        subsets = eval_subsets(cfg.label_data_dir)
        if cfg.robustness.subset not in subsets:
            raise UserError(f"--robustness_subset={cfg.robustness.subset!r}: {cfg.label_data_dir} has "
                            f"{', '.join(subsets)} to evaluate")


def run(cfg: EvalConfig) -> dict:
    """Evaluates the latest checkpoint of `cfg.model_dir` on every eval subset of `cfg.label_data_dir`.

    Returns:
        {subset: {"top_1_accuracy", "top_5_accuracy", "loss", "num_images"}}, plus "robustness" when asked;
        also written to model_dir/eval_results.json (and robustness_results.json).
    """
    validate(cfg)
    model, description = restore_model(cfg.model, cfg.model_dir, use_ema=cfg.use_ema, what="model")
    logging.info("evaluating %s", description)
    subsets = eval_subsets(cfg.label_data_dir)
    wd_loss = float(losses.weight_decay_loss(model.trainable_variables, cfg.weight_decay))
    expected = {"dev": ("num_eval_images", cfg.num_eval_images), "test": ("num_test_images", cfg.num_test_images)}
    results = {}
    for subset in subsets:
        try:
            result = evaluate_subset(model, _dataset(cfg, subset), mean=cfg.task.mean, std=cfg.task.std,
                                     num_classes=cfg.model.num_classes, label_smoothing=cfg.label_smoothing)
        except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as e:
            found = None
            if isinstance(e, tf.errors.DataLossError) and not cfg.label_data_dir.startswith(TFDS_PREFIX):
                found = records.first_unreadable(records.find_files(cfg.label_data_dir, [subset]))
            if found is not None:
                raise UserError(f"bad {subset} data: {found[0]} is corrupt or truncated ({found[1]}); write it "
                                "again, or move it out of --label_data_dir") from None
            raise UserError(f"bad {subset} data in {cfg.label_data_dir}: {first_line(e)}") from None
        result["loss"] += wd_loss  # upstream's eval loss includes the weight decay term
        flag, count = expected.get(subset, (None, None))
        if count is not None and count != result["num_images"]:
            logging.warning("%s: counted %d images, --%s=%d", subset, result["num_images"], flag, count)
        logging.info("%s: top-1 %.4f  top-5 %.4f  loss %.4f  (%d images)", subset, result["top_1_accuracy"],
                     result["top_5_accuracy"], result["loss"], result["num_images"])
        results[subset] = result
    storage.remove_dead_temporaries(cfg.model_dir)  # a results file whose writer was killed (live ones are kept)
    storage.write_text(storage.join(cfg.model_dir, RESULTS_FILE), json.dumps(results, indent=2) + "\n")
    if cfg.robustness is not None:
        results["robustness"] = evaluate_robustness(cfg, model)
    return results


def _dataset(cfg: EvalConfig, subset: str):
    return eval_dataset(cfg.label_data_dir, subset, cfg.eval_batch_size, image_size=cfg.model.image_size,
                        small_image_model=cfg.model.small_image_model, num_classes=cfg.model.num_classes)


def evaluate_robustness(cfg: EvalConfig, model) -> dict:
    """Paper section 4.3-4.4: top-1 under corruptions and FGSM, in its own file (eval_results.json keeps
    upstream's shape)."""
    rob = cfg.robustness
    epsilons = robustness.parse_epsilons(rob.fgsm_epsilons)
    logging.info("robustness on %s: %d corruptions x 5 severities, FGSM at %s", rob.subset,
                 len(rob.corruptions), ", ".join(f"{e:g}" for e in epsilons) or "no epsilon")
    result = robustness.evaluate(model, _dataset(cfg, rob.subset), mean=cfg.task.mean, std=cfg.task.std,
                                 corruptions=robustness.check_corruptions(rob.corruptions), epsilons=epsilons,
                                 seed=rob.seed, log=logging.info)
    result["subset"] = rob.subset
    storage.write_text(storage.join(cfg.model_dir, ROBUSTNESS_FILE), json.dumps(result, indent=2) + "\n")
    return result
