"""The noisy-student step as a Keras model (`NoisyStudent`): fit() equals the command-line trainer's step, fit()
under MirroredStrategy equals one device, BackupAndRestore resumes a SIGKILLed fit(), and bad arguments are
named."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf.data.fit_input import noisy_student_dataset
from noisy_student_tf.models.inference import model_from_config
from noisy_student_tf.training.noisy_student import NoisyStudent
from noisy_student_tf.training.optimizer import TF1RMSProp
from noisy_student_tf.training.schedule import UpstreamLearningRate
from noisy_student_tf.training.train_function import schedule_arguments
from test_losses import fixed_batch, make_trainer, one_step

TOLERANCE = 1e-5
HERE = os.path.dirname(os.path.abspath(__file__))


def keras_twin(trainer, *, synchronized_bn=False):
    """A NoisyStudent built independently from the trainer's config, holding copies of its current weights."""
    cfg = trainer.cfg
    student = model_from_config(cfg.model, synchronized_bn=synchronized_bn)
    student.set_weights(trainer.model.student.get_weights())
    teacher = None
    if trainer.model.teacher is not None:
        teacher = model_from_config(cfg.model, model_name=cfg.teacher.model_name, image_size=cfg.teacher.image_size,
                                    synchronized_bn=synchronized_bn)
        teacher.set_weights(trainer.model.teacher.get_weights())
    model = NoisyStudent(student, teacher, unlabel_ratio=cfg.input.unlabel_ratio,
                         teacher_softmax_temp=cfg.teacher.softmax_temp, label_smoothing=cfg.optim.label_smoothing,
                         weight_decay=cfg.optim.weight_decay, moving_average_decay=cfg.optim.moving_average_decay,
                         label_data_sample_prob=cfg.input.label_data_sample_prob, mean=cfg.task.mean,
                         std=cfg.task.std, seed=cfg.seed)
    model.compile(optimizer=TF1RMSProp(learning_rate=UpstreamLearningRate(**schedule_arguments(cfg))))
    return model


def assert_close(got, expected, what):
    np.testing.assert_allclose(got, expected, rtol=TOLERANCE, atol=TOLERANCE, err_msg=what)


@pytest.mark.parametrize("temperature, online, p", [(-1, True, 1.0), (0.5, True, 1.0), (-1, False, 0.5),
                                                    (0.7, False, 1.0)],
                         ids=["hard-online", "soft-online", "hard-stored-p0.5", "soft-stored"])
def test_fit_step_equals_the_command_line_step(tmp_path, temperature, online, p):
    trainer = make_trainer(tmp_path, temperature=temperature, online=online, p=p)
    trainer.model.reset_ema()
    model = keras_twin(trainer)
    batches = [fixed_batch(seed) for seed in (0, 1)]
    before = [w.numpy() for w in model.student.trainable_weights]

    cli = [one_step(trainer, batch) for batch in batches]
    history = model.fit(global_dataset(batches), epochs=1, verbose=0)
    # fit() logs the mean over the epoch's steps.
    assert_close(history.history["loss"][0], np.mean([m["train/loss"] for m in cli]), "loss")
    assert_close(history.history["labeled_loss"][0], np.mean([m["lab/loss"] for m in cli]), "labeled loss")
    assert model.optimizer.iterations.numpy() == trainer.global_step == 2
    for mine, theirs in zip(model.student.weights, trainer.model.student.weights):
        assert_close(mine.numpy(), theirs.numpy(), mine.path)
    ema = trainer.model.ema.values()
    assert set(model.ema.values()) == set(ema)
    for path, value in model.ema.values().items():
        assert_close(value, ema[path], "EMA of " + path)
    # The steps changed the weights, so the equality above is not that of two untouched copies.
    assert all(not np.array_equal(w.numpy(), b) for w, b in zip(model.student.trainable_weights, before))


def global_dataset(batches):
    return tf.data.Dataset.from_tensor_slices(
        {part: {k: np.stack([b[part][k] for b in batches]) for k in batches[0][part]} for part in batches[0]})


def test_fit_under_mirrored_strategy_equals_one_device(tmp_path):
    batches = [fixed_batch(seed) for seed in (0, 1, 2)]
    results = {}
    for name, strategy in (("one", tf.distribute.get_strategy()),
                           ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
        trainer = make_trainer(tmp_path / name, temperature=0.5, online=True)  # the same initial weights each time
        with strategy.scope():
            model = keras_twin(trainer, synchronized_bn=name == "mirrored")
        history = model.fit(global_dataset(batches), epochs=1, verbose=0)
        results[name] = (history.history, [w.numpy() for w in model.student.weights], model.ema.values())
    (h1, w1, e1), (h2, w2, e2) = results["one"], results["mirrored"]
    assert_close(h2["loss"][0], h1["loss"][0], "loss")
    assert len(w1) == len(w2)
    for a, b in zip(w2, w1):
        assert_close(a, b, "weights")
    for path in e1:
        assert_close(e2[path], e1[path], "EMA of " + path)


def small_classifier(classes=10, size=8):
    import keras

    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes)(x))


