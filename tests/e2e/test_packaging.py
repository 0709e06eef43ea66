# SPDX-License-Identifier: MIT
"""Packaging: `meson install` puts every file in place, the systemd units verify
and are hardened, the man pages render cleanly and document what the code has,
the bash completion works, and the Kubernetes and Grafana files parse and name
real metrics.

The documentation checks read the code (the flags in each --help, the keys in
conf/schema.c, the metric names in metrics/corral_metrics.c, the policy signals in
policy/signals.c), so a new flag, key or metric without documentation fails here.
"""
import json
import os
import pathlib
import re

import pytest

from conftest import need, run_tool as run

CORRAL = os.environ["CORRAL"]
SOURCE = pathlib.Path(os.environ.get("CORRAL_SOURCE_ROOT") or pathlib.Path(__file__).resolve().parents[2])
BUILD = pathlib.Path(os.environ.get("CORRAL_BUILD_ROOT") or pathlib.Path(CORRAL).resolve().parent)
PACKAGING = SOURCE / "packaging"
UNITS = ("corral.service", "corral@.service")
MAX_EXPOSURE = 2.0

# DESIGN.md "Metrics": the names users, dashboards and autoscalers rely on.
CONTRACT_METRICS = {
    "corral_build_info", "corral_workers", "corral_workers_desired", "corral_cpu_busy_ratio",
    "corral_core_busy_ratio", "corral_signal", "corral_scale_events_total",
    "corral_worker_exits_total", "corral_tasks_total", "corral_tasks_pending",
    "corral_worker_utilization_ratio", "corral_restarts_total", "corral_crash_loop",
    "corral_task_duration_seconds", "corral_shared_bytes", "corral_config_reloads_total",
    "process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds",
}
# DESIGN.md "Command line": every flag of the contract, implemented yet or not.
CONTRACT_RUN_FLAGS = {
    "-c", "--min", "--max", "--metrics", "--tasks", "--stream", "--keep-order", "--joblog",
    "--resume", "--resume-failed", "--retries", "--timeout", "--batch", "--shard", "--bar",
    "-v", "-q",
}
SUBCOMMANDS = ("run", "check", "sample", "status", "version")




# ---------------------------------------------------------------------------
# what the code has


def code_metrics():
    text = (SOURCE / "metrics" / "corral_metrics.c").read_text()
    return set(re.findall(r'"((?:corral|process)_[a-z0-9_]+)"', text))


def code_policy_signals():
    text = (SOURCE / "policy" / "signals.c").read_text()
    return re.findall(r'\] *= *"([a-z0-9_.]+)"', text)


def help_flags(subcommand):
    out = run(CORRAL, subcommand, "--help")
    assert out.returncode == 0, out.stderr
    return set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", out.stdout.split("\n\n", 1)[1])) - {"-"}


def config_keys():
    """Dotted paths of every key in conf/schema.c's field tables."""
    text = (SOURCE / "conf" / "schema.c").read_text()
    tables = {}
    for name, body in re.findall(r"static const struct field (\w+)\[\] = \{(.*?)\n\};", text, re.S):
        tables[name] = [(m[1], m[2], (re.search(r"\.sub = (\w+)", m[0]) or [None, None])[1])
                        for m in re.finditer(r'\{ *"(\w+)", *(\w+)[^\n]*\}', body)]
    assert "top_fields" in tables, "conf/schema.c: no top_fields table"
    # Tables reached through a custom parser rather than .sub.
    custom = {"rules": ("rule_fields", "policy.rules[]"), "shared": ("shared_fields", "shared.NAME")}
    keys = []

    def walk(table, prefix):
        for key, kind, sub in tables[table]:
            path = f"{prefix}.{key}" if prefix else key
            keys.append(path)
            if sub:
                walk(sub, path)
            elif key in custom and custom[key][0] in tables:
                walk(custom[key][0], custom[key][1])

    walk("top_fields", "")
    return keys


# ---------------------------------------------------------------------------
# the installation


@pytest.fixture(scope="module")
def layout():
    options = {o["name"]: o["value"] for o in json.loads(run("meson", "introspect", "--buildoptions", BUILD).stdout)}
    installed = json.loads(run("meson", "introspect", "--installed", BUILD).stdout)
    return options, installed


@pytest.fixture(scope="module")
def destdir(tmp_path_factory):
    dest = tmp_path_factory.mktemp("destdir")
    out = run("meson", "install", "-C", BUILD, "--no-rebuild", "--destdir", dest)
    assert out.returncode == 0, out.stdout + out.stderr
    return dest


