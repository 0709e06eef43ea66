# SPDX-License-Identifier: MIT
"""The worker program of corral.map: `python3 -m corral._worker [--main PATH |
--main-module NAME] [--retries N] MODULE QUALNAME`. It imports the function as
multiprocessing's spawn does (a function of the main script is found by
running the script as __mp_main__, so its `if __name__ == "__main__":` part
does not run), then answers corral.map's JSON lines (corral/_wire.py) until
end of input. A function that cannot be loaded is reported on every line,
so that map raises at once instead of corral restarting a failing worker.
"""
import importlib
import json
import os
import runpy
import signal
import sys
import traceback
import types

from corral import _wire
from corral.worker import serve_lines


def _load_main(path, module):
    """The caller's __main__, as multiprocessing's spawn rebuilds it."""
    if module:
        content = runpy.run_module(module, run_name="__mp_main__", alter_sys=True)
    else:
        sys.path.insert(0, os.path.dirname(path))
        content = runpy.run_path(path, run_name="__mp_main__")
    main = types.ModuleType("__mp_main__")
    main.__dict__.update(content)
    sys.modules["__main__"] = sys.modules["__mp_main__"] = main
    return main


def load(module, qualname, main_path=None, main_module=None):
    """The function `qualname` of `module`."""
    if module == "__main__":
        obj = _load_main(main_path, main_module)
    else:
        obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def handler(fn, retries):
    def handle(line):
        try:
            msg = json.loads(line)
            index = msg["i"]
        except (ValueError, KeyError, TypeError):
            sys.stderr.write(f"corral._worker: not a line of corral.map: {line[:80]!r}\n")
            return b""
        try:
            arg = _wire.decode(msg, "a")
        except Exception as e:
            return _wire.encode_error(index, e, traceback.format_exc())[:-1]
        for _ in range(retries + 1):
            try:
                value = fn(arg)
                break
            except Exception as e:
                error, text = e, traceback.format_exc()
        else:
            return _wire.encode_error(index, error, text)[:-1]
        try:
            return _wire.encode(index, value, "r")[:-1]
        except Exception as e:
            return _wire.encode_error(index, e, "the result could not be sent back:\n" + traceback.format_exc())[:-1]
    return handle


USAGE = "usage: python3 -m corral._worker [--main PATH | --main-module NAME] [--retries N] MODULE QUALNAME"


def parse(argv):
    """The options of corral.map's worker (no argparse: a worker starts lean)."""
    opts = {"--main": None, "--main-module": None, "--retries": "0"}
    args = list(argv)
    while args and args[0] in opts and len(args) > 1:
        key, value = args[0], args[1]
        opts[key] = value
        del args[:2]
    if len(args) != 2 or not opts["--retries"].isdigit():
        sys.exit(USAGE)
    return args[0], args[1], opts["--main"], opts["--main-module"], int(opts["--retries"])


def main(argv=None):
    module, qualname, main_path, main_module, retries = parse(sys.argv[1:] if argv is None else argv)
    # Ctrl-C reaches the whole terminal group: corral stops the workers with TERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    extra = os.environ.get("CORRAL_PY_PATH")
    if extra:
        sys.path[:0] = [d for d in json.loads(extra) if d not in sys.path]
    # Take stdin/stdout before the user's module runs: its prints go to stderr.
    from corral.worker import _take_protocol_fds
    in_fd, out_fd = _take_protocol_fds()
    try:
        fn = load(module, qualname, main_path, main_module)
    except BaseException as e:      # SystemExit of a main script too
        text = traceback.format_exc()
        sys.stderr.write(f"corral._worker: cannot load {module}.{qualname}:\n{text}")
        err = ImportError(f"corral.map's worker cannot load {module}.{qualname}: "
                          f"{type(e).__name__}: {e}")

        def fn(arg):
            raise err
        retries = 0
    serve_lines(handler(fn, retries), in_fd, out_fd)


if __name__ == "__main__":
    main()
