"""`fit_noisy_student`, the whole method in one call: it equals the loop a user writes from the pieces, resumes a
SIGKILLed run to the uninterrupted result, takes any Keras optimizer, and refuses bad input before it writes
anything."""

import os
import signal

import keras
import numpy as np
import pytest
import tensorflow as tf

import prewarmed
from noisy_student_tf import (NoisyStudent, TF1RMSProp, build_model, fit_noisy_student, indices_from_copies,
                              noisy_student_dataset, pseudo_label, select_pseudo_labels)
from noisy_student_tf.config import FILTER_SEED, AugmentConfig
from self_training_worker import arguments, tiny_cnn, tiny_data

TOLERANCE = 1e-5
HERE = os.path.dirname(os.path.abspath(__file__))


def assert_close(got, expected, what):
    np.testing.assert_allclose(got, expected, rtol=TOLERANCE, atol=TOLERANCE, err_msg=what)


def hand_written_loop(labeled, unlabeled, settings):
    """The loop of the README's pieces, as a user writes it, with the one call's documented seeds and defaults:
    stage k starts with keras.utils.set_random_seed(seed * 100 + k) (its model, and its data, whose shuffle
    depends on TensorFlow's global seed); Adam with 5% warm-up and cosine decay; one fit() of all the stage's
    steps."""
    s = settings
    noise = AugmentConfig(augment_name="v1", unl_augment_name="v1", randaug_mag=5, flip=False)
    x, y = labeled

    def adam(steps):
        warmup = int(steps * 0.05)
        return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(0.0, steps - warmup, warmup_target=3e-3,
                                                                            warmup_steps=warmup))

    seed = s["seed"] * 100
    keras.utils.set_random_seed(0)
    network = tiny_cnn()
    keras.utils.set_random_seed(seed)
    teacher = NoisyStudent(network, unlabel_ratio=0, weight_decay=1e-4, seed=seed)
    teacher.compile(optimizer=adam(s["teacher_steps"]))
    teacher.fit(noisy_student_dataset((x, y), batch_size=s["teacher_batch_size"], augment=noise, seed=seed),
                steps_per_epoch=s["teacher_steps"], verbose=0)
    selections = []
    for k in range(1, s["iterations"] + 1):
        probabilities = pseudo_label(teacher, unlabeled)
        copies = select_pseudo_labels(probabilities, num_image=s["num_image"], min_threshold=0.0, seed=FILTER_SEED)
        selections.append(copies)
        keep = indices_from_copies(copies)
        keras.utils.set_random_seed(seed + k)
        student = NoisyStudent(tiny_cnn(4 + 2 * k), unlabel_ratio=2.0, teacher_softmax_temp=1.0, weight_decay=1e-4,
                               seed=seed + k)
        student.compile(optimizer=adam(s["steps"]))
        data = noisy_student_dataset((x, y), (unlabeled[keep], probabilities[keep]), batch_size=s["batch_size"],
                                     unlabel_ratio=2.0, augment=noise, seed=seed + k)
        student.fit(data, steps_per_epoch=s["steps"], verbose=0)
        teacher = student
    return teacher, selections


def test_the_one_call_equals_the_hand_written_loop():
    labeled, unlabeled, dev = tiny_data()
    settings = arguments()
    model, selections = hand_written_loop(labeled, unlabeled, settings)
    keras.utils.set_random_seed(0)
    result = fit_noisy_student(labeled, unlabeled, teacher=tiny_cnn(), student=lambda k: tiny_cnn(4 + 2 * k),
                               validation_data=dev, **settings)
    names = ["teacher", "student_1", "student_2"]
    assert [record["stage"] for record in result.history] == names
    for name, copies in zip(names[1:], selections):
        np.testing.assert_array_equal(result.pseudo_labels[name]["copies"], copies, err_msg=name)
        assert result.history[names.index(name)]["pseudo_labels"]["copies"] == copies.sum()
    assert len(model.student.weights) == len(result.model.student.weights)
    for got, expected in zip(result.model.student.weights, model.student.weights):
        assert_close(got.numpy(), expected.numpy(), got.path)
    # The moving averages, in the order of their variables (layer names differ between the two processes' models).
    for got, expected in zip(result.model.ema.values().values(), model.ema.values().values()):
        assert_close(got, expected, "EMA")
    # Every stage reports its validation metrics (averaged weights, clean images) after each epoch and at its end.
    for record in result.history:
        assert set(record["validation"]) == {"loss", "accuracy", "top_5_accuracy"}
        assert len(record["epochs"]) == record["steps"] // settings["steps_per_epoch"]
        assert "val_accuracy" in record["epochs"][-1]


