# SPDX-License-Identifier: MIT
"""The work queue (--tasks redis://...): many corrals drain one Redis stream.

A real redis-server (Debian's) runs on a free loopback port for the module,
with a password, no persistence. What is asserted is what a user of the queue
sees in Redis afterwards: every entry acknowledged, nothing pending, failed
entries in STREAM:dead, and the tasks' output.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import TIMEOUT, Stream, http_get, metric, task

REDIS = shutil.which("redis-server")
PASSWORD = "s3cret"


class Redis:
    """A minimal RESP client: enough to inspect streams from the tests."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""
        self("AUTH", PASSWORD)

    def _line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            assert data, "redis closed the connection"
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            data = self.sock.recv(65536)
            assert data, "redis closed the connection"
            self.buf += data
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise AssertionError(f"unexpected reply {line!r}")

    def __call__(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def group(self, stream, name="corral"):
        for g in self("XINFO", "GROUPS", stream):
            d = dict(zip(g[::2], g[1::2]))
            if d["name"] == name:
                return d
        raise AssertionError(f"no group {name} on {stream}")

    def entries(self, stream):
        return {e[0]: dict(zip(e[1][::2], e[1][1::2])) for e in self("XRANGE", stream, "-", "+")}


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    if not REDIS:
        pytest.skip("redis-server is not installed (apt install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--requirepass", PASSWORD, "--dir", str(d), "--logfile", ""],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = Stream(proc.stdout)
    log.wait(r"Ready to accept connections")
    yield port
    proc.terminate()
    proc.wait(TIMEOUT)


@pytest.fixture
def redis(redis_port):
    return Redis(redis_port)


@pytest.fixture
def url(redis_port, request):
    """A stream of this test's own."""
    return f"redis://:{PASSWORD}@127.0.0.1:{redis_port}/{request.node.name}"


CORRAL = os.environ.get("CORRAL")
_consumers = []


@pytest.fixture(autouse=True)
def no_leftover_consumers():
    """A test that failed halfway leaves no corral polling a queue behind it."""
    yield
    while _consumers:
        p = _consumers.pop()
        if p.poll() is None:
            p.kill()
            p.wait()


def run(*args, **kwargs):
    return subprocess.run([CORRAL, *args], capture_output=True, text=True, timeout=TIMEOUT * 3, **kwargs)


def consumer(url, *args, cmd, name, lease="5m", until_empty=True, metrics="none", results=None):
    """A corral consuming url as consumer `name`, its stdout and stderr read by threads."""
    argv = [CORRAL, "run", "--metrics", metrics, "-c", "/dev/stdin", *(["--until-empty"] if until_empty else []),
            *args, "--", *cmd]
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdin.write(f"tasks:\n  from: '{url}?consumer={name}'\n  lease: {lease}\n  max_deliveries: 2\n" +
                  (f"  results: '{results}'\n" if results else ""))
    p.stdin.close()
    p.out, p.log = Stream(p.stdout), Stream(p.stderr)
    _consumers.append(p)
    return p


def ended(p, timeout=TIMEOUT):
    """A consumer's exit status, once its output and log are read to the end."""
    try:
        rc = p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        p.log.drain()
        raise AssertionError(f"{p.args} did not end within {timeout} s; its log:\n{p.log.text()}")
    p.out.drain()
    p.log.drain()
    return rc


def enqueue(url, lines):
    r = run("enqueue", url, input="".join(f"{line}\n" for line in lines))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(len(lines))


# Prints the entry id and the task: `env -u LINE` only takes the line somewhere harmless.
PRINT_ID = ["env", "-u", "{}", "printenv", "CORRAL_TASK_ID", "CORRAL_TASK"]


def done_by(p):
    """{entry id: task} from a consumer's output (two lines per task)."""
    p.out.drain()
    lines = p.out.lines
    return dict(zip(lines[::2], lines[1::2]))


def test_enqueue_then_drain_sees_ids_and_results(redis, url):
    """Each task sees its entry's id; the results stream gets one entry per
    task with its id, task, exit status, runtime and stdout."""
    stream = url.rsplit("/", 1)[1]
    enqueue(url, [f"t{i}" for i in range(50)])
    p = consumer(url, cmd=PRINT_ID, name="one", results=url + ":results")
    assert ended(p) == 0, p.log.text()
    entries = redis.entries(stream)
    assert done_by(p) == {i: e["task"] for i, e in entries.items()}
    g = redis.group(stream)
    assert (g["pending"], g["lag"]) == (0, 0)
    results = list(redis.entries(stream + ":results").values())
    assert sorted(r["id"] for r in results) == sorted(entries)
    for r in results:
        assert r["task"] == entries[r["id"]]["task"] and r["exit"] == "0"
        assert r["stdout"] == f"{r['id']}\n{r['task']}\n"
        assert 0 <= float(r["runtime"]) < TIMEOUT


def test_three_consumers_one_killed(redis, url):
    """One of three consumers is SIGKILLed midway and not restarted: the others
    take its entries once its lease expired, and every entry is done."""
    stream = url.rsplit("/", 1)[1]
    n = 2000
    enqueue(url, [f"line {i}" for i in range(n)])
    ids = set(redis.entries(stream))
    cs = [consumer(url, "--max", "4", cmd=PRINT_ID, name=f"c{k}", lease="1s") for k in range(3)]
    victim = cs[0]
    victim.out.wait(r"^\d+-\d+$")          # it is working
    victim.kill()
    victim.wait(TIMEOUT)
    held = [e[0] for e in redis("XPENDING", stream, "corral", "-", "+", n, "c0")]
    for c in cs[1:]:
        assert ended(c, TIMEOUT * 3) == 0, c.log.text()
    survivors = {}
    for c in cs[1:]:
        survivors.update(done_by(c))
    done = set(survivors) | set(done_by(victim))
    assert done == ids
    assert held, "the killed consumer held no entries: the test did not test the claim"
    assert set(held) <= set(survivors)     # its in-flight entries were re-run by the others
    g = redis.group(stream)
    assert (g["pending"], g["lag"]) == (0, 0)
    assert redis("XLEN", stream + ":dead") == 0


def test_poison_entry_goes_to_dead_stream(redis, url):
    stream = url.rsplit("/", 1)[1]
    enqueue(url, ["ok1", "poison", "ok2"])
    # `test LINE != poison` fails for the poison entry only.
    p = consumer(url, cmd=["test", "{}", "!=", "poison"], name="p", lease="200ms")
    assert ended(p) == 1, p.log.text()
    dead = list(redis.entries(stream + ":dead").values())
    poison_id = [i for i, e in redis.entries(stream).items() if e["task"] == "poison"][0]
    assert dead == [{"task": "poison", "exit": "1", "consumer": "p", "id": poison_id}]
    g = redis.group(stream)
    assert (g["pending"], g["lag"]) == (0, 0)
    assert "moved to " + stream + ":dead" in p.log.text()
    # Its first failure handed it back (unless a claim counted a delivery first).
    assert re.search(r"2 done, 1 dead, [01] handed back", p.log.text()), p.log.text()


def test_a_line_too_long_to_run_goes_to_dead_stream_at_once(redis, url):
    """An entry whose task no execve() can take is not handed back to be
    delivered again (it would never run anywhere): it is dead on its first
    delivery, with the reason, and acknowledged."""
    stream = url.rsplit("/", 1)[1]
    enqueue(url, ["ok1"])
    big = "x" * 300000      # past execve()'s 128 KiB for one argument
    big_id = redis("XADD", stream, "*", "task", big)
    enqueue(url, ["ok2"])
    p = consumer(url, cmd=["test", "{}", "!=", "poison"], name="big", lease="200ms")
    assert ended(p) == 1, p.log.text()
    dead = list(redis.entries(stream + ":dead").values())
    assert dead == [{"task": big, "exit": "1", "consumer": "big", "id": big_id, "reason": "line too long"}]
    g = redis.group(stream)
    assert (g["pending"], g["lag"]) == (0, 0)
    assert f"entry {big_id} cannot run (line too long), moved to {stream}:dead" in p.log.text()


def test_a_results_stream_must_be_on_the_queue_server(tmp_path, redis_port, url):
    f = tmp_path / "c.yaml"
    f.write_text(f"command: [true]\ntasks:\n  from: '{url}'\n  results: 'redis://127.0.0.1:{redis_port + 1}/r'\n")
    r = run("check", "-c", str(f))
    assert r.returncode == 2 and f"{f}:4:12: tasks.results: " in r.stderr, r.stderr
    assert "is not the server of tasks.from" in r.stderr, r.stderr
    # A path is a JSON-lines file (--results FILE), for a queue's tasks too.
    f.write_text(f"command: [true]\ntasks:\n  from: '{url}'\n  results: out.jsonl\n")
    r = run("check", "-c", str(f))
    assert r.returncode == 0, r.stderr


def test_term_hands_back_at_once(redis, url):
    """Entries of a consumer that got TERM are taken by another at once, not
    after the lease (60s here, longer than the test waits)."""
    stream = url.rsplit("/", 1)[1]
    enqueue(url, ["30"] * 6)
    a = consumer(url, "--max", "2", "-v", cmd=["sleep"], name="a", lease="60s", until_empty=False)
    a.log.wait(r"task 2 started")
    a.send_signal(signal.SIGTERM)
    assert ended(a) == 0, a.log.text()
    g = redis.group(stream)
    held = g["pending"]
    assert held >= 2 and held + g["lag"] == 6     # what it held is handed back, not acknowledged
    # Its summary counts entries: a stopped task did not fail, and a queue is
    # never resumed.
    assert f"0 done, 0 dead, {held} handed back" in a.log.text(), a.log.text()
    assert not re.search(r"\d+ failed|--resume", a.log.text()), a.log.text()
    b = consumer(url, "--max", "8", cmd=["true"], name="b", lease="60s")
    assert ended(b) == 0, b.log.text()
    g = redis.group(stream)
    assert (g["pending"], g["lag"]) == (0, 0)


def test_errors_are_exit_2(redis, redis_port, url):
    redis("SET", "plain", "1")
    base = f"127.0.0.1:{redis_port}"
    cases = [
        (f"redis://:{PASSWORD}@{base}", "no /STREAM"),
        (f"redis://:{PASSWORD}@{base}/plain", "'plain' is a string, not a stream"),
        (f"redis://:wrong@{base}/q", "refused the password"),
        (f"redis://{base}/q", "NOAUTH"),
    ]
    for u, says in cases:
        for argv in (["run", "--metrics", "none", "--tasks", u, "--", "true"], ["enqueue", u]):
            r = run(*argv, input="")
            assert r.returncode == 2, (argv, r.stderr)
            assert says in r.stderr, (argv, r.stderr)
            assert ":wrong@" not in r.stderr   # never the password itself
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    r = run("run", "--metrics", "none", "--tasks", f"redis://127.0.0.1:{free}/q", "--", "true")
    assert r.returncode == 2 and "cannot connect to Redis" in r.stderr, r.stderr


def test_lag_and_pending_are_signals_and_metrics(redis, url):
    """With one task at a time, the group's pending entries (the ones taken)
    and lag (the ones not yet delivered) show in /metrics, as corral_queue_*
    and as the policy signals queue.lag and queue.pending."""
    enqueue(url, ["30"] * 40)
    p = consumer(url, "--max", "1", cmd=["sleep"], name="m", until_empty=False, metrics="127.0.0.1:0")
    # It takes what its queue has room for (a few times --max), the rest
    # stays undelivered; the figures come once XINFO GROUPS was read.
    await_lag_and_pending(p, 40)


def await_lag_and_pending(p, n, also=lambda text, lag: True):
    """Waits until /metrics shows the n entries as lag + pending (some of
    each) and the signals queue.lag and queue.pending equal them (they are
    the controller's last sample: equal once the reads settled), and `also`
    holds; then stops the consumer."""
    port = int(p.log.wait(r"metrics on port (\d+)")[1])
    deadline = time.monotonic() + TIMEOUT
    while True:
        text = http_get(port, "/metrics")[1]
        lag, pending = metric(text, "corral_queue_lag"), metric(text, "corral_queue_pending")
        if lag is not None and pending is not None and lag + pending == n and 1 <= pending < n and \
           metric(text, "corral_signal", '{name="queue.lag"}') == lag and \
           metric(text, "corral_signal", '{name="queue.pending"}') == pending and also(text, lag):
            break
        assert time.monotonic() < deadline, text
        time.sleep(0.05)
    assert "corral_queue_dead_total 0" in text
    p.send_signal(signal.SIGTERM)
    assert ended(p) == 0, p.log.text()


@pytest.mark.parametrize("env, lines", [
    ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "3"}, ["c", "f"]),
    ({"AWS_BATCH_JOB_ARRAY_INDEX": "0", "AWS_BATCH_JOB_ARRAY_SIZE": "2"}, ["a", "c", "e"]),
    ({"CLOUD_RUN_TASK_INDEX": "1", "CLOUD_RUN_TASK_COUNT": "2"}, ["b", "d", "f"]),
    # Kubernetes comes first when two are set.
    ({"JOB_COMPLETION_INDEX": "2", "CORRAL_SHARDS": "3", "CLOUD_RUN_TASK_INDEX": "0", "CLOUD_RUN_TASK_COUNT": "2"},
     ["c", "f"]),
])
def test_shard_env_reads_array_job_schedulers(tmp_path, env, lines):
    """Batch arrays of Slurm, AWS Batch and Cloud Run shard like an Indexed Job."""
    (tmp_path / "six").write_text("a\nb\nc\nd\ne\nf\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "AWS_BATCH_", "CLOUD_RUN_"))
            and k not in ("JOB_COMPLETION_INDEX", "CORRAL_SHARDS")}
    r = run("run", "--metrics", "none", "-q", "--tasks", str(tmp_path / "six"), "--shard", "env", "--", "echo",
            env={**base, **env})
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == lines


