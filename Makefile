# The README's two commands: `make demo` and `make test`. Each creates .venv if needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# CPU build served from this machine's disk; a GPU user installs the CUDA wheels instead (README).
TORCH  ?= torch==2.14.1 torchvision==0.29.1
STAMP  := $(VENV)/.installed

.PHONY: demo loto-demo test lint typecheck docs benchmarks clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip uninstall --quiet --yes dpbench 2>/dev/null || true  # the old distribution name (now dpbench-pathology)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The paper's evaluation tasks, held out of the demo's pre-training (linked tasks follow automatically).
HELD_OUT := Necrosis ProliferativePattern CellInclusion MouseLba HumanLba Lung Glomeruli Breast1 Breast2 BoneMarrow

# The main job on the embedded (SYNTHETIC) pool: build, evaluate two baseline encoders, pre-train a small
# multi-task encoder without the evaluation tasks, evaluate it, and rank the three.
demo: $(STAMP)
	$(BIN)/dpbench build --pool synthetic --out dpbench-data
	$(BIN)/dpbench pretrain --data dpbench-data $(foreach t,$(HELD_OUT),--exclude synthetic-$(t)) --arch tiny \
		--weights none --size 64 --iterations 300 --batch-size 32 --lr 0.05 --tau 1 --checkpoint-every 100 \
		--device cpu --resume --out dpbench-results/pretrain-tiny
	$(BIN)/dpbench eval --encoder checkpoint:dpbench-results/pretrain-tiny/encoder.pt --name tiny-multitask \
		--probe fast --data dpbench-data --out dpbench-results/tiny-multitask
	$(BIN)/dpbench eval --encoder random --input-size 64 --probe fast --data dpbench-data \
		--out dpbench-results/random
	$(BIN)/dpbench eval --encoder torchvision:resnet18 --name resnet18-random-init --input-size 64 --probe fast \
		--data dpbench-data --out dpbench-results/resnet18-random-init
	$(BIN)/dpbench rank dpbench-results/tiny-multitask/results.json dpbench-results/random/results.json \
		dpbench-results/resnet18-random-init/results.json --out dpbench-results/ranking \
		--plot dpbench-results/ranking/cd.png
# The leaderboard: a local service on SQLite takes the three results (re-scored from their predictions), prints
# the board's URL and top rows, exports the static board to dpbench-results/leaderboard/site, and stops.
	$(BIN)/dpbench leaderboard demo --pool dpbench-data --out dpbench-results/leaderboard \
		dpbench-results/tiny-multitask/results.json dpbench-results/random/results.json \
		dpbench-results/resnet18-random-init/results.json

# The paper's LOTO protocol, tiny (docs/loto.md): 2 left-out sets × 2 learning rates × 2 seeds of a tiny backbone
# on three SYNTHETIC tasks, a local Ray on 127.0.0.1 (CPU), selection on validation, final test evaluation, report.
LOTO_TASKS := synthetic-Necrosis synthetic-WarwickCRC synthetic-Janowczyk7
loto-demo: $(STAMP)
	$(BIN)/dpbench build --pool synthetic --out dpbench-loto-data $(foreach t,$(LOTO_TASKS),--tasks $(t))
	$(BIN)/dpbench loto plan
	$(BIN)/dpbench loto run --data dpbench-loto-data --out dpbench-results/loto --protocol synthetic-tiny \
		--lrs 0.05,0.01 --taus 1 --archs tiny --warmups off --seeds 2 --iterations 300 --checkpoint-every 100 \
		--batch-size 32 --size 64 --weights none --probe fast --bn-adapt-batches 2 --gpus-per-trial 0 --device cpu
	$(BIN)/dpbench eval --encoder random --input-size 64 --probe fast --data dpbench-loto-data --pool synthetic \
		--tasks synthetic-Necrosis --tasks synthetic-Janowczyk7 --out dpbench-results/loto-random
	$(BIN)/dpbench loto report --out dpbench-results/loto --baseline dpbench-results/loto-random/results.json

test: $(STAMP)
	$(BIN)/python -m pytest -q
	$(BIN)/ruff check dpbench baselines leaderboard tests benchmarks
	$(BIN)/mypy dpbench baselines/dpbench_baselines leaderboard/dpbench_leaderboard

docs: $(STAMP)
	$(BIN)/dpbench docs --out docs

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/shard_read.py

clean:
	rm -rf $(VENV) dpbench-data dpbench-loto-data dpbench-results .pytest_cache .mypy_cache .ruff_cache