def start_worker(out_dir, kill_stage="-", kill_after=-1):
    """The worker in a fork of the pre-imported interpreter (prewarmed.py): a real process to SIGKILL."""
    out_dir.mkdir(exist_ok=True)
    return prewarmed.Process([os.path.join(HERE, "self_training_worker.py"), str(out_dir), kill_stage,
                              str(kill_after)], cwd=HERE)


def finish(process):
    out, err = process.communicate(timeout=600)
    return process.returncode, out + err


def test_a_run_killed_in_its_second_student_resumes_to_the_uninterrupted_result(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    # Killed after the second of student_2's three epochs (BackupAndRestore has saved it).
    processes = [start_worker(whole), start_worker(killed, "student_2", 1)]
    (code_whole, log_whole), (code_killed, log_killed) = [finish(p) for p in processes]
    assert code_whole == 0, log_whole[-3000:]
    assert code_killed == -signal.SIGKILL, log_killed[-3000:]
    run = killed / "run"
    assert sorted(p.name for p in run.glob("*.keras")) == ["student_1.keras", "teacher.keras"]
    assert (run / "backup" / "student_2").is_dir() and not (killed / "final.npz").exists()
    code, log = finish(start_worker(killed))
    assert code == 0, log[-3000:]
    # The second process loaded the two finished stages and began student_2 at its epoch-2 backup (step 6).
    steps = arguments()["steps_per_epoch"]
    assert (killed / "starts.txt").read_text().splitlines() == ["teacher 0", "student_1 0", "student_2 0",
                                                                f"student_2 {2 * steps}"]
    assert not (run / "backup" / "student_2").exists()
    expected, got = np.load(whole / "final.npz"), np.load(killed / "final.npz")
    assert sorted(expected.files) == sorted(got.files) and any(k.startswith("ema:") for k in got.files)
    for key in expected.files:
        assert_close(got[key], expected[key], key)
    # A third call finds every stage finished: it trains nothing and returns the same model.
    code, log = finish(start_worker(killed))
    assert code == 0, log[-3000:]
    assert len((killed / "starts.txt").read_text().splitlines()) == 4
    again = np.load(killed / "final.npz")
    for key in expected.files:
        np.testing.assert_array_equal(again[key], got[key], err_msg=key)


def quick(**changes):
    settings = dict(iterations=1, teacher_steps=2, steps=2, steps_per_epoch=2, teacher_batch_size=4, batch_size=4,
                    num_image=4, min_threshold=0.0, flip=False, verbose=0)
    settings.update(changes)
    return settings


@pytest.mark.parametrize("optimizer", [
    keras.optimizers.SGD(keras.optimizers.schedules.ExponentialDecay(0.01, 10, 0.5), momentum=0.9),
    lambda steps: keras.optimizers.AdamW(keras.optimizers.schedules.CosineDecay(1e-3, steps)),
    "upstream",
], ids=["sgd-instance", "adamw-function", "upstream"])
def test_any_keras_optimizer_and_schedule_trains_every_stage(optimizer):
    labeled, unlabeled, _ = tiny_data()
    result = fit_noisy_student(labeled, unlabeled, teacher=tiny_cnn(), **quick(optimizer=optimizer, iterations=2))
    kinds = {"sgd-instance": keras.optimizers.SGD, "upstream": TF1RMSProp}
    expected = kinds.get(optimizer if isinstance(optimizer, str) else "", None)
    if isinstance(optimizer, keras.optimizers.Optimizer):
        expected = type(optimizer)
        assert int(optimizer.iterations.numpy()) == 0  # a template: each stage trains a fresh copy
    elif callable(optimizer):
        expected = keras.optimizers.AdamW
    assert type(result.model.optimizer) is expected
    assert int(result.model.optimizer.iterations.numpy()) == 2


def test_the_default_optimizer_is_upstreams_for_the_package_efficientnets_and_adam_otherwise():
    labeled, unlabeled, _ = tiny_data()

    def efficientnet():
        return build_model("efficientnet-b0", 10, small_image_model=True, width_coefficient=0.1,
                           depth_coefficient=0.1)

    package = fit_noisy_student(labeled, unlabeled, teacher=efficientnet(), mean=[128.0] * 3, std=[64.0] * 3,
                                **quick())
    assert isinstance(package.model.optimizer, TF1RMSProp)
    schedule = package.model.optimizer._learning_rate
    assert schedule.get_config()["train_steps"] == 2 and schedule.get_config()["num_train_images"] == 40
    other = fit_noisy_student(labeled, unlabeled, teacher=tiny_cnn(), **quick())
    assert type(other.model.optimizer) is keras.optimizers.Adam


def test_a_tf_data_unlabeled_set_gives_the_selection_of_the_same_images_as_arrays():
    labeled, unlabeled, _ = tiny_data()
    keras.utils.set_random_seed(1)
    teacher = tiny_cnn()
    from_arrays = fit_noisy_student(labeled, unlabeled, teacher=teacher, **quick(teacher_steps=0))
    from_dataset = fit_noisy_student(labeled, tf.data.Dataset.from_tensor_slices(unlabeled), teacher=teacher,
                                     **quick(teacher_steps=0))
    for key in ("probabilities", "copies"):
        np.testing.assert_array_equal(from_dataset.pseudo_labels["student_1"][key],
                                      from_arrays.pseudo_labels["student_1"][key], err_msg=key)
    assert from_arrays.history[0]["steps"] == 0  # the trained teacher was used as given


def test_a_directory_holding_another_runs_settings_is_refused(tmp_path):
    labeled, unlabeled, _ = tiny_data()
    fit_noisy_student(labeled, unlabeled, teacher=tiny_cnn(), directory=str(tmp_path / "run"), **quick())
    with pytest.raises(ValueError, match=r"`directory` .* other settings \(unlabel_ratio\)"):
        fit_noisy_student(labeled, unlabeled, teacher=tiny_cnn(), directory=str(tmp_path / "run"),
                          **quick(unlabel_ratio=3.0))


def bad_calls():
    labeled, unlabeled, _ = tiny_data()
    x, y = labeled
    return {
        "student-classes": (dict(teacher=tiny_cnn(), student=tiny_cnn(classes=5)),
                            "`student` returns 5 logits per image but the teacher 10"),
        "labels-beyond-the-classes": (dict(labeled=(x, y + 5), teacher=tiny_cnn()),
                                      r"`labeled` labels run from 5 to 14, but the teacher has 10 classes"),
        "student-probabilities": (dict(teacher=tiny_cnn(), student=tiny_cnn(activation="softmax")),
                                  "`student` ends in a softmax"),
        "teacher-probabilities": (dict(teacher=tiny_cnn(activation="softmax")), "`teacher` ends in a softmax"),
        "empty-unlabeled": (dict(unlabeled=unlabeled[:0], teacher=tiny_cnn()), "`unlabeled` holds no images"),
        "unlabeled-with-labels": (dict(unlabeled=(unlabeled, np.zeros(len(unlabeled), np.int64)),
                                       teacher=tiny_cnn()), "`unlabeled` is a tuple: unlabeled data has no labels"),
        "unlabeled-dataset-with-labels": (
            dict(unlabeled=tf.data.Dataset.from_tensor_slices((unlabeled, np.zeros(len(unlabeled), np.int64))),
                 teacher=tiny_cnn()), "`unlabeled` must yield single images without labels"),
        "factory-returns-no-model": (dict(teacher=tiny_cnn(), student=lambda k: "cnn"),
                                     "`student` \\(a function\\) returned str for iteration 1, not a keras.Model"),
        "steps-not-in-epochs": (dict(teacher=tiny_cnn(), steps=5), r"`steps` \(5\) must be a multiple of "
                                                                    r"steps_per_epoch \(2\)"),
        "teacher-not-a-model": (dict(teacher="resnet"), "`teacher` must be a keras.Model"),
        "empty-labeled": (dict(labeled=(x[:0], y[:0]), teacher=tiny_cnn()), "`labeled` holds no images"),
        "upstream-schedule-without-a-size": (
            dict(labeled=tf.data.Dataset.from_tensor_slices((x, y)), teacher=tiny_cnn(), optimizer="upstream"),
            "`optimizer` 'upstream' .* needs the number of labeled images"),
    }


@pytest.mark.parametrize("case", list(bad_calls()))
def test_bad_input_is_refused_naming_the_argument_with_nothing_written(tmp_path, case):
    labeled, unlabeled, _ = tiny_data()
    changes, message = bad_calls()[case]
    call = dict(labeled=labeled, unlabeled=unlabeled, **quick(directory=str(tmp_path / "run")))
    call.update(changes)
    with pytest.raises((ValueError, TypeError), match=message) as raised:
        fit_noisy_student(call.pop("labeled"), call.pop("unlabeled"), **call)
    assert str(raised.value).startswith("fit_noisy_student: ")
    assert not (tmp_path / "run").exists()


def test_no_confident_pseudo_label_is_a_clear_error():
    labeled, unlabeled, _ = tiny_data()
    with pytest.raises(ValueError, match="no pseudo label .* reached `min_threshold` \\(0.99\\)"):
        fit_noisy_student(labeled, unlabeled, teacher=tiny_cnn(), **quick(min_threshold=0.99))