def under(dest, path):
    return dest / str(path).lstrip("/")


def installed_path(layout, suffix):
    """The installed path (not under destdir) of the file whose path ends with suffix."""
    _, installed = layout
    hits = [dst for dst in installed.values() if dst.endswith(suffix)]
    assert len(hits) == 1, f"one installed file ending with {suffix}, got {hits}"
    return pathlib.Path(hits[0])


def test_install_puts_every_file_in_place(layout, destdir):
    options, _ = layout
    prefix = pathlib.Path(options["prefix"])
    expected = {
        "binary": prefix / options["bindir"] / "corral",
        "corral(1)": prefix / options["mandir"] / "man1" / "corral.1",
        "corral.yaml(5)": prefix / options["mandir"] / "man5" / "corral.yaml.5",
    }
    for unit in UNITS:
        expected[unit] = installed_path(layout, "/" + unit)
        unitdir = options.get("systemdsystemunitdir") or ""
        if unitdir:
            assert expected[unit].parent == pathlib.Path(unitdir)
        else:
            assert expected[unit].parent.as_posix().endswith("lib/systemd/system"), expected[unit]
    completion = [p for p in layout[1].values() if p.endswith("bash-completion/completions/corral")]
    assert len(completion) == 1, layout[1]
    expected["completion"] = pathlib.Path(completion[0])
    examples = prefix / options["datadir"] / "doc" / "corral" / "examples"
    for f in sorted((PACKAGING / "examples").iterdir()):
        expected["example " + f.name] = examples / f.name

    missing = {what: str(p) for what, p in expected.items() if not under(destdir, p).is_file()}
    assert not missing, f"not installed: {missing}"
    assert os.access(under(destdir, expected["binary"]), os.X_OK)
    print("installed:", *(f"  {what}: {p}" for what, p in expected.items()), sep="\n")


def test_units_run_the_installed_binary(layout, destdir):
    options, _ = layout
    binary = pathlib.Path(options["prefix"]) / options["bindir"] / "corral"
    for unit in UNITS:
        text = under(destdir, installed_path(layout, "/" + unit)).read_text()
        assert "@bindir@" not in text
        execs = re.findall(r"^(ExecStart(?:Pre)?)=(\S+)", text, re.M)
        assert [e for e, _ in execs] == ["ExecStartPre", "ExecStart"], execs
        assert all(path == str(binary) for _, path in execs), (execs, binary)


# ---------------------------------------------------------------------------
# the units


def unit_settings(text):
    settings = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def duration_s(value):
    m = re.fullmatch(r"(\d+)(ms|s|min|m)?", value)
    assert m, value
    return int(m[1]) * {"ms": 0.001, None: 1, "s": 1, "m": 60, "min": 60}[m[2]]


