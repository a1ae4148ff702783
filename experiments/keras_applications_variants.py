"""What was tried to make the one call's keras.applications pair (EfficientNetV2-B0 teacher -> EfficientNetV2-B1
student, from scratch, 32x32 digits) beat its teacher: one setting changed at a time from fit_noisy_student's
defaults, seed 0, dev top-1 of teacher and student. Each variant writes its stages under /tmp/ka_<variant>.

    python experiments/keras_applications_variants.py VARIANT
    (default, weight_decay_0, hard_targets, b0_student, adam_1e-3, mobilenet)

Prints one JSON line; experiments/results/keras_applications_variants.md has the runs. Not run in CI.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

VARIANTS = ("default", "weight_decay_0", "hard_targets", "b0_student", "adam_1e-3", "mobilenet")


def adam(peak):
    import keras

    def make(steps):
        warmup = steps // 20
        return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(0.0, steps - warmup, warmup_target=peak,
                                                                            warmup_steps=warmup))

    return make


def main(variant: str):
    import keras

    from noisy_student_tf import fit_noisy_student
    from noisy_student_tf.data.sources import digits

    def v2(make):
        return make(input_shape=(32, 32, 3), weights=None, classes=10, classifier_activation=None)

    splits = digits.load_splits(seed=0)
    keras.utils.set_random_seed(0)
    teacher = v2(keras.applications.EfficientNetV2B0)
    student = lambda k: v2(keras.applications.EfficientNetV2B1)  # noqa: E731
    changes = {}
    if variant == "weight_decay_0":
        changes["weight_decay"] = 0.0
    elif variant == "hard_targets":
        changes["teacher_softmax_temp"] = -1
    elif variant == "b0_student":
        student = lambda k: v2(keras.applications.EfficientNetV2B0)  # noqa: E731
    elif variant == "adam_1e-3":
        changes["optimizer"] = adam(1e-3)
    elif variant == "mobilenet":
        def mobilenet(alpha):
            return keras.applications.MobileNet(input_shape=(32, 32, 3), alpha=alpha, weights=None, classes=10,
                                                classifier_activation=None)

        teacher, student = mobilenet(0.5), lambda k: mobilenet(1.0)
    started = time.monotonic()
    result = fit_noisy_student(splits["train"], splits["extra"][0], teacher=teacher, student=student,
                               validation_data=splits["dev"], flip=False, seed=0, verbose=2,
                               directory=f"/tmp/ka_{variant}", **changes)
    print(json.dumps({"variant": variant, "dev_top1": [r["validation"]["accuracy"] for r in result.history],
                      "seconds": round(time.monotonic() - started)}))


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in VARIANTS:
        sys.exit(f"usage: keras_applications_variants.py {{{','.join(VARIANTS)}}}")
    main(sys.argv[1])
