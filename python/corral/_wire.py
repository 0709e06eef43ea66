# SPDX-License-Identifier: MIT
"""corral.map's line protocol, one JSON object per line each way:

    in:  {"i": INDEX, "a": ARG}        or {"i": INDEX, "p": BASE64_PICKLE}
    out: {"i": INDEX, "r": RESULT}     or {"i": INDEX, "p": BASE64_PICKLE}
         {"i": INDEX, "e": {"type": NAME, "message": STR, "traceback": STR,
                            "p": BASE64_PICKLE_OF_THE_EXCEPTION (when it pickles)}}

A value travels as JSON when JSON gives it back unchanged (str, int, float,
bool, None, and lists and str-keyed dicts of those); anything else (tuples,
sets, objects, numpy scalars) as a pickle, so that fn sees what map was
given, as with multiprocessing.Pool. The index names the input: results
need not come back in order, and a missing one is a given-up input.
"""
import base64
import json
import pickle

_EXACT = (str, int, float, bool, type(None))


def _json_exact(value):
    t = type(value)
    if t in _EXACT:
        return True
    if t is list:
        return all(_json_exact(v) for v in value)
    if t is dict:
        return all(type(k) is str and _json_exact(v) for k, v in value.items())
    return False


def _pickled(value):
    return base64.b64encode(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)).decode("ascii")


def encode(index, value, key):
    """One line (bytes with newline) carrying value under key ("a" or "r")."""
    if _json_exact(value):
        return json.dumps({"i": index, key: value}, separators=(",", ":")).encode() + b"\n"
    return json.dumps({"i": index, "p": _pickled(value)}).encode() + b"\n"


def encode_error(index, exc, text):
    """The line of an exception, with its traceback text."""
    err = {"type": type(exc).__qualname__, "message": str(exc), "traceback": text}
    try:
        err["p"] = _pickled(exc)
    except Exception:
        pass            # the type and text still say what happened
    return json.dumps({"i": index, "e": err}).encode() + b"\n"


def decode(msg, key):
    """The value of a decoded line: under key, or pickled under "p"."""
    if "p" in msg:
        return pickle.loads(base64.b64decode(msg["p"]))
    return msg[key]


def load_exception(err):
    """The worker's exception object when it unpickles, else None."""
    if "p" not in err:
        return None
    try:
        exc = pickle.loads(base64.b64decode(err["p"]))
    except Exception:
        return None
    return exc if isinstance(exc, BaseException) else None
