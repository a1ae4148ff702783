"""What every entry point shares: a quick `--help`, quiet TF start-up and turning input errors into a clear exit."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's C++ start-up chatter out of the user's log

from absl import app  # noqa: E402

from noisy_student_tf.errors import UserError, is_write_failure, write_failure_message  # noqa: E402


HELP_ARGS = ("-h", "-?", "--help", "--helpshort")


def print_help_and_exit(program: str) -> None:
    """Print `program`'s flags (cli.reference.program_help) and exit 0. absl's own --help lists only the flags
    of the __main__ module, and ours are defined in noisy_student_tf/cli/flags.py."""
    from noisy_student_tf import cli
    from noisy_student_tf.cli import reference

    script = sys.modules.get("__main__")
    # The top-level script's docstring (python main.py); else (console script, python -m) the cli function's.
    doc = getattr(script, "__doc__", None) if getattr(script, "__spec__", None) is None else None
    sys.stdout.write(reference.program_help(program, doc=doc or cli.PROGRAMS[program].__doc__))
    sys.stdout.flush()
    sys.exit(0)


def run(main, program: str | None = None, pass_through: bool = False) -> None:
    """absl `app.run(main)`, but arguments that are not flags, a `UserError`, or storage refusing a write (disk
    full, read-only) print one clear line and exit with status 1. With `program` (cli.PROGRAMS' name), `--help`,
    `-h` and `--helpshort` print that program's flags before `main` (whose modules import TensorFlow) is even
    imported. With `pass_through`, arguments that are not this program's flags reach `main` in its argv (Beam's
    pipeline options), for `main` to check."""
    args = sys.argv[1:]
    args = args[:args.index("--")] if "--" in args else args
    if program is not None and any(arg in HELP_ARGS for arg in args):
        print_help_and_exit(program)

    def guarded(argv):
        try:
            if len(argv) > 1 and not pass_through:
                raise UserError(f"unexpected arguments {argv[1:]}; flags are written --name=value")
            main(argv)  # what a job returns is for Python callers: absl would print it and exit with 1
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(1)
        except Exception as e:  # noqa: BLE001 - a storage failure is the user's to fix; anything else is a bug
            if not is_write_failure(e):
                raise
            print(f"error: {write_failure_message(e)}", file=sys.stderr)
            sys.exit(1)

    if pass_through:
        from absl import flags

        def parse_known(argv):
            return [argv[0]] + flags.FLAGS(argv, known_only=True)[1:]

        app.run(guarded, flags_parser=parse_known)
    else:
        app.run(guarded)
