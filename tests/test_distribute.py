"""The model inside a real tf.distribute strategy (MirroredStrategy over two logical CPU devices)."""

import keras
import numpy as np
import tensorflow as tf

from noisy_student_tf.models import build_model, load_tf1_checkpoint, save_tf1_checkpoint

# A shallow B0 (one block per stage) keeps tracing fast; the strategy does not care about depth.
SHALLOW = dict(small_image_model=True, depth_coefficient=0.3)


def test_mirrored_model_loads_tf1_weights_and_trains_per_replica(tmp_path):
    keras.utils.set_random_seed(0)
    source = build_model("efficientnet-b0", 10, **SHALLOW)
    prefix = save_tf1_checkpoint(source, str(tmp_path / "model.ckpt-0"))

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        model = build_model("efficientnet-b0", 10, **SHALLOW)
    assert isinstance(model.get_layer("stem_conv").kernel.value, tf.distribute.DistributedValues)
    load_tf1_checkpoint(model, prefix)

    images = np.random.RandomState(0).normal(size=(8, 32, 32, 3)).astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(8)
    batch = next(iter(strategy.experimental_distribute_dataset(dataset)))

    @tf.function
    def replica_step(x):
        logits = model(x, training=False)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True)))
        grads = tape.gradient(loss, model.trainable_variables)
        return logits, tf.add_n([tf.reduce_sum(tf.square(g)) for g in grads])

    logits, grad_norm = strategy.run(replica_step, args=(batch,))
    per_replica = strategy.experimental_local_results(logits)
    assert [t.shape[0] for t in per_replica] == [4, 4]
    np.testing.assert_allclose(np.concatenate(per_replica), source(images, training=False), atol=1e-5)
    assert all(np.isfinite(g) and g > 0 for g in strategy.experimental_local_results(grad_norm))
