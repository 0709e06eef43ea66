# SPDX-License-Identifier: MIT
"""Adaptive scaling end to end: the policy decides each sample and the pool
follows — up while workers burn CPU, down while they sleep, by hand with
TTIN/TTOU until a rule fires — and every change names its reason."""
import os
import re
import signal

from conftest import PYTHON, await_metric

BURNER = [PYTHON, "-c", "while True: pass"]
SLEEPER = [PYTHON, "-c", "import signal\nwhile True: signal.pause()"]


def write_policy(path, command, min, max, initial, rules, extra="", workers=""):
    argv = ", ".join('"%s"' % a.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for a in command)
    path.write_text(
        f"command: [{argv}]\n"
        f"workers: {{min: {min}, max: {max}, initial: {initial}, stop_timeout: 2s{workers}}}\n"
        f"sample: {{interval: 100ms}}\n"
        f"policy:\n"
        f"  cooldown: {{up: 0s, down: 0s}}\n"
        f"  stabilization: {{down: 0s}}\n"
        f"  rules:\n{rules}" + extra)
    return str(path)


def test_busy_workers_scale_up_to_max(corral, tmp_path):
    # A burner is never idle, a sleeper always is: 5% tells them apart
    # however few CPU the machine's other work leaves the burners.
    conf = write_policy(tmp_path / "c.yaml", BURNER, 1, 3, 1,
                        "    - {name: hot, when: pool.cpu > 5%, for: 200ms, scale: +1}\n")
    c = corral("run", "-c", conf)
    port = c.metrics_port()
    c.log.wait(r"scale 1 -> 2 \(rule hot: pool\.cpu \d+(\.\d+)?% for \d+ms\)")
    c.log.wait(r"scale 2 -> 3 \(rule hot")
    c.log.wait(r"worker 2 started")
    assert re.findall(r"worker (\d) started", c.log.text()) == ["0", "1", "2"]
    await_metric(port, "corral_scale_events_total", '{direction="up",rule="hot"}', 2)
    c.signal(signal.SIGTERM)
    assert c.wait() == 0
    assert "scale 3 -> 4" not in c.log.text(), "never above max"


def test_idle_workers_scale_down_to_min(corral, tmp_path):
    conf = write_policy(tmp_path / "c.yaml", SLEEPER, 1, 3, 3,
                        "    - {name: idle, when: pool.cpu < 20%, for: 300ms, scale: -1}\n")
    c = corral("run", "-c", conf)
    c.started(3)
    c.log.wait(r"scale 3 -> 2 \(rule idle: pool\.cpu \d+(\.\d+)?% for \d+ms\)")
    c.log.wait(r"scale 2 -> 1 \(rule idle")
    c.log.wait(r"worker 1 \(pid \d+\) was killed by signal TERM")
    c.signal(signal.SIGTERM)
    assert c.wait() == 0
    log = c.log.text()
    # The newest workers go first; worker 0 stays until the end.
    stopped = re.findall(r"worker (\d) \(pid \d+\) was killed by signal TERM", log)
    assert sorted(stopped[:2]) == ["1", "2"] and stopped[2:] == ["0"], log
    assert "scale 1 -> 0" not in log, "never below min"


def test_manual_size_holds_until_a_rule_fires(corral, tmp_path):
    # The rule reads a signal that needs a sample of the pool: it fires only
    # after the manual change has been made and held.
    conf = write_policy(tmp_path / "c.yaml", SLEEPER, 1, 3, 1,
                        "    - {name: idle, when: pool.cpu < 20% and pool.size > 2, for: 500ms, scale: -1}\n")
    c = corral("run", "-c", conf)
    c.started(1)
    c.signal(signal.SIGTTIN)
    c.log.wait(r"scale 1 -> 2 \(by hand\)")
    c.started(1)
    c.signal(signal.SIGTTIN)
    c.log.wait(r"scale 2 -> 3 \(by hand\)")
    c.started(1)
    # pool.size > 2 now holds: the rule fires and takes over from the manual size.
    c.log.wait(r"scale 3 -> 2 \(rule idle")
    c.signal(signal.SIGTERM)
    assert c.wait() == 0
    log = c.log.text()
    assert log.index("scale 2 -> 3 (by hand)") < log.index("scale 3 -> 2 (rule idle")
    assert "scale 2 -> 1" not in log, "pool.size > 2 no longer holds at 2"


def test_broken_reload_keeps_the_policy(corral, tmp_path):
    path = tmp_path / "c.yaml"
    conf = write_policy(path, SLEEPER, 2, 3, 2, "    - {name: never, when: pool.size > 100, for: 0s, scale: +1}\n")
    c = corral("run", "-c", conf)
    c.started(2)
    path.write_text(path.read_text().replace("pool.size > 100", "pool.sise > 100"))
    c.signal(signal.SIGHUP)
    c.log.wait(r"unknown signal 'pool\.sise' \(did you mean 'pool\.size'\?\)")
    c.log.wait(r"reload refused")
    c.signal(signal.SIGTTIN)
    c.log.wait(r"scale 2 -> 3 \(by hand\)")   # the old bounds (max 3) still hold
    c.signal(signal.SIGTERM)
    assert c.wait() == 0



def cpus_allowed(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(line.split()[1] for line in f if line.startswith("Cpus_allowed_list:"))


def test_spread_placement_pins_worker_i_to_usable_cpu_i(corral, tmp_path):
    usable = sorted(os.sched_getaffinity(0))
    n = len(usable) + 1     # one more than the CPUs: the ids wrap around
    conf = write_policy(tmp_path / "c.yaml", SLEEPER, n, n, n, "    []\n", workers=", placement: spread")
    c = corral("run", "-c", conf)
    workers = c.started(n)
    for wid, pid in workers.items():
        assert cpus_allowed(pid) == str(usable[wid % len(usable)])
    c.signal(signal.SIGTERM)
    assert c.wait() == 0
