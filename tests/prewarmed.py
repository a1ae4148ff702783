"""Command-line runs that skip the interpreter's start-up: each is a fork of a server that has already imported
TensorFlow, Keras and the package's jobs.

Why: the fault tests run ~70 commands, and a fresh `python train.py ...` spends 4-6 s of this machine's time
importing TensorFlow and Keras before it reaches the code under test. A fork of an interpreter that has imported
them (and nothing else: no tensor, no device, no flag defined) starts in milliseconds and is otherwise the same
process a shell would start: the script runs as `__main__` with its own argv, working directory, environment,
stdin/stdout/stderr and exit status, and it can be killed with SIGKILL at any moment.

What a fork cannot give: environment variables that TensorFlow reads while it is imported. The server is
started with the test worker's environment; a test that needs another (threads, devices, log level at import)
runs a real `subprocess`.

Protocol (one Unix socket per run, so runs are independent): the client sends the run's JSON request and the
fds of its stdin/stdout/stderr over the server's socket, with one end of a fresh socket pair. The server forks a
supervisor, which forks the run, sends back the run's pid, waits for it and sends back its wait status.
"""

import atexit
import json
import os
import resource
import runpy
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback

# What a command imports before it does anything: the heavy libraries, and our jobs (which import them).
# Flags are defined by the entry points when they run (noisy_student_tf/cli.py), so none is defined here.
PRELOADED = ("numpy", "tensorflow", "keras", "PIL.Image", "scipy.io", "noisy_student_tf.flag_adapters")
_MAX_FDS = 4


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


def _supervise(request, reply, stdio):
    """In the supervisor: fork the run, report its pid, wait for it, report its status; never returns."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    pid = os.fork()
    if pid == 0:
        reply.close()
        os.setpgid(0, 0)  # its own process group, as a shell job
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
            os.close(fd)
        _run_script(request)
    for fd in stdio:
        os.close(fd)
    reply.sendall(struct.pack("<q", pid))
    _, status = os.waitpid(pid, 0)
    reply.sendall(struct.pack("<q", status))
    os._exit(0)


def serve(listener_fd):
    """The server's loop: import everything once, then fork a supervisor per request until the socket closes."""
    import importlib

    for name in PRELOADED:
        importlib.import_module(name)
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # supervisors are reaped by the kernel
    listener = socket.socket(fileno=listener_fd)
    listener.sendall(b"R")  # ready
    while True:
        message, fds, _, _ = socket.recv_fds(listener, 1 << 20, _MAX_FDS)
        if not message:  # the client closed its end
            return
        if os.fork() == 0:
            listener.close()
            _supervise(json.loads(message), socket.socket(fileno=fds[0]), fds[1:])
        for fd in fds:
            os.close(fd)


# --- the client -------------------------------------------------------------------------------------------------

class _Server:
    """One server per test process, started on first use and stopped at exit."""

    _lock = threading.Lock()
    _instance = None

    def __init__(self):
        # SOCK_SEQPACKET keeps each request one message, with its file descriptors attached.
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.process = subprocess.Popen([sys.executable, os.path.abspath(__file__), str(theirs.fileno())],
                                        pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        theirs.close()
        self.socket = ours
        if self.socket.recv(1) != b"R":
            raise RuntimeError(f"the fork server ({__file__}) did not start")
        atexit.register(self.stop)

    def stop(self):
        self.socket.close()
        self.process.wait(timeout=30)

    @classmethod
    def get(cls):
        with cls._lock:
            if cls._instance is None or cls._instance.process.poll() is not None:
                cls._instance = cls()
            return cls._instance

    def start(self, argv, cwd, env, rlimits, stdio):
        """Sends one request; returns the socket on which its pid and status will come."""
        mine, theirs = socket.socketpair()
        request = json.dumps({"argv": list(argv), "cwd": str(cwd), "env": dict(env),
                              "rlimits": dict(rlimits)}).encode()
        with self._lock:
            socket.send_fds(self.socket, [request], [theirs.fileno(), *stdio])
        theirs.close()
        return mine


class Process:
    """A started command, like `subprocess.Popen`: `pid`, `poll()`, `wait()`, `send_signal()`, `kill()`,
    `communicate()` and `returncode`. stdin is /dev/null; stdout and stderr are pipes, read as they fill."""

    def __init__(self, argv, cwd, env=None, rlimits=None):
        self.args = list(argv)
        self._buffer = b""
        pipes = [os.pipe(), os.pipe()]
        with open(os.devnull, "rb") as devnull:
            self._reply = _Server.get().start(argv, cwd, os.environ if env is None else env, rlimits or {},
                                              [devnull.fileno(), pipes[0][1], pipes[1][1]])
        for _, write_end in pipes:
            os.close(write_end)
        self._outputs = [[], []]
        self._readers = [threading.Thread(target=self._drain, args=(read_end, chunks), daemon=True)
                         for (read_end, _), chunks in zip(pipes, self._outputs)]
        for reader in self._readers:
            reader.start()
        self.pid = self._receive(blocking=True)
        self.returncode = None

    @staticmethod
    def _drain(fd, chunks):
        with open(fd, "rb", buffering=0) as f:
            while chunk := f.read(65536):
                chunks.append(chunk)

    def _receive(self, blocking):
        """The next 8-byte number from the supervisor (the pid, then the wait status), or None if not yet sent."""
        self._reply.setblocking(blocking)
        while len(self._buffer) < 8:
            try:
                data = self._reply.recv(8 - len(self._buffer))
            except BlockingIOError:
                return None
            if not data:
                raise RuntimeError("the fork server's supervisor died")
            self._buffer += data
        number, self._buffer = struct.unpack("<q", self._buffer[:8])[0], self._buffer[8:]
        return number

    def poll(self):
        if self.returncode is None:
            status = self._receive(blocking=False)
            if status is not None:
                self.returncode = os.waitstatus_to_exitcode(status)
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
        self._reply.close()
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


if __name__ == "__main__":
    serve(int(sys.argv[1]))
