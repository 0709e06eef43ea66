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

import pytest

from conftest import CORRAL, TIMEOUT, http_get, wait_gone

SLEEP = ["sleep", "1000"]   # coreutils: a worker that starts fast and obeys TERM


# --- 3: signals before the loop runs ---------------------------------------

@pytest.mark.parametrize("sig,effect", [
    (signal.SIGTERM, r"received SIGTERM"),
    (signal.SIGINT, r"received SIGINT"),
    (signal.SIGTTIN, r"manual resize: 1 -> 2 workers"),
    (signal.SIGTTOU, r"manual resize: 2 -> 1 workers"),
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


def test_other_commands_still_die_of_term(tmp_path):
    """Blocking in main() must not make `corral check` deaf to TERM."""
    fifo = str(tmp_path / "c.yaml")
    os.mkfifo(fifo)
    p = subprocess.Popen([CORRAL, "check", "-c", fifo], stderr=subprocess.PIPE)
    with open(fifo, "w") as f:
        os.kill(p.pid, signal.SIGTERM)
        f.write("command: [true]\n")
    assert p.wait(TIMEOUT) == -signal.SIGTERM
