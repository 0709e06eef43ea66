# SPDX-License-Identifier: MIT
"""Decisions with their reasons at the default verbosity: each change of size,
when the pool would grow but something holds it back, one line saying what,
logged when that situation starts, not every sample; and once per run, what
growing waits for.

The holds are forced by the policy (a guard that can never hold, a max the
rule asks beyond, a demand no sleeping worker meets), not by the machine's
load."""
import re
import signal

import pytest

from conftest import TIMEOUT

SAMPLES = 20


def write_policy(path, max, when, scale="+1", name="grow"):
    path.write_text(
        "command: [sleep, '1000']\n"
        f"workers: {{min: 1, max: {max}, stop_timeout: 2s}}\n"
        "sample: {interval: 100ms}\n"
        "policy:\n"
        "  cooldown: {up: 0s, down: 0s}\n"
        "  rules:\n"
        f"    - {{name: {name}, when: '{when}', for: 0s, scale: {scale}}}\n")
    return str(path)


def await_samples(c, size, n=SAMPLES):
    """Awaits n decisions that kept the pool at size (the -v log has one per sample)."""
    for _ in range(n):
        c.log.wait(rf"steady at {size}:", timeout=TIMEOUT)


def stop(c):
    c.signal(signal.SIGTERM)
    assert c.wait() == 0
    return c.log.text()


# cpu.busy < 0% never holds: the demand (pool.size >= 1) does, and the guard
# holds the rule back on every sample.
NEVER = "pool.size >= 1 and cpu.busy < 0%"
GUARD_LINE = r"not growing: the machine is busy \(cpu\.busy \d+(\.\d+)?% >= 0%\), rule grow$"


def test_growth_held_back_by_a_guard_is_logged_once(corral, tmp_path):
    c = corral("run", "-v", "-c", write_policy(tmp_path / "c.yaml", 3, NEVER))
    c.started(1)
    await_samples(c, 1)
    log = stop(c)
    held = [l for l in log.splitlines() if "not growing" in l]
    assert len(held) == 1, log
    assert re.search(GUARD_LINE, held[0]), held
    assert "scale 1 -> 2" not in log


def test_growth_held_back_is_logged_at_the_default_verbosity(corral, tmp_path):
    c = corral("run", "-c", write_policy(tmp_path / "c.yaml", 3, NEVER))
    c.log.wait(GUARD_LINE)
    log = stop(c)
    assert "steady at" not in log, "the per-sample lines are for -v only"


def test_at_max_is_logged_once_after_the_change(corral, tmp_path):
    c = corral("run", "-v", "-c", write_policy(tmp_path / "c.yaml", 2, "pool.size >= 1"))
    c.log.wait(r"scale 1 -> 2 \(rule grow: pool\.size 1 for 0s\)$")
    await_samples(c, 2)
    log = stop(c)
    held = [l for l in log.splitlines() if "not growing" in l]
    assert len(held) == 1, log
    assert re.search(r"not growing: rule grow: pool\.size 2 for \S+; wants 3, at max 2$", held[0]), held
    assert log.index("scale 1 -> 2") < log.index(held[0])


def test_at_min_with_a_rule_shrinking_is_logged_once(corral, tmp_path):
    # A neighbour rule firing while the pool is at its minimum: it cannot give more back.
    c = corral("run", "-v", "-c", write_policy(tmp_path / "c.yaml", 3, "pool.size >= 1", scale="-1", name="shrink"))
    c.started(1)
    await_samples(c, 1)
    log = stop(c)
    held = [l for l in log.splitlines() if "not growing" in l]
    assert len(held) == 1, log
    assert re.search(r"not growing, holding at the minimum: rule shrink: pool\.size 1 for \S+; wants 0, at min 1$",
                     held[0]), held


# A worker that sleeps never uses 1000% of a core, however busy the machine is:
# the demand never holds, nothing holds the pool back, and it stays at 1.
WAITS = "pool.cpu > 1000%"
WAITS_LINE = r"not growing yet: rule grow waits for pool\.cpu > 1000% \(pool\.cpu \d+(\.\d+)?%\)$"


@pytest.mark.parametrize("max", [3, 1])
def test_what_growth_waits_for_is_logged_once_below_max(corral, tmp_path, max):
    """The same pool and samples at max 3 and at max 1: the first is the proof
    that the second's pool.cpu had values to tell."""
    c = corral("run", "-v", "-c", write_policy(tmp_path / "c.yaml", max, WAITS))
    c.started(1)
    await_samples(c, 1)
    log = stop(c)
    waits = [l for l in log.splitlines() if "waits for" in l]
    assert len(waits) == (1 if max > 1 else 0), log
    assert all(re.search(WAITS_LINE, l) for l in waits), waits
    assert "not growing:" not in log and "scale 1 -> 2" not in log


def test_what_growth_waits_for_is_logged_at_the_default_verbosity(corral, tmp_path):
    c = corral("run", "-c", write_policy(tmp_path / "c.yaml", 3, WAITS))
    c.log.wait(WAITS_LINE)
    stop(c)