def test_shard_env_names_what_is_missing():
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "AWS_BATCH_", "CLOUD_RUN_"))
            and k not in ("JOB_COMPLETION_INDEX", "CORRAL_SHARDS")}
    r = run("run", "--metrics", "none", "--tasks", "-", "--shard", "env", "--", "true",
            env={**base, "CLOUD_RUN_TASK_INDEX": "1"})
    assert r.returncode == 2 and "CLOUD_RUN_TASK_COUNT is not set" in r.stderr, r.stderr
    r = run("run", "--metrics", "none", "--tasks", "-", "--shard", "env", "--", "true", env=base)
    assert r.returncode == 2 and "SLURM_ARRAY_TASK_ID, AWS_BATCH_JOB_ARRAY_INDEX or CLOUD_RUN_TASK_INDEX" in r.stderr


def test_kubernetes_queue_manifests():
    """The queue Job drains with --until-empty, and KEDA watches the lag of the
    stream and group the consumers use."""
    yaml = pytest.importorskip("yaml", reason="python3-yaml is not installed (packaging/test-deps.sh installs it)")
    root = os.path.join(os.path.dirname(__file__), "..", "..", "packaging", "kubernetes")
    docs = {}
    for name in ("queue-job.yaml", "queue-keda.yaml"):
        with open(os.path.join(root, name)) as f:
            for doc in yaml.safe_load_all(f):
                docs[doc["kind"]] = doc
    job = docs["Job"]
    assert "completions" not in job["spec"]
    container, = job["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "run" and "--until-empty" in container["args"]
    consumer_args = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]
    for args in (container["args"], consumer_args):
        url = args[args.index("--tasks") + 1]
        r = run("run", "--tasks", url.replace("$(REDIS_PASSWORD)", "pw").replace("redis:6379", "127.0.0.1:1"),
                "--metrics", "none", "--", "true")
        assert "cannot connect to Redis at 127.0.0.1:1" in r.stderr, r.stderr   # the URL itself parses
    trigger, = docs["ScaledObject"]["spec"]["triggers"]
    assert trigger["type"] == "redis-streams"
    assert url.rsplit("/", 1)[1] == trigger["metadata"]["stream"]
    assert trigger["metadata"]["consumerGroup"] == "corral" and "lagCount" in trigger["metadata"]
    assert docs["ScaledObject"]["spec"]["scaleTargetRef"]["name"] == docs["Deployment"]["metadata"]["name"]


