# SPDX-License-Identifier: MIT
"""Failure behaviour an operator relies on (issue 18): signals from the first
moment, one request per sender, no reload while stopping, a busy default
metrics port, a busy loop that still answers HTTP, a joblog that is a symlink,
and `corral status` facing a hostile server."""
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import CORRAL, TIMEOUT, Stream, http_get, wait_gone

SLEEP = ["sleep", "1000"]   # coreutils: a worker that starts fast and obeys TERM


# --- 3: signals before the loop runs ---------------------------------------

@pytest.mark.parametrize("sig,effect", [
    (signal.SIGTERM, r"received SIGTERM"),
    (signal.SIGINT, r"received SIGINT"),
    (signal.SIGTTIN, r"scale 1 -> 2 \(by hand\)"),
    (signal.SIGTTOU, r"scale 2 -> 1 \(by hand\)"),
])
def test_signal_while_reading_the_config_is_acted_on_later(corral, tmp_path, sig, effect):
    fifo = str(tmp_path / "c.yaml")
    os.mkfifo(fifo)
    c = corral("run", "-c", fifo)
    initial = 2 if sig == signal.SIGTTOU else 1
    # Opening for writing returns once corral has opened the FIFO: main() has
    # run, the event loop does not exist yet.
    with open(fifo, "w") as f:
        os.kill(c.pid, sig)
        f.write(f"command: [sleep, '1000']\nworkers: {{min: 1, max: 3, initial: {initial}}}\n"
                "policy: {rules: []}\n")
    c.log.wait(effect)
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


def test_hup_while_reading_the_config_reloads_later(corral, tmp_path):
    fifo = str(tmp_path / "c.yaml")
    os.mkfifo(fifo)
    c = corral("run", "-c", fifo)
    text = "command: [sleep, '1000']\nworkers: {min: 1, max: 3}\npolicy: {rules: []}\n"
    with open(fifo, "w") as f:
        os.kill(c.pid, signal.SIGHUP)
        f.write(text)
    c.log.wait(r"received SIGHUP: reloading")
    with open(fifo, "w") as f:   # the reload reads the FIFO again
        f.write(text)
    c.log.wait(r"reloaded: 1-3 workers")
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


def test_an_inherited_sigchld_ignore_does_not_break_the_loop(corral):
    """Started with SIGCHLD ignored, the kernel would reap the workers itself and
    the loop would fail with ECHILD at the first exit."""
    c = corral("run", "--", *SLEEP, corral_prefix=["env", "--ignore-signal=CHLD"])
    pid = c.started(1)[0]
    os.kill(pid, signal.SIGKILL)
    c.log.wait(rf"worker 0 \(pid {pid}\) was killed by signal KILL")
    c.started(1)
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


def test_other_commands_still_die_of_term(tmp_path):
    """Blocking in main() must not make `corral check` deaf to TERM."""
    fifo = str(tmp_path / "c.yaml")
    os.mkfifo(fifo)
    p = subprocess.Popen([CORRAL, "check", "-c", fifo], stderr=subprocess.PIPE)
    with open(fifo, "w") as f:
        os.kill(p.pid, signal.SIGTERM)
        f.write("command: [true]\n")
    assert p.wait(TIMEOUT) == -signal.SIGTERM


# --- 4: one request per sender ---------------------------------------------

# Ignores TERM, so a stop takes the whole stop_timeout unless escalated.
STUBBORN = ["env", "--ignore-signal=TERM", "sleep", "1000"]


def stubborn_started(c):
    """Awaits worker 0 of STUBBORN, exec'd as sleep with TERM ignored; its pid."""
    pid = c.started(1)[0]
    deadline = time.monotonic() + TIMEOUT
    while True:
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":\t", 1) for line in f.read().splitlines())
        if status["Name"].strip() == "sleep" and int(status["SigIgn"], 16) & (1 << (signal.SIGTERM - 1)):
            return pid
        assert time.monotonic() < deadline, "the worker never ran with TERM ignored"
        time.sleep(0.01)


