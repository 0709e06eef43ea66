# SPDX-License-Identifier: MIT
"""A batch without --max has no fixed ceiling (issue 23.2): its maximum is
what the machine's limits hold (policy/ceiling.h), not 4 x the CPUs; an
explicit --max is obeyed."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import CORRAL

DEADLINE = 60    # catches a hang only


def maximum(*args, prefix=()):
    p = subprocess.run([*prefix, CORRAL, "run", "-v", "--metrics", "none", "--tasks", "-", *args, "--", "true"],
                       input=b"1\n2\n", stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=DEADLINE)
    log = p.stderr.decode()
    assert p.returncode == 0, log
    m = re.search(r"tasks? at once to start, up to (\d+)", log)
    assert m, log
    return int(m[1])


@pytest.mark.skipif(not shutil.which("prlimit"), reason="prlimit (util-linux) is not installed")
def test_the_ceiling_comes_from_the_file_limit_not_the_cpus():
    # Each worker costs corral 6 descriptors, 64 are its own: (400 - 64) / 6.
    got = maximum(prefix=("prlimit", "--nofile=400:400"))
    assert got == (400 - 64) // 6
    assert got > 4 * len(os.sched_getaffinity(0)) or len(os.sched_getaffinity(0)) > 14


def test_an_explicit_max_is_obeyed():
    assert maximum("--max", "5") == 5
