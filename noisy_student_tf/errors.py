"""Errors caused by the user's input (a flag, a file, a checkpoint), with messages written for a person.

Entry points catch `UserError`, print its message and exit non-zero without a traceback; anything else is a
bug and keeps its traceback.
"""


class UserError(ValueError):
    """Bad input: the message names the file, flag or value at fault and what to do about it."""


class CheckpointError(UserError):
    """A checkpoint is missing, unreadable, or does not fit the model."""


def first_line(error) -> str:
    """The first non-empty line of an exception's message (TF errors append long op traces)."""
    text = getattr(error, "message", None) or str(error)
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0][:500] if lines else type(error).__name__
