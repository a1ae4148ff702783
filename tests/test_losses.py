"""The training step's loss equals a hand computation of upstream `main.py`, `model_fn` (four target modes,
p < 1, weight decay)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import jobs_helper
from noisy_student_tf.models.inference import normalize
from noisy_student_tf.tasks import get_task
from noisy_student_tf.training.trainer import Trainer

SVHN = get_task("svhn")
B, R, C = 8, 2, 10  # labeled batch, unlabel_ratio, classes
U = B * R


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def smoothed(labels, ls=0.1):
    return np.eye(C)[labels] * (1 - ls) + ls / C


def make_trainer(tmp_path, *, temperature, online, p=1.0):
    keras.utils.set_random_seed(0)
    teacher = jobs_helper.teacher(checkpoint="unused", softmax_temp=temperature, image_size=32)
    cfg = jobs_helper.train_config(
        tmp_path, "unused", svhn=True, model__dropout_rate=0.0, model__stochastic_depth_rate=0.0,
        input__train_batch_size=B, input__unlabel_ratio=R, input__label_data_sample_prob=p,
        optim__num_train_images=100, optim__train_steps=10, optim__weight_decay=1e-3,
        teacher=teacher if online else jobs_helper.changed(teacher, model_name=None, checkpoint=None), seed=7)
    return Trainer(cfg)


def fixed_batch(seed=0):
    """A step's batch as `data.inputs.train_dataset` yields it: the labeled part and the unlabeled part."""
    rng = np.random.RandomState(seed)
    probs = rng.dirichlet(np.ones(C) * 0.5, size=U).astype(np.float32)
    images = rng.uniform(0, 255, (B + U, 32, 32, 3)).astype(np.float32)
    return {"labeled": {"image": images[:B], "label": rng.randint(0, C, B).astype(np.int32)},
            "unlabeled": {"image": images[B:], "label": probs.argmax(-1).astype(np.int32), "probs": probs,
                          "teacher_image": rng.uniform(0, 255, (U, 32, 32, 3)).astype(np.float32)}}


def all_images(batch):
    return np.concatenate([batch["labeled"]["image"], batch["unlabeled"]["image"]])


def one_step(trainer, batch):
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    return trainer.train_function(iter(trainer.strategy.distribute_datasets_from_function(lambda ctx: dataset)), 1)


@pytest.mark.parametrize("temperature, online", [(-1, True), (0.5, True), (-1, False), (0.7, False)],
                         ids=["hard-online", "soft-online", "hard-stored", "soft-stored"])
def test_loss_matches_hand_computation(tmp_path, temperature, online):
    trainer = make_trainer(tmp_path, temperature=temperature, online=online)
    batch = fixed_batch()
    # The same weights the step will see; training mode uses batch statistics, so this equals its forward pass.
    logits = trainer.model.student(normalize(all_images(batch), SVHN.mean, SVHN.std), training=True).numpy().astype(
        np.float64)
    decay = sum(float(np.sum(v.numpy().astype(np.float64) ** 2)) / 2 for v in trainer.model.student.trainable_variables
                if not v.path.endswith(("gamma", "beta")))
    if online:
        teacher = trainer.model.teacher(normalize(batch["unlabeled"]["teacher_image"], SVHN.mean, SVHN.std),
                                  training=False).numpy().astype(np.float64)
        if temperature == -1:
            targets = smoothed(teacher.argmax(-1))  # label smoothing applies to hard pseudo labels
        else:
            targets = np.exp(log_softmax(teacher / temperature))
    else:
        if temperature == -1:
            targets = smoothed(batch["unlabeled"]["label"])
        else:
            sharp = batch["unlabeled"]["probs"].astype(np.float64) ** (1 / temperature)
            targets = sharp / sharp.sum(-1, keepdims=True)
    lab = np.mean(-(smoothed(batch["labeled"]["label"]) * log_softmax(logits[:B])).sum(-1))
    unl = np.mean(-(targets * log_softmax(logits[B:])).sum(-1))
    metrics = one_step(trainer, batch)
    assert metrics["lab/loss"] == pytest.approx(lab, rel=1e-5)
    assert metrics["ext/loss"] == pytest.approx(unl, rel=1e-5)
    assert metrics["train/data_loss"] == pytest.approx(lab + R * unl, rel=1e-5)
    assert metrics["train/loss"] == pytest.approx(lab + R * unl + 1e-3 * decay, rel=1e-5)
    if temperature != -1:
        assert metrics["unl/target_prob"] == pytest.approx(targets.max(-1).mean(), rel=1e-5)


def test_label_mask_sums_over_kept_examples_divided_by_the_full_batch(tmp_path):
    p = 0.5
    trainer = make_trainer(tmp_path, temperature=-1, online=False, p=p)
    batch = fixed_batch(1)
    logits = trainer.model.student(normalize(all_images(batch), SVHN.mean, SVHN.std), training=True).numpy()
    # The step's Bernoulli(p) mask: floor(p + U), U drawn statelessly from (run seed, step, replica).
    seed = tf.random.experimental.stateless_fold_in(tf.constant([7, 0], tf.int64), 0)
    mask = np.floor(p + tf.random.stateless_uniform([B], seed).numpy())
    assert 0 < mask.sum() < B
    ce = -(smoothed(batch["labeled"]["label"]) * log_softmax(logits[:B].astype(np.float64))).sum(-1)
    metrics = one_step(trainer, batch)
    assert metrics["lab/loss"] == pytest.approx((mask * ce).sum() / B, rel=1e-5)  # not / mask.sum()