def test_redis_restart_mid_run(tmp_path, host="127.0.0.1"):
    """The server stops and comes back (its data in an append-only file): the
    consumer reconnects, its tasks go on, their acks follow, nothing is lost."""
    if not REDIS:
        pytest.skip("redis-server is not installed (apt install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def start():
        proc = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "yes", "--appendfsync", "always", "--requirepass", PASSWORD,
                                 "--dir", str(tmp_path), "--logfile", ""],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        Stream(proc.stdout).wait(r"Ready to accept connections")
        return proc

    server = start()
    try:
        url = f"redis://:{PASSWORD}@{host}:{port}/restart"
        n = 120
        enqueue(url, [f"r{i}" for i in range(n)])
        env = {**os.environ, "IO_TASK_MS": "20"}
        p = subprocess.Popen([CORRAL, "run", "--metrics", "none", "--max", "4", "--tasks", url, "--until-empty",
                              "--", task("io")[0]], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)
        p.out, p.log = Stream(p.stdout), Stream(p.stderr)
        _consumers.append(p)
        for _ in range(10):
            p.out.wait(r"^r\d+$")
        server.terminate()                 # a clean shutdown: the append-only file has everything
        server.wait(TIMEOUT)
        p.log.wait(r"Lost the connection to Redis")
        server = start()
        p.log.wait(r"Connected to Redis at .* again")
        assert ended(p, TIMEOUT * 3) == 0, p.log.text()
        assert sorted(set(p.out.lines)) == sorted(f"r{i}" for i in range(n))
        redis = Redis(port)
        g = redis.group("restart")
        assert (g["pending"], g["lag"]) == (0, 0)
        assert p.log.text().count("Lost the connection") == 1     # logged once
        assert "Failed to look up" not in p.log.text()
    finally:
        server.terminate()
        server.wait(TIMEOUT)


