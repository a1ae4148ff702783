"""Our EfficientNet-B0 beside keras.applications.EfficientNetB0: forward + backward, same batch, same input.

Both models are built with the same configuration (1,000 classes, dropout 0.2, stochastic depth 0.2, random
weights) and run the same compiled step: logits, softmax cross entropy, gradients of every trainable weight (no
optimizer, which is the same code for both). At 224x224 and at 32x32 the two networks are the same architecture;
the last row is our small-image variant (the SVHN/digits network: no downsampling in the stem, so 4x the work of
the 32x32 row) for reference, with no Keras counterpart. Keras's model also carries its own input rescaling and
normalisation layers (include_preprocessing); ours takes normalised input.

Timings alternate between the two models, step by step, and the table gives the median of the paired ratios:
this VM's speed drifts too much for separate timing runs. Writes bench/results/model_speed.md.

    python bench/model_speed.py [--steps=20]
"""

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from noisy_student_tf.models import build_model  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "model_speed.md")
CLASSES = 1000


def step_function(model):
    @tf.function(jit_compile=False)
    def step(images, labels):
        with tf.GradientTape() as tape:
            logits = tf.cast(model(images, training=True), tf.float32)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        return loss, tape.gradient(loss, model.trainable_variables)

    return step


def keras_b0(size):
    return keras.applications.EfficientNetB0(weights=None, include_top=True, classes=CLASSES,
                                             input_shape=(size, size, 3))  # dropout 0.2, drop-connect 0.2 built in


def paired_times(steps_a, steps_b, batch, size, steps):
    images = tf.constant(np.random.default_rng(0).uniform(0, 1, (batch, size, size, 3)), tf.float32)
    labels = tf.constant(np.random.default_rng(1).integers(0, CLASSES, batch), tf.int32)
    for step in (steps_a, steps_b):  # tracing and first-run allocation
        for _ in range(2):
            tf.nest.map_structure(lambda t: t.numpy(), step(images, labels))
    times = {"a": [], "b": []}
    for _ in range(steps):
        for key, step in (("a", steps_a), ("b", steps_b)):
            start = time.perf_counter()
            loss, grads = step(images, labels)
            grads[-1].numpy()
            times[key].append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch_224", type=int, default=16)
    parser.add_argument("--batch_32", type=int, default=128)
    args = parser.parse_args()
    rows = []
    for size, batch in ((224, args.batch_224), (32, args.batch_32)):
        ours = build_model("efficientnet-b0", CLASSES, input_shape=(size, size, 3))
        theirs = keras_b0(size)
        params = (ours.count_params(), theirs.count_params())
        times = paired_times(step_function(ours), step_function(theirs), batch, size, args.steps)
        ratio = float(np.median([t / o for o, t in zip(times["a"], times["b"])]))
        rows.append((f"{size}x{size}, batch {batch}", batch / np.median(times["a"]), batch / np.median(times["b"]),
                     ratio, params))
        print(rows[-1], flush=True)
    small = build_model("efficientnet-b0", CLASSES, small_image_model=True, input_shape=(32, 32, 3))
    step = step_function(small)
    times = paired_times(step, step, args.batch_32, 32, max(3, args.steps // 2))["a"]
    rows.append((f"ours small-image (SVHN/digits network), 32x32, batch {args.batch_32}",
                 args.batch_32 / np.median(times), None, None, (small.count_params(), None)))

    lines = ["| input | ours, images/s | keras.applications, images/s | speed ratio (ours / Keras) | parameters |",
             "|---|---|---|---|---|"]
    for name, a, b, ratio, (pa, pb) in rows:
        lines.append(f"| {name} | {a:,.1f} | {'' if b is None else f'{b:,.1f}'} | "
                     f"{'' if ratio is None else f'{ratio:.2f}×'} | "
                     f"{pa:,}{'' if pb is None else f' vs {pb:,}'} |")
    header = (f"Forward + backward of EfficientNet-B0, measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, "
              f"{os.cpu_count()} cores, TensorFlow {tf.__version__}, Keras {keras.__version__}; "
              f"`python bench/model_speed.py` ({args.steps} paired steps, medians; ratio > 1: ours is faster). "
              "Goal: ours ≥ 1.0× as fast.\n\n")
    table = "\n".join(lines)
    print(header + table)
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as out:
        out.write("# Model speed: ours vs keras.applications.EfficientNetB0\n\n" + header + table + "\n")


if __name__ == "__main__":
    main()