def test_bad_models_are_refused_naming_the_argument():
    with pytest.raises(ValueError, match="`student` returns 10 logits per image but num_classes is 5"):
        NoisyStudent(small_classifier(10), num_classes=5)
    with pytest.raises(ValueError, match="`teacher` returns 7 logits"):
        NoisyStudent(small_classifier(10), small_classifier(7))
    with pytest.raises(TypeError, match="`student` must be a keras.Model"):
        NoisyStudent(lambda x: x)
    with pytest.raises(ValueError, match="teacher_softmax_temp"):
        NoisyStudent(small_classifier(), teacher_softmax_temp=0)
    import keras

    probabilities = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                                      keras.layers.Dense(10, activation="softmax", name="probs")])
    with pytest.raises(ValueError, match="`student` ends in a softmax .*'probs'.*returns probabilities"):
        NoisyStudent(probabilities)
    softmax_layer = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(10),
                                      keras.layers.Activation("softmax")])
    with pytest.raises(ValueError, match="`teacher` ends in a softmax"):
        NoisyStudent(small_classifier(10), softmax_layer)
    with pytest.raises(ValueError, match="`loss` is not used"):
        NoisyStudent(small_classifier()).compile(optimizer="sgd", loss="mse")


def test_bad_batches_are_refused_naming_the_part():
    model = NoisyStudent(small_classifier(10))
    model.compile(optimizer="sgd")
    images = np.zeros((4, 8, 8, 3), np.float32)
    with pytest.raises(ValueError, match=r"batch\['labeled'\]\['label'\] must be integer class indices"):
        model.fit(images, np.zeros((4,), np.float32), verbose=0)
    with pytest.raises(ValueError, match="no 'probs'"):
        model.fit(tf.data.Dataset.from_tensors({"labeled": {"image": images, "label": np.zeros(4, np.int32)},
                                                "unlabeled": {"image": images}}), verbose=0)
    unknown_rank = tf.data.Dataset.from_tensors((images, np.zeros(4, np.int32))).map(
        lambda x, y: (tf.py_function(lambda t: t, [x], tf.float32), y))
    with pytest.raises(ValueError, match=r"\['image'\] must be images.*unknown rank.*set_shape"):
        model.fit(unknown_rank, verbose=0)


def test_a_trained_noisy_student_teaches_with_its_averaged_weights():
    trained = NoisyStudent(small_classifier(10), moving_average_decay=0.5)
    trained.compile(optimizer="sgd")
    images = np.random.RandomState(0).uniform(0, 255, (4, 8, 8, 3)).astype(np.float32)
    trained.fit(images, np.arange(4), epochs=2, verbose=0)
    student = NoisyStudent(small_classifier(10), trained)
    np.testing.assert_allclose(student.teacher(images, training=False), trained.predict(images, verbose=0),
                               rtol=1e-5, atol=1e-5)
    assert not np.allclose(student.teacher(images, training=False), trained(images), atol=1e-4)
    with pytest.raises(ValueError, match="the teacher normalises with mean=None"):
        NoisyStudent(small_classifier(10), trained, mean=(1, 1, 1), std=(2, 2, 2))


@pytest.mark.parametrize("call, message", [
    (lambda x, y: noisy_student_dataset((x[..., 0], y), batch_size=2), "`labeled` must give images"),
    (lambda x, y: noisy_student_dataset((x[..., :1], y), batch_size=2), "3 channels"),
    (lambda x, y: noisy_student_dataset((x, y.astype(np.float32)), batch_size=2), "integer class indices"),
    (lambda x, y: noisy_student_dataset((x, y[:3]), batch_size=2), "different lengths"),
    (lambda x, y: noisy_student_dataset((x, y), tf.data.Dataset.from_tensor_slices((x, y)), batch_size=2),
     "unlabeled data has no labels"),
    (lambda x, y: noisy_student_dataset((x, y), x, batch_size=0), "`batch_size` must be a positive integer"),
    (lambda x, y: noisy_student_dataset((x, y), batch_size=2, image_size=16, small_image_model=True),
     "small-image recipe takes them as they are"),
    (lambda x, y: noisy_student_dataset(tf.data.Dataset.from_tensor_slices((x, y)).map(
        lambda a, b: (tf.py_function(lambda t: t, [a], tf.uint8), b)), batch_size=2), "unknown shape.*set_shape"),
], ids=["rank", "channels", "label-dtype", "lengths", "unlabeled-with-labels", "batch-size", "small-size",
        "unknown-rank"])
