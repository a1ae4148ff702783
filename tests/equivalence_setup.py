"""One small training configuration run under different strategies on the same global batches.

Shared by test_distributed_training.py (one device, MirroredStrategy) and mwms_worker.py (the
MultiWorkerMirroredStrategy processes). Noise is off (no dropout / stochastic depth / augmentation) so that
only the distribution can make results differ.
"""

import keras
import numpy as np
import tensorflow as tf

from noisy_student_tf.tasks import get_task
from noisy_student_tf.training.schedule import make_schedule
from noisy_student_tf.training.trainer import ModelConfig, TrainConfig, Trainer

B, U, C, STEPS = 8, 8, 10, 2  # global labeled and unlabeled batch, classes, steps
SVHN = get_task("svhn")


def global_batches():
    rng = np.random.RandomState(0)
    batches = []
    for _ in range(STEPS):
        probs = rng.dirichlet(np.ones(C), size=U).astype(np.float32)
        batches.append({"image": rng.uniform(0, 255, (B + U, 32, 32, 3)).astype(np.float32),
                        "label": np.concatenate([rng.randint(0, C, B), probs.argmax(-1)]).astype(np.int32),
                        "unl_probs": probs, "top_1_prob": probs.max(-1)})
    return batches


def replica_slice(batch, replica, num_replicas):
    """Replica r's share: the r-th part of the labeled images followed by the r-th part of the unlabeled ones."""
    b, u = B // num_replicas, U // num_replicas
    lab, unl = slice(replica * b, (replica + 1) * b), slice(B + replica * u, B + (replica + 1) * u)
    return {"image": np.concatenate([batch["image"][lab], batch["image"][unl]]),
            "label": np.concatenate([batch["label"][lab], batch["label"][unl]]),
            "unl_probs": batch["unl_probs"][replica * u:(replica + 1) * u],
            "top_1_prob": batch["top_1_prob"][replica * u:(replica + 1) * u]}


def run(strategy, model_dir):
    """Trains STEPS steps; returns (per-step metrics, {variable path: value} of weights and EMA)."""
    keras.utils.set_random_seed(0)
    model = ModelConfig("efficientnet-b0", C, 32, small_image_model=True, width_coefficient=0.25,
                        depth_coefficient=0.25, dropout_rate=0.0, stochastic_depth_rate=0.0)
    cfg = TrainConfig(model=model, schedule=make_schedule(base_learning_rate=0.5, train_batch_size=B,
                                                          num_train_images=8, train_steps=100),
                      model_dir=model_dir, train_batch_size=B, mean=SVHN.mean, std=SVHN.std, unlabel_ratio=U / B,
                      teacher_softmax_temp=1.0, weight_decay=1e-3, moving_average_decay=0.99, seed=3)
    trainer = Trainer(cfg, strategy)
    trainer.initialize()
    n = strategy.num_replicas_in_sync
    batches = global_batches()

    def dataset_fn(ctx):
        per_pipeline = n // ctx.num_input_pipelines
        replicas = range(ctx.input_pipeline_id * per_pipeline, (ctx.input_pipeline_id + 1) * per_pipeline)
        slices = [replica_slice(batch, r, n) for batch in batches for r in replicas]
        stacked = {k: np.stack([s[k] for s in slices]) for k in slices[0]}
        return tf.data.Dataset.from_tensor_slices(stacked)

    iterator = iter(trainer.distribute(dataset_fn))
    metrics = [trainer.train_steps(iterator, 1) for _ in range(STEPS)]
    weights = {v.path: v.numpy() for v in trainer.student.weights}
    weights.update({"ema:" + k: v for k, v in trainer.ema_weights().items()})
    return metrics, weights
