"""Runs a function of an experiment in a fresh process with its own log file (the experiments' shared helper)."""

import multiprocessing
import os
import sys

from absl import flags, logging


def _logged_child(fn, args, log_path, verbosity):
    """The spawned process of spawn_logged: everything it prints (Python, absl, TensorFlow's C++ log) goes to
    the log."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    flags.FLAGS.mark_as_parsed()  # no command line here: absl logs without its "before flag parsing" note
    logging.use_absl_handler()
    logging.set_verbosity(verbosity)
    fn(*args)


def spawn_logged(fn, args, log_path, what):
    """fn(*args) in a fresh process with its own log: every run starts from a clean TensorFlow and Keras state
    (seeds, op determinism, traced functions), as a command line's does."""
    process = multiprocessing.get_context("spawn").Process(
        target=_logged_child, args=(fn, args, log_path, logging.get_verbosity()))
    process.start()
    process.join()
    if process.exitcode:
        sys.exit(f"{what} failed (exit {process.exitcode}); see {log_path}")
