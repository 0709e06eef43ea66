# SPDX-License-Identifier: MIT
"""The caller side: corral.map and corral.imap, multiprocessing.Pool's map on
corral's adaptive pool. They run `corral run --stream` with workers that
import the function by module and name (corral/_worker.py) and exchange JSON
lines with it (corral/_wire.py). The pool's size is corral's: it starts at
the usable CPUs and grows while throughput rises (I/O-bound functions).

Three threads: the caller's reads results, a feeder writes arguments to
corral's stdin (at most a window of them unanswered, which bounds memory for
an endless iterable), and, when stderr
is not a terminal, a relay passes corral's log on to sys.stderr.
"""
import builtins
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

from corral import _wire

__all__ = ["CorralError", "TaskError", "imap", "map"]

_EXIT_MEANING = {2: "a usage or configuration error", 3: "the workers kept failing (crash loop)"}
_LOG_TAIL = 20
_WINDOW = 4096      # inputs unanswered at most, without max
_FEED_BATCH = 64                # lines per write when the input is a sequence
_STOP_SECONDS = 10.0            # a stopped corral ends within its stop_timeout

# The built-in policy of a batch without -c (conf/load.c config_default_policy),
# for the file that map writes when it needs one (shared segments).
_BATCH_POLICY = """\
sample: {interval: 100ms}
policy:
  optimize: {signal: tasks.rate}
  rules:
    - {name: neighbour, when: "cpu.busy > 95% and psi.cpu > 20%", for: 5s, scale: -1}
"""


class CorralError(RuntimeError):
    """corral itself failed: not found, a bad argument or segment (status 2),
    workers that cannot start (crash loop, status 3). `status` is corral's exit
    status (None if it did not run), `log` its last lines when captured."""

    def __init__(self, message, status=None, log=""):
        super().__init__(message + (f"\ncorral's log ends with:\n{log}" if log else ""))
        self.status = status
        self.log = log


class TaskError(Exception):
    """The function failed on one input. `index` is the input's position,
    `input` the input itself, `type_name` the exception's type name (None when
    the input got no result at all: its worker died or it timed out until the
    retries ran out), `remote_traceback` the worker's traceback text. The
    worker's exception itself is __cause__ when it could travel back."""

    def __init__(self, message, index, input, type_name=None, remote_traceback=""):
        super().__init__(message)
        self.index = index
        self.input = input
        self.type_name = type_name
        self.remote_traceback = remote_traceback


