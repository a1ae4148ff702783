"""Errors caused by the user's input (a flag, a file, a checkpoint), with messages written for a person.

Entry points catch `UserError`, print its message and exit non-zero without a traceback; anything else is a
bug and keeps its traceback.
"""

import errno
import re


class UserError(ValueError):
    """Bad input: the message names the file, flag or value at fault and what to do about it."""


class CheckpointError(UserError):
    """A checkpoint is missing, unreadable, or does not fit the model."""


class UnreachableStorage(UserError):
    """The filesystem of a path cannot be reached at all (no network, no credentials, an unknown URL scheme)."""


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
        return _without_op_decoration(line)[:500]
    return type(error).__name__


def _without_op_decoration(line: str) -> str:
    """Drops what eager TF wraps around a kernel's message (`{{function_node ...}} `, ` [Op:Name] name: `) and the
    empty tail of TFRecord read errors (`' failed with ` and no reason)."""
    line = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", line)
    line = re.sub(r"\s*\[Op:\w+\]( name: .*)?$", "", line)
    return re.sub(r"' failed with\s*$", "", line).strip() or line


class OutputError(UserError):
    """The output could not be written (disk full, file size limit, read-only or forbidden directory)."""


# What the operating system says when a write cannot succeed whatever the program does; TF's file errors carry
# the same strerror text (ENOSPC arrives as ResourceExhausted, EFBIG as OutOfRange, EROFS/EACCES as
# PermissionDenied), so the text, not the class, identifies them.
_WRITE_ERRNOS = {"ENOSPC", "EFBIG", "EDQUOT", "EROFS", "EACCES", "EPERM"}
_WRITE_FAILURES = ("No space left on device", "File too large", "Disk quota exceeded", "Read-only file system",
                   "Permission denied", "Operation not permitted")


def is_write_failure(error: BaseException) -> bool:
    """True for an OS or TF error that means "this storage refuses the write" (not a bug, not bad input data)."""
    if isinstance(error, OSError) and error.errno is not None:
        return errno.errorcode.get(error.errno) in _WRITE_ERRNOS
    if type(error).__module__.startswith("tensorflow"):
        return any(text in str(error) for text in _WRITE_FAILURES)
    return False


def write_failure_message(error: BaseException, path: str | None = None) -> str:
    # TF's messages name its own temporary file; only the operating system's reason is worth repeating.
    reason = getattr(error, "strerror", None) or next(
        (text for text in _WRITE_FAILURES if text in str(error)), first_line(error))
    where = path or getattr(error, "filename", None)
    return (f"cannot write {where or 'the output'}: {reason}. Nothing partial was kept under a final name; free "
            "space (or choose a writable --output_dir / --model_dir) and run the same command again to resume")