def test_same_signal_twice_from_one_sender_is_one_request(corral):
    """What `timeout -s INT` does to a corral sharing its process group: INT to
    corral, then INT to the group. The second must not kill the workers."""
    c = corral("run", "-v", "--stop-timeout", "1s", "--", *STUBBORN)
    pid = stubborn_started(c)
    c.signal(signal.SIGINT)
    c.log.wait(r"stopping 1 worker with SIGTERM")   # the first was acted on
    c.signal(signal.SIGINT)                          # the same sender, a moment later
    c.log.wait(rf"received SIGINT again from pid {os.getpid()} at once: the same request, ignoring")
    assert c.wait() == 0
    log = c.log.text()
    assert "stopping at once" not in log
    assert f"worker 0 (pid {pid}) still running 1s after the stop signal, killing" in log


def test_timeout_s_int_stops_gracefully(corral):
    """The README's demo: `timeout -s INT` around corral, in one process group (the
    race is the previous test's, which makes it deterministic)."""
    c = corral("run", "--stop-timeout", "1s", "--", *STUBBORN, corral_prefix=["timeout", "-s", "INT", "5"])
    pid = stubborn_started(c)
    assert c.wait() == 124
    log = c.log.text()
    assert "stopping at once" not in log
    assert f"worker 0 (pid {pid}) still running 1s after the stop signal, killing" in log


def test_same_signal_from_another_sender_escalates(corral):
    c = corral("run", "--stop-timeout", "1h", "--", *STUBBORN)
    pid = stubborn_started(c)
    c.signal(signal.SIGINT)
    c.log.wait(r"stopping 1 worker with SIGTERM")
    subprocess.run(["kill", "-INT", str(c.pid)], check=True)   # another process: a deliberate second
    c.log.wait(r"stopping at once")
    assert c.wait() == 0
    assert f"worker 0 (pid {pid}) was killed by signal KILL" in c.log.text()


# --- 7: no reload while stopping --------------------------------------------

