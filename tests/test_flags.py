"""Flags keep the original names and defaults (the flag definitions of upstream `main.py`, `predict_label.py`
and `filter_unlabel.py`)."""

# Tests the command line's adapter: the flags, and the configs noisy_student_tf.cli.adapters makes of them.
from absl import flags

import flag_helper
import jobs_helper
from noisy_student_tf.cli import adapters
from noisy_student_tf.config import AugmentConfig
from noisy_student_tf.cli.flags import define_augment_flags


def test_augment_flags_have_upstream_defaults():
    values = flags.FlagValues()
    define_augment_flags(values)
    values(["prog"])
    assert (values.augment_name, values.randaug_layer, values.randaug_mag) == (None, 2, 27)
    assert (values.unl_aug, values.remove_aug, values.cutout_op) == ("default", False, True)
    assert values.randaug_contrast == "pil"
    assert adapters.augment_config(values, jobs_helper.IMAGENET) == AugmentConfig()
    values(["prog", "--augment_name=v1", "--randaug_mag=5", "--nocutout_op", "--randaug_contrast=upstream"])
    assert (values.augment_name, values.randaug_mag, values.cutout_op, values.randaug_contrast) == (
        "v1", 5, False, "upstream")
    assert adapters.augment_config(values, jobs_helper.IMAGENET) == AugmentConfig(
        augment_name="v1", unl_augment_name="v1", randaug_mag=5, cutout_op=False, contrast_mode="upstream")


def test_offline_flags_keep_upstream_names_types_and_defaults():
    from noisy_student_tf.cli.flags import define_filter_flags, define_main_flags

    main = flags.FlagValues()
    define_main_flags(main)
    main(["predict.py", "--shard=3,4"])  # --shard is an alias of main.py's string --shard_id
    assert main.shard_id == "3,4" and adapters.predict_config(main).shards == (3, 4)
    assert (main.num_shards, main.total_replicas, main.worker_id, main.file_prefix) == (128, 1, 0, "train")
    assert (main.predict_ckpt_path, main.reassign_label, main.data_type) == ("", False, "tfrecord")

    filt = flags.FlagValues()
    define_filter_flags(filt)
    filt(["filter_unlabel.py", "--shard=5"])
    assert filt.shard_id == 5  # an int in filter_unlabel.py, as upstream (`flags.DEFINE_integer`)
    assert adapters.filter_config(filt).shard_id == 5
    assert (filt.num_image, filt.min_threshold, filt.max_prob, filt.task, filt.num_label_classes) == (
        1300, 0.0, 2, -1, 1000)
    assert (filt.upsample, filt.only_get_stats, filt.use_top, filt.use_all, filt.only_use_num_shards) == (
        1, 0, 1, False, -1)
    assert (filt.file_prefix, filt.num_shards, filt.total_replicas, filt.debug) == ("train", 128, 1, 0)


def test_the_tests_configs_are_what_main_py_gives_for_the_tiny_network_flags():
    """jobs_helper's configs, which the tests of the jobs run, are main.py's defaults with TINY_FLAGS."""
    values = flag_helper.main_flags(*jobs_helper.TINY_FLAGS, "--model_dir=m", "--label_data_dir=l",
                                    "--predict_ckpt_path=c", "--output_dir=o")
    # The training job fills in the task's image count itself (jobs.train.validate).
    assert adapters.train_config(values) == jobs_helper.train_config(
        "m", "l", optim__num_train_images=jobs_helper.IMAGENET.num_train_images)
    assert adapters.eval_config(values) == jobs_helper.eval_config("m", "l")
    assert adapters.predict_config(values) == jobs_helper.predict_config("c", "l", "o")
    values = flag_helper.main_flags(*jobs_helper.TINY_FLAGS, "--model_dir=m", "--output=o", export=True)
    assert adapters.export_config(values) == jobs_helper.export_config("m", "o")
    # The svhn task forces the small-image model at 32x32 (TINY_SVHN).
    values = flag_helper.main_flags(*jobs_helper.TINY_FLAGS, "--task_name=svhn", "--nosmall_image_model",
                                    "--model_dir=m", "--label_data_dir=l")
    assert adapters.eval_config(values) == jobs_helper.eval_config("m", "l", svhn=True)
    # --augment_name=v1 also names the unlabeled images' noise (--unl_aug=default); a teacher and its checkpoint.
    values = flag_helper.main_flags(*jobs_helper.TINY_FLAGS, "--model_dir=m", "--label_data_dir=l",
                                    "--augment_name=v1", "--teacher_model_name=efficientnet-b0",
                                    "--teacher_model_path=t", "--teacher_softmax_temp=1")
    assert adapters.train_config(values) == jobs_helper.train_config(
        "m", "l", optim__num_train_images=jobs_helper.IMAGENET.num_train_images, augment__augment_name="v1",
        augment__unl_augment_name="v1", teacher=jobs_helper.teacher(checkpoint="t", softmax_temp=1))
