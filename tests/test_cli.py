import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag_server import cli
from rag_server import pipeline as pipeline_module


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rag_server.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda d: None, "corpus directory does not exist"),
        (lambda d: d.mkdir(), "no documents found"),
        (
            lambda d: (d.mkdir(), (d / "a.md").write_text("---\nid: a\ntitle: [x\n---\n")),
            "a.md: malformed front matter",
        ),
        (lambda d: (d.mkdir(), (d / "b.txt").write_bytes(b"\xff\xfe\xfa")), "b.txt: not valid UTF-8"),
    ],
)
def test_build_bad_input_is_one_line_and_exit_2(tmp_path: Path, setup, expected: str) -> None:  # type: ignore[no-untyped-def]
    corpus = tmp_path / "corpus"
    setup(corpus)
    result = _run("build", "--corpus", str(corpus), "--out", str(tmp_path / "idx"), "--quiet", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    assert "Traceback" not in result.stderr


def test_search_and_ask_on_a_build(built, tmp_path: Path, capsys, monkeypatch, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    index = str(tmp_path / "indexes")
    assert cli.main(["search", "consentimento do titular", "--index", index, "--strategy", "bm25", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits and hits[0]["article"] == "2" and hits[0]["language"] == "pt"
    # The index was built with the fake encoder: the pipeline behind `ask` must embed with it too.
    monkeypatch.setattr(
        pipeline_module, "RagPipeline", functools.partial(pipeline_module.RagPipeline, encoder=fake_encoder)
    )
    question = "report a security incident"
    assert cli.main(["ask", question, "--index", index, "--strategy", "keyword"]) == 0
    out = capsys.readouterr().out
    # The packaged generator answers, with the passage it read cited.
    assert "generator: " in out and "generator: none" not in out
    answer = next(line for line in out.splitlines() if line.startswith("Answer: "))
    assert len(answer) > len("Answer: ") and "Citations:" in out and "Art. 3" in out
    assert cli.main(["ask", question, "--index", index, "--strategy", "keyword", "--checkpoint", "none"]) == 0
    out = capsys.readouterr().out
    assert "generator: none" in out and "the answer is the best evidence sentence, quoted" in out
    quoted = next(line for line in out.splitlines() if line.startswith("Answer: "))
    assert quoted.endswith(" [1]") and "three business days" in quoted


def test_unknown_strategy_is_a_one_line_error(built, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code = cli.main(["search", "x y", "--index", str(tmp_path / "indexes"), "--strategy", "magic"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: unknown strategy 'magic'") and "bm25" in err
