"""Command-line runs that skip the interpreter's start-up: each is a fork of a server that has already imported
TensorFlow, Keras and the package's jobs.

Why: the tests run dozens of commands, and a fresh `python train.py ...` spends seconds (6.8 s, measured once
on a 2-core machine) importing TensorFlow and Keras before it reaches the code under test. A fork of an
interpreter that has imported them (and nothing else: no tensor, no device, no flag defined) starts in
milliseconds and is otherwise the same process a shell would start: the script runs as `__main__` with its own
argv, working directory, environment, stdin/stdout/stderr and exit status, and it can be killed with SIGKILL at
any moment.

What a fork cannot give: environment variables that TensorFlow reads while it is imported. The server is
started with the test worker's environment; a test that needs another (threads, devices, log level at import)
runs a real `subprocess`.

From Python: `run([script, *args], cwd)` (as `subprocess.run`) and `Process([script, *args], cwd)` (as
`subprocess.Popen`). From a shell script: `shell_env()` sets `$PYTHON` to `prewarmed_python`, a stand-in for
`python script.py ...` that runs the script in a fork and exits as it did.

Protocol: one connection to the server's Unix socket per run. The client sends the run's JSON request with the
run's stdin/stdout/stderr attached; the server forks a supervisor, which forks the run, sends back the run's pid,
waits for it and sends back its wait status.
"""

import atexit
import json
import os
import resource
import runpy
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

# What a command imports before it does anything: the heavy libraries, and our jobs (which import them).
# Flags are defined by the entry points when they run (noisy_student_tf/cli/__init__.py), so none is defined here.
PRELOADED = ("numpy", "tensorflow", "keras", "PIL.Image", "scipy.io", "noisy_student_tf.cli.adapters")
SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "prewarmed_python")
_SOCKET_ENV, _INTERPRETER_ENV = "PREWARMED_SOCKET", "PREWARMED_INTERPRETER"


# --- the server -------------------------------------------------------------------------------------------------

def _run_script(request):
    """In the forked run: become `python script args...` in `cwd` with `env`; never returns."""
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        for name, limits in request["rlimits"].items():
            resource.setrlimit(getattr(resource, name), tuple(limits))
        script = request["argv"][0]
        sys.argv = list(request["argv"])
        sys.path[0] = os.path.dirname(os.path.abspath(script))
        try:
            runpy.run_path(script, run_name="__main__")
            code = 0
        except SystemExit as e:  # as the interpreter maps sys.exit's argument to a status
            if e.code is None:
                code = 0
            elif isinstance(e.code, int):
                code = e.code
            else:
                print(e.code, file=sys.stderr)
                code = 1
        except BaseException:  # noqa: BLE001 - what the interpreter does with an uncaught exception
            traceback.print_exc()
            code = 1
        # The interpreter's shutdown: non-daemon threads, then atexit handlers.
        for thread in threading.enumerate():
            if thread is not threading.main_thread() and not thread.daemon:
                thread.join()
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
        os._exit(code)


def _supervise(connection, request, stdio):
    """In the supervisor: fork the run, report its pid, wait for it, report its status; never returns."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    pid = os.fork()
    if pid == 0:
        connection.close()
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
            os.close(fd)
        _run_script(request)
    for fd in stdio:
        os.close(fd)
    connection.sendall(struct.pack("<q", pid))
    _, status = os.waitpid(pid, 0)
    connection.sendall(struct.pack("<q", status))
    os._exit(0)


def serve(path):
    """The server: import everything once, then fork a supervisor per connection, until stdin closes (the
    test process that started the server has exited)."""
    import importlib

    for name in PRELOADED:
        importlib.import_module(name)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # supervisors are reaped by the kernel
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(64)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stderr.flush()
    while True:
        readable, _, _ = select.select([listener, sys.stdin], [], [])
        if sys.stdin in readable:
            return
        connection, _ = listener.accept()
        message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
        if os.fork() == 0:
            listener.close()
            _supervise(connection, json.loads(message), fds)
        connection.close()
        for fd in fds:
            os.close(fd)


# --- clients ----------------------------------------------------------------------------------------------------

def _send(path, argv, cwd, env, rlimits, stdio):
    """Asks the server at `path` for a run; returns the connection its pid and then its status come on."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    connection.connect(path)
    request = {"argv": list(argv), "cwd": str(cwd), "env": dict(env), "rlimits": dict(rlimits)}
    socket.send_fds(connection, [json.dumps(request).encode()], list(stdio))
    return connection