class _RemoteTraceback(Exception):
    def __str__(self):
        return self.args[0]


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _fn_argv(fn):
    """The _worker arguments that import fn, or TypeError saying why it cannot be."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    obj = sys.modules.get(module) if module else None
    for part in (qualname or "<>").split("."):
        obj = getattr(obj, part, None)
    if obj is not fn or "<" in qualname:
        raise TypeError(f"corral.map: workers import the function by module and name, and {fn!r} cannot be "
                        "found that way: use a function defined with def at the top level of a module or script "
                        "(not a lambda, a nested function, a bound method or a functools.partial)")
    if module != "__main__":
        return [module, qualname]
    main = sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        return ["--main-module", spec.name, module, qualname]
    path = getattr(main, "__file__", None)
    if not path:
        raise TypeError(f"corral.map: {qualname} is defined in an interactive session, which workers cannot "
                        "import: put it in a .py file and import it from there")
    return ["--main", os.path.abspath(path), module, qualname]


def _corral_program():
    prog = os.environ.get("CORRAL") or shutil.which("corral")
    if not prog:
        raise CorralError("corral.map: the corral program was not found: install corral, put it on PATH, "
                          "or set CORRAL=/path/to/corral")
    return prog


def _duration(seconds):
    if isinstance(seconds, str):
        return seconds
    ms = round(float(seconds) * 1000)
    if ms < 1:
        raise ValueError(f"corral.map: timeout={seconds!r}: at least 0.001 seconds")
    return f"{ms}ms"


def _segment(name, value, tmpdir):
    """The configuration of one shared segment: a path, a mapping passed on
    ({"command": [...]}), bytes, or a numpy array (saved as .npy: its dtype
    and shape come back in shared_array)."""
    if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", str(name)):
        raise ValueError(f"corral.map: shared segment name {name!r}: letters, digits and underscores only")
    if isinstance(value, dict):
        seg = dict(value)
        if "path" in seg:
            seg["path"] = os.path.abspath(os.fspath(seg["path"]))
        return seg
    if isinstance(value, (str, os.PathLike)):
        return {"path": os.path.abspath(os.fspath(value))}
    path = os.path.join(tmpdir, f"{name}.seg")
    if isinstance(value, (bytes, bytearray, memoryview)):
        with open(path, "wb") as f:
            f.write(value)
    elif hasattr(value, "__array__"):
        import numpy as np
        with open(path, "wb") as f:
            np.save(f, np.asarray(value), allow_pickle=False)
    else:
        raise TypeError(f"corral.map: shared[{name!r}] is a {type(value).__name__}: give a path, "
                        "{'command': [...]}, bytes or a numpy array")
    return {"path": path}


def _config_file(shared, tmpdir):
    segments = {name: _segment(name, value, tmpdir) for name, value in shared.items()}
    path = os.path.join(tmpdir, "corral.yaml")
    with open(path, "w") as f:
        f.write("# written by corral.map\n")
        f.write("shared: " + json.dumps(segments) + "\n")   # JSON is YAML's flow style
        f.write(_BATCH_POLICY)
    return path


class _Run:
    """One corral run: its process, the feeder and the log relay."""

    def __init__(self, argv, env, iterable, window):
        self.window = window
        self.cond = threading.Condition()
        self.inputs = {}            # index -> input, while unanswered
        self.sent = 0               # inputs taken from the iterable
        self.done = 0               # answered or given up
        self.feed_error = None
        self.stopping = False
        self.log = collections.deque(maxlen=_LOG_TAIL)
        relay = not os.isatty(2)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE if relay else None, env=env)
        self.threads = [threading.Thread(target=self._feed, args=(iterable,), daemon=True)]
        self.relay = threading.Thread(target=self._relay, daemon=True) if relay else None
        if self.relay:
            self.threads.append(self.relay)
        for t in self.threads:
            t.start()

    def _relay(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            self.log.append(line.rstrip("\n"))
            try:
                sys.stderr.write(line)
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    def _write(self, buf):
        """Writes the lines of buf (never under the lock: corral may wait for
        us to read results first). False once corral's stdin is closed."""
        try:
            if buf:
                self.proc.stdin.write(b"".join(buf))
                self.proc.stdin.flush()
                buf.clear()
            return True
        except (BrokenPipeError, ValueError):   # corral stopped, or stop() closed it
            return False

    def _window_open(self):
        """Waits until fewer than `window` inputs are unanswered; False when stopping."""
        with self.cond:
            while self.sent - self.done >= self.window and not self.stopping:
                self.cond.wait()
            return not self.stopping

    def _feed(self, iterable):
        batch = _FEED_BATCH if hasattr(iterable, "__len__") else 1
        buf = []
        try:
            for index, item in enumerate(iterable):
                line = _wire.encode(index, item, "a")
                if self.sent - self.done >= self.window and not self._write(buf):
                    return              # never wait on answers to lines not sent
                if not self._window_open():
                    return
                with self.cond:
                    self.inputs[index] = item
                    self.sent += 1
                buf.append(line)
                if len(buf) >= batch and not self._write(buf):
                    return
            self._write(buf)
        except BaseException as e:      # the iterable raised, or an input cannot be sent
            self.feed_error = e
        finally:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def answered(self, index):
        """The input of index, now answered (None if unknown)."""
        with self.cond:
            self.done += 1
            self.cond.notify()
            return self.inputs.pop(index, None)

    def missing(self):
        with self.cond:
            return sorted(self.inputs)

    def input_of(self, index):
        with self.cond:
            return self.inputs.get(index)

    def stop(self):
        """Stops corral (if it still runs) and the threads; idempotent."""
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        p = self.proc
        if p.poll() is None:
            # TERM stops corral gracefully; a second one stops it at once.
            for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
                try:
                    p.send_signal(sig)
                    p.wait(_STOP_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    continue
        for t in self.threads:
            t.join(_STOP_SECONDS)
        for f in (p.stdin, p.stdout, p.stderr):
            try:
                if f:
                    f.close()
            except OSError:
                pass
        p.wait()

    def log_text(self):
        """corral's log to its end: the relay may still be reading it when
        corral has exited."""
        if self.relay:
            self.relay.join(_STOP_SECONDS)
        return "\n".join(self.log)


def _task_error(run, index, input, err):
    type_name = err.get("type") or "Exception"
    text = err.get("traceback") or ""
    error = TaskError(f"corral.map: input #{index} ({_short(input)}) raised {type_name}: {err.get('message', '')}",
                      index, input, type_name, text)
    cause = _wire.load_exception(err)
    if cause is None:
        cause = _RemoteTraceback(f"{type_name}: {err.get('message', '')}")
    cause.__cause__ = _RemoteTraceback(f'\n"""\n{text}"""')
    error.__cause__ = cause
    return error


def _given_up(index, input, retries):
    attempts = retries + 1
    return TaskError(f"corral.map: input #{index} ({_short(input)}) got no result: the worker running it died or it "
                     f"timed out, {attempts} time{'s' if attempts > 1 else ''}, or corral was stopped (see corral's "
                     "log)", index, input)


def _results(run, keep_order, retries):
    """Yields the results as corral writes them; raises TaskError for a
    failed or given-up input, CorralError when corral failed."""
    expect = 0                      # keep_order: the next index corral owes
    for raw in run.proc.stdout:
        line = raw.rstrip(b"\n")
        if not line:                # corral's line for a given-up input (tasks.failed_line)
            if keep_order:
                raise _given_up(expect, run.input_of(expect), retries)
            continue                # unordered: found missing at the end
        msg = json.loads(line)
        index = msg["i"]
        if keep_order and index != expect:
            # corral skipped the lines it gave up: the first of them failed.
            raise _given_up(expect, run.input_of(expect), retries)
        expect = index + 1
        input = run.answered(index)
        if "e" in msg:
            raise _task_error(run, index, input, msg["e"])
        yield _wire.decode(msg, "r")
    status = run.proc.wait()
    if run.feed_error is not None:
        raise run.feed_error
    missing = run.missing()
    if status not in (0, 1):
        meaning = _EXIT_MEANING.get(status, f"killed by signal {-status}" if status < 0 else "unexpected")
        raise CorralError(f"corral.map: corral exited with status {status}: {meaning}", status, run.log_text())
    if missing:
        raise _given_up(missing[0], run.input_of(missing[0]), retries)


def imap(fn, iterable, *, shared=None, keep_order=True, max=None, timeout=None, retries=0, corral_args=()):
    """Applies fn to each item of iterable in corral's workers and yields the
    results: in input order with keep_order, else as they come. Arguments
    are the same as map's. Closing the iterator early stops corral."""
    argv = _argv(fn, keep_order, max, timeout, retries, corral_args)
    return _imap(argv, iterable, shared, keep_order, max, retries)


def _argv(fn, keep_order, max, timeout, retries, corral_args):
    worker = _fn_argv(fn)
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"corral.map: retries={retries!r}: a count, 0 or more")
    argv = [_corral_program(), "run", "-q", "--metrics", "none", "--stream", "--tasks", "-"]
    if keep_order:
        argv.append("--keep-order")
    # The bar as corral's own: on when stderr is a terminal, "--bar" in
    # corral_args forces it (on /dev/tty if stderr is redirected), "-q" hides
    # it. map itself runs corral with -q (only warnings and errors), so it
    # asks for the bar with --bar, which corral draws despite -q.
    if os.isatty(2) and not ({"-q", "--quiet"} & set(corral_args)):
        argv.append("--bar")
    if max is not None:
        argv += ["--max", str(int(max))]
    if timeout is not None:
        argv += ["--timeout", _duration(timeout)]
    if retries:
        argv += ["--retries", str(retries)]
    argv += list(corral_args)
    python = sys.executable or shutil.which("python3") or "python3"
    argv += ["--", python, "-m", "corral._worker", "--retries", str(retries), *worker]
    return argv