def test_password_stays_out_of_the_log(url):
    enqueue(url, ["x"])
    p = consumer(url, cmd=["true"], name="quiet")
    assert ended(p) == 0, p.log.text()
    assert PASSWORD not in p.log.text()
    assert ":***@" in p.log.text()


def test_a_consumer_restarted_under_its_name_takes_its_entries_at_once(redis, url):
    """A consumer SIGKILLed and started again with the same ?consumer= name
    (a StatefulSet pod, a systemd unit) runs what it held at once, not after
    the lease (60s, longer than the test waits)."""
    stream = url.rsplit("/", 1)[1]
    enqueue(url, [f"k{i}" for i in range(200)])
    a = consumer(url, "--max", "2", cmd=PRINT_ID, name="same", lease="60s")
    a.out.wait(r"^k\d+$")
    a.kill()
    a.wait(TIMEOUT)
    assert redis("XPENDING", stream, "corral", "-", "+", 1000, "same"), "it held nothing: nothing was tested"
    b = consumer(url, "--max", "8", cmd=PRINT_ID, name="same", lease="60s")
    assert ended(b) == 0, b.log.text()
    assert set(done_by(a).values()) | set(done_by(b).values()) == {f"k{i}" for i in range(200)}
    g = redis.group(stream)
    assert (g["pending"], g["lag"]) == (0, 0)


