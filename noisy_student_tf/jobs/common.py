"""What every entry point shares: quiet TF start-up and turning input errors into a clear exit."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's C++ start-up chatter out of the user's log

from absl import app  # noqa: E402

from noisy_student_tf.errors import UserError  # noqa: E402


def run(main) -> None:
    """absl `app.run(main)`, but a `UserError` prints one clear line and exits with status 1."""

    def guarded(argv):
        try:
            return main(argv)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(1)

    app.run(guarded)
