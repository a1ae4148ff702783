"""How `fit_noisy_student`'s default optimizer for networks the package did not build was chosen.

A teacher (the one call's first stage: `NoisyStudent(unlabel_ratio=0)`, RandAugment N=2 M=5, 400 steps of 32
labeled digits) trained with Adam, 5% linear warm-up then cosine decay to 0, at several peak learning rates; the
score is dev top-1 (the test split is not looked at). Networks: a small Conv-BN-ReLU CNN (the README's) and
keras.applications EfficientNetV2-B0 from scratch.

    python experiments/default_optimizer.py ARCH LEARNING_RATE [--steps=400] [--seed=0]

prints one JSON line; experiments/results/default_optimizer.md has the runs behind the default. Not run in CI.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def network(arch: str):
    import keras

    if arch == "cnn":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from fit_noisy_student_digits import small_cnn

        return small_cnn(32)
    make = {"efficientnetv2-b0": keras.applications.EfficientNetV2B0}[arch]
    return make(input_shape=(32, 32, 3), weights=None, classes=10, classifier_activation=None)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("arch", choices=["cnn", "efficientnetv2-b0"])
    parser.add_argument("learning_rate", type=float)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import keras

    from noisy_student_tf import NoisyStudent, clean_dataset, noisy_student_dataset
    from noisy_student_tf.config import AugmentConfig
    from noisy_student_tf.data.sources import digits

    keras.utils.set_random_seed(args.seed)
    splits = digits.load_splits(seed=args.seed)
    noise = AugmentConfig(augment_name="v1", unl_augment_name="v1", randaug_mag=5, flip=False)
    model = NoisyStudent(network(args.arch), unlabel_ratio=0, weight_decay=1e-4)
    warmup = args.steps // 20
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(
        0.0, args.steps - warmup, warmup_target=args.learning_rate, warmup_steps=warmup)))
    started = time.monotonic()
    model.fit(noisy_student_dataset(splits["train"], batch_size=32, augment=noise, seed=args.seed),
              steps_per_epoch=args.steps, verbose=0)
    dev = model.evaluate(clean_dataset(*splits["dev"]), return_dict=True, verbose=0)["accuracy"]
    print(json.dumps({"arch": args.arch, "learning_rate": args.learning_rate, "steps": args.steps, "seed": args.seed,
                      "dev_top1": round(dev, 4), "seconds": round(time.monotonic() - started)}))


if __name__ == "__main__":
    main()
