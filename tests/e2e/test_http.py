# SPDX-License-Identifier: MIT
"""The metrics endpoint end to end: serve-snapshot (tests/metrics/serve_snapshot.c)
serves a fixed snapshot through metrics/http.c; these tests scrape it, validate the
text with promtool, and drive `corral status` against it. No sleeps: the helper
answers each stdin command with a line once it is done."""
import http.client
import json
import os
import shutil
import socket
import subprocess
import threading

import pytest

SERVE = os.environ.get("CORRAL_SERVE_SNAPSHOT")
CORRAL = os.environ.get("CORRAL")

pytestmark = pytest.mark.skipif(not SERVE, reason="CORRAL_SERVE_SNAPSHOT is not set (run through meson test)")

TRICKY_RULE = 'a"b\\c'


class Server:
    def __init__(self, listen="127.0.0.1:0"):
        self.proc = subprocess.Popen([SERVE, listen], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("serve-snapshot failed: " + self.proc.stderr.read())
        self.port = int(line)
        self.host = "::1" if listen.startswith("[") else "127.0.0.1"

    @property
    def url(self):
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "http://%s:%d" % (host, self.port)

    def command(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        assert answer == "ok", answer

    def request(self, method, path, body=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=body)
            resp = conn.getresponse()
            return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), resp.read()
        finally:
            conn.close()

    def close(self):
        self.proc.stdin.close()
        assert self.proc.wait(timeout=10) == 0
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def test_metrics_validates_with_promtool(server):
    status, headers, body = server.request("GET", "/metrics")
    assert status == 200
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = body.decode()
    assert 'corral_scale_events_total{direction="up",rule="a\\"b\\\\c"} 2\n' in text
    assert "# TYPE corral_task_duration_seconds histogram\n" in text
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool not installed (Debian package 'prometheus'); text not validated")
    check = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=60)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    assert check.stdout == b"" and check.stderr == b""


def test_head_has_headers_and_no_body(server):
    _, _, body = server.request("GET", "/metrics")
    for path in ("/metrics", "/healthz", "/status"):
        status, headers, head_body = server.request("HEAD", path)
        assert status == 200
        assert head_body == b""
    status, headers, _ = server.request("HEAD", "/metrics")
    assert int(headers["content-length"]) == len(body)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_get_405(server, method):
    status, headers, _ = server.request(method, "/metrics", body=b"x=1" if method in ("POST", "PUT") else None)
    assert status == 405
    assert headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", ["/", "/metric", "/metrics/", "/metrics/x", "/healthz/", "/status.json"])
def test_other_paths_get_404(server, path):
    status, _, _ = server.request("GET", path)
    assert status == 404


def test_connection_is_kept_alive(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for path in ("/metrics", "/healthz", "/status", "/metrics"):
            conn.request("GET", path)
            resp = conn.getresponse()
            assert resp.status == 200
            assert resp.getheader("connection") != "close"
            resp.read()
            sock = conn.sock
            assert sock is not None
    finally:
        conn.close()


def test_get_with_a_body_is_answered(server):
    status, _, body = server.request("GET", "/healthz", body=b"ignored")
    assert status == 200 and body.startswith(b"ok:")


def test_query_string_is_ignored(server):
    status, _, _ = server.request("GET", "/metrics?name[]=x")
    assert status == 200


def test_healthz_follows_the_published_health(server):
    status, headers, body = server.request("GET", "/healthz")
    assert status == 200
    assert body.decode().startswith("ok:") and body.decode().count("\n") == 1
    server.command("crash-loop")
    status, _, body = server.request("GET", "/healthz")
    assert status == 503
    assert "crash loop" in body.decode() and body.decode().count("\n") == 1
    _, _, metrics = server.request("GET", "/metrics")
    assert b"\ncorral_crash_loop 1\n" in metrics
    server.command("healthy")
    status, _, _ = server.request("GET", "/healthz")
    assert status == 200


def test_status_is_json(server):
    status, headers, body = server.request("GET", "/status")
    assert status == 200
    assert headers["content-type"] == "application/json"
    doc = json.loads(body)
    assert doc["pool"]["running"] == 2
    assert [w["pid"] for w in doc["workers"]] == [4242, 4243, 4250]
    assert doc["signals"]["cpu.busy"] == 63.5 and doc["signals"]["psi.cpu"] is None
    assert doc["rules"][2]["name"] == TRICKY_RULE
    assert doc["last_decision"]["rule"] == "saturated"


def test_idle_connections_do_not_starve_a_scrape(server):
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(64)]
    try:
        status, _, _ = server.request("GET", "/metrics")
        assert status == 200
    finally:
        for s in idle:
            s.close()


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6():
    s = Server("[::1]:0")
    try:
        assert s.port > 0
        status, _, body = s.request("GET", "/metrics")
        assert status == 200 and b"corral_build_info" in body
    finally:
        s.close()


def test_port_in_use_is_a_clear_error():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([SERVE, "127.0.0.1:%d" % port], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=10)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr == "cannot listen on 127.0.0.1:%d: Address already in use\n" % port


def test_textfile_is_never_seen_half_written(server, tmp_path):
    path = tmp_path / "corral.prom"
    server.command("textfile %s 1" % path)
    first = path.read_bytes()
    server.command("textfile %s 2" % path)
    second = path.read_bytes()
    assert first != second and first.endswith(b"\n") and second.endswith(b"\n")

    seen = []
    done = threading.Event()

    def reader():
        while not done.is_set():
            seen.append(path.read_bytes())

    t = threading.Thread(target=reader)
    t.start()
    try:
        # 500 rewrites against a reader in a tight loop (3,000 took 30 s on a
        # busy machine, and each rewrite is as likely as the next to be torn).
        server.command("textfile %s 500" % path)
    finally:
        done.set()
        t.join()
    assert seen
    torn = [s for s in seen if s not in (first, second)]
    assert not torn, "%d of %d reads saw a partial file" % (len(torn), len(seen))
    assert [p.name for p in tmp_path.iterdir()] == ["corral.prom"]


needs_corral = pytest.mark.skipif(not CORRAL, reason="CORRAL is not set (run through meson test)")


@needs_corral
def test_corral_status_prints_a_table(server):
    r = subprocess.run([CORRAL, "status", "--url", server.url], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for expected in ("ID", "PID", "STATE", "CPU", "RSS", "TASKS", "RESTARTS", "4243", "stopping", "99.9%",
                     "12.0M", "saturated", TRICKY_RULE, "holding", "last decision: 1 -> 2 by saturated"):
        assert expected in out, expected
    signal_lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert "unavailable" in signal_lines["psi.cpu"]
    assert "63.5%" in signal_lines["cpu.busy"]


@needs_corral
def test_corral_status_json_passes_through(server):
    r = subprocess.run([CORRAL, "status", "--json", "--url", server.url + "/"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    _, _, body = server.request("GET", "/status")
    assert json.loads(r.stdout) == json.loads(body)


@needs_corral
def test_corral_status_unreachable():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens there now.
    url = "http://127.0.0.1:%d" % port
    r = subprocess.run([CORRAL, "status", "--url", url], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.startswith("corral status: cannot reach %s/status: " % url)
    assert r.stdout == ""


@needs_corral
def test_corral_status_not_corral(server):
    r = subprocess.run([CORRAL, "status", "--url", server.url + "/metrics"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2
    assert "answered HTTP 404" in r.stderr


@needs_corral
def test_corral_status_usage():
    r = subprocess.run([CORRAL, "status", "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "--url URL" in r.stdout
    r = subprocess.run([CORRAL, "status", "--bogus"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