def test_batch_of_entries_per_invocation(redis, url):
    """--batch 5: one invocation takes up to 5 entries; it sees their ids in
    CORRAL_TASK_ID, and all of them are acknowledged when it succeeds."""
    stream = url.rsplit("/", 1)[1]
    enqueue(url, [f"b{i}" for i in range(23)])
    # "-u{}" stands once per line: env -ub0 -ub1 ... printenv CORRAL_TASK_ID
    p = consumer(url, "--batch", "5", "--max", "1", cmd=["env", "-u{}", "printenv", "CORRAL_TASK_ID"], name="batcher")
    assert ended(p) == 0, p.log.text()
    invocations = [line.split() for line in p.out.lines]
    assert all(1 <= len(ids) <= 5 for ids in invocations)
    assert sorted(i for ids in invocations for i in ids) == sorted(redis.entries(stream))
    assert max(len(ids) for ids in invocations) == 5
    g = redis.group(stream)
    assert (g["pending"], g["lag"]) == (0, 0)


def test_tasks_inherit_no_redis_socket(url):
    """Workers inherit fds 0-2 and nothing else: not corral's Redis connection."""
    enqueue(url, ["x", "y"])
    # ls opens /proc/self/fd itself: one fd above 2 is its own.
    p = consumer(url, cmd=["env", "-u", "{}", "ls", "/proc/self/fd"], name="fds")
    assert ended(p) == 0, p.log.text()
    fds = [int(line) for line in p.out.lines]
    assert sorted(fds) == [0, 0, 1, 1, 2, 2, 3, 3], fds


