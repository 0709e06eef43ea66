# SPDX-License-Identifier: MIT
"""Server pools: `listen:` sockets shared by the workers (sd_listen_fds), real
servers behind them (Python's http.server, gunicorn on LISTEN_FDS, the C
helper serve-task), and rolling replacements that drop no request.

Loopback only, on free ports; request counts are bounded, deadlines only
catch hangs."""
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import PYTHON, TIMEOUT, alive, await_metric, http_get, metric, task, wait_gone

# A worker on the socket corral passes as fd 3 (sd_listen_fds), which finishes
# the request in hand on TERM instead of dying in the middle of it.
HTTP_SERVER = r"""
import http.server, os, signal, socket, threading
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def do_GET(self):
        body = f"pid {os.getpid()} python\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
assert int(os.environ["LISTEN_PID"]) == os.getpid() and os.environ["LISTEN_FDS"] == "1"
srv = http.server.HTTPServer(("", 0), H, bind_and_activate=False)
srv.socket.close()
srv.socket = socket.socket(fileno=3)
signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=srv.shutdown).start())
srv.serve_forever(poll_interval=0.05)
"""

WSGI_APP = """
import os
import re
import shutil
import signal
def app(environ, start_response):
    body = f"pid {os.getppid()} gunicorn\\n".encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def have_gunicorn():
    return importlib.util.find_spec("gunicorn") is not None


def gunicorn(app_dir):
    # gunicorn takes LISTEN_FDS by itself; with `--bind fd://3` as well,
    # gunicorn 20.1 opens fd 3 twice and fails (EBADF).
    return [PYTHON, "-m", "gunicorn", "-w", "1", "--chdir", str(app_dir), "app:app"]


def environ_of(pid, key):
    """A worker's environment once `key` is in it: right after exec the
    kernel may still be setting up the new image's (and then shows none)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        with open(f"/proc/{pid}/environ") as f:
            env = dict(e.split("=", 1) for e in f.read().split("\0") if "=" in e)
        if key in env or time.monotonic() > deadline:
            return env
        time.sleep(0.01)


def write_config(path, command, port, extra=""):
    # JSON is YAML, and escapes the newlines of a Python worker's code.
    path.write_text(f"command: {json.dumps(command)}\nlisten: [\"127.0.0.1:{port}\"]\n{extra}")
    return str(path)


def get(port, timeout=TIMEOUT):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/")
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


class Load:
    """Clients sending requests one after another until stopped: counts the
    answers and the failures (a refused, reset or unanswered request)."""

    def __init__(self, port, clients=4):
        self.port = port
        self.ok = 0
        self.failed = []
        self.bodies = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]
        for t in self._threads:
            t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                status, body = get(self.port)
                with self._lock:
                    if status == 200:
                        self.ok += 1
                        self.bodies.append(body)
                    else:
                        self.failed.append(f"status {status}")
            except (OSError, http.client.HTTPException) as e:
                with self._lock:
                    self.failed.append(repr(e))

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(TIMEOUT)


def test_http_server_pool_answers_every_request(corral, tmp_path):
    port = free_port()
    config = write_config(tmp_path / "c.yaml", [PYTHON, "-c", HTTP_SERVER], port,
                          "workers: {min: 3, max: 3}\n")
    c = corral("run", "-c", config)
    pids = set(c.started(3).values())
    # The socket is bound before any worker starts: nothing is refused, even
    # while the workers are still importing.
    answered = {}
    errors = []

    def client(n):
        for _ in range(n):
            try:
                status, body = get(port)
                assert status == 200
                answered[body] = answered.get(body, 0) + 1
            except Exception as e:  # noqa: BLE001 (counted, then asserted)
                errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(500,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT * 6)
    assert errors == []
    assert sum(answered.values()) == 2000
    served = {int(body.split()[1]) for body in answered}
    assert served <= pids and len(served) >= 2, answered
    c.signal(15)
    assert c.wait() == 0