def _receive(connection, blocking=True):
    """The supervisor's next number (the pid, then the wait status), or None if it has not come yet."""
    try:
        data = connection.recv(8, 0 if blocking else socket.MSG_DONTWAIT)
    except BlockingIOError:
        return None
    if len(data) != 8:
        raise RuntimeError("the fork server's supervisor died")
    return struct.unpack("<q", data)[0]


class _Server:
    """One server per test process, started on first use and stopped when the process exits."""

    _lock = threading.Lock()
    _instance = None

    def __init__(self):
        self.directory = tempfile.mkdtemp(prefix="prewarmed-")
        self.path = os.path.join(self.directory, "socket")
        self.process = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", self.path],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the fork server ({__file__}) did not start")
        atexit.register(self.stop)

    def stop(self):
        self.process.stdin.close()
        self.process.wait(timeout=30)
        os.remove(self.path)
        os.rmdir(self.directory)

    @classmethod
    def get(cls):
        with cls._lock:
            if cls._instance is None or cls._instance.process.poll() is not None:
                cls._instance = cls()
            return cls._instance


class Process:
    """A started command, like `subprocess.Popen`: `pid`, `poll()`, `wait()`, `send_signal()`, `kill()`,
    `communicate()` and `returncode`. stdin is /dev/null; stdout and stderr are pipes, read as they fill."""

    def __init__(self, argv, cwd, env=None, rlimits=None):
        self.args = list(argv)
        pipes = [os.pipe(), os.pipe()]
        with open(os.devnull, "rb") as devnull:
            self._connection = _send(_Server.get().path, argv, cwd, os.environ if env is None else env,
                                     rlimits or {}, [devnull.fileno(), pipes[0][1], pipes[1][1]])
        for _, write_end in pipes:
            os.close(write_end)
        self._outputs = [[], []]
        self._readers = [threading.Thread(target=self._drain, args=(read_end, chunks), daemon=True)
                         for (read_end, _), chunks in zip(pipes, self._outputs)]
        for reader in self._readers:
            reader.start()
        self.pid = _receive(self._connection)
        self.returncode = None

    @staticmethod
    def _drain(fd, chunks):
        with open(fd, "rb", buffering=0) as f:
            while chunk := f.read(65536):
                chunks.append(chunk)

    def poll(self):
        if self.returncode is None:
            status = _receive(self._connection, blocking=False)
            if status is not None:
                self.returncode = os.waitstatus_to_exitcode(status)
                self._connection.close()
        return self.returncode

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.time() + timeout
        while self.poll() is None:
            if deadline is not None and time.time() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(0.005)
        return self.returncode

    def send_signal(self, sig):
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout=None):
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.wait()
            raise
        for reader in self._readers:  # the pipes close when the run and anything it started have exited
            reader.join()
        return tuple(b"".join(chunks).decode("utf-8", "replace") for chunks in self._outputs)


def run(argv, cwd, timeout=None, env=None, rlimits=None):
    """`subprocess.run(argv, cwd=cwd, capture_output=True, text=True, stdin=DEVNULL, timeout=timeout)` for
    `argv = [script, *args]`, in a fork of the pre-imported server. `rlimits` ({"RLIMIT_FSIZE": (soft, hard)})
    are set in the run before the script starts. Returns a `subprocess.CompletedProcess`."""
    process = Process(argv, cwd, env, rlimits)
    out, err = process.communicate(timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def shell_env():
    """Environment for a shell script that runs `"$PYTHON" script.py ...`: each such run is a fork."""
    return {"PYTHON": SHIM, _SOCKET_ENV: _Server.get().path, _INTERPRETER_ENV: sys.executable}


def _stand_in(argv):
    """`prewarmed_python`: `python script args...` as a fork of the server at $PREWARMED_SOCKET, with this
    process's stdin/stdout/stderr; signals to this process go to the run; exits as the run did."""
    if not argv or argv[0].startswith("-"):  # -c, -m, options: a real interpreter
        os.execv(sys.executable, [sys.executable, *argv])
    connection = _send(os.environ[_SOCKET_ENV], argv, os.getcwd(), os.environ, {}, [0, 1, 2])
    pid = _receive(connection)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda number, frame: os.kill(pid, number))
    code = os.waitstatus_to_exitcode(_receive(connection))
    if code < 0:  # killed by a signal: die of the same one, as the shell expects
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        serve(sys.argv[2])
    else:
        _stand_in(sys.argv[2:])
