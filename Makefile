# Two entry points for a fresh machine: `make run` and `make test` (each sets itself up).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
INDEX  ?= indexes
CORPUS ?= corpus

.PHONY: install run ask index rebuild test quick lint typecheck unit browser learn clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: a bare or open-ended requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	# [dev] pulls the [teaching], [eval] and [milvus] extras too: everything the full test suite runs.
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Build the indexes only when no build is served yet.
index: install
	@test -s $(INDEX)/CURRENT || $(PY) -m rag_server.cli build --corpus $(CORPUS) --out $(INDEX)

# Always make a fresh build (switched in atomically; the served one stays until it is done).
rebuild: install
	$(PY) -m rag_server.cli build --corpus $(CORPUS) --out $(INDEX)

HOST    ?= 127.0.0.1
PORT    ?= 8000
THREADS ?= 4

# Serve the API with waitress (rag_server/serve.py): one process (index and models loaded once),
# threads that only ever get complete requests, so slow or idle connections starve nothing.
run: index
	@echo "serving on http://$(HOST):$(PORT)  (try: curl -s -X POST http://$(HOST):$(PORT)/v1/ask -H 'Content-Type: application/json' -d '{\"question\": \"Qual o prazo para comunicar um incidente?\"}')"
	RAG_INDEX_DIR=$(INDEX) $(PY) -m rag_server.serve --host $(HOST) --port $(PORT) --threads $(THREADS)

# Answer the sample question from the command line (no server).
ask: index
	$(PY) -m rag_server.cli ask --index $(INDEX)

lint: install
	$(VENV)/bin/ruff check rag_server tests scripts

typecheck: install
	$(VENV)/bin/mypy

# Debian's Chromium for the browser test (tests/test_web.py drives it with Playwright; no browser download).
browser:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

# Every test: real models, server processes and Chromium included (markers in pyproject.toml).
unit: install browser
	$(VENV)/bin/pytest -q

test: lint typecheck unit

# The fast subset: no real model, no server process, no browser (and no apt).
quick: install
	$(VENV)/bin/pytest -q -m "not slow and not server and not browser"

# The lessons the product grew from, smallest first.
learn: install
	$(PY) -m rag_server.teaching.word_bigrams
	$(PY) -m rag_server.teaching.mlp_torch
	$(PY) -m rag_server.teaching.mlp_keras
	$(PY) -m rag_server.teaching.char_bigram --corpus $(CORPUS)
	$(PY) -m rag_server.teaching.keyword_rag
	$(PY) -m rag_server.teaching.ladder --corpus $(CORPUS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