def test_workers_get_the_sockets_as_sd_listen_fds(corral, tmp_path):
    port = free_port()
    sock = tmp_path / "app.sock"
    (tmp_path / "c.yaml").write_text(
        f'command: {json.dumps(task("serve", "--ready-after", 0))}\n'
        f'listen: ["127.0.0.1:{port}", "unix:{sock}"]\n'
        "workers: {min: 2, max: 2}\n")
    c = corral("run", "-c", str(tmp_path / "c.yaml"))
    pids = c.started(2)
    # Ready: past the dynamic loader, whose ld.so.cache is open for a moment after exec.
    for _ in pids:
        c.log.wait(r"is ready")
    for pid in pids.values():
        env = environ_of(pid, "LISTEN_FDS")
        assert env["LISTEN_FDS"] == "2"
        assert env["LISTEN_PID"] == str(pid)
        assert env["LISTEN_FDNAMES"] == "listen0:listen1"
        # Settled: the worker's own notify socket is open while it says READY=1.
        deadline = time.monotonic() + TIMEOUT
        while (fds := sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))) != [0, 1, 2, 3, 4] and \
                time.monotonic() < deadline:
            time.sleep(0.01)
        assert fds == [0, 1, 2, 3, 4], fds
        assert os.readlink(f"/proc/{pid}/fd/3").startswith("socket:")
    status, body = get(port)
    assert status == 200 and int(body.split()[1]) in pids.values()
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(TIMEOUT)
        s.connect(str(sock))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
    assert b"200 OK" in reply
    c.signal(15)
    assert c.wait() == 0
    assert not sock.exists(), "corral removes the unix socket it created"


