"""Save a Trace as versioned JSON and load it back, refusing damaged or foreign files.

The file is plain data: ``{"format": "evtsim-trace", "version": 2, <the Trace's fields>}``.
Version 2 added per-channel and per-host event counts, the parameters a run did not use and the
steps a crash left unplayed; version 1 files are refused with that reason.
Loading never executes anything from it, and its cost is bounded: only a regular file of at most
``MAX_BYTES`` is read (a pipe or a device is refused before anything is read from it), and every
check is linear in the file's size. The dataclasses of ``evtsim.trace`` and
``evtsim.snapshot`` are rebuilt field by field, each value checked against the field's type
annotation, so a file that loads is exactly a Trace ``dumps`` could have written. Every refusal
is a ``TraceFileError`` naming what is wrong and where (``records[3].domains[0].pending: ...``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any

from .text import printable
from .trace import VERDICTS, Trace

FORMAT = "evtsim-trace"
VERSION = 2
#: Why this evtsim does not read a file of an older version.
OLD_VERSIONS = {
    1: "it has no per-channel event counts, and a crashed guest's story went on; run the scenario again "
       f"to save it as version {VERSION}",
}
#: A trace nests 7 deep (records, a record, domains, a domain, ports, a port); anything far
#: deeper is damage, refused before the JSON parser can recurse on it.
MAX_DEPTH = 32
#: The largest trace file evtsim reads: a hundred times the largest a scenario writes today
#: (hibernation with 8 vCPUs and 100 rounds, 170 kB), and still parsed in about a second.
MAX_BYTES = 16 * 1024 * 1024

_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))

#: A string (to its end, even unterminated, so scanning stays linear) or a bracket.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*+"?|[\[\]{}]', re.DOTALL)


class TraceFileError(ValueError):
    """A file that is not JSON, not an evtsim trace, or not a well-formed one."""


def dumps(trace: Trace) -> str:
    """The trace as JSON text, the same bytes for equal traces: sorted keys, one field per line,
    lists of plain values (bitmaps, port lists, parameter pairs) on one line."""
    doc = {"format": FORMAT, "version": VERSION, **_plain(trace, "")}
    return _layout(doc, "") + "\n"


def loads(text: str | bytes) -> Trace:
    """The Trace in ``text``; raises TraceFileError if it is damaged, foreign or from a newer evtsim."""
    doc = _parse(text)
    _check_header(doc)
    body = {k: v for k, v in doc.items() if k not in ("format", "version")}
    trace = _build(Trace, body, "")
    _check_meaning(trace)
    return trace


def save(trace: Trace, path: str | Path) -> None:
    """Write ``trace`` to ``path`` (UTF-8, ``\\n`` line ends on every platform); an OSError
    names the file, even one raised by a write (``/dev/full``: no space left on device)."""
    text = dumps(trace)
    try:
        Path(path).write_text(text, encoding="utf-8", newline="\n")
    except OSError as e:
        if e.filename is not None:
            raise
        raise type(e)(e.errno, e.strerror, str(path)) from e


def load(path: str | Path) -> Trace:
    """The Trace saved at ``path``; a missing file raises OSError; anything but a regular file of
    at most MAX_BYTES, or a bad one, TraceFileError."""
    return loads(read_regular_file(path))


def read_regular_file(path: str | Path) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most MAX_BYTES; else TraceFileError,
    before reading anything (``/dev/zero`` never ends, a named pipe blocks until written)."""
    _check_regular(os.stat(path))
    # O_NONBLOCK: had the path become a pipe since the stat, opening it must not block either.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    with os.fdopen(fd, "rb") as f:
        _check_regular(os.fstat(fd))
        data = f.read(MAX_BYTES + 1)
    _check_size(len(data))  # it grew since
    return data


def _check_regular(st: os.stat_result) -> None:
    kind = next((name for test, name in _FILE_KINDS if test(st.st_mode)), None)
    if kind is not None or not stat.S_ISREG(st.st_mode):
        raise TraceFileError(f"not a regular file ({kind or 'of an unknown kind'})")
    _check_size(st.st_size)


def _check_size(size: int) -> None:
    if size > MAX_BYTES:
        raise TraceFileError(f"too large for a trace file: {size} bytes (at most {MAX_BYTES})")


# Saving ----------------------------------------------------------------------------------------