def _imap(argv, iterable, shared, keep_order, max, retries):
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env["CORRAL_PY_PATH"] = json.dumps([os.path.abspath(p) if p else os.getcwd() for p in sys.path])
    # corral holds the lines its workers cannot take yet and grows the pool on
    # them (the stream's backlog), so without max the window must not cap the
    # pool: an I/O-bound function wants hundreds of workers. It only bounds the
    # inputs held in memory for an endless iterable.
    window = _WINDOW if max is None else builtins.max(16, 4 * int(max))
    with tempfile.TemporaryDirectory(prefix="corral-map-") as tmpdir:
        if shared:
            argv = argv[:2] + ["-c", _config_file(shared, tmpdir)] + argv[2:]
        run = _Run(argv, env, iterable, window)
        try:
            yield from _results(run, keep_order, retries)
        finally:
            run.stop()


def map(fn, iterable, *, shared=None, keep_order=True, max=None, timeout=None, retries=0, corral_args=()):
    """Like multiprocessing.Pool.map: [fn(x) for x in iterable], computed by
    corral's workers (`python3 -m corral._worker`), which import fn by module
    and name (a function of the main script works, as with spawn).

    Arguments and results travel as JSON lines (pickled when JSON would change
    them). shared={"name": PATH | {"command": [...]} | bytes | numpy array}
    loads each segment once for all workers (corral.shared / shared_array in
    fn). keep_order=False returns the results in completion order. max caps
    the pool (default corral's: no fixed ceiling), timeout (seconds) limits one
    input, retries re-runs an input whose function raised or whose worker died
    or timed out. corral_args are more `corral run` flags, e.g. ["--min", "8"].
    A progress bar (lines answered, rate) shows when stderr is a terminal;
    corral_args=["-q"] hides it, ["--bar"] draws it on the terminal even when
    stderr is redirected.

    Raises TaskError naming the first input that failed (the worker's exception
    is its __cause__), CorralError when corral itself fails."""
    return list(imap(fn, iterable, shared=shared, keep_order=keep_order, max=max, timeout=timeout,
                     retries=retries, corral_args=corral_args))
