# SPDX-License-Identifier: MIT
"""`corral sample`: the signals as a user and a script see them."""
import json
import os
import subprocess

import pytest

CORRAL = os.environ.get("CORRAL", "corral")
SIGNALS = [
    "cpu.busy", "cpu.core_max", "cpu.core_min", "cpu.idle_cores", "load1",
    "psi.cpu", "psi.memory", "psi.io", "mem.available", "pool.size", "pool.cpu",
    "tasks.backlog", "tasks.busy", "tasks.rate", "tasks.latency", "listen.backlog",
    "queue.lag", "queue.pending",
]


def sample_json(*args, prefix=()):
    out = subprocess.run([*prefix, CORRAL, "sample", "--json", *args],
                         capture_output=True, text=True, timeout=60, check=True)
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_json_lines_parse_and_carry_every_signal():
    samples = sample_json("-n", "2", "--interval", "200ms")
    assert len(samples) == 2
    for s in samples:
        assert set(s["signals"]) == set(SIGNALS)
        for name in ("cpu.busy", "cpu.core_max", "cpu.core_min", "mem.available"):
            assert 0 <= s["signals"][name] <= 100, name
        # The task layer fills these; without it they are unavailable, not 0.
        assert s["signals"]["tasks.rate"] is None
        assert s["signals"]["pool.size"] == 0
        assert s["capacity"] >= 1
        for c in s["cores"]:
            assert 0 <= c["busy"] <= 100


def test_taskset_one_cpu_is_one_usable_cpu():
    samples = sample_json("-n", "3", "--interval", "200ms", prefix=("taskset", "-c", "0"))
    assert len(samples) == 3
    for s in samples:
        assert s["capacity"] == 1
        assert s["affinity_cpus"] == 1
        assert [c["id"] for c in s["cores"]] == [0]
        assert s["signals"]["cpu.idle_cores"] in (0, 1)


def test_text_output_marks_unavailable_signals():
    out = subprocess.run([CORRAL, "sample", "-n", "1", "--interval", "100ms"],
                         capture_output=True, text=True, timeout=60, check=True)
    lines = out.stdout.splitlines()
    assert len(lines) == 1      # no bar row on a pipe
    for name in SIGNALS:
        assert f"{name}=" in lines[0]
    assert "tasks.rate=n/a" in lines[0]


@pytest.mark.parametrize("args", [
    ["-n", "0"], ["-n", "x"], ["--interval", "0"], ["--interval", "5"],
    ["--bogus"], ["extra"], ["-n"],
])
def test_bad_arguments_exit_2_with_reason_and_usage(args):
    out = subprocess.run([CORRAL, "sample", *args], capture_output=True, text=True, timeout=10)
    assert out.returncode == 2
    assert out.stderr.startswith("corral sample: ")
    assert "Usage: corral sample" in out.stderr
    assert out.stdout == ""


def test_help():
    out = subprocess.run([CORRAL, "sample", "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    assert out.stdout.startswith("Usage: corral sample")
