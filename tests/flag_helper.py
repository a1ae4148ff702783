"""For the tests of the command lines' adapters (noisy_student_tf/adapters.py): flags parsed from strings.
Every other test builds its config (tests/jobs_helper.py)."""

from absl import flags

from noisy_student_tf.cli.flags import define_export_flags, define_main_flags


def main_flags(*args, export=False):
    """main.py's flags (with `export`, export.py's) parsed from `args`."""
    values = flags.FlagValues()
    define_main_flags(values)
    if export:
        define_export_flags(values)
    values(["main.py", *args])
    return values
