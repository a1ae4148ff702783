"""Errors caused by the user's input (a flag, a file, a checkpoint), with messages written for a person.

Entry points catch `UserError`, print its message and exit non-zero without a traceback; anything else is a
bug and keeps its traceback.
"""


class UserError(ValueError):
    """Bad input: the message names the file, flag or value at fault and what to do about it."""


class CheckpointError(UserError):
    """A checkpoint is missing, unreadable, or does not fit the model."""
