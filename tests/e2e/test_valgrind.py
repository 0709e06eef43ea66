# SPDX-License-Identifier: MIT
"""corral under valgrind memcheck: a pool started, a worker replaced, a reload,
and a stop by TERM leave no leak and no invalid access. valgrind answers ENOSYS
to pidfd_open, so this also covers sd-event's SIGCHLD fallback."""
import os
import re
import shutil
import signal

import pytest

from conftest import PYTHON

pytestmark = [
    pytest.mark.skipif(not shutil.which("valgrind"), reason="valgrind is not installed"),
    pytest.mark.skipif(os.environ.get("CORRAL_SANITIZED") == "1",
                       reason="a sanitizer build cannot run under valgrind"),
]


def test_run_stopped_by_term_has_no_leak(corral, tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text(f"command: [sleep, 1h]\nworkers: {{min: 2, max: 2}}\n")
    vg_log = tmp_path / "valgrind.log"
    c = corral("run", "--metrics", "127.0.0.1:0", "-c", str(conf), "--restart-delay", "1ms",
               corral_prefix=["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect",
                              "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99",
                              f"--log-file={vg_log}"])
    workers = c.started(2)
    os.kill(workers[0], signal.SIGKILL)
    c.started(1)
    c.signal(signal.SIGHUP)
    c.log.wait(r"reloaded: 2-2 workers")
    c.signal(signal.SIGTERM)
    assert c.wait(timeout=120) == 0, vg_log.read_text()
    report = vg_log.read_text()
    assert re.search(r"ERROR SUMMARY: 0 errors", report), report
    assert "definitely lost: 0 bytes" in report or "no leaks are possible" in report, report
