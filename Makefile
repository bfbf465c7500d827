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

# The main job on the embedded (SYNTHETIC) pool: build, evaluate two baseline encoders, rank them.
demo: $(STAMP)
	$(BIN)/dpbench build --pool synthetic --out dpbench-data
	$(BIN)/dpbench eval --encoder random --input-size 64 --probe fast --data dpbench-data \
		--out dpbench-results/random
	$(BIN)/dpbench eval --encoder torchvision:resnet18 --name resnet18-random-init --input-size 64 --probe fast \
		--data dpbench-data --out dpbench-results/resnet18-random-init
	$(BIN)/dpbench rank dpbench-results/random/results.json dpbench-results/resnet18-random-init/results.json \
		--out dpbench-results/ranking --plot dpbench-results/ranking/cd.png

test: $(STAMP)
	$(BIN)/python -m pytest -q
	$(BIN)/ruff check dpbench baselines leaderboard tests benchmarks
	$(BIN)/mypy dpbench baselines leaderboard

docs: $(STAMP)
	$(BIN)/dpbench docs --out docs

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/shard_read.py

clean:
	rm -rf $(VENV) dpbench-data dpbench-results .pytest_cache .mypy_cache .ruff_cache