def _plain(value: Any, path: str) -> Any:
    """Dataclasses as dicts, tuples as lists; anything but int, str, bool or None is a bug,
    and so is a string that is not text (a lone surrogate, which ``load`` refuses)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name), _field(path, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_plain(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, str):
        if _lone_surrogate(value):
            raise ValueError(f"cannot save {path}: {_describe(value)} holds a lone surrogate, which is not text")
        return str.__str__(value)  # a StrEnum's text
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)  # an IntEnum is saved as its number
    raise TypeError(f"cannot save {path or 'the trace'}: {type(value).__name__} is not plain data")


def _layout(value: Any, indent: str) -> str:
    """JSON for diffs: a port, call or lists of numbers on one line; everything else spread out."""
    if not isinstance(value, (dict, list)) or not any(isinstance(v, (dict, list)) for v in _items(value)):
        return json.dumps(value, sort_keys=True, separators=(", ", ": "))
    inner = indent + " "
    if isinstance(value, dict):
        lines = [f"{inner}{json.dumps(k)}: {_layout(value[k], inner)}" for k in sorted(value)]
        return "{\n" + ",\n".join(lines) + "\n" + indent + "}"
    return "[\n" + ",\n".join(inner + _layout(v, inner) for v in value) + "\n" + indent + "]"


def _items(value: dict | list) -> list[Any]:
    return list(value.values()) if isinstance(value, dict) else value


# Loading: from text to plain data --------------------------------------------------------------

def _parse(text: str | bytes) -> Any:
    """Plain JSON data: at most MAX_BYTES, no NaN, no duplicate keys, no nesting deeper than MAX_DEPTH."""
    _check_size(len(text))
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise TraceFileError(f"not UTF-8 text (byte {e.start})") from None
    _check_depth(text)
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise TraceFileError(f"not JSON: {e.msg} (line {e.lineno} column {e.colno})") from None
    except RecursionError:
        raise TraceFileError(f"not an evtsim trace: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:  # a duplicate key, NaN, or an integer with thousands of digits
        raise TraceFileError(f"not JSON: {e}") from None


def _check_depth(text: str) -> None:
    """Count brackets outside strings; refuse before json.loads would recurse that deep."""
    depth = 0
    for token in _TOKENS.finditer(text):
        c = token.group()[0]
        if c in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise TraceFileError(f"not an evtsim trace: nested deeper than {MAX_DEPTH} levels "
                                     f"(at character {token.start()})")
        elif c in "]}":
            depth -= 1


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's pairs as a dict, refusing a key given twice (linear: one set lookup per key)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {_describe(key)}")
            seen.add(key)
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _check_header(doc: Any) -> None:
    """An object with our format name and a version this evtsim reads."""
    if not isinstance(doc, dict):
        raise TraceFileError(f"not an evtsim trace: the top level is {_describe(doc)}, not an object")
    if "format" not in doc:
        raise TraceFileError("not an evtsim trace: no 'format' field")
    if doc["format"] != FORMAT:
        raise TraceFileError(f"not an evtsim trace: format is {_describe(doc['format'])}")
    if "version" not in doc:
        raise TraceFileError("not an evtsim trace: no 'version' field")
    version = doc["version"]
    if type(version) is int and version in OLD_VERSIONS:
        raise TraceFileError(f"version {version} is an older evtsim's trace file: {OLD_VERSIONS[version]}")
    if type(version) is not int or version != VERSION:
        raise TraceFileError(f"unsupported version {_describe(version)} (this evtsim reads version {VERSION})")


# Loading: from plain data to dataclasses, checked against the annotations -----------------------

def _build(tp: Any, value: Any, path: str) -> Any:
    """``value`` as an instance of type ``tp``, or TraceFileError saying where it differs."""
    if dataclasses.is_dataclass(tp):
        return _build_dataclass(tp, value, path)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        return _build_optional(args, value, path)
    if origin is tuple:
        return _build_tuple(args, value, path)
    if tp in (int, str, bool, type(None)):
        if type(value) is not tp:  # exact: a bool is not an int here, nor an int a bool
            raise TraceFileError(f"{path}: expected {_name(tp)}, got {_describe(value)}")
        if tp is str and _lone_surrogate(value):
            raise TraceFileError(f"{path}: {_describe(value)} holds a lone surrogate, which is not text")
        return value
    raise TypeError(f"tracefile cannot load a field of type {tp!r} ({path})")  # a bug, not bad data


def _build_dataclass(cls: type, value: Any, path: str) -> Any:
    """Every field present (or defaulted), none unknown, each of its annotated type."""
    if type(value) is not dict:
        raise TraceFileError(f"{path or 'the trace'}: expected an object ({cls.__name__}), got {_describe(value)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise TraceFileError(f"unknown field {_field(path, printable(unknown[0]))} ({cls.__name__} has no such field)")
    hints = _hints(cls)
    kwargs = {}
    for name, f in fields.items():
        if name in value:
            kwargs[name] = _build(hints[name], value[name], _field(path, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise TraceFileError(f"missing field {_field(path, name)}")
    return cls(**kwargs)


def _build_optional(args: tuple[Any, ...], value: Any, path: str) -> Any:
    """``X | None``: null, or an X."""
    others = [a for a in args if a is not type(None)]
    if len(others) != 1 or len(args) != 2:
        raise TypeError(f"tracefile loads only X | None unions, not {args!r} ({path})")
    if value is None:
        return None
    if others[0] in (int, str, bool) and type(value) is not others[0]:
        raise TraceFileError(f"{path}: expected {_name(others[0])} or null, got {_describe(value)}")
    return _build(others[0], value, path)


def _build_tuple(args: tuple[Any, ...], value: Any, path: str) -> tuple[Any, ...]:
    """``tuple[X, ...]`` from a list of any length, ``tuple[X, Y]`` from a list of exactly two."""
    if type(value) is not list:
        raise TraceFileError(f"{path}: expected a list, got {_describe(value)}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_build(args[0], item, f"{path}[{i}]") for i, item in enumerate(value))
    if len(value) != len(args):
        raise TraceFileError(f"{path}: expected {len(args)} items, got {len(value)}")
    return tuple(_build(tp, item, f"{path}[{i}]") for i, (tp, item) in enumerate(zip(args, value)))


def _check_meaning(trace: Trace) -> None:
    """What types cannot say: records are numbered in order, and the verdict is a known one."""
    for i, record in enumerate(trace.records):
        if record.index != i:
            raise TraceFileError(f"records[{i}].index: expected {i}, got {record.index}")
    if trace.outcome.verdict not in VERDICTS:
        raise TraceFileError(f"outcome.verdict: expected one of {', '.join(VERDICTS)}, "
                             f"got {_describe(trace.outcome.verdict)}")


@cache
def _hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of ``cls`` (its module uses ``from __future__ import annotations``)."""
    return typing.get_type_hints(cls)


def _lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a surrogate code point on its own, which no UTF-8 file can carry."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _field(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _name(tp: type) -> str:
    return "null" if tp is type(None) else tp.__name__


def _describe(value: Any) -> str:
    """A short description of a JSON value for an error message: ``'yes'``, ``true``, ``a list``."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