@pytest.mark.parametrize("unit", UNITS)
def test_unit_contract(unit):
    text = (BUILD / "packaging" / unit).read_text()
    s = unit_settings(text)
    config = "/etc/corral/%i.yaml" if "@" in unit else "/etc/corral/corral.yaml"
    assert s["Type"] == ["notify"]
    assert s["ExecStartPre"][0].endswith(f"/corral check -c {config}")
    assert s["ExecStart"][0].endswith(f"/corral run -c {config}")
    assert re.fullmatch(r"(/bin/)?kill -HUP \$MAINPID", s["ExecReload"][0])
    assert "notify-reload" in text, "the unit should name Type=notify-reload for systemd >= 253"
    assert s["KillMode"] == ["mixed"]
    assert duration_s(s["TimeoutStopSec"][0]) > 10, "TimeoutStopSec must exceed the default stop_timeout (10s)"
    assert "WatchdogSec" in s
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "PrivateTmp": "yes", "MemoryDenyWriteExecute": "yes"}.items():
        assert s.get(key) == [value], key
    assert set(s["RestrictAddressFamilies"][0].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert "@system-service" in s["SystemCallFilter"]
    # corral reads /proc/stat, /proc/meminfo and /proc/pressure: not only /proc/PID.
    assert "ProcSubset" not in s


@pytest.fixture(scope="module")
def units_for_analysis(layout, destdir, tmp_path_factory):
    """The installed units, their binary path pointed into the destdir (verify
    checks that ExecStart's program exists)."""
    options, _ = layout
    binary = str(pathlib.Path(options["prefix"]) / options["bindir"] / "corral")
    d = tmp_path_factory.mktemp("units")
    for unit in UNITS:
        text = under(destdir, installed_path(layout, "/" + unit)).read_text()
        (d / unit).write_text(text.replace(binary, str(under(destdir, binary))))
    return d


def test_units_verify(layout, destdir, units_for_analysis):
    analyze = need("systemd-analyze")
    need("man")
    options, _ = layout
    # verify also checks that the Documentation= man pages exist: the installed ones.
    env = dict(os.environ, MANPATH=str(under(destdir, pathlib.Path(options["prefix"]) / options["mandir"])),
               SYSTEMD_LOG_LEVEL="notice")
    out = run(analyze, "verify", *(units_for_analysis / u for u in UNITS), env=env, cwd=units_for_analysis)
    print(out.stdout + out.stderr)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == "" and out.stderr.strip() == "", out.stdout + out.stderr


@pytest.mark.parametrize("unit", UNITS)
def test_unit_security_score(unit, units_for_analysis, capsys):
    analyze = need("systemd-analyze")
    out = run(analyze, "security", "--offline=true", f"--threshold={int(MAX_EXPOSURE * 10)}",
              units_for_analysis / unit, cwd=units_for_analysis)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out.stdout)
    assert m, out.stdout + out.stderr
    with capsys.disabled():     # into the test log, even when the test passes
        print(f"\nsystemd-analyze security --offline=true {unit}: exposure {m[1]} (at most {MAX_EXPOSURE})")
    assert float(m[1]) <= MAX_EXPOSURE, out.stdout
    assert out.returncode == 0, out.stdout + out.stderr


# ---------------------------------------------------------------------------
# man pages


MAN_PAGES = {"corral.1": "man1", "corral.yaml.5": "man5"}


@pytest.fixture(scope="module")
def rendered(layout, destdir):
    """The installed man pages as text, rendered by man -l."""
    need("man")
    options, _ = layout
    pages = {}
    for page, section in MAN_PAGES.items():
        path = under(destdir, pathlib.Path(options["prefix"]) / options["mandir"] / section / page)
        env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="0")
        env.pop("MANPAGER", None)
        env.pop("PAGER", None)
        out = run("man", "--warnings", "-E", "UTF-8", "-l", path, env=env)
        assert out.returncode == 0, out.stderr
        assert out.stderr == "", f"{page}: warnings from man -l:\n{out.stderr}"
        text = re.sub(r".\x08", "", out.stdout)     # overstrike (bold, underline) in a pipe
        # Undo hyphenation across line ends so that names can be searched for.
        text = re.sub(r"([\w.])[\u2010-]\n\s+(?=\w)", r"\1", text)
        pages[page] = re.sub(r"\s+", " ", text)
    return pages


@pytest.mark.parametrize("page", MAN_PAGES)
def test_man_page_renders_without_warnings(page, layout, destdir):
    groff = need("groff")
    options, _ = layout
    path = under(destdir, pathlib.Path(options["prefix"]) / options["mandir"] / MAN_PAGES[page] / page)
    out = run(groff, "-man", "-t", "-ww", "-z", path)
    assert out.returncode == 0 and out.stderr == "", out.stderr


