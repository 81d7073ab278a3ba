# Two commands do all the set-up on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed
# Written last by prepare-model: the kernel chosen for this machine (retriever.kernels).
MODEL := .cache/models/multilingual-e5-small/kernel.json

.PHONY: run test install model index lint format eval clean browser

run: index  ## start the chat page on http://127.0.0.1:7860
	$(PY) app.py

# Test files run on TEST_WORKERS processes (pytest-xdist), each file whole on one of them
# (its module fixtures, such as a server, set up once), in the order pytest collects them:
# the slow benchmark and end-to-end files first, the many quick ones last to even out the
# end. Many tests wait on a server, a browser or a command, so two share a 2-core machine.
TEST_WORKERS ?= 2

test: lint $(MODEL) browser  ## lint, then every test, with the real model and browser
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

browser:  ## Debian's Chromium and CJK fonts for the browser tests (apt-get when missing)
	scripts/install-browser.sh

install: $(RUNTIME)

$(RUNTIME): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --editable .
	touch $@

# Tests include a smoke run of the benchmarks, so they need the peers too (requirements-bench
# includes requirements-dev).
$(DEV): $(RUNTIME) requirements-dev.txt requirements-bench.txt
	$(PY) -m pip install --quiet -r requirements-bench.txt
	touch $@

model: $(MODEL)  ## build the default embedding model once, offline

$(MODEL): $(RUNTIME)
	$(PY) -m retriever prepare-model

index: $(MODEL)  ## (re)build index/ when it is missing or the corpus changed
	$(PY) -m retriever build --if-stale

lint: $(DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(DEV)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

eval: $(MODEL)  ## the README's quality table (minutes: embeds each evaluation set once)
	$(PY) -m retriever eval bench/datasets/cmrc2018_dev --compare
	$(PY) -m retriever eval bench/datasets/dureader_demo --compare
	$(PY) -m retriever eval bench/datasets/drcd_test --compare
	$(PY) -m retriever eval bench/datasets/dureader_faq --compare

clean:
	rm -rf $(VENV) .cache .pytest_cache
