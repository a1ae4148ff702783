"""One small training configuration run under different strategies on the same global batches.

Shared by test_distributed_training.py (one device, MirroredStrategy) and mwms_worker.py (the
MultiWorkerMirroredStrategy processes). Noise is off (no dropout / stochastic depth / augmentation) so that
only the distribution can make results differ.
"""

import keras
import numpy as np
import tensorflow as tf

import jobs_helper
from noisy_student_tf.tasks import get_task
from noisy_student_tf.training.trainer import Trainer

B, U, C, STEPS = 8, 8, 10, 2  # global labeled and unlabeled batch, classes, steps
SVHN = get_task("svhn")


def global_batches():
    rng = np.random.RandomState(0)
    batches = []
    for _ in range(STEPS):
        probs = rng.dirichlet(np.ones(C), size=U).astype(np.float32)
        images = rng.uniform(0, 255, (B + U, 32, 32, 3)).astype(np.float32)
        labels = np.concatenate([rng.randint(0, C, B), probs.argmax(-1)]).astype(np.int32)
        batches.append({"labeled": {"image": images[:B], "label": labels[:B]},
                        "unlabeled": {"image": images[B:], "label": labels[B:], "probs": probs}})
    return batches


def replica_slice(batch, replica, num_replicas):
    """Replica r's share: the r-th part of the labeled images and the r-th part of the unlabeled ones."""
    b, u = B // num_replicas, U // num_replicas
    lab, unl = slice(replica * b, (replica + 1) * b), slice(replica * u, (replica + 1) * u)
    return {"labeled": {k: v[lab] for k, v in batch["labeled"].items()},
            "unlabeled": {k: v[unl] for k, v in batch["unlabeled"].items()}}


def run(strategy, model_dir):
    """Trains STEPS steps; returns (per-step metrics, {variable path: value} of weights and EMA)."""
    keras.utils.set_random_seed(0)
    cfg = jobs_helper.train_config(
        model_dir, "unused", svhn=True, model__dropout_rate=0.0, model__stochastic_depth_rate=0.0,
        input__train_batch_size=B, input__unlabel_ratio=U / B, optim__base_learning_rate=0.5,
        optim__num_train_images=8, optim__train_steps=100, optim__weight_decay=1e-3,
        optim__moving_average_decay=0.99, teacher__softmax_temp=1.0, seed=3)
    trainer = Trainer(cfg, strategy)
    trainer.initialize()
    n = strategy.num_replicas_in_sync
    batches = global_batches()

    def dataset_fn(ctx):
        per_pipeline = n // ctx.num_input_pipelines
        replicas = range(ctx.input_pipeline_id * per_pipeline, (ctx.input_pipeline_id + 1) * per_pipeline)
        slices = [replica_slice(batch, r, n) for batch in batches for r in replicas]
        stacked = {part: {k: np.stack([s[part][k] for s in slices]) for k in slices[0][part]} for part in slices[0]}
        return tf.data.Dataset.from_tensor_slices(stacked)

    iterator = iter(trainer.strategy.distribute_datasets_from_function(dataset_fn))
    metrics = [trainer.train_function(iterator, 1) for _ in range(STEPS)]
    weights = {v.path: v.numpy() for v in trainer.model.student.weights}
    weights.update({"ema:" + k: v for k, v in trainer.model.ema.values().items()})
    return metrics, weights
