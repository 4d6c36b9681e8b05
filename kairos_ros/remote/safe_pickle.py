"""A restricted unpickler for the official Kairos service's replies: numpy arrays and plain builtins only.

The official service (FastAPI `POST /infer`) pickles its requests and replies. `pickle.loads` of a
reply from the network would run whatever callable the reply names (os.system, builtins.eval, ...),
so this module never lets the unpickler import anything but:

- the functions numpy's own pickles use to rebuild an ndarray (`_reconstruct` for protocols 2-4,
  `_frombuffer` for protocol 5, under both `numpy.core` and `numpy._core`), each wrapped so it only
  accepts the arguments numpy itself writes (no huge allocation from a tiny pickle);
- `numpy.ndarray` as a marker for `_reconstruct` (never callable by the pickle);
- `numpy.dtype` of bool, integer and float kinds only (object, void, string, structured refused);
- the plain builtin types list, tuple, dict, str, int, float, bool, bytes.

Anything else is refused with `UnsafePickleError` naming the global (`module.name`), before it is
imported. Lists, dicts, strings, numbers, None, True/False and bytes need no global at all (pickle
opcodes, protocols 3-5); protocol 2's bytes (`_codecs.encode`) are refused. After loading, the result
is walked (iteratively, depth- and size-limited): only those types, and ndarrays of numeric dtypes.
"""
from __future__ import annotations

import io
import pickle

import numpy as np

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
    from numpy._core.numeric import _frombuffer as _np_frombuffer
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct as _np_reconstruct
    from numpy.core.numeric import _frombuffer as _np_frombuffer

PROTOCOL = 5  # what requests are written with (the official service's own default)
PLAIN = (type(None), bool, int, float, str, bytes)
NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float (no complex, object, void, strings, datetimes)
MAX_DEPTH = 32
MAX_ITEMS = 100_000


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names a global, or holds a type, the restricted unpickler does not admit."""


class _Frozen:
    """What find_class hands out: a callable with no attribute a pickle can set (BUILD's state or
    slot state would otherwise change a shared object for every later load)."""

    __slots__ = ("_fn", "_name")

    def __init__(self, fn, name: str):
        object.__setattr__(self, "_fn", fn)
        object.__setattr__(self, "_name", name)

    def __setattr__(self, key, value):
        raise UnsafePickleError(f"the pickle tried to set {key!r} on {self._name}")

    def __call__(self, *args):
        return self._fn(*args)

    def __repr__(self) -> str:
        return self._name


def _ndarray_called(*args):
    raise UnsafePickleError("numpy.ndarray called by the pickle: arrays are admitted only through numpy's "
                            "_reconstruct / _frombuffer")


_NDARRAY = _Frozen(_ndarray_called, "numpy.ndarray")  # _reconstruct's first argument, never a constructor


def _reconstruct(subtype, shape, typecode):
    """numpy's _reconstruct(ndarray, (0,), b'b'), as numpy's own pickles write it; the real data
    arrives afterwards through ndarray.__setstate__ (which checks the buffer size against the shape)."""
    if subtype is not _NDARRAY or tuple(shape) != (0,) or typecode not in (b"b", "b"):
        raise UnsafePickleError(f"numpy _reconstruct{(subtype, shape, typecode)!r}: only (numpy.ndarray, (0,), b'b') "
                                "is admitted")
    return _np_reconstruct(np.ndarray, (0,), b"b")


def _frombuffer(buffer, dtype, shape, order):
    """numpy's protocol-5 _frombuffer(buffer, dtype, shape, order): a view of bytes already read."""
    if not isinstance(buffer, (bytes, bytearray)) or not isinstance(dtype, np.dtype) or order not in ("C", "F"):
        raise UnsafePickleError("numpy _frombuffer with arguments other than (bytes, dtype, shape, 'C'|'F')")
    if dtype.hasobject or not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise UnsafePickleError(f"numpy _frombuffer: dtype {dtype} / shape {shape!r} not admitted")
    return _np_frombuffer(buffer, dtype, shape, order)


def _dtype(*args):
    """numpy.dtype(...), numeric kinds only: a void dtype's pickled state (applied by BUILD right
    after) can set the flags that make numpy treat its items as object pointers; numeric dtypes
    ignore that state's flags, fields and subarray."""
    dtype = np.dtype(*args)
    if dtype.kind not in NUMERIC_KINDS or dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise UnsafePickleError(f"numpy.dtype {dtype}: not admitted (only bool, integer and float dtypes; object, "
                                "void, string and structured dtypes are refused)")
    return dtype


ADMITTED = {
    ("numpy.core.multiarray", "_reconstruct"): _Frozen(_reconstruct, "numpy _reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): _Frozen(_reconstruct, "numpy _reconstruct"),
    ("numpy.core.numeric", "_frombuffer"): _Frozen(_frombuffer, "numpy _frombuffer"),
    ("numpy._core.numeric", "_frombuffer"): _Frozen(_frombuffer, "numpy _frombuffer"),
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _Frozen(_dtype, "numpy.dtype"),
    **{("builtins", t.__name__): t for t in (list, tuple, dict, str, int, float, bool, bytes)},
}


class RestrictedUnpickler(pickle.Unpickler):
    """pickle.Unpickler whose find_class admits only ADMITTED (and no persistent ids)."""

    def find_class(self, module, name):
        try:
            return ADMITTED[(module, name)]
        except (KeyError, TypeError):
            raise UnsafePickleError(f"refused global '{module}.{name}': only numpy arrays and plain builtins "
                                    "are admitted") from None

    def persistent_load(self, pid):
        raise UnsafePickleError("refused persistent id: only numpy arrays and plain builtins are admitted")


def check_admitted(value) -> None:
    """Raise UnsafePickleError unless `value` is built only of PLAIN values, lists, tuples, dicts
    (plain keys) and numeric ndarrays; at most MAX_DEPTH deep and MAX_ITEMS items."""
    todo, items = [(value, 0)], 0
    while todo:
        item, depth = todo.pop()
        items += 1
        if depth > MAX_DEPTH or items > MAX_ITEMS:
            raise UnsafePickleError(f"value nested deeper than {MAX_DEPTH} or larger than {MAX_ITEMS} items")
        if type(item) in PLAIN:
            continue
        if type(item) is np.ndarray:
            if item.dtype.kind not in NUMERIC_KINDS or item.dtype.hasobject:
                raise UnsafePickleError(f"ndarray of dtype {item.dtype} is not admitted (numeric only)")
        elif type(item) in (list, tuple):
            todo.extend((x, depth + 1) for x in item)
        elif type(item) is dict:
            for k, v in item.items():
                if type(k) not in PLAIN:
                    raise UnsafePickleError(f"dict key of type {type(k).__name__} is not admitted")
                todo.append((v, depth + 1))
        else:
            raise UnsafePickleError(f"value of type {type(item).__module__}.{type(item).__qualname__} is not admitted")


def restricted_loads(data: bytes):
    """Unpickle `data` admitting only numpy arrays and plain builtins (UnsafePickleError otherwise)."""
    try:
        value = RestrictedUnpickler(io.BytesIO(data)).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, OverflowError, RecursionError, UnicodeDecodeError) as exc:
        raise pickle.UnpicklingError(f"malformed pickle: {type(exc).__name__}: {exc}") from None
    check_admitted(value)
    return value


def restricted_dumps(value) -> bytes:
    """Pickle `value` and prove the bytes load under restricted_loads, so nothing is ever sent that
    this side would itself refuse to read."""
    check_admitted(value)
    data = pickle.dumps(value, protocol=PROTOCOL)
    restricted_loads(data)
    return data
