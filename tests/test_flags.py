"""Flags keep the original names and defaults (spec §1.1)."""

from absl import flags

from noisy_student_tf.flags import define_augment_flags


def test_augment_flags_have_upstream_defaults():
    values = flags.FlagValues()
    define_augment_flags(values)
    values(["prog"])
    assert (values.augment_name, values.randaug_layer, values.randaug_mag) == (None, 2, 27)
    assert (values.unl_aug, values.remove_aug, values.cutout_op) == ("default", False, True)
    assert values.randaug_contrast == "pil"
    values(["prog", "--augment_name=v1", "--randaug_mag=5", "--nocutout_op", "--randaug_contrast=upstream"])
    assert (values.augment_name, values.randaug_mag, values.cutout_op, values.randaug_contrast) == (
        "v1", 5, False, "upstream")


def test_offline_flags_keep_upstream_names_types_and_defaults():
    from noisy_student_tf.flags import define_filter_flags, define_main_flags

    main = flags.FlagValues()
    define_main_flags(main)
    main(["predict.py", "--shard=3,4"])  # --shard is an alias of main.py's string --shard_id
    assert main.shard_id == "3,4"
    assert (main.num_shards, main.total_replicas, main.worker_id, main.file_prefix) == (128, 1, 0, "train")
    assert (main.predict_ckpt_path, main.reassign_label, main.data_type) == ("", False, "tfrecord")

    filt = flags.FlagValues()
    define_filter_flags(filt)
    filt(["filter_unlabel.py", "--shard=5"])
    assert filt.shard_id == 5  # an int in filter_unlabel.py, as upstream (spec §11.1 item 6)
    assert (filt.num_image, filt.min_threshold, filt.max_prob, filt.task, filt.num_label_classes) == (
        1300, 0.0, 2, -1, 1000)
    assert (filt.upsample, filt.only_get_stats, filt.use_top, filt.use_all, filt.only_use_num_shards) == (
        1, 0, 1, False, -1)
    assert (filt.file_prefix, filt.num_shards, filt.total_replicas, filt.debug) == ("train", 128, 1, 0)
