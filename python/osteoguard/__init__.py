"""osteoguard — bone-health clinical decision support: the Rust engine as a Python module.

The functions here are thin wrappers over the compiled module ``osteoguard._native`` (crate
``crates/osteoguard-py``); no clinical logic is written in Python.

* :func:`assess` — one patient's ``osteoguard.assessment/1`` JSON, as a dict.
* :func:`worklist_batch` / :func:`worklist_arrow` — the vectorised entry point: the worklist rows
  of many patients in one call (what a Spark executor calls once per Arrow batch).
* :func:`classify_lines` / :func:`is_relevant` — the per-line routing decision the Spark job
  takes before the shuffle (``osteoguard screen``'s router and the FHIR reader's disposition).
* :mod:`osteoguard.spark` — the PySpark job (``python -m osteoguard.spark``).
"""

from __future__ import annotations

import datetime as _dt
import json as _json
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from . import _native

__all__ = [
    "assess",
    "is_relevant",
    "classify_lines",
    "worklist_batch",
    "worklist_arrow",
    "WORKLIST_COLUMNS",
    "ENGINE_VERSION",
    "InputError",
]

#: Columns of the worklist, in order — the header of ``osteoguard screen``'s worklist.csv.
WORKLIST_COLUMNS: Tuple[str, ...] = tuple(_native.WORKLIST_COLUMNS)
ENGINE_VERSION: str = _native.ENGINE_VERSION
#: Raised for input ``osteoguard screen`` refuses too (a line that is not one JSON value): its
#: message is ``file:line:column: not valid JSON: …`` (a ``ValueError``).
InputError = _native.InputError
__version__ = ENGINE_VERSION

Lines = Union[str, bytes, Iterable[Union[str, bytes, dict]]]


def _as_of(as_of: Union[str, _dt.date]) -> str:
    return as_of.isoformat() if isinstance(as_of, _dt.date) else str(as_of)


def _lines(resources: Lines) -> List[str]:
    if isinstance(resources, bytes):
        resources = resources.decode("utf-8")
    if isinstance(resources, str):
        return resources.splitlines()
    out = []
    for r in resources:
        if isinstance(r, dict):
            out.append(_json.dumps(r))
        elif isinstance(r, bytes):
            out.append(r.decode("utf-8"))
        else:
            out.append(r)
    return out


def assess(
    resources_ndjson_lines: Lines,
    as_of: Union[str, _dt.date],
    patient: Optional[str] = None,
    config: Optional[str] = None,
) -> dict:
    """Assess one patient: the ``osteoguard.assessment/1`` JSON as a dict.

    ``resources_ndjson_lines``: NDJSON text, or an iterable of lines (str / bytes) or of parsed
    resources (dicts). ``patient`` names the patient when the lines hold several. ``config``
    is the text of a site configuration (TOML). Raises ``ValueError`` on a bad date, bad
    configuration, a line that is not JSON, or no / several patients.
    """
    text = _native.assess_json(_lines(resources_ndjson_lines), _as_of(as_of), patient, config)
    return _json.loads(text)


def is_relevant(line: Union[str, bytes]) -> bool:
    """Whether any rule can use the resource on this NDJSON line (the engine's decision)."""
    if isinstance(line, bytes):
        line = line.decode("utf-8")
    return _native.is_relevant(line)


def classify_lines(lines: Sequence[Optional[str]]) -> Tuple[List[str], List[Optional[str]]]:
    """Routes a batch of NDJSON lines: ``(actions, ids)``.

    action ``keep`` (ship the line to patient ``id``), ``key-only`` (ship only ``id``: the line
    cannot change a finding, but names a patient), ``shared`` (a Medication with this ``id``,
    joined to the patients that name it) or ``drop:<reason>``.
    """
    return _native.classify_lines(list(lines))


def worklist_batch(
    keys: Sequence[str],
    groups: Sequence[Sequence[str]],
    as_of: Union[str, _dt.date],
    shared: Optional[Sequence[Tuple[str, str]]] = None,
    config: Optional[str] = None,
) -> dict:
    """Worklist rows of many patients in one call.

    ``groups[i]``: the NDJSON lines of patient ``keys[i]``. ``shared``: ``(id, line)`` of the
    Medication resources. Returns a dict of equal-length column lists: ``WORKLIST_COLUMNS``
    (text as in screen's worklist.csv; ``None`` where screen writes an empty field) and
    ``_severity_rank`` and ``_patient_rank`` (the row's and the patient's gravest: 0 info … 3
    critical) for sorting: one block per patient, as screen's worklist.
    """
    return _native.worklist_batch(
        list(keys),
        [list(g) for g in groups],
        _as_of(as_of),
        list(shared) if shared else None,
        config,
    )


def worklist_arrow(keys, groups, as_of, shared=None, config=None):
    """As :func:`worklist_batch`, as a ``pyarrow.RecordBatch`` (age as int64)."""
    import pyarrow as pa

    cols = worklist_batch(keys, groups, as_of, shared, config)
    return _to_arrow(cols)


# ---------------------------------------------------------------------------------------------
# Arrow buffers to and from the engine (the Spark job): a few calls per batch, none per line.
# ---------------------------------------------------------------------------------------------


def _bytes(buf) -> bytes:
    return b"" if buf is None else buf.to_pybytes()


def _str_bufs(arr):
    """A pyarrow ``string`` / ``large_string`` (or ``binary`` / ``large_binary``) array as the
    engine's ``(offsets, data, validity, offset, len, large)``."""
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray):
        arr = pa.concat_arrays(arr.chunks) if arr.num_chunks != 1 else arr.chunk(0)
    validity, offsets, data = arr.buffers()[:3]
    return (
        _bytes(offsets),
        _bytes(data),
        None if validity is None or arr.null_count == 0 else validity.to_pybytes(),
        arr.offset,
        len(arr),
        pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type),
    )


def _record_batch(columns):
    """The engine's built columns ``(name, kind, len, nulls, validity, values, data)`` as a
    ``pyarrow.RecordBatch`` (the buffers are wrapped, not copied)."""
    import pyarrow as pa

    types = {"utf8": pa.string(), "binary": pa.binary(), "int64": pa.int64(), "int8": pa.int8()}
    arrays, names = [], []
    for name, kind, n, nulls, validity, values, data in columns:
        bufs = [None if validity is None else pa.py_buffer(validity), pa.py_buffer(values)]
        if kind in ("utf8", "binary"):
            bufs.append(pa.py_buffer(data))
        arrays.append(pa.Array.from_buffers(types[kind], n, bufs, null_count=nulls))
        names.append(name)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _arrow_schema():
    import pyarrow as pa

    fields = []
    for c in WORKLIST_COLUMNS:
        fields.append(pa.field(c, pa.int64() if c == "age" else pa.string()))
    fields.append(pa.field("_severity_rank", pa.int8(), nullable=False))
    fields.append(pa.field("_patient_rank", pa.int8(), nullable=False))
    return pa.schema(fields)


def _to_arrow(cols: dict):
    import pyarrow as pa

    schema = _arrow_schema()
    arrays = []
    for f in schema:
        v = cols[f.name]
        if f.name == "age":
            v = [None if a is None else int(a) for a in v]
        arrays.append(pa.array(v, type=f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
