"""FLAGS.md is what the flag definitions generate (regenerate with `python -m noisy_student_tf.cli.reference`)."""

from noisy_student_tf.cli import reference as flag_reference


def test_flag_reference_is_up_to_date():
    with open(flag_reference.PATH, encoding="utf-8") as f:
        assert f.read() == flag_reference.render(), "FLAGS.md is stale: run python -m noisy_student_tf.cli.reference"


def test_every_entry_point_is_documented():
    text = flag_reference.render()
    for program in ("main.py", "filter_unlabel.py", "iterate.py", "proc_svhn.py", "prepro_digits.py",
                    "prepro_images.py", "export.py", "convert_checkpoint.py"):
        assert f"## {program}" in text or f", {program}" in text
    for flag in ("--shard_id", "--predict_batch_size", "--only_get_stats", "--rebuild_stale", "--student_model_names",
                 "--tfds_name", "--on_bad_image", "--overwrite", "--to_tf1"):
        assert f"| `{flag}` |" in text
