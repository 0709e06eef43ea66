# SPDX-License-Identifier: MIT
"""Exit status 4: corral could not start for a reason outside its configuration
(out of memory, the event loop, /proc). A script that reads 2 fixes its
configuration; here there is nothing to fix. (A busy configured address, the
configuration's fault, stays 2: test_controller.py.)"""
import os
import shutil
import subprocess

import pytest

from conftest import CORRAL, PYTHON, TIMEOUT, WRAPPER, task

# In a mount namespace of its own: /proc/stat hidden behind /dev/null, then corral.
HIDE_PROC_STAT = r"""
import os, subprocess, sys
subprocess.run(["mount", "--bind", "/dev/null", "/proc/stat"], check=True)
os.execv(sys.argv[1], sys.argv[1:])
"""


def test_unreadable_proc_cpu_statistics_is_exit_4(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("hiding /proc/stat in a mount namespace needs root")
    unshare = shutil.which("unshare")
    if not unshare:
        pytest.skip("unshare is not installed (util-linux)")
    probe = subprocess.run([unshare, "--mount", "--propagation", "private", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no mount namespace here: {probe.stderr.decode().strip()}")

    p = subprocess.run([unshare, "--mount", "--propagation", "private", PYTHON, "-c", HIDE_PROC_STAT,
                        *WRAPPER, CORRAL, "run", "--metrics", "none", "--", *task("idle")],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert "Failed to read the machine's CPU statistics" in p.stderr
    assert p.returncode == 4, p.stderr
