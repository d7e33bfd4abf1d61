"""Index files on disk: arrays as ``.npy`` (never pickled), parameters as ``params.json``, the
vocabulary as ``vocab.json``, and the term matrix the keyword and BM25 indexes share.

Loading checks what a checksum cannot: a file that is listed in the manifest but was edited
and re-checksummed must still not put inf or NaN into every score or index out of bounds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexLoadError
from .sparse import TermMatrix


def save_arrays(directory: Path, arrays: dict[str, Any], params: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        np.save(directory / f"{name}.npy", array, allow_pickle=False)
    (directory / "params.json").write_text(json.dumps(params, indent=2, ensure_ascii=False) + "\n")


def load_params(directory: Path, kind: str, version: int) -> dict[str, Any]:
    path = directory / "params.json"
    try:
        params = json.loads(path.read_text())
    except FileNotFoundError:
        raise IndexLoadError(path, "missing file") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise IndexLoadError(path, "not valid JSON") from None
    if not isinstance(params, dict) or params.get("kind") != kind:
        raise IndexLoadError(path, f"not a {kind} index")
    if params.get("version") != version:
        raise IndexLoadError(path, f"index version {params.get('version')} is not {version}; rebuild")
    return params


def load_array(directory: Path, name: str) -> np.ndarray:
    path = directory / f"{name}.npy"
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise IndexLoadError(path, "missing file") from None
    except (ValueError, OSError, EOFError) as exc:
        raise IndexLoadError(path, f"unreadable array ({exc})") from None


def check_values(
    path: Path, array: np.ndarray, kind: str, *, positive: bool = False, non_negative: bool = False
) -> np.ndarray:
    """``array`` when it is one-dimensional, of the expected kind (``"f"`` float, ``"i"``
    integer) and, for floats, finite; with ``positive``/``non_negative``, in that range. A
    checksum only proves a file is the one the manifest lists: an edited file with its checksum
    recomputed must still not put inf or NaN into every score."""
    if array.ndim != 1 or array.dtype.kind not in ({"i", "u"} if kind == "i" else {"f"}):
        raise IndexLoadError(path, f"expected a one-dimensional {'integer' if kind == 'i' else 'float'} array")
    if kind == "f" and not np.isfinite(array).all():
        raise IndexLoadError(path, "holds values that are not finite (inf or NaN)")
    if array.size and positive and not (array > 0).all():
        raise IndexLoadError(path, "holds values that are not positive")
    if array.size and non_negative and not (array >= 0).all():
        raise IndexLoadError(path, "holds negative values")
    return array


def save_vocab(directory: Path, vocab: dict[str, int]) -> None:
    terms = sorted(vocab, key=vocab.__getitem__)
    (directory / "vocab.json").write_text(json.dumps(terms, ensure_ascii=False))


def load_vocab(directory: Path) -> dict[str, int]:
    path = directory / "vocab.json"
    try:
        terms = json.loads(path.read_text())
    except FileNotFoundError:
        raise IndexLoadError(path, "missing file") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise IndexLoadError(path, "not valid JSON") from None
    if not isinstance(terms, list):
        raise IndexLoadError(path, "expected a JSON list of terms")
    return {term: i for i, term in enumerate(terms)}


def save_matrix(directory: Path, matrix: TermMatrix, params: dict[str, Any], **extra: np.ndarray) -> None:
    """``matrix`` (plus ``extra`` arrays of the same directory) and ``params``."""
    arrays = {"indptr": matrix.indptr, "doc_ids": matrix.doc_ids, "tf": matrix.tf, "doc_len": matrix.doc_len, **extra}
    save_arrays(directory, arrays, params)
    save_vocab(directory, matrix.vocab)


def load_matrix(directory: Path) -> TermMatrix:
    """The term matrix saved by :func:`save_matrix`, its arrays checked against each other."""
    vocab = load_vocab(directory)

    def load(name: str, kind: str, **bounds: bool) -> np.ndarray:
        return check_values(directory / f"{name}.npy", load_array(directory, name), kind, **bounds)

    matrix = TermMatrix(
        vocab=vocab,
        indptr=load("indptr", "i", non_negative=True),
        doc_ids=load("doc_ids", "i", non_negative=True),
        tf=load("tf", "f", positive=True),
        doc_len=load("doc_len", "f", non_negative=True),
    )
    if matrix.indptr.shape != (len(vocab) + 1,) or int(matrix.indptr[-1]) != matrix.doc_ids.shape[0]:
        raise IndexLoadError(directory / "indptr.npy", "does not match vocab.json and doc_ids.npy")
    if int(matrix.indptr[0]) != 0 or (np.diff(matrix.indptr) < 0).any():
        raise IndexLoadError(directory / "indptr.npy", "offsets do not start at 0 and never decrease")
    if matrix.tf.shape != matrix.doc_ids.shape:
        raise IndexLoadError(directory / "tf.npy", "length differs from doc_ids.npy")
    if matrix.doc_ids.size and int(matrix.doc_ids.max()) >= matrix.n_docs:
        raise IndexLoadError(directory / "doc_ids.npy", "refers to passages beyond doc_len.npy")
    return matrix
