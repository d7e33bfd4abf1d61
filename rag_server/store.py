"""The passages of a build, stored as JSON lines (one passage per line, no pickle)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .errors import IndexLoadError
from .passage import Passage


def save_passages(path: Path, passages: Sequence[Passage]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for passage in passages:
            handle.write(json.dumps(passage.to_dict(), ensure_ascii=False) + "\n")


def load_passages(path: Path) -> list[Passage]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise IndexLoadError(path, "missing file") from None
    except UnicodeDecodeError:
        raise IndexLoadError(path, "not valid UTF-8") from None
    passages = []
    for lineno, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
            passage = Passage.from_dict(row)
        except (json.JSONDecodeError, TypeError, AttributeError):
            raise IndexLoadError(path, f"line {lineno} is not a passage record") from None
        if not isinstance(passage.id, str) or not isinstance(passage.text, str):
            raise IndexLoadError(path, f"line {lineno} lacks an id or text")
        passages.append(passage)
    return passages
