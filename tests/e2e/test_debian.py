# SPDX-License-Identifier: MIT
"""The Debian package: `dpkg-buildpackage -b -us -uc` on a copy of the source
builds corral_VERSION_ARCH.deb; lintian finds no errors in it; it holds the
program, the man pages, the completion, the examples and the systemd units,
which it neither enables nor starts; it depends on the libraries the program
links; and the program it installs runs.

Skipped (reported as skipped) without dpkg-buildpackage and debhelper
(packaging/test-deps.sh installs them). About a minute: one build, shared by
the tests of this module.
"""
import os
import pathlib
import re
import shutil

import pytest

from conftest import need, run_tool

SOURCE = pathlib.Path(os.environ.get("CORRAL_SOURCE_ROOT") or pathlib.Path(__file__).resolve().parents[2])




def run(*args, **kwargs):
    """Building a package takes minutes on a busy machine."""
    kwargs.setdefault("timeout", 600)
    return run_tool(*args, **kwargs)


def project_version():
    text = (SOURCE / "meson.build").read_text()
    return re.search(r"version\s*:\s*'([^']+)'", text).group(1)


def copy_source(dest):
    """The source as a clone would have it: no build directories, no earlier
    package build's leftovers."""
    files = None
    if shutil.which("git"):
        out = run("git", "-C", SOURCE, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
        if out.returncode == 0:
            files = [f for f in out.stdout.split("\0") if f and (SOURCE / f).is_file()]
    if files is None:
        ignore = shutil.ignore_patterns(".git", "build*", "obj-*", "__pycache__", ".debhelper")
        shutil.copytree(SOURCE, dest, ignore=ignore, symlinks=True)
        return
    for f in files:
        if re.match(r"(debian/(build|corral|python3-corral|tmp|\.debhelper)/|debian/(files|debhelper-build-stamp|.*\.substvars)$|obj-)", f):
            continue    # an in-tree package build's output
        target = dest / f
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(SOURCE / f, target, follow_symlinks=False)


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    need("dpkg-buildpackage")
    need("dh")
    root = tmp_path_factory.mktemp("deb")
    src = root / "corral"
    copy_source(src)
    unmet = run("dpkg-checkbuilddeps", cwd=src)
    if unmet.returncode != 0:
        pytest.skip(f"build dependencies missing: {unmet.stderr.strip()}")
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck noautodbgsym parallel=2")
    out = run("dpkg-buildpackage", "-b", "-us", "-uc", cwd=src, env=env)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    arch = run("dpkg-architecture", "-qDEB_HOST_ARCH").stdout.strip()
    deb = root / f"corral_{project_version()}_{arch}.deb"
    assert deb.is_file(), sorted(p.name for p in root.iterdir())
    return deb


def test_changelog_version_is_the_project_version():
    first = (SOURCE / "debian" / "changelog").read_text().splitlines()[0]
    assert first.startswith(f"corral ({project_version()})"), first


def test_lintian_finds_no_errors(package):
    lintian = need("lintian")
    changes = package.with_suffix(".changes")
    out = run(lintian, "--fail-on", "error", changes)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not re.search(r"^E: ", out.stdout, re.M), out.stdout


def test_package_holds_program_docs_completion_examples_units(package):
    out = run("dpkg-deb", "--contents", package)
    assert out.returncode == 0, out.stderr
    paths = {line.split()[-1].lstrip(".") for line in out.stdout.splitlines()}
    for path in ("/usr/bin/corral",
                 "/usr/share/man/man1/corral.1.gz", "/usr/share/man/man5/corral.yaml.5.gz",
                 "/usr/share/bash-completion/completions/corral",
                 "/usr/share/doc/corral/examples/batch-cpu.yaml",
                 "/usr/share/doc/corral/examples/line-filter.yaml",
                 "/usr/share/doc/corral/copyright",
                 "/lib/systemd/system/corral.service", "/lib/systemd/system/corral@.service"):
        assert path in paths, f"{path} is not in the package"


def test_units_are_neither_enabled_nor_started(package, tmp_path):
    assert run("dpkg-deb", "--control", package, tmp_path).returncode == 0
    for script in ("preinst", "postinst", "prerm", "postrm"):
        f = tmp_path / script
        if not f.exists():
            continue
        text = f.read_text()
        # (Stopping the service before an upgrade or removal is right.)
        assert not re.search(r"deb-systemd-invoke .*(start|restart)|systemctl .*start", text), \
            f"{script} starts a unit:\n{text}"
        # dh_installsystemd --no-enable keeps only "enable again what the
        # administrator had enabled" (across an upgrade).
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if re.search(r"deb-systemd-helper (--quiet )?enable|systemctl .*enable", line):
                assert any("was-enabled" in l for l in lines[max(0, i - 3):i]), f"{script} enables a unit:\n{text}"


def test_depends_on_the_libraries_the_program_links(package):
    out = run("dpkg-deb", "--field", package, "Depends")
    assert out.returncode == 0, out.stderr
    depends = out.stdout
    for lib in ("libc6", "libproc2-0", "libyaml-0-2", "libsystemd0", "libmicrohttpd12", "libjson-c5"):
        assert re.search(rf"\b{re.escape(lib)}\b", depends), f"{lib} missing from Depends: {depends}"


def test_installed_program_runs(package, tmp_path):
    assert run("dpkg-deb", "--extract", package, tmp_path).returncode == 0
    out = run(tmp_path / "usr/bin/corral", "version")
    assert out.returncode == 0, out.stderr
    assert project_version() in out.stdout
    unit = (tmp_path / "lib/systemd/system/corral.service").read_text()
    assert "ExecStart=/usr/bin/corral run -c /etc/corral/corral.yaml" in unit


def test_python_module_is_its_own_package(package):
    python_deb = package.parent / f"python3-corral_{project_version()}_all.deb"
    out = run("dpkg-deb", "--contents", python_deb)
    assert out.returncode == 0, out.stderr
    paths = {line.split()[-1].lstrip(".") for line in out.stdout.splitlines()}
    assert "/usr/lib/python3/dist-packages/corral/__init__.py" in paths, sorted(paths)
    out = run("dpkg-deb", "--contents", package)
    assert "dist-packages" not in out.stdout, "the Python module belongs to python3-corral"
