"""Noisy Student with keras.applications networks (not the package's EfficientNets), from Python, on digits.

Teacher: EfficientNetV2-B0; student: EfficientNetV2-B1 (equal or larger, as the paper asks), both from scratch
(weights=None), logits out (classifier_activation=None), their own preprocessing inside (so `NoisyStudent` gets no
mean/std). Everything else is the digits recipe (noisy_student_tf/recipes.py) through the Python API: the
original optimizer and schedule, RandAugment M=5, the teacher on 32 labeled images per step, the student on 16
labeled + 32 pseudo-labelled images per step with soft targets (T = 1), filter_unlabel's selection (threshold
>= 0.3, balanced to the pool's images per class). One student iteration per seed. Prints a table and writes it
to experiments/results/keras_applications_digits.{md,json}.

    python experiments/keras_applications_digits.py [--seeds=0,1,2] [--teacher_steps=400] [--student_steps=600]

Not run in CI.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
RESULTS = os.path.join(ROOT, "experiments", "results")

flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (each one a data split and a training run).")
flags.DEFINE_integer("teacher_steps", 400, "Teacher steps (the digits recipe's).")
flags.DEFINE_integer("student_steps", 600, "Student steps (the digits recipe's).")
FLAGS = flags.FLAGS


def network(kind: str):
    import keras

    # keras.applications' EfficientNetV2 (fused MBConv blocks; another family than the package's EfficientNets).
    # MobileNetV3Small, tried first with the same recipe, stayed at 10-28% dev top-1 after 400 teacher steps.
    make = {"small": keras.applications.EfficientNetV2B0, "large": keras.applications.EfficientNetV2B1}[kind]
    # (No name=: EfficientNetV2 reads its `name` argument as the variant, e.g. "b0".)
    return make(input_shape=(32, 32, 3), weights=None, classes=10, classifier_activation=None,
                include_preprocessing=True)


def one_seed(seed: int) -> dict:
    import keras

    from noisy_student_tf import (NoisyStudent, TF1RMSProp, UpstreamLearningRate, clean_dataset, indices_from_copies,
                                  noisy_student_dataset, pseudo_label, select_pseudo_labels)
    from noisy_student_tf.config import AugmentConfig
    from noisy_student_tf.data.sources import digits

    keras.utils.set_random_seed(seed)
    splits = digits.load_splits(seed=seed)
    (x, y), (x_unl, y_unl) = splits["train"], splits["extra"]
    test = clean_dataset(*splits["test"], batch_size=100)
    noise = AugmentConfig(augment_name="v1", unl_augment_name="v1", randaug_mag=5, flip=False)

    def compiled(model, batch, steps):
        model.compile(optimizer=TF1RMSProp(UpstreamLearningRate(0.016, batch, len(x), steps)))
        return model

    teacher = compiled(NoisyStudent(network("small"), unlabel_ratio=0, weight_decay=1e-4, seed=seed),
                       32, FLAGS.teacher_steps)
    teacher.fit(noisy_student_dataset((x, y), batch_size=32, augment=noise, seed=seed),
                steps_per_epoch=FLAGS.teacher_steps, verbose=0)
    probs = pseudo_label(teacher, x_unl)
    copies = select_pseudo_labels(probs, num_image=len(x_unl) // 10, min_threshold=0.3, seed=seed)
    keep = indices_from_copies(copies)
    student = compiled(NoisyStudent(network("large"), unlabel_ratio=2, teacher_softmax_temp=1.0,
                                    weight_decay=1e-4, seed=seed + 1), 16, FLAGS.student_steps)
    student.fit(noisy_student_dataset((x, y), (x_unl[keep], probs[keep]), batch_size=16, unlabel_ratio=2,
                                      augment=noise, seed=seed + 1),
                steps_per_epoch=FLAGS.student_steps, verbose=0)
    return {"teacher": teacher.evaluate(test, return_dict=True, verbose=0)["accuracy"],
            "student": student.evaluate(test, return_dict=True, verbose=0)["accuracy"],
            "kept": int((copies > 0).sum()),
            "pseudo_label_accuracy": float((probs.argmax(-1) == y_unl)[copies > 0].mean())}


def main(argv):
    del argv
    rows, started = {}, time.time()
    for seed in [int(s) for s in FLAGS.seeds]:
        tick = time.time()
        rows[seed] = one_seed(seed)
        rows[seed]["seconds"] = round(time.time() - tick)
        print(seed, rows[seed], flush=True)
    lines = ["| seed | teacher (EfficientNetV2-B0) test top-1 | student (EfficientNetV2-B1) test top-1 | pseudo labels "
             "kept (accuracy) |", "|---|---|---|---|"]
    for seed, r in rows.items():
        lines.append(f"| {seed} | {100 * r['teacher']:.1f}% | {100 * r['student']:.1f}% | {r['kept']} "
                     f"({100 * r['pseudo_label_accuracy']:.1f}%) |")
    per_seed = list(rows.values())
    for key in ("teacher", "student"):
        values = 100 * np.array([r[key] for r in per_seed])
        rows[f"{key}_mean_std"] = [float(values.mean()), float(values.std())]
    t, s = rows["teacher_mean_std"], rows["student_mean_std"]
    lines.append(f"| mean ± std | {t[0]:.1f} ± {t[1]:.1f} | {s[0]:.1f} ± {s[1]:.1f} | |")
    text = "\n".join(lines) + (f"\n\nTeacher {FLAGS.teacher_steps} steps, student {FLAGS.student_steps} steps; "
                               f"{time.time() - started:.0f} s in all on this machine.\n")
    print(text)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "keras_applications_digits.md"), "w") as f:
        f.write("# keras.applications teacher and student on digits\n\n" + text)
    with open(os.path.join(RESULTS, "keras_applications_digits.json"), "w") as f:
        json.dump({str(k): v for k, v in rows.items()}, f, indent=1)


if __name__ == "__main__":
    app.run(main)
