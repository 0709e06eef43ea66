# SPDX-License-Identifier: MIT
"""The metrics endpoint of a running `corral run` under abuse: 1,000 idle
connections, malformed request lines, huge headers, clients sending one byte a
second, a client that never reads. Throughout, a well-behaved client gets
/metrics within 1 s, and the pool is untouched (no worker restarted).
Loopback only; every loop is bounded."""
import resource
import signal
import socket
import threading
import time

import pytest

from conftest import SLOWDOWN, TIMEOUT

# Seconds a well-behaved scrape may take (under valgrind, which runs corral
# 20-50 times slower, the limit scales: what it measures there is not speed).
SCRAPE_LIMIT = 1.0 * SLOWDOWN


@pytest.fixture(scope="module", autouse=True)
def enough_fds():
    """The test itself holds over 1,000 sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def pool(corral):
    """A pool of two sleepers serving metrics; checks at the end that it was never disturbed."""
    c = corral("run", "--min", "2", "--max", "2", "--", "sleep", "1h")
    port = c.metrics_port()
    workers = c.started(2)
    await_first_sample(port)
    yield c, port
    assert c.proc.poll() is None, "corral died:\n" + c.log.text()
    assert c.children() == sorted(workers.values())
    c.signal(signal.SIGTERM)
    assert c.wait() == 0
    log = c.log.text()
    assert "restarting" not in log and len(log.split("started (pid")) == 3, log


def get(port, path="/metrics", timeout=SCRAPE_LIMIT):
    """One well-behaved GET on a new connection: (status, seconds taken)."""
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), time.monotonic() - began


def await_first_sample(port):
    deadline = time.monotonic() + TIMEOUT
    while get(port, timeout=TIMEOUT)[0] != 200:
        assert time.monotonic() < deadline, "no sample published"
        time.sleep(0.05)


def assert_scrape_is_quick(port):
    try:
        status, took = get(port)
    except socket.timeout:
        raise AssertionError(f"/metrics took more than {SCRAPE_LIMIT}s") from None
    assert status == 200 and took < SCRAPE_LIMIT, (status, took)


def answer(sock, timeout):
    """What the server does with a request: its status, or "closed" when it
    closed the connection without an answer, or "silent" after timeout."""
    sock.settimeout(timeout)
    data = b""
    try:
        while len(data) < 65536 and (chunk := sock.recv(65536)):
            data += chunk
    except socket.timeout:
        if not data:
            return "silent"
    except ConnectionResetError:
        pass
    if not data.startswith(b"HTTP/1."):
        return "closed"
    return int(data.split(b" ", 2)[1])


def test_thousand_idle_connections_do_not_starve_a_scrape(pool):
    c, port = pool
    idle = []
    try:
        for _ in range(1000):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        for _ in range(5):
            assert_scrape_is_quick(port)
        # Half of them send a partial request and stay.
        for s in idle[::2]:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHo")
        for _ in range(5):
            assert_scrape_is_quick(port)
    finally:
        for s in idle:
            s.close()
    assert_scrape_is_quick(port)


MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET /metrics\r\n\r\n",
    b"GET /metrics HTTP/9.9\r\n\r\n",
    b"GET /metrics HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    b"GET  /metrics  HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x00\x01\x02\xff\xfe\r\n\r\n",
    b"GET /\x00metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n",
    b"POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
    b"\r\n" * 10_000,
]
# RFC 9112 section 2.2: a recipient MAY take a bare LF for CRLF. This one
# form is well-formed but lenient, and must be served like any scrape.
LENIENT = b"GET /metrics HTTP/1.1\nHost: x\n\n"


def test_malformed_requests_get_an_error_or_a_close(pool):
    """All at once, each on its own connection: every malformed one is
    answered with an error or closed, at the latest by the server's 5 s idle
    timeout; never with a 200. The lenient form (bare LF) is served."""
    c, port = pool
    conns = []
    for request_bytes in [*MALFORMED, LENIENT]:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            s.sendall(request_bytes)
        except (BrokenPipeError, ConnectionResetError):
            pass    # the server stopped reading: also a refusal
        conns.append(s)
    outcomes = [None] * len(conns)

    def collect(i):
        outcomes[i] = answer(conns[i], timeout=8.0)

    threads = [threading.Thread(target=collect, args=(i,)) for i in range(len(conns))]
    for t in threads:
        t.start()
    assert_scrape_is_quick(port)
    for t in threads:
        t.join(TIMEOUT)
    for s in conns:
        s.close()
    for request_bytes, outcome in zip(MALFORMED, outcomes):
        assert outcome == "closed" or (isinstance(outcome, int) and outcome >= 400), \
            (request_bytes[:60], outcome)
    assert outcomes[-1] == 200, (LENIENT, outcomes[-1])
    assert_scrape_is_quick(port)


@pytest.mark.parametrize("headers", [
    b"X-Big: " + b"a" * 1_000_000 + b"\r\n",
    b"".join(b"X-%d: v\r\n" % i for i in range(20_000)),
    b"Cookie: " + b"c=" * 200_000 + b"\r\n",
], ids=["one-megabyte-header", "twenty-thousand-headers", "huge-cookie"])
def test_huge_headers_are_refused(pool, headers):
    c, port = pool
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        status = answer(s, timeout=8.0)
    assert status == "closed" or (isinstance(status, int) and status >= 400), status
    assert_scrape_is_quick(port)


def test_slow_clients_do_not_block_scrapes(pool):
    c, port = pool
    request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    stop = threading.Event()
    sent = []

    def dribble():
        # One byte a second (the pacing is the point, not a synchronisation), for at most 4 s.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            for b in request[:4]:
                if stop.is_set():
                    break
                s.sendall(bytes([b]))
                sent.append(b)
                stop.wait(1.0)

    threads = [threading.Thread(target=dribble) for _ in range(5)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 3.5
        scrapes = 0
        while time.monotonic() < deadline:
            assert_scrape_is_quick(port)
            scrapes += 1
        assert scrapes >= 3 and len(sent) >= 10
    finally:
        stop.set()
        for t in threads:
            t.join(10)


def test_client_that_never_reads(pool):
    c, port = pool
    # Pipelined requests whose answers (megabytes) the client never reads: the
    # server's writes to it block; other clients must not notice.
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    try:
        request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
        pushed = 0
        deadline = time.monotonic() + 2.0
        while pushed < 2000 * len(request) and time.monotonic() < deadline:
            try:
                pushed += s.send(request * 100)
            except BlockingIOError:
                break   # both directions are full: the server is stuck on us
        for _ in range(5):
            assert_scrape_is_quick(port)
    finally:
        s.close()
    assert_scrape_is_quick(port)