def test_address_in_use_is_a_config_error(corral, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(tmp_path / "c.yaml", task("serve"), port)
        c = corral("run", "-c", config)
        assert c.wait() == 2
        assert f"c.yaml:2:10: cannot listen on 127.0.0.1:{port}: Address already in use" in c.log.text()


def test_check_points_at_a_bad_address(tmp_path):
    from conftest import CORRAL
    path = tmp_path / "c.yaml"
    path.write_text('command: [true]\nlisten: ["127.0.0.1:8080", "nohost"]\nlisten_backlog: 0\n')
    r = subprocess.run([CORRAL, "check", "-c", str(path)], capture_output=True, text=True)
    assert r.returncode == 2
    assert f"{path}:2:28: listen[1]: expected an address" in r.stderr, r.stderr
    assert f"{path}:3:17: listen_backlog" in r.stderr, r.stderr


@pytest.mark.skipif(not have_gunicorn(), reason="python3-gunicorn is not installed")
def test_reload_to_gunicorn_drops_no_request(corral, tmp_path):
    """A HUP with a changed command replaces every worker (http.server ->
    gunicorn) while clients keep sending: not one request fails."""
    port = free_port()
    (tmp_path / "app.py").write_text(WSGI_APP)
    path = tmp_path / "c.yaml"
    write_config(path, [PYTHON, "-c", HTTP_SERVER], port, "workers: {min: 2, max: 2}\n")
    c = corral("run", "-c", str(path))
    old = set(c.started(2).values())
    assert get(port)[0] == 200
    load = Load(port)
    try:
        write_config(path, gunicorn(tmp_path), port, "workers: {min: 2, max: 2}\n")
        c.signal(1)
        c.log.wait(r"replacing workers one at a time")
        new = set(c.started(2).values())
        for pid in old:
            assert wait_gone(pid, TIMEOUT), f"old worker {pid} still runs"
        # Requests that reach the new workers only: every one from gunicorn.
        settled = load.ok
        deadline = time.monotonic() + TIMEOUT
        while load.ok < settled + 50 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        load.stop()
    assert load.failed == [], load.failed[:5]
    assert load.ok >= settled + 50
    assert load.bodies[-1].endswith("gunicorn\n")
    assert {int(b.split()[1]) for b in load.bodies[-20:]} <= new
    c.signal(15)
    assert c.wait() == 0


@pytest.mark.skipif(not shutil.which("systemd-socket-activate"), reason="systemd-socket-activate is missing")
def test_socket_activation_passes_the_sockets_on(corral, tmp_path):
    """corral started with LISTEN_FDS (as by corral@.socket) needs no listen:
    its workers get systemd's socket, under systemd's name."""
    port = free_port()
    (tmp_path / "c.yaml").write_text(f'command: ["{task("serve")[0]}"]\nworkers: {{min: 2, max: 2}}\n')
    c = corral("run", "-c", str(tmp_path / "c.yaml"),
               corral_prefix=["systemd-socket-activate", "-l", f"127.0.0.1:{port}", "--fdname=web"])
    # systemd-socket-activate starts corral at the first connection, which
    # waits in the socket's queue until a worker takes it.
    c.log.wait(rf"Listening on 127.0.0.1:{port}")
    status, body = get(port)
    assert status == 200
    pids = c.started(2)
    assert int(body.split()[1]) in pids.values()
    for pid in pids.values():
        env = environ_of(pid, "LISTEN_FDS")
        assert (env["LISTEN_FDS"], env["LISTEN_PID"], env["LISTEN_FDNAMES"]) == ("1", str(pid), "web")
    c.signal(15)
    assert c.wait() == 0


# ---- readiness and liveness: the notify protocol ----

def serve_pool(corral, tmp_path, *args, workers="{min: 1, max: 1}", extra="", flags=()):
    """A pool of serve-task workers behind a free port: (corral, port, config path)."""
    port = free_port()
    path = tmp_path / "c.yaml"
    write_config(path, task("serve", *args), port, f"workers: {workers}\n{extra}")
    return corral("run", *flags, "-c", str(path)), port, path


def await_http(c, path, predicate, what):
    """Polls an endpoint of corral's (its pages are refreshed every sample)
    until predicate(status, body) holds; the deadline only catches a hang."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        status, body = http_get(c.metrics_port(), path)
        if predicate(status, body):
            return status, body
        assert time.monotonic() < deadline, f"never {what}: {status} {body}"
        time.sleep(0.05)


def test_a_worker_is_starting_until_ready(corral, tmp_path):
    ready = tmp_path / "ready"
    c, port, _ = serve_pool(corral, tmp_path, "--ready-when", ready, "--status", "warming up")
    pid = c.started(1)[0]
    # Until its first sample corral says "no sample yet"; then the worker is
    # starting, which it stays until the test lets it be ready.
    await_http(c, "/healthz", lambda s, b: s == 503 and "0 of at least 1 worker running (1 starting)" in b,
               "saying starting")
    assert metric(http_get(c.metrics_port(), "/metrics")[1], "corral_workers", '{state="starting"}') == 1
    _, body = await_http(c, "/status", lambda s, b: "warming up" in b, "showing STATUS=")
    worker = json.loads(body)["workers"][0]
    assert (worker["pid"], worker["state"], worker["status"]) == (pid, "starting", "warming up")
    from conftest import CORRAL
    table = subprocess.run([CORRAL, "status", "--url", f"http://127.0.0.1:{c.metrics_port()}"],
                           capture_output=True, text=True, timeout=TIMEOUT).stdout
    row = next(line for line in table.splitlines() if f" {pid} " in line)
    assert "starting" in row and row.endswith("  warming up"), table
    # Connections meanwhile wait in the accept queue: not refused.
    answer = {}
    client = threading.Thread(target=lambda: answer.update(r=get(port)))
    client.start()

    ready.touch()
    c.log.wait(rf"worker 0 \(pid {pid}\) is ready")
    await_http(c, "/healthz", lambda s, b: s == 200, "healthy")
    client.join(TIMEOUT)
    assert answer["r"][0] == 200
    c.signal(15)
    assert c.wait() == 0


def test_healthz_turns_ready_with_the_worker_not_at_the_next_sample(corral, tmp_path):
    """A worker's READY=1 shows in /healthz at once: with an hour between
    samples, the page published at the start is republished when it comes."""
    ready = tmp_path / "ready"
    c, port, _ = serve_pool(corral, tmp_path, "--ready-when", ready, extra="sample: {interval: 1h}\n")
    pid = c.started(1)[0]
    await_http(c, "/healthz", lambda s, b: s == 503 and "(1 starting)" in b, "saying starting")
    ready.touch()
    c.log.wait(rf"worker 0 \(pid {pid}\) is ready")
    await_http(c, "/healthz", lambda s, b: s == 200 and "ok: 1 worker running" in b, "healthy")
    c.signal(15)
    assert c.wait() == 0


def test_rolling_replacement_waits_for_ready(corral, tmp_path):
    old_ready, new_ready = tmp_path / "old", tmp_path / "new"
    old_ready.touch()
    c, port, path = serve_pool(corral, tmp_path, "--ready-when", old_ready, workers="{min: 2, max: 2}")
    old = set(c.started(2).values())
    for _ in old:
        c.log.wait(r"is ready")

    write_config(path, task("serve", "--ready-when", new_ready), port, "workers: {min: 2, max: 2}\n")
    c.signal(1)
    c.log.wait(r"replacing workers one at a time")
    first = c.started(1)
    # Not ready, so no old worker may stop: both still serve.
    assert all(alive(pid) for pid in old)
    assert "term" not in c.out.text()

    new_ready.touch()
    new = {first[next(iter(first))]} | set(c.started(1).values())
    for pid in old:
        assert wait_gone(pid, TIMEOUT)
    c.signal(15)
    assert c.wait() == 0
    out = c.out.drain().splitlines()
    # Each old worker ended only after one more new worker was ready.
    ready_seen = terms_seen = 0
    for line in out:
        kind, pid = line.split()
        if kind == "ready" and int(pid) in new:
            ready_seen += 1
        if kind == "term" and int(pid) in old:
            terms_seen += 1
            assert terms_seen <= ready_seen, out
    assert terms_seen == 2, out


def test_watchdog_silence_replaces_a_hung_worker(corral, tmp_path):
    hang = tmp_path / "hang"
    c, port, _ = serve_pool(corral, tmp_path, "--ready-after", 0, "--watchdog", 50, "--hang-when", hang,
                            workers="{min: 1, max: 1, watchdog: 1s}")
    pid = c.started(1)[0]
    c.log.wait(rf"worker 0 \(pid {pid}\) is ready")
    hang.touch()
    c.log.wait(rf"worker 0 \(pid {pid}\) sent no WATCHDOG=1 for 1s, killing it")
    c.log.wait(rf"worker 0 \(pid {pid}\) was killed by signal KILL")
    # Replaced like a crashed worker; the new one hangs at once, before any
    # ping, so the watchdog (armed by a first ping) leaves it be.
    assert c.started(1)[0] != pid
    c.signal(15)
    assert c.wait() == 0


def test_another_process_cannot_speak_for_a_worker(corral, tmp_path):
    ready = tmp_path / "ready"
    c, port, _ = serve_pool(corral, tmp_path, "--ready-when", ready, flags=("-v",))
    pid = c.started(1)[0]
    address = environ_of(pid, "NOTIFY_SOCKET")["NOTIFY_SOCKET"]
    assert address.startswith("@")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(b"READY=1\nSTATUS=forged", "\0" + address[1:])
    c.log.wait(rf"ignoring a message from pid {os.getpid()}, which is not worker 0 \(pid {pid}\)")
    assert "is ready" not in c.log.text()
    status, body = http_get(c.metrics_port(), "/status")
    assert "forged" not in body

    ready.touch()
    c.log.wait(rf"worker 0 \(pid {pid}\) is ready")
    c.signal(15)
    assert c.wait() == 0


@pytest.mark.parametrize("notify", ["true", None])
def test_start_timeout(corral, tmp_path, notify):
    """workers.notify: true requires READY=1 within start_timeout (else a failed
    start); implied by listen:, a worker that never speaks is taken as ready."""
    given = f", notify: {notify}" if notify else ""
    c, port, _ = serve_pool(corral, tmp_path, workers=f"{{min: 1, max: 1, start_timeout: 300ms{given}}}")
    pid = c.started(1)[0]
    if notify:
        c.log.wait(rf"worker 0 \(pid {pid}\) did not send READY=1 within 300ms \(workers.start_timeout\), killing it")
        c.log.wait(rf"worker 0 \(pid {pid}\) was killed by signal KILL")
        assert c.started(1)[0] != pid
    else:
        c.log.wait(rf"worker 0 \(pid {pid}\) sent no READY=1 within 300ms: taking it as ready")
        await_http(c, "/healthz", lambda s, b: s == 200, "healthy")
        assert alive(pid)
    c.signal(15)
    assert c.wait() == 0


# ---- scaling on the accept backlog ----

def test_backlog_grows_the_pool_by_default(corral, tmp_path):
    """More clients than workers against a slow handler: connections wait in
    the accept queue, listen.backlog rises above 0, and the server pool's
    default policy (no policy in the file) adds workers."""
    c, port, _ = serve_pool(corral, tmp_path, "--ready-after", 0, "--delay", 100,
                            workers="{min: 1, max: 4}", extra="sample: {interval: 200ms}\n")
    c.started(1)
    load = Load(port, clients=12)
    try:
        m = c.log.wait(r"scale 1 -> 2 \(rule (queued|waiting): listen.backlog (\S+)")
        assert float(m[2]) > 0
        text = http_get(c.metrics_port(), "/metrics")[1]
        assert metric(text, "corral_signal", '{name="listen.backlog"}') is not None
        c.log.wait(r"scale 2 -> 3 \(rule (queued|waiting)")
        c.started(2)
    finally:
        load.stop()
    assert load.failed == [], load.failed[:5]
    c.signal(15)
    assert c.wait() == 0


def test_backlog_shrinks_the_pool_when_idle(corral, tmp_path):
    """The same rules with a short `for`: once no connection waits and the
    workers idle, the pool gives workers back."""
    policy = ("policy:\n  stabilization: {down: 0s}\n  cooldown: {up: 0s, down: 0s}\n  rules:\n"
              "    - {name: waiting, when: listen.backlog > 0, for: 200ms, scale: +1}\n"
              "    - {name: idle, when: listen.backlog == 0 and pool.cpu < 20%, for: 1s, scale: -1}\n")
    c, port, _ = serve_pool(corral, tmp_path, "--ready-after", 0, "--delay", 100,
                            workers="{min: 1, max: 3}", extra="sample: {interval: 200ms}\n" + policy)
    c.started(1)
    load = Load(port, clients=12)
    try:
        c.log.wait(r"scale 1 -> 2 \(rule waiting")
    finally:
        load.stop()
    assert load.failed == []
    c.log.wait(r"scale \d -> \d \(rule idle: .*listen.backlog 0")
    c.signal(15)
    assert c.wait() == 0


def test_scale_in_lets_requests_in_hand_finish(corral, tmp_path):
    """Scaling in sends stop_signal to a worker in the middle of a request:
    it answers, then exits, and no client sees a failure."""
    never = "policy:\n  rules:\n    - {name: never, when: pool.size > 100, scale: +1}\n"
    c, port, _ = serve_pool(corral, tmp_path, "--ready-after", 0, "--delay", 500,
                            workers="{min: 1, max: 2, initial: 2}", extra=never)
    pids = c.started(2)
    for _ in pids:
        c.log.wait(r"is ready")
    load = Load(port, clients=3)
    try:
        deadline = time.monotonic() + TIMEOUT
        while load.ok < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        c.signal(signal.SIGTTOU)
        c.log.wait(r"scale 2 -> 1")
        m = c.log.wait(r"worker (\d) \(pid (\d+)\) (.*) after")
        assert m[3] == "exited with status 0", m[0]
        assert int(m[2]) in pids.values()
        done = load.ok
        while load.ok < done + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        load.stop()
    assert load.failed == [], load.failed[:5]
    c.out.wait(rf"term {m[2]}")
    c.signal(15)
    assert c.wait() == 0


def test_check_warns_of_listen_backlog_without_listen(tmp_path):
    from conftest import CORRAL
    path = tmp_path / "c.yaml"
    path.write_text("command: [true]\npolicy:\n  rules:\n    - {name: w, when: listen.backlog > 0, scale: +1}\n")
    r = subprocess.run([CORRAL, "check", "-c", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "rule 'w' reads listen.backlog, but there is no 'listen'" in r.stderr, r.stderr


@pytest.mark.skipif(not shutil.which("valgrind"), reason="valgrind is not installed")
@pytest.mark.skipif(os.environ.get("CORRAL_SANITIZED") == "1", reason="a sanitizer build cannot run under valgrind")
def test_server_pool_under_valgrind(corral, tmp_path):
    """Sockets, notify endpoints, a rolling replacement that waits for READY=1
    and a stop: no leak, no invalid access (valgrind runs the spawn's
    CLONE_VFORK child as a fork, and has no pidfds)."""
    port = free_port()
    path = tmp_path / "c.yaml"
    write_config(path, task("serve", "--ready-after", 0, "--watchdog", 50), port,
                 "workers: {min: 2, max: 2, watchdog: 5s}\n")
    vg_log = tmp_path / "valgrind.log"
    c = corral("run", "--metrics", "127.0.0.1:0", "-c", str(path),
               corral_prefix=["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect",
                              "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99",
                              f"--log-file={vg_log}"])
    old = c.started(2)
    for _ in old:
        c.log.wait(r"is ready")
    assert get(port)[0] == 200
    write_config(path, task("serve", "--ready-after", 0, "--status", "new"), port, "workers: {min: 2, max: 2}\n")
    c.signal(signal.SIGHUP)
    for pid in old.values():
        assert wait_gone(pid, TIMEOUT * 3)
    assert get(port)[0] == 200
    c.signal(signal.SIGTERM)
    assert c.wait(timeout=120) == 0, vg_log.read_text()
    report = vg_log.read_text()
    assert re.search(r"ERROR SUMMARY: 0 errors", report), report
    assert "definitely lost: 0 bytes" in report or "no leaks are possible" in report, report


def test_backlog_counts_tcp_and_unix_queues(corral, tmp_path):
    """Connections nobody accepts (the only worker hangs from the start)
    wait in the queues: listen.backlog is their exact sum, TCP (TCP_INFO)
    and unix (sock_diag) alike."""
    hang = tmp_path / "hang"
    hang.touch()
    port, sock = free_port(), tmp_path / "app.sock"
    (tmp_path / "c.yaml").write_text(
        f'command: {json.dumps(task("serve", "--hang-when", hang))}\n'
        f'listen: ["127.0.0.1:{port}", "unix:{sock}"]\n'
        "workers: {min: 1, max: 1}\nsample: {interval: 100ms}\n")
    c = corral("run", "-c", str(tmp_path / "c.yaml"))
    c.started(1)
    clients = []
    try:
        for _ in range(3):
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT))
        for _ in range(2):
            s = socket.socket(socket.AF_UNIX)
            clients.append(s)
            s.connect(str(sock))
        await_metric(c.metrics_port(), "corral_listen_backlog", "", 5)
        text = http_get(c.metrics_port(), "/metrics")[1]
        assert metric(text, "corral_signal", '{name="listen.backlog"}') == 5
    finally:
        for s in clients:
            s.close()
    c.signal(15)
    assert c.wait() == 0


def test_sockets_and_shared_segments_together(corral, tmp_path):
    """A worker gets its sockets at 3.. and its shared segments under their
    own numbers, above them (corral opens the sockets first)."""
    data = tmp_path / "data.bin"
    data.write_bytes(b"x" * 4096)
    port = free_port()
    path = tmp_path / "c.yaml"
    write_config(path, task("serve", "--ready-after", 0), port,
                 f"workers: {{min: 1, max: 1}}\nshared: {{table: {{path: {data}}}}}\n")
    c = corral("run", "-c", str(path))
    pid = c.started(1)[0]
    c.log.wait(r"is ready")
    env = environ_of(pid, "CORRAL_SHM_TABLE")
    fd = int(env["CORRAL_SHM_TABLE"])
    assert fd > 3
    assert os.readlink(f"/proc/{pid}/fd/3").startswith("socket:")
    assert os.readlink(f"/proc/{pid}/fd/{fd}").startswith("/memfd:")
    assert get(port)[0] == 200
    c.signal(15)
    assert c.wait() == 0
