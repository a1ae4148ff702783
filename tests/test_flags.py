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
