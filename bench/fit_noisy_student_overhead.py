"""What the one call costs over the loop a user writes from the pieces, paired, in one sitting.

Both run the same work on the bundled digits (seed 0): a small Conv-BN-ReLU teacher, 400 steps of 32 labeled
images, then one wider student, 600 steps of 16 labeled + 32 pseudo-labelled images, Adam with warm-up and cosine
decay, RandAugment N=2 M=5:
* loop: NoisyStudent.fit for the teacher, pseudo_label, select_pseudo_labels, indices_from_copies,
  noisy_student_dataset, NoisyStudent.fit for the student (one epoch per stage, no validation);
* one call: fit_noisy_student with the same settings (epochs of 100 steps, no validation, no directory).
Each of the --pairs rounds runs both, in alternating order, each in a fresh process; the table gives the wall
times and the median ratio. Writes bench/results/fit_noisy_student_overhead.md.

    python bench/fit_noisy_student_overhead.py [--pairs=3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TEACHER_STEPS, STEPS, SEED = 400, 600, 0


def small_cnn(width):
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    for filters in (width, 2 * width, 4 * width):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.3)(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def adam(steps):
    import keras

    warmup = int(steps * 0.05)
    return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(0.0, steps - warmup, warmup_target=3e-3,
                                                                        warmup_steps=warmup))


def loop(splits):
    import keras

    from noisy_student_tf import (NoisyStudent, indices_from_copies, noisy_student_dataset, pseudo_label,
                                  select_pseudo_labels)
    from noisy_student_tf.config import AugmentConfig

    noise = AugmentConfig(augment_name="v1", unl_augment_name="v1", randaug_mag=5, flip=False)
    (x, y), x_unlabeled = splits["train"], splits["extra"][0]
    keras.utils.set_random_seed(SEED)
    teacher = NoisyStudent(small_cnn(32), unlabel_ratio=0, weight_decay=1e-4, seed=SEED)
    teacher.compile(optimizer=adam(TEACHER_STEPS))
    teacher.fit(noisy_student_dataset((x, y), batch_size=32, augment=noise, seed=SEED), steps_per_epoch=TEACHER_STEPS,
                verbose=0)
    probabilities = pseudo_label(teacher, x_unlabeled)
    keep = indices_from_copies(select_pseudo_labels(probabilities, num_image=len(x_unlabeled) // 10,
                                                    min_threshold=0.3))
    keras.utils.set_random_seed(SEED + 1)
    student = NoisyStudent(small_cnn(48), unlabel_ratio=2, teacher_softmax_temp=1.0, weight_decay=1e-4, seed=SEED + 1)
    student.compile(optimizer=adam(STEPS))
    data = noisy_student_dataset((x, y), (x_unlabeled[keep], probabilities[keep]), batch_size=16, unlabel_ratio=2,
                                 augment=noise, seed=SEED + 1)
    student.fit(data, steps_per_epoch=STEPS, verbose=0)


def one_call(splits):
    import keras

    from noisy_student_tf import fit_noisy_student

    keras.utils.set_random_seed(SEED)
    fit_noisy_student(splits["train"], splits["extra"][0], teacher=small_cnn(32), student=lambda k: small_cnn(48),
                      teacher_steps=TEACHER_STEPS, steps=STEPS, flip=False, seed=SEED, verbose=0)


def worker(kind):
    sys.path.insert(0, ROOT)
    from noisy_student_tf.data.sources import digits

    splits = digits.load_splits(seed=SEED)
    import tensorflow  # noqa: F401 (imported before the clock starts, as in both kinds)

    started, cpu = time.monotonic(), time.process_time()
    {"loop": loop, "one_call": one_call}[kind](splits)
    print(json.dumps({"kind": kind, "seconds": time.monotonic() - started, "cpu": time.process_time() - cpu}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--worker", choices=["loop", "one_call"])
    parser.add_argument("--results", default=os.path.join(HERE, "results", "fit_noisy_student_overhead.md"))
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    rows = []
    for index in range(args.pairs):
        order = ("loop", "one_call") if index % 2 == 0 else ("one_call", "loop")
        times = {}
        for kind in order:
            out = subprocess.run([sys.executable, __file__, "--worker", kind], capture_output=True, text=True,
                                 check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
            times[kind] = json.loads(out.stdout.strip().splitlines()[-1])
        loop_run, call = times["loop"], times["one_call"]
        rows.append((index, order[0], loop_run["seconds"], call["seconds"], call["seconds"] / loop_run["seconds"],
                     loop_run["cpu"], call["cpu"], call["cpu"] / loop_run["cpu"]))
        print(rows[-1], flush=True)
    median = statistics.median(r[4] for r in rows)
    median_cpu = statistics.median(r[7] for r in rows)
    lines = ["# fit_noisy_student against the hand-written loop", "",
             "Teacher 400 steps + one student 600 steps of a small CNN on digits; wall time in a fresh process "
             "each, pairs in alternating order (`python bench/fit_noisy_student_overhead.py`); CPU time is the "
             "process's user + system time (less moved by the VM's drifting speed than wall time).", "",
             "| pair | first | loop wall (s) | one call wall (s) | ratio | loop CPU (s) | one call CPU (s) | ratio |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {i} | {first} | {a:.1f} | {b:.1f} | {r:.3f} | {ca:.1f} | {cb:.1f} | {cr:.3f} |"
              for i, first, a, b, r, ca, cb, cr in rows]
    lines += ["", f"Median ratio one call / loop: wall {median:.3f} ({100 * (median - 1):+.1f}%), CPU {median_cpu:.3f} "
              f"({100 * (median_cpu - 1):+.1f}%)."]
    with open(args.results, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
