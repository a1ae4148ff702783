"""Errors caused by the user's input (a flag, a file, a checkpoint), with messages written for a person.

Entry points catch `UserError`, print its message and exit non-zero without a traceback; anything else is a
bug and keeps its traceback.
"""

import re


class UserError(ValueError):
    """Bad input: the message names the file, flag or value at fault and what to do about it."""


class CheckpointError(UserError):
    """A checkpoint is missing, unreadable, or does not fit the model."""


def first_line(error) -> str:
    """The informative line of an exception's message.

    TF graph errors wrap the real message in "Graph execution error:", node names and op traces; a failed
    tf.debugging assertion reads "assertion failed: [our message] [Condition ...] [x (...) = ] [value]", which
    becomes "our message (value: ...)".
    """
    text = getattr(error, "message", None) or str(error)
    noise = ("Graph execution error", "Detected at node", "<stack traces unavailable>", "[[")
    for line in text.splitlines():
        # Indented lines are Python traceback entries and TF's node annotations.
        if not line.strip() or line[0].isspace() or line.startswith(noise):
            continue
        if line.startswith("assertion failed: ["):
            groups = re.findall(r"\[([^\[\]]*)\]", line)
            message = groups[0] if groups else line
            for label, value in zip(groups, groups[1:]):
                if label.startswith("x (") and label.endswith("= "):
                    return f"{message} (value: {value})"
            return message
        return line[:500]
    return type(error).__name__
