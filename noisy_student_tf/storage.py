"""Every read and write of a path a user gives, over `tf.io.gfile`, so that any path may be a URL of a TensorFlow
filesystem: `gs://bucket/...` on Cloud TPU and Dataflow, as with upstream's `tf.gfile`; `ram://...` in the tests.

Paths are strings. A local path is anything without a `scheme://`; the functions below treat both kinds alike,
with these local-only refinements, kept here so that no other module needs a local-file call:

* file stamps of local files come from `os.stat` (nanosecond modification times; TensorFlow's local `stat`
  rounds them to seconds, which would make records written by earlier versions look stale);
* a finished local text file (records, markers) is `fsync`ed before it is renamed into place;
* a local walk may follow symbolic links (`walk(follow_links=True)`), reading a folder reached twice only once;
* `scratch_file` and the liveness test of `remove_dead_temporaries` (`os.kill(pid, 0)`) are local by nature.

Atomic writes: a file is written under a hidden temporary name in its final directory
(`.<name>.tmp-<host>-<pid>-<random>`) and renamed into place when complete, so a crash never leaves a partial file
under a final name. On a local disk the rename is atomic. On an object store (Cloud Storage) a rename is a copy
and a delete, and an object only becomes visible once it is completely written: the final name still appears
only complete, though not in one instant with the temporary's deletion. A directory is moved file by file on an
object store (`move_tree`), so a multi-file output names the file that marks it complete (written last).

Errors: a missing file or directory is reported as on a local disk (the caller's message, or "... does not
exist"); a path whose filesystem cannot be reached at all (a `gs://` bucket without credentials or network)
raises `UnreachableStorage`, naming the path and the likely cause.

TensorFlow's `ram://` filesystem (the tests' stand-in for `gs://`, in one process) answers "is a directory" for
any name prefix and lists the tails of siblings' names; `exists`, `isdir` and `listdir` correct both for it, so
that a test on `ram://` means what it would on Cloud Storage.

Local-file calls outside this module, each genuinely local: `cli/reference.py` rewrites FLAGS.md of the source
checkout; the tests' fork server (`tests/prewarmed.py`) and fixtures.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import posixpath
import re
import secrets
import socket
import tempfile

import tensorflow as tf
from absl import logging

from noisy_student_tf.errors import (OutputError, UnreachableStorage, UserError, first_line, is_write_failure,
                                     write_failure_message)

HOST = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname())[:40] or "host"
_TEMPORARY = re.compile(r"^\..+\.tmp-(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)-[^/]*$")
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
_gfile = tf.io.gfile


# --- paths -------------------------------------------------------------------------------------------------

def is_url(path: str) -> bool:
    """True for a `scheme://...` path (gs://, ram://, ...), False for a local one."""
    return bool(_URL.match(path))


def join(*parts: str) -> str:
    """Joins path components; URLs with '/' on every platform."""
    return _gfile.join(*parts)


def basename(path: str) -> str:
    """The last component of `path` (a trailing '/' ignored)."""
    return posixpath.basename(path.rstrip("/")) if is_url(path) else os.path.basename(os.path.normpath(path))


def parent(path: str) -> str:
    """The directory holding `path` ('' for a bare local name)."""
    if is_url(path):
        match = _URL.match(path)
        rest = path[match.end():].rstrip("/")
        return path[:match.end()] + posixpath.dirname(rest)
    return os.path.dirname(path)


def absolute(path: str) -> str:
    """A local path made absolute; a URL as it is."""
    return path if is_url(path) else os.path.abspath(path)


def relative(path: str, start: str) -> str:
    """`path` relative to the directory `start`; a URL not below `start` is returned whole."""
    if is_url(path) or is_url(start):
        if path.rstrip("/") == start.rstrip("/"):
            return "."
        prefix = start.rstrip("/") + "/"
        return path[len(prefix):] if path.startswith(prefix) else path
    return os.path.relpath(path, start)


def is_within(path: str, top: str) -> bool:
    """True when `path` is `top` or below it (local paths with links resolved)."""
    if is_url(path) or is_url(top):
        path, top = path.rstrip("/"), top.rstrip("/")
        return path == top or path.startswith(top + "/")
    path, top = os.path.realpath(path), os.path.realpath(top)
    return os.path.commonpath([path, top]) == top


# --- questions -------------------------------------------------------------------------------------------------

def _unreachable(path: str, error: Exception) -> UnreachableStorage:
    match = _URL.match(path)
    scheme = match["scheme"] if match else None
    if scheme == "gs":
        hint = ("check the bucket name, this machine's network, and its Google Cloud credentials (`gcloud auth "
                "application-default login`, or GOOGLE_APPLICATION_CREDENTIALS naming a service-account key)")
    elif scheme:
        hint = f"check the URL and that TensorFlow on this machine has a filesystem for {scheme}://"
    else:
        hint = "check the path and its permissions"
    return UnreachableStorage(f"cannot reach {path}: {first_line(error)}; {hint}")


def _stat(path: str):
    """gfile's stat of `path`, None when nothing is there."""
    try:
        return _gfile.stat(path)
    except tf.errors.NotFoundError:
        return None
    except tf.errors.OpError as e:
        raise _unreachable(path, e) from None


def _ram_directory(path: str) -> bool:
    """TensorFlow's ram:// filesystem calls any name prefix a directory ("ram://d/model.ckpt-2" is one when
    "ram://d/model.ckpt-2.index" exists). A directory is what holds something below `path/` or was made by
    makedirs (then it is listed in its parent), as on Cloud Storage."""
    return bool(_gfile.glob(path.rstrip("/") + "/*")) or path.rstrip("/") in _gfile.glob(path.rstrip("/"))


def _kind(path: str) -> str | None:
    """'file', 'dir' or None."""
    if not is_url(path):
        try:
            return "dir" if _gfile.isdir(path) else "file" if _gfile.exists(path) else None
        except tf.errors.OpError as e:
            raise _unreachable(path, e) from None
    stat = _stat(path)
    if stat is None:
        return None
    if not stat.is_directory:
        return "file"
    if path.startswith("ram://") and not _ram_directory(path):
        return None
    return "dir"


def exists(path: str) -> bool:
    """True if a file or directory is at `path`."""
    return _kind(path) is not None


def isdir(path: str) -> bool:
    """True if `path` is a directory (on an object store: a prefix with objects below it, or a marker)."""
    return _kind(path) == "dir"


def isfile(path: str) -> bool:
    return _kind(path) == "file"


def listdir(path: str) -> list[str]:
    """The names in directory `path`, sorted (no trailing '/' on sub-directories)."""
    try:
        names = _gfile.listdir(path)
    except tf.errors.NotFoundError:
        raise UserError(f"directory {path} does not exist") from None
    except tf.errors.OpError as e:
        raise _unreachable(path, e) from None
    names = {name.rstrip("/") for name in names if name.rstrip("/")}
    if path.startswith("ram://"):  # its listing also holds the tails of siblings' names ("pred" -> "_tf1")
        names = {name for name in names if exists(join(path, name))}
    return sorted(names)


def glob(pattern: str) -> list[str]:
    """Paths matching `pattern` (`*`, `?`, `[...]` within one component), sorted."""
    try:
        return sorted(_gfile.glob(pattern))
    except tf.errors.NotFoundError:
        return []
    except tf.errors.OpError as e:
        raise _unreachable(pattern, e) from None


def walk(top: str, follow_links: bool = False):
    """Yields (directory, sub-directory names, file names) from `top` down, names sorted; removing names from the
    sub-directory list skips them. With `follow_links`, a local walk follows symbolic links to folders and reads a
    folder reached twice only once (object stores have no links). An unreadable local folder raises UserError."""
    if is_url(top):
        names = listdir(top)
        subdirs = [name for name in names if isdir(join(top, name))]
        files = [name for name in names if name not in subdirs]
        yield top, subdirs, files
        for name in list(subdirs):
            yield from walk(join(top, name), follow_links)
        return

    def unreadable(error: OSError):
        raise UserError(f"cannot read folder {error.filename}: {error.strerror}; fix its permissions or leave it "
                        "out")

    seen = set()
    for directory, subdirs, names in os.walk(top, onerror=unreadable, followlinks=follow_links):
        real = os.path.realpath(directory)
        if real in seen:  # a link back up the tree, or two links to one folder
            subdirs[:] = []
            continue
        seen.add(real)
        subdirs.sort()
        yield directory, subdirs, sorted(names)


def stamp(path: str):
    """[size, modification time in ns] of a large input (hashing it would mean reading it again), or "missing".
    Object stores without modification times (ram://) give 0 for it."""
    if not is_url(path):
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            return "missing"
        return [stat.st_size, stat.st_mtime_ns]
    try:
        stat = _gfile.stat(path)
    except tf.errors.NotFoundError:
        return "missing"
    except tf.errors.OpError as e:
        raise _unreachable(path, e) from None
    return [int(stat.length), int(stat.mtime_nsec)]


def sha256(path: str) -> str:
    return hashlib.sha256(read_bytes(path)).hexdigest()


# --- reading -------------------------------------------------------------------------------------------------

def read_bytes(path: str, what: str = "file", hint: str = "") -> bytes:
    """The bytes of `path`; a missing file is a UserError "<what> <path> does not exist[: hint]"."""
    try:
        with _gfile.GFile(path, "rb") as f:
            return f.read()
    except tf.errors.NotFoundError:
        raise UserError(f"{what} {path} does not exist" + (f": {hint}" if hint else "")) from None
    except tf.errors.OpError as e:
        if isdir(path):
            raise UserError(f"{what} {path} is a directory, not a file") from None
        raise _unreachable(path, e) from None


def read_text(path: str, what: str = "file", hint: str = "") -> str:
    data = read_bytes(path, what, hint)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{what} {path} is not UTF-8 text ({e})") from None


def read_json(path: str, what: str = "file", hint: str = ""):
    """The JSON value in `path`; invalid JSON is a UserError naming the file."""
    text = read_text(path, what, hint)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{what} {path} is not valid JSON ({e}); delete it and run again") from None


def reader(path: str, what: str = "file"):
    """A binary file object to read `path` incrementally (large files)."""
    if not exists(path):
        raise UserError(f"{what} {path} does not exist")
    return _gfile.GFile(path, "rb")


# --- writing -------------------------------------------------------------------------------------------------

def makedirs(path: str) -> None:
    """Creates directory `path` and its parents (nothing if it exists)."""
    try:
        _gfile.makedirs(path)
    except tf.errors.OpError as e:
        if is_write_failure(e):
            raise OutputError(write_failure_message(e, path)) from None
        if exists(path) and not _gfile.isdir(path):
            raise UserError(f"{path} is a file, not a directory") from None
        raise _unreachable(path, e) from None


def remove(path: str) -> None:
    """Deletes file `path`; a missing file is fine."""
    try:
        _gfile.remove(path)
    except tf.errors.NotFoundError:
        pass


def remove_tree(path: str) -> None:
    """Deletes directory `path` with everything below it; a missing one is fine."""
    try:
        _gfile.rmtree(path)
    except tf.errors.NotFoundError:
        pass


def rename(source: str, target: str) -> None:
    """Renames file `source` to `target`, replacing a file there."""
    _gfile.rename(source, target, overwrite=True)


def move_tree(source: str, target: str, last: str | None = None) -> None:
    """Moves directory `source` to `target` (which must not exist). Locally one atomic rename; on an object
    store file by file (its renames are per object), the file named `last` (relative to `source`) last, so that
    its presence marks a complete `target`."""
    if not is_url(source):
        os.rename(source, target)
        return
    files = [relative(join(d, n), source) for d, _, names in walk(source) for n in names]
    files.sort(key=lambda name: (name == last, name))
    for name in files:
        makedirs(parent(join(target, name)))
        rename(join(source, name), join(target, name))
    remove_tree(source)


def temp_path_for(final_path: str, suffix: str = "") -> str:
    """A fresh hidden temporary path beside `final_path` (same filesystem, so the final rename stays cheap); its
    directory is created."""
    directory, base = parent(absolute(final_path)), basename(final_path)
    makedirs(directory)
    return join(directory, f".{base}.tmp-{HOST}-{os.getpid()}-{secrets.token_hex(6)}{suffix}")


def _sync(path: str) -> None:
    if not is_url(path):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_output(final_path: str, suffix: str = ""):
    """Yields a temporary path for the caller (or a TF writer, Keras) to write; on success it is renamed to
    `final_path`, on error removed. A storage refusing the write (disk full, read-only) becomes OutputError."""
    try:
        tmp = temp_path_for(final_path, suffix)
    except OSError as e:
        if is_write_failure(e):
            raise OutputError(write_failure_message(e, final_path)) from None
        raise
    try:
        yield tmp
        rename(tmp, final_path)
    except Exception as e:  # noqa: BLE001 - only storage failures are translated; the rest propagate unchanged
        if is_write_failure(e):
            raise OutputError(write_failure_message(e, final_path)) from None
        raise
    finally:
        if exists(tmp):
            remove_tree(tmp) if _gfile.isdir(tmp) else remove(tmp)


def write_bytes(path: str, data: bytes, durable: bool = False) -> None:
    """Writes `data` to `path` atomically; `durable` files (records of what is done) are also synced to a local
    disk before the rename."""
    with atomic_output(path) as tmp:
        with _gfile.GFile(tmp, "wb") as f:
            f.write(data)
        if durable:
            _sync(tmp)


def write_text(path: str, text: str) -> None:
    """Writes `text` (UTF-8) to `path` atomically and durably: text files here are records and markers."""
    write_bytes(path, text.encode("utf-8"), durable=True)


def write_json(path: str, value, **dumps_options) -> None:
    """`json.dumps(value, **dumps_options)` written atomically and durably to `path`."""
    write_text(path, json.dumps(value, **dumps_options))


def figure_png(figure) -> bytes:
    """A Matplotlib figure rendered as PNG bytes (for `write_bytes`: plots go wherever the outputs go)."""
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def scratch_file(near: str):
    """An anonymous temporary file (gone when closed or when the process dies) for data that waits before it is
    written: beside `near` on a local disk (same disk as the output, room for it), else in the system's
    temporary directory."""
    if is_url(near):
        return tempfile.TemporaryFile()
    makedirs(near)
    return tempfile.TemporaryFile(dir=near)


# --- temporaries of killed writers ---------------------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_dead_temporary(name: str) -> bool:
    """True for a temporary name (`temp_path_for`) of a process of this host that no longer runs."""
    match = _TEMPORARY.match(name)
    return bool(match) and match["host"] == HOST and int(match["pid"]) != os.getpid() and not _alive(
        int(match["pid"]))


def remove_dead_temporaries(*directories: str) -> int:
    """Deletes temporary files (anywhere under `directories`) left by killed processes of this host.

    Temporaries of live processes and of other hosts are kept. Returns how many were removed.
    """
    removed = 0
    for top in directories:
        if not top or not isdir(top):
            continue
        for directory, subdirs, names in walk(top):
            for name in names + subdirs:
                if not is_dead_temporary(name):
                    continue
                path = join(directory, name)
                if name in subdirs:
                    remove_tree(path)
                    subdirs.remove(name)
                else:
                    remove(path)
                removed += 1
    if removed:
        logging.info("removed %d temporary files left by interrupted runs", removed)
    return removed