def test_man_corral_documents_commands_and_flags(rendered):
    text = rendered["corral.1"]
    for cmd in SUBCOMMANDS:
        assert f"corral {cmd}" in text, cmd
    for section in ("SYNOPSIS", "COMMANDS", "RUN OPTIONS", "PROCESS SIGNALS", "ENVIRONMENT",
                    "METRICS", "EXIT STATUS", "SYSTEMD", "SEE ALSO"):
        assert section in text, section
    flags = CONTRACT_RUN_FLAGS | help_flags("run")
    for sub in ("check", "sample", "status"):
        flags |= help_flags(sub)
    missing = sorted(f for f in flags if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", text))
    assert not missing, f"flags missing from corral(1): {missing}"


def test_man_pages_document_signals_metrics_environment(rendered):
    text = rendered["corral.1"]
    missing = sorted(m for m in CONTRACT_METRICS | code_metrics() if m not in text)
    assert not missing, f"metrics missing from corral(1): {missing}"
    for signal in code_policy_signals():
        assert signal in text, signal
        assert signal in rendered["corral.yaml.5"], signal
    # Process signals corral handles (supervisor/main.c blocks them first thing)
    # and the variables it reads or sets anywhere in the code.
    main_c = (SOURCE / "supervisor" / "main.c").read_text()
    handled = re.search(r"loop_signals\[\] = \{([^}]*)\}", main_c)[1]
    for sig in re.findall(r"SIG([A-Z]+)", handled):
        if sig != "CHLD":
            assert re.search(rf"\b{sig}\b", text), sig
    code = "".join(p.read_text() for p in (SOURCE / "supervisor").glob("*.c"))
    variables = set(re.findall(r'getenv\("([A-Z_]+)"\)', code)) | set(re.findall(r'"(CORRAL_[A-Z_]+)=', code))
    variables |= {"CORRAL_WORKER_ID", "CORRAL_WORKERS_MAX", "CORRAL_TASK", "CORRAL_TASK_SEQ",
                  "CORRAL_SHM_<NAME>", "CORRAL_SHM_<NAME>_SIZE", "NOTIFY_SOCKET", "WATCHDOG_USEC"}
    missing = sorted(v for v in variables if v not in text)
    assert not missing, f"environment variables missing from corral(1): {missing}"
    for status in ("0", "1", "2", "3"):
        assert re.search(rf"EXIT STATUS .*\b{status}\b", text), status


def test_man_yaml_documents_every_key(rendered):
    text = rendered["corral.yaml.5"]
    keys = config_keys()
    assert len(keys) > 40, keys
    missing = []
    for key in keys:
        parts = key.split(".")
        # Top-level and second-level keys appear as written (workers.stop_timeout);
        # deeper ones by name, inside their parent's entry.
        if len(parts) <= 2 and "[]" not in key and "NAME" not in key:
            found = re.search(rf"(?<![\w.]){re.escape(key)}(?!\w)", text)
        else:
            found = re.search(rf"(?<!\w){re.escape(parts[-1])}(?!\w)", text)
        if not found:
            missing.append(key)
    assert not missing, f"keys missing from corral.yaml(5): {missing}"
    conf_h = (SOURCE / "conf" / "schema.c").read_text()
    for names in re.findall(r"_names\[\] = \{([^}]*)\}", conf_h):
        for value in re.findall(r'"([\w-]+)"', names):
            assert value in text, f"enum value {value} missing from corral.yaml(5)"


# ---------------------------------------------------------------------------
# bash completion


def complete(*words, cwd=None):
    """What the completion offers for the last of words (the word being typed)."""
    return set(complete_list(*words, cwd=cwd))


def complete_list(*words, cwd=None, env=None):
    """The completion's offers for the last of words, in order, duplicates kept."""
    bash = need("bash")
    script = PACKAGING / "completion" / "corral.bash"
    code = ('source "$1"; shift; complete -p corral >/dev/null || exit 9; '
            'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; '
            '_corral corral "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"; '
            'printf "%s\\n" "${COMPREPLY[@]}"')
    out = run(bash, "--norc", "--noprofile", "-c", code, "bash", script, *words, cwd=cwd, env=env)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    return out.stdout.split()


def test_completion_loads():
    bash = need("bash")
    out = run(bash, "--norc", "--noprofile", "-c", 'source "$1" && complete -p corral',
              "bash", PACKAGING / "completion" / "corral.bash")
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert out.stdout.strip() == "complete -F _corral corral"


def test_completion_completes_subcommands_and_flags():
    assert set(SUBCOMMANDS) <= complete("corral", "")
    assert complete("corral", "s") == {"sample", "status"}
    assert complete("corral", "ch") == {"check"}
    for sub in ("run", "check", "sample", "status"):
        offered = complete("corral", sub, "-")
        missing = help_flags(sub) - offered
        assert not missing, f"corral {sub}: flags not completed: {missing}"
    assert CONTRACT_RUN_FLAGS <= complete("corral", "run", "-")
    assert complete("corral", "run", "--stop-t") == {"--stop-timeout"}
    assert complete("corral", "sample", "--j") == {"--json"}


def test_completion_completes_files_and_commands(tmp_path):
    (tmp_path / "web.yaml").write_text("command: [true]\n")
    (tmp_path / "notes.txt").write_text("")
    offered = complete("corral", "check", "-c", "", cwd=tmp_path)
    assert "web.yaml" in offered and "notes.txt" not in offered
    # After --, the worker's command line: programs on PATH.
    assert "bash" in complete("corral", "run", "--min", "2", "--", "bas")


def test_completion_offers_each_command_once(tmp_path):
    # A program in two PATH directories (as /bin and /usr/bin are one on
    # merged-/usr systems), and echo, a builtin that is also a program.
    for d in ("a", "b"):
        prog = tmp_path / d / "corral-test-prog"
        prog.parent.mkdir()
        prog.write_text("#!/bin/sh\n")
        prog.chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path / 'a'}:{tmp_path / 'b'}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    for prefix, name in (("corral-test-p", "corral-test-prog"), ("ech", "echo")):
        offered = complete_list("corral", "run", "--", prefix, env=env)
        assert offered.count(name) == 1, offered


