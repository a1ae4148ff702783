"""What every entry point shares: quiet TF start-up and turning input errors into a clear exit."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's C++ start-up chatter out of the user's log

from absl import app  # noqa: E402

from noisy_student_tf.errors import UserError, is_write_failure, write_failure_message  # noqa: E402


def run(main) -> None:
    """absl `app.run(main)`, but a `UserError`, or storage refusing a write (disk full, read-only), prints one
    clear line and exits with status 1."""

    def guarded(argv):
        try:
            return main(argv)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(1)
        except Exception as e:  # noqa: BLE001 - a storage failure is the user's to fix; anything else is a bug
            if not is_write_failure(e):
                raise
            print(f"error: {write_failure_message(e)}", file=sys.stderr)
            sys.exit(1)

    app.run(guarded)
