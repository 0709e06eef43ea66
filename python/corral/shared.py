# SPDX-License-Identifier: MIT
"""Shared read-only segments: corral loads each `shared:` segment once into a
sealed memfd and every worker inherits it as the descriptor in
$CORRAL_SHM_<NAME> (size in $CORRAL_SHM_<NAME>_SIZE). Mapping it shares the one
physical copy: nothing here copies the data."""
import mmap
import os
import struct

__all__ = ["shared", "shared_array"]

_maps = {}      # NAME -> memoryview: one mapping per segment and process
_NPY_MAGIC = b"\x93NUMPY"


def _env_name(name):
    if not isinstance(name, str) or not 0 < len(name) <= 64 or not name.isascii() or \
            not name.replace("_", "a").isalnum():
        raise ValueError(f"corral.shared: {name!r} is not a segment name (letters, digits and underscores)")
    return "CORRAL_SHM_" + name.upper()


def shared(name):
    """The shared segment `name` (as in `shared: {name: ...}`, any case) as a
    read-only memoryview over the one copy all workers map. Raises LookupError
    when this process has no such segment (not run by corral, or another name)."""
    key = _env_name(name)
    view = _maps.get(key)
    if view is not None:
        return view
    try:
        fd = int(os.environ[key])
        size = int(os.environ[key + "_SIZE"])
    except KeyError:
        have = sorted(k[len("CORRAL_SHM_"):].lower() for k in os.environ
                      if k.startswith("CORRAL_SHM_") and not k.endswith("_SIZE"))
        raise LookupError(f"corral.shared: no segment {name!r}: ${key} is not set; run this worker under corral "
                          f"with `shared: {{{name.lower()}: {{path: FILE}}}}`"
                          + (f" (segments here: {', '.join(have)})" if have else "")) from None
    view = memoryview(mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ))
    _maps[key] = view
    return view


def _npy_header(view):
    """(dtype, shape, fortran_order, data offset) of a .npy image, or None."""
    import numpy.lib.format as npf
    import io

    if bytes(view[:6]) != _NPY_MAGIC or len(view) < 10:
        return None
    major = view[6]
    length, start = (struct.unpack_from("<H", view, 8)[0], 10) if major == 1 else \
                    (struct.unpack_from("<I", view, 8)[0], 12)
    f = io.BytesIO(bytes(view[:start + length]))
    version = npf.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = npf.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = npf.read_array_header_2_0(f)
    else:
        shape, fortran, dtype = npf._read_array_header(f, version)
    return dtype, shape, fortran, f.tell()


def shared_array(name, dtype=None, shape=None):
    """The shared segment `name` as a read-only numpy array over the shared
    memory (no copy). A segment holding a .npy file (numpy.save) has its own
    dtype and shape; a given dtype or shape must then agree. Raw bytes are read
    as `dtype` (default uint8) in `shape` (default: as many items as fit)."""
    try:
        import numpy as np
    except ImportError as e:
        raise ImportError("corral.shared_array needs numpy (apt-get install python3-numpy, or pip install "
                          "numpy); corral.shared(name) gives the segment as bytes without it") from e
    view = shared(name)
    header = _npy_header(view)
    if header is not None:
        file_dtype, file_shape, fortran, offset = header
        if file_dtype.hasobject:
            raise ValueError(f"corral.shared_array: segment {name!r} is a .npy of Python objects (pickles), "
                             "which cannot be shared; save a numeric array")
        if dtype is not None and np.dtype(dtype) != file_dtype:
            raise ValueError(f"corral.shared_array: segment {name!r} is a .npy of {file_dtype}, not {np.dtype(dtype)}")
        if shape is not None and tuple(np.atleast_1d(shape)) != tuple(file_shape):
            raise ValueError(f"corral.shared_array: segment {name!r} is a .npy of shape {file_shape}, not {shape}")
        return np.ndarray(file_shape, dtype=file_dtype, buffer=view, offset=offset, order="F" if fortran else "C")
    dt = np.dtype("u1" if dtype is None else dtype)
    if shape is None:
        if len(view) % dt.itemsize:
            raise ValueError(f"corral.shared_array: segment {name!r} has {len(view)} bytes, not a whole number "
                             f"of {dt} items ({dt.itemsize} bytes); give shape=")
        return np.frombuffer(view, dtype=dt)
    count = int(np.prod(shape))
    if count * dt.itemsize > len(view):
        raise ValueError(f"corral.shared_array: shape {shape} of {dt} needs {count * dt.itemsize} bytes, "
                         f"segment {name!r} has {len(view)}")
    return np.frombuffer(view, dtype=dt, count=count).reshape(shape)