# ---------------------------------------------------------------------------
# Kubernetes and Grafana


def metric_names(text):
    names = set(re.findall(r"\b((?:corral|process)_[a-z0-9_]+)", text))
    return {re.sub(r"_(bucket|sum|count)$", "", n) if n.startswith("corral_task_duration_seconds") else n
            for n in names}


@pytest.fixture(scope="module")
def kube():
    yaml = pytest.importorskip("yaml", reason="python3-yaml is not installed (packaging/test-deps.sh installs it)")
    docs = {}
    for f in sorted((PACKAGING / "kubernetes").glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            docs.setdefault(doc["kind"], []).append((f.name, doc))
    return yaml, docs


def test_kubernetes_manifests(kube, tmp_path):
    yaml, docs = kube
    assert {"Deployment", "ConfigMap", "HorizontalPodAutoscaler"} <= set(docs)
    (_, deploy), = [d for d in docs["Deployment"] if d[0] == "deployment.yaml"]   # not queue-keda.yaml's
    assert deploy["apiVersion"] == "apps/v1"
    pod = deploy["spec"]["template"]
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "9311"
    assert annotations["prometheus.io/path"] == "/metrics"
    container, = pod["spec"]["containers"]
    argv = container.get("command", []) + container.get("args", [])
    assert argv[:3] == ["corral", "run", "-c"], argv
    assert 9311 in [p["containerPort"] for p in container["ports"]]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"

    # The configuration file corral is pointed at comes from the ConfigMap volume.
    config_path = pathlib.PurePosixPath(argv[3])
    mount = next(m for m in container["volumeMounts"] if config_path.parent == pathlib.PurePosixPath(m["mountPath"]))
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == mount["name"])
    cm = next(d for _, d in docs["ConfigMap"] if d["metadata"]["name"] == volume["configMap"]["name"])
    policy_text = cm["data"][config_path.name]
    policy = yaml.safe_load(policy_text)
    host, port = policy["metrics"]["listen"].rsplit(":", 1)
    assert port == "9311" and host not in ("127.0.0.1", "[::1]", "localhost"), "a pod's metrics must not be loopback"
    assert deploy["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > duration_s(policy["workers"]["stop_timeout"])
    # ... and is a valid corral configuration.
    f = tmp_path / "corral.yaml"
    f.write_text(policy_text)
    out = run(CORRAL, "check", "-c", f)
    assert out.returncode == 0, out.stderr

    (_, hpa), = docs["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deploy["metadata"]["name"]}
    metric, = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == "corral_worker_utilization_ratio"

    # The adapter rule exposes that metric under that name.
    adapter = [d for _, d in docs["ConfigMap"] if any("rules" in (yaml.safe_load(v) or {}) for v in d["data"].values())]
    assert adapter, "no Prometheus adapter rule"
    rules = [r for d in adapter for v in d["data"].values() for r in yaml.safe_load(v)["rules"]]
    assert any("corral_worker_utilization_ratio" in r["seriesQuery"] and
               r["name"].get("as") == "corral_worker_utilization_ratio" for r in rules), rules

    everything = "".join(p.read_text() for p in (PACKAGING / "kubernetes").iterdir())
    unknown = metric_names(everything) - code_metrics() - CONTRACT_METRICS
    assert not unknown, f"unknown metric names in packaging/kubernetes: {unknown}"
    readme = (PACKAGING / "kubernetes" / "README.md").read_text()
    assert "every second" in readme and "HPA" in readme


def test_kubernetes_indexed_job_runs_one_shard_per_pod(kube, tmp_path):
    yaml, docs = kube
    (_, job), = [d for d in docs["Job"] if d[0] == "batch-job.yaml"]   # not queue-job.yaml
    assert job["apiVersion"] == "batch/v1"
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] >= 2
    assert spec["backoffLimitPerIndex"] >= 1
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"   # backoffLimitPerIndex needs it
    container, = pod["containers"]
    (_, deploy), = [d for d in docs["Deployment"] if d[0] == "deployment.yaml"]   # not queue-keda.yaml's
    image = deploy["spec"]["template"]["spec"]["containers"][0]["image"]
    assert container["image"].split("/")[0] == image.split("/")[0], "the same (placeholder) registry"
    env = {e["name"]: e for e in container["env"]}
    assert env["CORRAL_SHARDS"]["value"] == str(spec["completions"])
    assert "job-completion-index" in env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    argv = container["command"] + container["args"]
    assert argv[:2] == ["corral", "run"]
    i = argv.index("--shard")
    assert argv[i + 1] == "env"
    # Every flag it passes is one `corral run` has.
    ours = argv[2:argv.index("--")]
    unknown = {a for a in ours if a.startswith("-")} - help_flags("run")
    assert not unknown, unknown
    joblog = argv[argv.index("--joblog") + 1]
    assert "$(JOB_COMPLETION_INDEX)" in joblog, "one joblog per shard"
    # The task file comes from the ConfigMap in the same file.
    tasks = pathlib.PurePosixPath(argv[argv.index("--tasks") + 1])
    mount = next(m for m in container["volumeMounts"] if tasks.parent == pathlib.PurePosixPath(m["mountPath"]))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    cm = next(d for _, d in docs["ConfigMap"] if d["metadata"]["name"] == volume["configMap"]["name"])
    lines = cm["data"][tasks.name].splitlines()
    assert len(lines) >= spec["completions"]

    # What the pods would run, here: the shards' joblogs concatenate into a whole.
    f = tmp_path / "tasks.txt"
    f.write_text(cm["data"][tasks.name])
    seqs = []
    for k in range(spec["completions"]):
        args = [a.replace("$(JOB_COMPLETION_INDEX)", str(k)).replace("/out/", f"{tmp_path}/")
                .replace(str(tasks), str(f)) for a in ours]
        e = {**os.environ, "JOB_COMPLETION_INDEX": str(k), "CORRAL_SHARDS": env["CORRAL_SHARDS"]["value"]}
        out = run(CORRAL, "run", *args, "--", "true", env=e)
        assert out.returncode == 0, out.stderr
        rows = (tmp_path / f"joblog.{k}").read_text().splitlines()[1:]
        seqs += [int(r.split("\t")[0]) for r in rows]
    assert sorted(seqs) == list(range(1, len(lines) + 1))

    readme = (PACKAGING / "kubernetes" / "README.md").read_text()
    assert "batch-job.yaml" in readme and "--shard env" in readme


def grafana_exprs():
    dash = json.loads((PACKAGING / "grafana" / "corral.json").read_text())
    exprs = []

    def walk(panels):
        for p in panels:
            exprs.extend(t["expr"] for t in p.get("targets", []))
            walk(p.get("panels", []))

    walk(dash["panels"])
    return dash, exprs


def test_grafana_dashboard():
    dash, exprs = grafana_exprs()
    assert dash["title"] and dash["uid"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    used = set()
    for e in exprs:
        used |= metric_names(e)
    unknown = used - code_metrics() - CONTRACT_METRICS
    assert not unknown, f"unknown metric names in the dashboard: {unknown}"
    # Pool size vs desired, signals, scale events by rule, task rate and
    # duration, restarts, crash loop.
    wanted = {"corral_workers", "corral_workers_desired", "corral_signal", "corral_scale_events_total",
              "corral_tasks_total", "corral_task_duration_seconds", "corral_restarts_total",
              "corral_crash_loop", "corral_worker_utilization_ratio"}
    assert wanted <= used, wanted - used
    assert any("corral_scale_events_total" in e and "rule" in e for e in exprs), "scale events by rule"


def test_grafana_queries_are_valid_promql(tmp_path):
    promtool = need("promtool")
    _, exprs = grafana_exprs()
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"corral:dashboard_query_{i}:value",
         "expr": e.replace("$__rate_interval", "1m").replace("$job", ".*").replace("$instance", ".*")}
        for i, e in enumerate(exprs)]}]}
    f = tmp_path / "rules.json"     # JSON is YAML
    f.write_text(json.dumps(rules))
    out = run(promtool, "check", "rules", f)
    assert out.returncode == 0, out.stdout + out.stderr