def test_hup_while_stopping_is_ignored(corral, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(f"command: {json.dumps(STUBBORN)}\nworkers: {{min: 1, max: 1, stop_timeout: 1h}}\n")
    c = corral("run", "-c", str(path))
    pid = stubborn_started(c)
    c.signal(signal.SIGTERM)
    c.log.wait(r"stopping 1 worker with SIGTERM")
    c.signal(signal.SIGHUP)
    m = c.log.wait(r"received SIGHUP(: reloading| while stopping, ignoring)")
    assert m[1] == " while stopping, ignoring"
    c.signal(signal.SIGINT)   # another signal: kill at once
    assert c.wait() == 0
    log = c.log.text()
    assert "reloaded" not in log
    assert f"worker 0 (pid {pid}) was killed by signal KILL" in log


# --- 14: a joblog that is a symbolic link ------------------------------------

@pytest.mark.parametrize("resume", [False, True], ids=["fresh", "resume"])
def test_joblog_symlink_is_refused(tmp_path, resume):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "j.log"
    link.symlink_to(victim)
    p = subprocess.run([CORRAL, "run", "--metrics", "none", "--tasks", "-", "--joblog", str(link),
                        *(["--resume"] if resume else []), "--", "true"],
                       input="1\n", capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 2, p.stderr
    assert f"the joblog {link} is a symbolic link; refusing to follow it" in p.stderr
    assert victim.read_text() == "precious\n"


# --- 5: a busy metrics port --------------------------------------------------

DEFAULT_PORT = 9311


def hold_port(port):
    """A listening socket on 127.0.0.1:port, or None when something else holds
    the port already (busy either way)."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        s.listen()
        return s
    except OSError:
        s.close()
        return None


def test_busy_default_port_takes_a_free_one(tmp_path):
    held = hold_port(DEFAULT_PORT)
    try:
        # No --metrics and no metrics.listen: the default address.
        p = subprocess.Popen([CORRAL, "run", "--min", "1", "--max", "1", "--", *SLEEP],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            log = Stream(p.stderr)
            m = log.wait(rf"metrics on port (\d+) \(127.0.0.1:{DEFAULT_PORT} is in use: took a free port\)|"
                         r"cannot listen")
            assert m[1], log.text()
            port = int(m[1])
            assert port != DEFAULT_PORT
            # Served there (503 until the first pages are published).
            assert http_get(port, "/metrics")[0] in (200, 503)
            p.send_signal(signal.SIGTERM)
            assert p.wait(TIMEOUT) == 0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    finally:
        if held:
            held.close()


@pytest.mark.parametrize("where", ["flag", "file"])
def test_busy_explicit_port_stays_an_error(corral, tmp_path, where):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        listen = f"127.0.0.1:{s.getsockname()[1]}"
        path = tmp_path / "c.yaml"
        path.write_text("command: [sleep, '1000']\n" + (f"metrics: {{listen: '{listen}'}}\n" if where == "file" else ""))
        args = ["--metrics", listen] if where == "flag" else []
        # conftest adds --metrics 127.0.0.1:0 unless one is given: give the file's own.
        p = subprocess.run([CORRAL, "run", "-c", str(path), *args], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=TIMEOUT)
        assert p.returncode == 2
        assert f"cannot listen on {listen}: Address already in use" in p.stderr


# --- 16: corral status against a hostile or surprising server ---------------

class Fake:
    """An HTTP server answering every GET with one fixed body."""

    def __init__(self, body):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                data = body.encode() if isinstance(body, str) else body
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def status(body, *args):
    fake = Fake(body)
    try:
        return subprocess.run([CORRAL, "status", "--url", fake.url, *args], capture_output=True,
                              timeout=TIMEOUT)
    finally:
        fake.close()


WRONG_TYPES = [
    {"pool": {}, "workers": "many", "rules": {"a": 1}, "signals": [1], "last_decision": 3},
    {"pool": {"running": "two", "health": 5}, "workers": [1, "x", None, {"id": "zero", "rss": []}],
     "rules": [1, {"name": 2, "holding": "yes", "held": {}}], "signals": {"cpu.busy": "hot", "x": {}},
     "last_decision": {"from": "a", "to": [], "rule": 7}},
    {"pool": {}, "workers": {}, "rules": "none", "last_decision": []},
]


@pytest.mark.parametrize("doc", WRONG_TYPES, ids=["containers", "leaves", "swapped"])
def test_status_survives_unexpected_types(doc):
    p = status(json.dumps(doc))
    assert p.returncode == 0, p.stderr
    assert b"corral" in p.stdout


def test_status_escapes_terminal_controls():
    evil = "\x1b]0;owned\x07\x1b[2J\u009b31m\r"
    doc = {"version": evil, "pool": {"health": evil}, "workers": [{"id": 0, "state": evil}],
           "rules": [{"name": evil, "when": evil, "holding": False}], "signals": {evil: 1},
           "last_decision": {"rule": evil, "reason": evil, "from": 1, "to": 2, "age": 1}}
    p = status(json.dumps(doc))
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    for c in "\x1b\x07\r\u009b":
        assert c not in out
    assert "\\x1b]0;owned\\x07\\x1b[2J\\u009b31m\\x0d" in out


def test_status_json_never_passes_raw_controls():
    # Not valid JSON (a raw ESC inside a string), yet json-c reads it.
    p = status(b'{"pool": {}, "version": "a\x1b[31mb"}', "--json")
    assert p.returncode == 0, p.stderr
    assert b"\x1b" not in p.stdout
    assert json.loads(p.stdout)["version"] == "a\x1b[31mb"


def test_last_decision_before_any_change_says_so(corral):
    c = corral("run", "--min", "1", "--max", "1", "--", *SLEEP)
    c.started(1)
    port = c.metrics_port()
    deadline = time.monotonic() + TIMEOUT
    while True:   # the first decision comes with the first sample
        code, body = http_get(port, "/status")   # 503 until the first pages
        doc = json.loads(body) if code == 200 else {}
        if doc.get("last_decision"):
            break
        assert time.monotonic() < deadline, doc
        time.sleep(0.05)
    d = doc["last_decision"]
    assert (d["from"], d["to"], d["age"]) == (None, None, None), d
    p = subprocess.run([CORRAL, "status", "--url", f"http://127.0.0.1:{port}"], capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert "last decision: no change of size yet; latest by " in p.stdout, p.stdout
    assert "ok: 1 worker running" in http_get(port, "/healthz")[1]
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


# --- 9: HTTP while the loop is busy; connections within the fd table --------

def test_busy_loop_answers_http_at_once(corral, tmp_path):
    """The loop is held in a reload reading its file from a FIFO: requests are
    answered from the last pages, not each after a half-second wait."""
    fifo = str(tmp_path / "c.yaml")
    os.mkfifo(fifo)
    text = "command: [sleep, '1000']\nworkers: {min: 1, max: 1}\npolicy: {rules: []}\n"
    c = corral("run", "-v", "-c", fifo)
    with open(fifo, "w") as f:
        f.write(text)
    c.started(1)
    port = c.metrics_port()
    c.log.wait(r"steady at 1")            # a sample since the last render: the pages are stale
    c.signal(signal.SIGHUP)
    c.log.wait(r"received SIGHUP: reloading")   # the loop now blocks opening the FIFO
    began = time.monotonic()
    for _ in range(12):
        assert http_get(port, "/healthz") == (200, "ok: 1 worker running (min 1, max 1)\n")
    # Waiting in turn, 12 requests take at least 6 s; one wait is 0.5 s.
    assert time.monotonic() - began < 3.0
    with open(fifo, "w") as f:
        f.write(text)
    c.log.wait(r"reloaded: 1-1 workers")
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


def socket_fds(pid):
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except FileNotFoundError:
            pass
    return n


def test_idle_clients_leave_fds_for_restarts(corral):
    """With `ulimit -n 64`, idle HTTP clients take at most the server's limit
    of fds, and a worker killed then is restarted."""
    c = corral("run", "-v", "--min", "2", "--max", "2", "--", *SLEEP,
               corral_prefix=["prlimit", "--nofile=64:64", "--"])
    pids = c.started(2)
    port = c.metrics_port()
    # Logged before the workers start; without it, the limit is the table.
    limit = next((int(m[1]) for m in (re.search(r"metrics: up to (\d+) connections at once", line)
                                      for line in c.log.lines) if m), 64)
    clients = []
    try:
        for _ in range(100):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /metrics HTTP/1.1\r\n")   # a request that never ends
            clients.append(s)
        deadline = time.monotonic() + TIMEOUT
        while socket_fds(c.pid) < limit + 1:       # the listening socket and `limit` clients
            assert time.monotonic() < deadline, f"{socket_fds(c.pid)} sockets, limit {limit}"
            time.sleep(0.01)
        os.kill(pids[0], signal.SIGKILL)
        m = c.log.wait(r"worker 0 started \(pid \d+\)|Failed to start worker 0|[Tt]oo many open files")
        assert "started" in m[0], c.log.text()
    finally:
        for s in clients:
            s.close()
    # (The closed clients still hold their places until the connection timeout:
    # libmicrohttpd does not notice a close before a whole request.)
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


def test_one_is_singular():
    p = subprocess.run([CORRAL, "run", "--metrics", "none", "--max", "1", "--tasks", "-", "--", "true"],
                       input="1\n", capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert "1 task at once to start, up to 1" in p.stderr
