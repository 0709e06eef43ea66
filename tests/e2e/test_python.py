# SPDX-License-Identifier: MIT
"""The corral Python package (python/corral/): serve() under corral's stream
mode, map/imap on corral's pool (exceptions, newlines, __main__ functions,
order, a worker killed mid-run), shared segments as arrays, the notify
protocol and task(). Workers are real Python processes started by the built
corral; deadlines only catch hangs."""
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import textwrap
import threading

import pytest

from conftest import CORRAL, PYTHON, read_terminal

SOURCE = pathlib.Path(__file__).resolve().parents[2] / "python"
if str(SOURCE) not in sys.path:
    sys.path.insert(0, str(SOURCE))
import corral  # noqa: E402

DEADLINE = 120      # Python workers start slowly on a busy machine
ENV = dict(os.environ, CORRAL=CORRAL, PYTHONPATH=os.pathsep.join(
    p for p in (str(SOURCE), os.environ.get("PYTHONPATH")) if p))


@pytest.fixture(autouse=True)
def corral_program(monkeypatch):
    monkeypatch.setenv("CORRAL", CORRAL)


def within(fn, *args, **kwargs):
    """fn(*args, **kwargs), or a failure if it hangs past the deadline."""
    box = {}

    def run():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as e:
            box["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(DEADLINE)
    assert not t.is_alive(), f"{fn.__name__} still running after {DEADLINE}s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def script(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def run_python(*argv, cwd=None, input=None):
    return subprocess.run([PYTHON, *map(str, argv)], cwd=cwd, env=ENV, input=input, capture_output=True,
                          text=True, timeout=DEADLINE)


# ---- functions the workers import from this module ----

def square(x):
    return x * x


def fail_on_three(x):
    if x == 3:
        raise KeyError(f"no {x}")
    return x


def with_newlines(x):
    return f"line {x}\nsecond\r\n\tthird"


def as_tuple(x):
    return (x, {"set": {x}}, str(x))


def slow_when_even(x):
    # Uneven work, so that workers finish out of input order.
    if x % 2 == 0:
        sum(range(20000 * (x % 7)))
    return x


def die_once(x):
    """Kills its own worker the first time it meets input 5."""
    if x == 5:
        try:
            fd = os.open(os.path.join(os.environ["PY_TEST_MARKS"], "5"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return "again"
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def hang_on_two(x):
    if x == 2:
        threading.Event().wait()        # never set: a hung request, say
    return x


def table_row_sum(i):
    table = corral.shared_array("table")
    return [int(table[i].sum()), str(table.dtype), list(table.shape), table.flags.writeable]


def blob_head(n):
    return bytes(corral.shared("blob")[:n]).decode()


def raw_as_u4(i):
    return int(corral.shared_array("blob", dtype="<u4", shape=(2, 2))[i // 2, i % 2])


# ---- serve() under corral run --stream ----

SERVE = """\
    import sys
    import corral

    def handle(line):
        if line == "boom":
            raise RuntimeError("exploded on purpose")
        if line == "two lines":
            return "first\\nsecond"
        if line == "chatty":
            print("a stray print")
        return "<" + line + ">"

    corral.serve(handle)
"""


def stream(tmp_path, lines, *args):
    worker = script(tmp_path, "serve_worker.py", SERVE)
    return subprocess.run([CORRAL, "run", "--metrics", "none", "--stream", "--tasks", "-", "--keep-order", *args,
                           "--", PYTHON, str(worker)], input="".join(f"{l}\n" for l in lines), env=ENV,
                          capture_output=True, text=True, timeout=DEADLINE)


def test_serve_answers_an_exception_with_the_empty_line_and_keeps_serving(tmp_path):
    lines = ["a", "boom", "b", "boom", "c"]
    p = stream(tmp_path, lines, "--min", "1", "--max", "1")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n") == ["<a>", "", "<b>", "", "<c>", ""]
    assert p.stderr.count("RuntimeError: exploded on purpose") == 2, p.stderr
    assert "'boom', failed" in p.stderr
    # One worker served every line: the exception did not end it.
    assert p.stderr.count("started (pid") == 1, p.stderr


def test_serve_refuses_a_result_with_a_newline_inside(tmp_path):
    p = stream(tmp_path, ["x", "two lines", "y"], "--min", "1", "--max", "1")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n") == ["<x>", "", "<y>", ""]
    assert "newline inside" in p.stderr


def test_serve_sends_stray_prints_to_stderr(tmp_path):
    p = stream(tmp_path, ["chatty", "z"], "--min", "1", "--max", "1")
    assert p.stdout.split("\n") == ["<chatty>", "<z>", ""]
    assert "a stray print" in p.stderr


def test_serve_keeps_lines_aligned_over_several_workers(tmp_path):
    lines = [f"n{i}" if i % 10 else "boom" for i in range(300)]
    p = stream(tmp_path, lines, "--min", "2", "--max", "2")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:-1] == ["" if l == "boom" else f"<{l}>" for l in lines]


# ---- map and imap ----

def test_map_returns_results_in_input_order():
    assert within(corral.map, square, range(200)) == [x * x for x in range(200)]


def test_map_of_nothing_is_empty():
    assert within(corral.map, square, []) == []


def test_an_exception_comes_back_naming_its_input():
    with pytest.raises(corral.TaskError) as info:
        within(corral.map, fail_on_three, range(10))
    e = info.value
    assert (e.index, e.input, e.type_name) == (3, 3, "KeyError")
    assert "input #3 (3) raised KeyError" in str(e)
    assert isinstance(e.__cause__, KeyError)            # the worker's own exception
    assert "fail_on_three" in e.remote_traceback


def test_newlines_in_results_come_back_unchanged():
    assert within(corral.map, with_newlines, [1, 2]) == [with_newlines(1), with_newlines(2)]


def test_values_json_would_change_come_back_as_they_were():
    assert within(corral.map, as_tuple, [1, 2]) == [as_tuple(1), as_tuple(2)]
    assert within(corral.map, square, [1.5, 2 ** 70]) == [2.25, 2 ** 140]


def test_a_function_that_workers_cannot_import_is_refused_at_once():
    with pytest.raises(TypeError, match="lambda"):
        corral.map(lambda x: x, [1])

    def nested(x):
        return x
    with pytest.raises(TypeError, match="top level"):
        corral.map(nested, [1])


def test_a_missing_corral_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("CORRAL", "")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(corral.CorralError, match="CORRAL="):
        corral.map(square, [1])


def test_imap_keeps_input_order_while_workers_finish_out_of_it():
    got = within(lambda: list(corral.imap(slow_when_even, range(120), corral_args=["--min", "3", "--max", "3"])))
    assert got == list(range(120))


def test_imap_unordered_yields_every_result_once():
    got = within(lambda: list(corral.imap(slow_when_even, range(120), keep_order=False, corral_args=["--min", "3", "--max", "3"])))
    assert sorted(got) == list(range(120))


@pytest.mark.parametrize("keep_order", [True, False])
def test_imap_yields_a_result_before_the_input_ends(keep_order):
    """The input waits for the first result: an imap that collected results
    (or input) before yielding would never see one."""
    first = threading.Event()

    def inputs():
        yield 7
        assert first.wait(DEADLINE), "imap yielded nothing while the input was open"
        yield 8

    def consume():
        out = []
        for value in corral.imap(square, inputs(), keep_order=keep_order):
            out.append(value)
            first.set()
        return out
    assert within(consume) == [49, 64]


def test_an_exception_of_the_input_iterable_reaches_the_caller():
    def inputs():
        yield from range(5)
        raise OSError("the input file went away")

    got = []
    with pytest.raises(OSError, match="went away"):
        within(lambda: got.extend(corral.imap(square, inputs())))
    assert got == [0, 1, 4, 9, 16]


def test_closing_imap_early_stops_corral():
    it = corral.imap(square, range(10 ** 9))
    assert within(next, it) == 0
    within(it.close)        # the endless input is not drained: corral is stopped


def test_a_worker_killed_mid_run_still_gives_every_input_its_result(tmp_path, monkeypatch):
    monkeypatch.setenv("PY_TEST_MARKS", str(tmp_path))
    got = within(corral.map, die_once, range(20), retries=1)
    assert got == [x if x != 5 else "again" for x in range(20)]
    assert (tmp_path / "5").exists()        # the worker did die on input 5


def test_without_retries_the_input_whose_worker_died_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PY_TEST_MARKS", str(tmp_path))
    with pytest.raises(corral.TaskError, match=r"input #5 \(5\) got no result") as info:
        within(corral.map, die_once, range(20))
    assert info.value.index == 5 and info.value.type_name is None


def test_an_input_over_the_timeout_is_named_and_the_run_ends():
    # corral's clock for a line includes its worker's start-up: generous.
    with pytest.raises(corral.TaskError, match=r"input #2 \(2\) got no result: .* timed out") as info:
        within(corral.map, hang_on_two, range(6), timeout=10)
    assert info.value.index == 2


def test_a_bad_shared_source_is_corrals_error_with_its_log():
    with pytest.raises(corral.CorralError, match="status 2") as info:
        within(corral.map, square, [1], shared={"table": "/nonexistent/table.npy"})
    assert info.value.status == 2
    assert "/nonexistent/table.npy" in info.value.log


def test_a_function_whose_module_fails_to_import_fails_its_inputs_not_the_pool(tmp_path):
    script(tmp_path, "broken_mod.py", """\
        def fn(x):
            return x
        raise RuntimeError("this module cannot be imported in a worker")
    """)
    main = script(tmp_path, "main.py", """\
        import sys, types, corral
        mod = types.ModuleType("broken_mod")
        exec("def fn(x):\\n    return x\\n", mod.__dict__)
        sys.modules["broken_mod"] = mod
        mod.fn.__module__ = "broken_mod"
        try:
            corral.map(mod.fn, [1, 2])
        except corral.TaskError as e:
            print("TaskError", e.index, type(e.__cause__).__name__, e.__cause__)
    """)
    p = run_python(main, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("TaskError 0 ImportError"), p.stdout + p.stderr
    assert "this module cannot be imported" in p.stdout


MAIN_SCRIPT = """\
    import json, sys
    import corral

    def cube(x):
        return x ** 3

    print("module body ran", file=sys.stderr)
    if __name__ == "__main__":
        print(json.dumps(corral.map(cube, range(10))))
"""


def test_a_function_of_the_main_script_works(tmp_path):
    p = run_python(script(tmp_path, "main_script.py", MAIN_SCRIPT), cwd="/")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == [x ** 3 for x in range(10)]
    # The main block ran once, in the caller: workers ran the body as __mp_main__.
    assert p.stdout.count("\n") == 1


def test_a_function_of_a_main_module_run_with_dash_m_works(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    script(tmp_path / "pkg", "job.py", MAIN_SCRIPT)
    p = run_python("-m", "pkg.job", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == [x ** 3 for x in range(10)]


# ---- shared segments ----

def test_shared_bytes_reach_every_worker_without_numpy():
    got = within(corral.map, blob_head, [1, 3, 5], shared={"blob": b"hello world"})
    assert got == ["h", "hel", "hello"]


def test_shared_npy_keeps_dtype_and_shape_and_is_read_only(tmp_path):
    np = pytest.importorskip("numpy", reason="python3-numpy is not installed")
    table = np.arange(24, dtype=np.int32).reshape(6, 4)
    path = tmp_path / "table.npy"
    np.save(path, table)
    got = within(corral.map, table_row_sum, range(6), shared={"table": str(path)})
    assert got == [[int(table[i].sum()), "int32", [6, 4], False] for i in range(6)]


def test_shared_array_from_a_numpy_array_and_raw_bytes():
    np = pytest.importorskip("numpy", reason="python3-numpy is not installed")
    table = np.arange(10, dtype=np.float64).reshape(5, 2)
    got = within(corral.map, table_row_sum, range(5), shared={"table": table})
    assert [g[:3] for g in got] == [[int(r.sum()), "float64", [5, 2]] for r in table]
    raw = np.array([1, 2, 3, 4], dtype="<u4").tobytes()
    assert within(corral.map, raw_as_u4, range(4), shared={"blob": raw}) == [1, 2, 3, 4]


def test_shared_outside_corral_says_how_to_get_a_segment(monkeypatch):
    monkeypatch.delenv("CORRAL_SHM_NOPE", raising=False)
    with pytest.raises(LookupError, match="CORRAL_SHM_NOPE is not set"):
        corral.shared("nope")


def test_shared_array_without_numpy_names_the_package(tmp_path):
    main = script(tmp_path, "no_numpy.py", """\
        import sys
        sys.modules["numpy"] = None         # as if it were not installed
        import corral
        try:
            corral.shared_array("table")
        except ImportError as e:
            print(e)
    """)
    p = run_python(main)
    assert "needs numpy" in p.stdout and "python3-numpy" in p.stdout, p.stdout + p.stderr


# ---- the notify protocol and per-task mode ----

@pytest.mark.parametrize("abstract", [False, True])
def test_ready_and_status_send_notify_datagrams(tmp_path, monkeypatch, abstract):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        if abstract:
            name = f"corral-test-{os.getpid()}"
            sock.bind("\0" + name)
            monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        else:
            sock.bind(str(tmp_path / "notify"))
            monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
        sock.settimeout(DEADLINE)
        assert corral.ready() is True
        assert sock.recv(4096) == b"READY=1"
        corral.status("warming up\nthe cache")
        assert sock.recv(4096) == b"STATUS=warming up the cache"


def test_notify_is_a_no_op_without_a_socket(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert corral.ready() is False and corral.status("x") is False


def test_task_gives_line_seq_and_id_in_per_task_mode(tmp_path):
    tasks = tmp_path / "tasks"
    tasks.write_text("first line\nsecond\n")
    p = subprocess.run([CORRAL, "run", "--metrics", "none", "--keep-order", "--tasks", str(tasks), "--",
                        PYTHON, "-c", "import corral; t = corral.task(); print(t.seq, repr(t.line), t.id)"],
                       env=ENV, capture_output=True, text=True, timeout=DEADLINE)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["1 'first line' None", "2 'second' None"]


def test_task_outside_corral_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("CORRAL_TASK", raising=False)
    with pytest.raises(LookupError, match="per-task mode"):
        corral.task()


# ---- the examples (packaging/examples/*.py) ----

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "packaging" / "examples"


@pytest.mark.parametrize("name", ["thumbnails_map.py", "thumbnails_serve.py", "urls_map.py", "table_lookup.py"])
def test_example_compiles(name):
    compile((EXAMPLES / name).read_text(), name, "exec")


def test_table_lookup_example_answers_from_the_shared_table(tmp_path):
    np = pytest.importorskip("numpy", reason="python3-numpy is not installed")
    keys = np.arange(0, 3000, 3, dtype="<u8")
    np.save(tmp_path / "table.npy", np.stack([keys, keys * keys], 1))
    p = run_python(EXAMPLES / "table_lookup.py", tmp_path / "table.npy", 3, 4, 2997)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["3 9", "4 -", "2997 8982009"]


def test_meson_installs_every_module_of_the_package():
    build = os.environ.get("CORRAL_BUILD_ROOT")
    if not build:
        pytest.skip("CORRAL_BUILD_ROOT is not set (meson test sets it)")
    p = subprocess.run(["meson", "introspect", "--installed", build], capture_output=True, text=True,
                       timeout=DEADLINE)
    assert p.returncode == 0, p.stderr
    installed = json.loads(p.stdout)
    for module in sorted((SOURCE / "corral").glob("*.py")):
        dest = installed.get(str(module))
        assert dest and dest.endswith(f"/corral/{module.name}"), f"{module.name} is not installed: {dest}"


# ---- the progress bar (issue 24 item 2) ----

BAR_SCRIPT = """
import sys
import corral

def double(x):
    return 2 * x

if __name__ == "__main__":
    args = sys.argv[1:]
    result = corral.map(double, range(300), corral_args=args)
    print(sum(result), file=sys.stderr)
"""


def run_with_stderr_on_a_terminal(tmp_path, *args):
    """Runs the bar script with its stderr on a new pseudo-terminal; returns
    (exit status, what reached the terminal)."""
    import pty
    path = script(tmp_path, "bar_script.py", BAR_SCRIPT)
    master, slave = pty.openpty()
    p = subprocess.Popen([PYTHON, str(path), *args], env=ENV, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        seen = read_terminal(master, DEADLINE, "the script")
    finally:
        p.wait(DEADLINE)
    return p.returncode, seen.decode("utf-8", "replace")


def test_map_draws_a_progress_bar_when_stderr_is_a_terminal(tmp_path):
    status, seen = run_with_stderr_on_a_terminal(tmp_path)
    assert status == 0, seen
    assert str(2 * sum(range(300))) in seen
    # Its last drawing counts every input, redrawn in place, then ends its line.
    assert "\r300 done, 0 failed, 0 running" in seen, seen[-500:]
    assert seen.count("\r") >= 1


def test_map_with_quiet_draws_no_bar_on_a_terminal(tmp_path):
    status, seen = run_with_stderr_on_a_terminal(tmp_path, "-q")
    assert status == 0, seen
    assert str(2 * sum(range(300))) in seen
    assert "done," not in seen and "\r3" not in seen


def test_map_draws_no_bar_into_a_pipe(tmp_path):
    # A new session: no controlling terminal for corral to find either.
    p = subprocess.run([PYTHON, str(script(tmp_path, "bar_script.py", BAR_SCRIPT))], env=ENV,
                       capture_output=True, text=True, timeout=DEADLINE, start_new_session=True)
    assert p.returncode == 0, p.stderr
    assert p.stderr.strip().endswith(str(2 * sum(range(300))))
    assert "\r" not in p.stderr and "done," not in p.stderr