def test_redis_restart_reconnects_by_host_name(tmp_path):
    """The URL names the server by host name (localhost): each reconnect
    looks the name up again, off the loop, and the consumer finishes after the
    server restarts. (That a moved server is found at its new address is
    tests/unit/test_queue_redis.c's: localhost has one address here.)"""
    test_redis_restart_mid_run(tmp_path, host="localhost")


# Stream mode over a queue: each entry's task is one input line of a
# long-lived worker (tests/tasks/line_task.c answers "out-LINE").
LINE = task("line")


def stream_consumer(url, *args, cmd=LINE, **kwargs):
    return consumer(url, "--stream", "--restart-delay", "10ms", *args, cmd=cmd, **kwargs)


def test_stream_over_a_queue_answers_every_entry_once(redis, url):
    """Every entry is one line: answered once on stdout, acknowledged, and the
    run ends with --until-empty, exit 0."""
    stream = url.rsplit("/", 1)[1]
    n = 3000
    enqueue(url, [f"s{i}" for i in range(n)])
    p = stream_consumer(url, "--min", "2", "--max", "2", name="st")
    assert ended(p) == 0, p.log.text()
    assert sorted(p.out.lines) == sorted(f"out-s{i}" for i in range(n))
    g = redis.group(stream)
    assert (g["pending"], g["lag"]) == (0, 0)
    assert redis("XLEN", stream + ":dead") == 0
    assert f"{n} done, 0 dead, 0 handed back" in p.log.text(), p.log.text()


def test_stream_worker_killed_loses_no_entry(redis, url):
    """A worker SIGKILLed mid-run: its lines go to the other worker, every
    entry is answered exactly once and acknowledged."""
    stream = url.rsplit("/", 1)[1]
    n = 2000
    enqueue(url, [f"w{i}" for i in range(n)])
    p = stream_consumer(url, "--min", "2", "--max", "2", "--retries", "3", name="wk",
                        cmd=task("line", "--delay-us", "2000"))
    victim = int(p.log.wait(r"worker 0 started \(pid (\d+)\)")[1])
    p.out.wait(r"^out-w\d+$")
    os.kill(victim, signal.SIGKILL)
    assert ended(p) == 0, p.log.text()
    assert f"worker 0 (pid {victim}) was killed by signal KILL" in p.log.text()
    assert sorted(p.out.lines) == sorted(f"out-w{i}" for i in range(n))
    g = redis.group(stream)
    assert (g["pending"], g["lag"]) == (0, 0)


def test_stream_consumer_killed_loses_no_entry(redis, url):
    """A stream consumer SIGKILLed mid-run and not restarted: the other takes
    its entries once the lease expired; every entry is answered."""
    stream = url.rsplit("/", 1)[1]
    n = 2000
    enqueue(url, [f"k{i}" for i in range(n)])
    slow = task("line", "--delay-us", "2000")
    a = stream_consumer(url, "--max", "2", name="ka", lease="1s", cmd=slow)
    b = stream_consumer(url, "--max", "2", name="kb", lease="1s", cmd=slow)
    a.out.wait(r"^out-k\d+$")
    a.kill()
    a.wait(TIMEOUT)
    held = [e[0] for e in redis("XPENDING", stream, "corral", "-", "+", n, "ka")]
    assert ended(b, TIMEOUT * 3) == 0, b.log.text()
    a.out.drain()
    answered = set(a.out.lines) | set(b.out.lines)
    assert answered == {f"out-k{i}" for i in range(n)}
    assert held, "the killed consumer held no entries: the test did not test the claim"
    tasks = redis.entries(stream)
    assert {"out-" + tasks[i]["task"] for i in held} <= set(b.out.lines)
    g = redis.group(stream)
    assert (g["pending"], g["lag"]) == (0, 0)