def test_bad_data_is_refused_naming_the_argument(call, message):
    x = np.zeros((6, 8, 8, 3), np.uint8)
    y = np.arange(6) % 3
    with pytest.raises(ValueError, match=message):
        call(x, y)


def test_ema_student_with_and_without_the_normalisation(tmp_path):
    """ema_student() is the bare network (normalised images in); with include_normalization it takes 0..255
    images and gives predict()'s logits, and reloads with plain Keras. NumPy's int64 labels train as well."""
    import keras

    from noisy_student_tf.models import build_model
    from noisy_student_tf.models.inference import normalize

    mean, std = (120.0, 110.0, 100.0), (60.0, 50.0, 40.0)
    model = NoisyStudent(build_model("efficientnet-b0", 4, small_image_model=True, width_coefficient=0.25,
                                     depth_coefficient=0.25), unlabel_ratio=0, mean=mean, std=std,
                         moving_average_decay=0.5)
    model.compile(optimizer=TF1RMSProp(UpstreamLearningRate(0.1, 4, 8, 4)))
    rng = np.random.RandomState(0)
    images = rng.uniform(0, 255, (8, 32, 32, 3)).astype(np.float32)
    model.fit(tf.data.Dataset.from_tensor_slices((images, np.arange(8) % 4)).batch(4), epochs=1, verbose=0)
    expected = model.predict(images, verbose=0)
    assert not np.allclose(expected, model(images).numpy(), atol=1e-3)  # the averages differ from the weights
    bare = model.ema_student()
    np.testing.assert_allclose(bare(normalize(images, mean, std), training=False), expected, rtol=1e-4, atol=1e-4)
    assert np.abs(bare(images, training=False).numpy() - expected).max() > 1e-2  # raw images are not its input
    on_images = model.ema_student(include_normalization=True)
    np.testing.assert_allclose(on_images(images, training=False), expected, rtol=1e-4, atol=1e-4)
    on_images.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(reloaded(images, training=False), expected, rtol=1e-4, atol=1e-4)


