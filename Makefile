# The README's two commands: `make demo` and `make test`. Each creates .venv if needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# CPU build served from this machine's disk; a GPU user installs the CUDA wheels instead (README).
TORCH  ?= torch==2.14.1 torchvision==0.29.1
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck docs benchmarks clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dpbench build --pool synthetic --out dpbench-data

test: $(STAMP)
	$(BIN)/python -m pytest -q
	$(BIN)/ruff check dpbench baselines leaderboard tests benchmarks
	$(BIN)/mypy dpbench baselines leaderboard

docs: $(STAMP)
	$(BIN)/dpbench docs --out docs

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/shard_read.py

clean:
	rm -rf $(VENV) dpbench-data .pytest_cache .mypy_cache .ruff_cache