def test_stream_given_up_line_goes_to_dead_stream(redis, url):
    """A line the stream gives up on (its worker died on it past --retries)
    gets its placeholder and counts as a failed delivery: handed back, given up
    again, then in STREAM:dead after max_deliveries (2); --until-empty exits 1."""
    stream = url.rsplit("/", 1)[1]
    enqueue(url, ["ok1", "poison", "ok2"])
    # A long lease: the hand-back is claimed at once all the same, and a late
    # renewal on a busy machine cannot add a delivery.
    p = stream_consumer(url, "--retries", "0", name="sp", lease="60s",
                        cmd=task("line", "--exit-on", "poison"))
    assert ended(p) == 1, p.log.text()
    poison_id = [i for i, e in redis.entries(stream).items() if e["task"] == "poison"][0]
    dead = list(redis.entries(stream + ":dead").values())
    assert dead == [{"task": "poison", "exit": "1", "consumer": "sp", "id": poison_id}]
    # One placeholder (tasks.failed_line: an empty line) per delivery.
    assert sorted(p.out.lines) == ["", "", "out-ok1", "out-ok2"]
    g = redis.group(stream)
    assert (g["pending"], g["lag"]) == (0, 0)
    assert "2 done, 1 dead" in p.log.text(), p.log.text()


def test_stream_results_stream_has_each_answer(redis, url):
    """tasks.results in stream mode: one results entry per entry, whose stdout
    is that entry's own answer line; the line given up (on each delivery, then
    dead) has the failed exit and no stdout; a long answer keeps its first
    64 KiB, as per-task mode's stdout. No line has a runtime of its own."""
    stream = url.rsplit("/", 1)[1]
    long = "L" * 70000
    enqueue(url, [f"r{i}" for i in range(500)] + ["poison", long])
    p = stream_consumer(url, "--min", "2", "--max", "2", "--retries", "0", name="sr", lease="60s",
                        results=url + ":results", cmd=task("line", "--exit-on", "poison"))
    assert ended(p) == 1, p.log.text()
    tasks = redis.entries(stream)
    results = list(redis.entries(stream + ":results").values())
    assert sorted(r["id"] for r in results) == sorted(tasks)
    for r in results:
        assert r["task"] == tasks[r["id"]]["task"]
        if r["task"] == "poison":
            assert (r["exit"], r["stdout"]) == ("1", ""), r
        elif r["task"] == long:
            assert (r["exit"], r["stdout"]) == ("0", f"out-{long}"[:64 * 1024]), r["exit"]
        else:
            assert (r["exit"], r["stdout"]) == ("0", f"out-{r['task']}\n"), r
        assert float(r["runtime"]) == 0, r


def test_stream_term_hands_back_at_once(redis, url):
    """TERM: the lines not sent to a worker go back at once, the one a hung
    worker holds once the stop gives up on it; another consumer takes them
    all without waiting for the lease (60s)."""
    stream = url.rsplit("/", 1)[1]
    enqueue(url, ["hang"] + [f"t{i}" for i in range(99)])
    a = stream_consumer(url, "--max", "1", "--stop-timeout", "1s", name="ta", lease="60s", until_empty=False,
                        cmd=task("line", "--hang-on", "hang"))
    a.log.wait(r"worker 0 started")
    deadline = time.monotonic() + TIMEOUT
    while redis.group(stream)["pending"] == 0:
        assert time.monotonic() < deadline, a.log.text()
        time.sleep(0.05)
    a.send_signal(signal.SIGTERM)
    assert ended(a) == 0, a.log.text()
    assert a.out.lines == []
    assert redis.group(stream)["pending"] > 0
    b = stream_consumer(url, "--max", "2", name="tb", lease="60s")
    assert ended(b) == 0, b.log.text()
    assert sorted(b.out.lines) == sorted(["out-hang"] + [f"out-t{i}" for i in range(99)])
    g = redis.group(stream)
    assert (g["pending"], g["lag"]) == (0, 0)


def test_stream_lag_and_pending_are_signals_and_metrics(redis, url):
    """In stream mode too: queue.lag and queue.pending as signals and metrics."""
    enqueue(url, [f"m{i}" for i in range(200)])
    p = stream_consumer(url, "--min", "1", "--max", "1", "--stop-timeout", "1s", name="sm", until_empty=False,
                        metrics="127.0.0.1:0",
                        cmd=task("line", "--hang-on", "m0"))
    await_lag_and_pending(p, 200, lambda text, lag: metric(text, "corral_signal", '{name="tasks.backlog"}') >= lag and
                          metric(text, "corral_tasks_pending") >= lag)