def test_fit_refuses_an_endless_dataset_without_steps_and_warns_off_schedule():
    from noisy_student_tf.models import build_model

    model = NoisyStudent(build_model("efficientnet-b0", 4, small_image_model=True, width_coefficient=0.25,
                                     depth_coefficient=0.25), unlabel_ratio=0)
    model.compile(optimizer=TF1RMSProp(UpstreamLearningRate(0.016, 4, 8, train_steps=3)))
    x = np.random.RandomState(0).uniform(0, 255, (8, 32, 32, 3)).astype(np.float32)
    endless = noisy_student_dataset((x, np.arange(8) % 4), batch_size=4)
    with pytest.raises(ValueError, match="never ends.*pass steps_per_epoch"):
        model.fit(endless, epochs=1, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 0
    with pytest.warns(UserWarning, match="2 steps .* schedule runs 3"):
        model.fit(endless, epochs=2, steps_per_epoch=1, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 2


def test_dataset_batches_have_the_command_line_structure_and_ratio():
    rng = np.random.RandomState(0)
    x = rng.randint(0, 256, (12, 32, 32, 3)).astype(np.uint8)
    y = np.arange(12) % 4
    online = next(iter(noisy_student_dataset((x, y), x, batch_size=4, unlabel_ratio=1.5, seed=3)))
    assert online["labeled"]["image"].shape == (4, 32, 32, 3) and online["labeled"]["label"].dtype == tf.int32
    assert online["unlabeled"]["image"].shape == (6, 32, 32, 3)  # ceil(4 * 1.5)
    # The teacher's view is the clean image itself on the small-image path; the student's is noised.
    clean = online["unlabeled"]["teacher_image"].numpy()
    assert all(any(np.array_equal(c, img) for img in x.astype(np.float32)) for c in clean)
    assert not np.allclose(online["unlabeled"]["image"].numpy(), clean)
    probs = rng.dirichlet(np.ones(4), 12).astype(np.float32)
    stored = next(iter(noisy_student_dataset((x, y), (x, probs), batch_size=4, unlabel_ratio=2)))
    assert set(stored["unlabeled"]) == {"image", "probs", "label"}
    np.testing.assert_array_equal(stored["unlabeled"]["label"], stored["unlabeled"]["probs"].numpy().argmax(-1))
    again = next(iter(noisy_student_dataset((x, y), x, batch_size=4, unlabel_ratio=1.5, seed=3)))
    np.testing.assert_array_equal(again["unlabeled"]["image"], online["unlabeled"]["image"])


@pytest.mark.parametrize("sample_prob, ratio", [(0.5, 3), (1.0, 1.5), (0.3, 2)])
def test_command_line_and_python_api_assemble_the_same_batches(tmp_path, sample_prob, ratio):
    """One batch assembler: with --label_data_sample_prob below 1, the unlabeled batch is ceil(B * p * r)
    (upstream `data_input.py`) from shards and from arrays alike."""
    import tiny_data
    from noisy_student_tf.config import AugmentConfig, InputConfig, ModelConfig
    from noisy_student_tf.data.inputs import train_dataset

    labels = np.arange(24) % 4
    tiny_data.write_labeled(str(tmp_path / "lab"), "train", labels)
    probs = np.random.RandomState(1).dirichlet(np.ones(4), 24).astype(np.float32)
    tiny_data.write_unlabeled(str(tmp_path / "unl"), labels, num_classes=4, probabilities=probs)
    inputs = InputConfig(label_data_dir=str(tmp_path / "lab"), unlabel_data_dir=str(tmp_path / "unl"),
                         train_batch_size=8, unlabel_ratio=ratio, label_data_sample_prob=sample_prob)
    noise = AugmentConfig(augment_name="v1", unl_augment_name="v1", flip=True)
    from_shards = next(iter(train_dataset(inputs, noise, ModelConfig("efficientnet-b0", 4, 32, small_image_model=True),
                                          seed=0, stored_predictions=True)))
    x = np.zeros((24, 32, 32, 3), np.uint8)
    from_arrays = next(iter(noisy_student_dataset((x, labels), (x, probs), batch_size=8, unlabel_ratio=ratio,
                                                  label_data_sample_prob=sample_prob, augment=noise)))
    expected = int(np.ceil(8 * sample_prob * ratio))
    assert from_shards["unlabeled"]["image"].shape == from_arrays["unlabeled"]["image"].shape == (expected, 32, 32, 3)
    for part in ("labeled", "unlabeled"):
        for key in from_arrays[part]:
            assert from_shards[part][key].shape == from_arrays[part][key].shape, (part, key)
            assert from_shards[part][key].dtype == from_arrays[part][key].dtype, (part, key)


def start_worker(out_dir, kill_after):
    out_dir.mkdir()
    return subprocess.Popen([sys.executable, os.path.join(HERE, "keras_fit_worker.py"), str(out_dir),
                             str(kill_after)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(process):
    log = process.communicate(timeout=600)[0]
    return process.returncode, log


def test_backup_and_restore_resumes_a_sigkilled_fit_to_the_uninterrupted_result(tmp_path):
    import keras

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    processes = [start_worker(whole, -1), start_worker(killed, 1)]  # killed after its second epoch
    (code_whole, log_whole), (code_killed, log_killed) = [finish(p) for p in processes]
    assert code_whole == 0, log_whole[-3000:]
    assert code_killed == -signal.SIGKILL, log_killed[-3000:]
    assert not (killed / "final.npz").exists() and (killed / "backup").is_dir()
    code, log = finish(subprocess.Popen([sys.executable, os.path.join(HERE, "keras_fit_worker.py"), str(killed),
                                         "-1"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True))
    assert code == 0, log[-3000:]
    # The second process began at the backup of epoch 2 (3 steps per epoch), not from scratch.
    assert (killed / "starts.txt").read_text().split() == ["0", "6"]
    expected, got = np.load(whole / "final.npz"), np.load(killed / "final.npz")
    assert sorted(expected.files) == sorted(got.files) and any(k.startswith("ema:") for k in got.files)
    for key in expected.files:
        assert_close(got[key], expected[key], key)
    # The other callbacks did their work: TensorBoard events, and a .keras file that plain Keras loads.
    assert list((whole / "logs" / "train").glob("events.out.tfevents.*"))
    loaded = keras.saving.load_model(whole / "model.keras")
    assert isinstance(loaded, NoisyStudent)
    for path, value in loaded.ema.values().items():
        assert_close(value, expected["ema:" + path], "EMA in the .keras file: " + path)


def test_summary_shows_the_student_and_what_else_the_model_holds():
    student = small_classifier(10)
    model = NoisyStudent(student, small_classifier(10))
    lines = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    text = "\n".join(lines)
    assert "conv2d" in text.lower() and f"{student.count_params():,}" in text  # the student's layers and total
    assert lines[-1].startswith(f"{model.name} also holds the teacher") and "moving averages of" in lines[-1]
