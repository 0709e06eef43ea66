# SPDX-License-Identifier: MIT
"""Suite 'machine': what depends on the machine's load and speed. These run
with `meson test --setup machine --suite machine` (tests/run runs them after
the counted suites, and bench/machine alone); they report and never fail a
run. Each says what it measured. What they exercise of corral's logic is
tested on captured fixtures in the counted suites: the sampler and placement
in unit/test_sampler_fixture.c, the seeker in unit/test_optimize.c.

  - the sampler sees a real burner on core 0 (needs core 1 mostly idle);
  - least-loaded placement avoids a core a burner keeps busy (needs an idle core);
  - the default batch seeker grows the pool well past the CPUs for tasks that
    wait (needs CPUs under 95% busy: it rightly never grows above that).
"""
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import PYTHON, TIMEOUT, http_get, metric
from test_optimize import settle, usable_cpus
from test_sample import sample_json
from test_scaling import SLEEPER, cpus_allowed, write_policy


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two usable CPUs")
def test_burner_on_core_0_shows_in_core_max_not_core_min():
    cpus = sorted(os.sched_getaffinity(0))
    burner = subprocess.Popen(
        [sys.executable, "-c",
         "import os, sys\n"
         f"os.sched_setaffinity(0, {{{cpus[0]}}})\n"
         "sys.stdout.write('x'); sys.stdout.flush()\n"
         "while True: pass\n"],
        stdout=subprocess.PIPE)
    try:
        assert burner.stdout.read(1) == b"x"    # pinned and burning from here on
        samples = sample_json("-n", "4", "--interval", "500ms")
    finally:
        burner.kill()
        burner.wait()
    def core0(s):
        return next(c["busy"] for c in s["cores"] if c["id"] == cpus[0])

    print("core 0 / idlest core, %:", [(core0(s), s["signals"]["cpu.core_min"]) for s in samples])

    # Within two samples the burning core is the busiest.
    assert any(s["signals"]["cpu.core_max"] >= 90 and core0(s) >= 90 for s in samples[:2]), samples
    # The others stay cool. Other sessions may share the machine, so this asks
    # for one sample of four in which core 0 is hot and the idlest core is not.
    assert any(core0(s) >= 90 and s["signals"]["cpu.core_min"] < 60 for s in samples), samples


def test_least_loaded_placement_avoids_the_busy_core(corral, tmp_path):
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        pytest.skip("needs two usable CPUs")
    burner = subprocess.Popen([PYTHON, "-c", f"import os\nos.sched_setaffinity(0, {{{usable[0]}}})\n"
                                             "print(flush=True)\nwhile True: pass"], stdout=subprocess.PIPE)
    try:
        burner.stdout.readline()    # pinned and burning from here on
        conf = write_policy(tmp_path / "c.yaml", SLEEPER, 1, 2, 1, "    []\n", workers=", placement: least-loaded")
        c = corral("run", "-c", conf)
        c.started(1)
        # Once a sample has been taken, a new worker goes to the idlest core.
        port = c.metrics_port()
        deadline = time.monotonic() + TIMEOUT
        while metric(http_get(port, "/metrics")[1], "corral_cpu_busy_ratio") is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        c.signal(signal.SIGTTIN)
        m = c.log.wait(r"worker 1 started \(pid (\d+)\) on CPU (\d+)")
        assert int(m[2]) != usable[0], "not the core the burner keeps busy"
        assert cpus_allowed(int(m[1])) == m[2]
        c.signal(signal.SIGTERM)
        assert c.wait() == 0
    finally:
        burner.kill()
        burner.wait()


def test_io_bound_tasks_grow_the_pool_well_past_the_cpus(corral, tmp_path):
    cpus = usable_cpus()
    size, sizes, log, busy = settle(corral, tmp_path, "io")
    print(f"settled at {size} workers with {cpus} CPUs; the machine was {busy:.0f}% busy meanwhile")
    assert size >= 2 * cpus, f"settled at {size}, with {cpus} CPUs, machine {busy:.0f}% busy\n" + log
    # No fixed ceiling (issue 23.2): past 4 x CPUs is allowed when it pays.
