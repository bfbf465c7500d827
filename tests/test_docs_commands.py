"""Every command in README.md and docs/*.md runs: the fenced ``bash``/``sh``/``console`` blocks are extracted and
their commands run, page by page and in order, on a small synthetic pool, so the docs cannot drift from the code.

A command that cannot run here is listed in :data:`NOT_RUN` with the reason (network, gated weights, a GPU, hours
of training, a long-running server, data this machine does not have); one that takes minutes is in :data:`SLOW` and
runs under ``-m slow``. A usage synopsis (``[--option]`` marks optional parts) is not run: each option it names
must be in the command's ``--help``. A wrong command is fixed in the docs, never listed here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from dpbench.build import build_pool
from dpbench.tasks.registry import get_pool
from tests.conftest import SMALL_OPTIONS

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LANGUAGES = ("bash", "sh", "shell", "console")
#: The pool the commands run on, as ``dpbench-data`` in each page's working folder (the docs' own tasks).
DOCS_TASKS = ["synthetic-Necrosis", "synthetic-Lung"]

NETWORK = "downloads from the network (the tests run offline)"
OWN_DATA = "needs the example's real images and slides (shared/realdata), which the page only shows"
TRAINING = "hours of training on a GPU (the pre-training and baseline tests run tiny versions)"
NOT_RUN: dict[str, str] = {
    "dpbench loto run --data dpbench-data --out loto": "the paper's protocol needs a mormont2020 build (ten tasks are "
    "private data) and about 800 GPU-hours; tests/test_loto.py runs the tiny synthetic protocol end to end",
    "dpbench loto report --out loto --baseline res/imagenet-linear/results.json --baseline res/joint/results.json":
    "reports the sweep of the command above, which cannot run here",
    "make demo": "minutes: creates a virtual environment and runs the whole pipeline (CI runs it)",
    "make test": "runs this very test suite",
    "dpbench download --pool synthetic --mirror https://huggingface.co/datasets/ORG/NAME/resolve/main/ "
    "--out dpbench-data": NETWORK,
    "dpbench download --pool synthetic --tasks synthetic-Lung --tasks synthetic-Necrosis --out dpbench-data":
        NETWORK + " (the default mirror)",
    "rsync -a published/ web-server:/var/www/dpbench/synthetic/": "copies to a web server",
    "hf auth login": "logs in to the Hugging Face Hub",
    "dpbench publish dpbench-data --to hf://ORG/NAME": NETWORK + " (uploads to the Hub)",
    "dpbench check-encoder uni2": NETWORK + "; gated weights",
    "dpbench eval --encoder uni2 --data dpbench-data --out results/uni2": NETWORK + "; gated weights",
    "dpbench encoders fetch uni2 virchow2": NETWORK + "; gated weights",
    "pip install 'dpbench-pathology[leaderboard]'": "installs packages (the test environment has the extra)",
    "dpbench serve --pool dpbench-data": "a server that runs until stopped (tests/leaderboard starts one)",
    "dpbench serve --pool /srv/dpbench/pool --host 127.0.0.1 --port 8000 --proxy-headers":
        "a server that runs until stopped, on a production path",
    "dpbench leaderboard token revoke 3fa9c1d27b40": "an example token id from another board",
    "dpbench eval --encoder torchvision:resnet50 --data dpbench-data --out results/resnet50":
        "ResNet-50 at 224 px over the whole embedded pool: over 15 min on 2 CPU cores (measured); the README's "
        "eval and rank commands run the same pipeline with a small encoder",
    "dpbench rank results/*/results.json --plot cd.png": "ranks the ResNet-50 evaluation above",
    "dpbench tasks init he-vs-ihc": OWN_DATA,
    "dpbench tasks init slides --name SkinTissue": OWN_DATA,
    "dpbench build --task he-vs-ihc/task.yaml --task slides/task.yaml --out mylab-pool": OWN_DATA,
    "dpbench tasks --data mylab-pool": OWN_DATA,
    "dpbench eval --data mylab-pool --encoder random --input-size 64 --out results/random": OWN_DATA,
    "dpbench eval --data mylab-pool --encoder torchvision:resnet18 --input-size 64 --out results/resnet18":
        OWN_DATA,
    "dpbench rank results/random/results.json results/resnet18/results.json": OWN_DATA,
    "dpbench pretrain --data dpbench-data --exclude synthetic-Lung --arch resnet50 --lr 1e-4 --tau 5 --warmup "
    "--out runs/mtl-no-lung": TRAINING,
    "dpbench eval --encoder checkpoint:runs/mtl-no-lung/encoder.pt --data dpbench-data --tasks synthetic-Lung "
    "--out results/mtl": "evaluates the encoder the pre-training above would export",
    "torchrun --nproc_per_node 4 -m dpbench pretrain --data dpbench-data --arch resnet50 --batch-size 64 "
    "--workers 6 --out runs/mtl-ddp": TRAINING + " (4 GPUs)",
    "dpbench baseline imagenet --data dpbench-data --arch resnet50 --protocol linear --out res/imagenet-linear":
        NETWORK + " (ImageNet weights)",
    "dpbench baseline imagenet --data dpbench-data --protocol finetune --out res/imagenet-finetune":
        NETWORK + " (ImageNet weights); " + TRAINING,
    "dpbench baseline scratch --data dpbench-data --arch resnet50 --out res/scratch": TRAINING,
    "dpbench baseline joint --data dpbench-data --out res/joint": TRAINING,
    "dpbench sources fetch nct_crc_he --to RAW --accept-licence": NETWORK,
    "dpbench build --pool public2026 --raw RAW --out data/public2026": "needs the raw downloads above",
    "dpbench build --pool mormont2020 --raw RAW --out data/mormont2020 --licence-allow CC0-1.0,CC-BY-4.0":
        "needs the raw downloads and private exports",
    "dpbench audit data/mormont2020": "audits the real pool built above",
    "export DPBENCH_TOKEN=dpb_...": "sets a secret",
    "dpbench submit results/uni2/results.json --server https://board.example.org --code-url "
    "https://github.com/you/model --pretraining-data \"TCGA slides, no task of this pool\"": NETWORK,
    "curl -sS https://board.example.org/api/v1/submissions -H \"Authorization: Bearer $DPBENCH_TOKEN\" -H "
    "\"Content-Type: application/json\" -H \"Idempotency-Key: $(uuidgen)\" -d @- <<EOF": NETWORK,
}
#: Commands that run, but take minutes on two CPU cores: only under ``-m slow``.
SLOW: dict[str, str] = {
    "dpbench build --pool synthetic --out dpbench-data": "builds the whole embedded pool (22 tasks)",
    "dpbench check-encoder torchvision:resnet50": "ResNet-50 contract checks on the CPU",
    "dpbench audit dpbench-data --strict --workers 8": "eight audit processes",
}
#: Commands documented as failing on purpose, with their exit status.
EXIT: dict[str, int] = {"dpbench sources fetch mitos_atypia14 --to RAW": 1}  # prints the manual steps, exits 1


@dataclass(frozen=True)
class Command:
    page: str
    line: int
    text: str


def _strip_comment(line: str) -> str:
    """``cmd   # note`` → ``cmd`` (a ``#`` starting a word, outside quotes)."""
    quote = ""
    for i, ch in enumerate(line):
        if ch in "'\"" and not quote:
            quote = ch
        elif ch == quote:
            quote = ""
        elif ch == "#" and not quote and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def page_commands(page: Path) -> list[Command]:
    """The commands of ``page``'s shell blocks: continuations joined, comments and heredoc bodies dropped; in a
    ``console`` block only the ``$ `` lines."""
    commands = []
    text = page.read_text()
    for block in re.finditer(r"^```(\w+)\n(.*?)^```", text, re.S | re.M):
        if block.group(1) not in LANGUAGES:
            continue
        start = text[:block.start(2)].count("\n") + 1
        lines = block.group(2).splitlines()
        pending, first, heredoc = "", 0, ""
        for offset, raw in enumerate(lines):
            if heredoc:
                heredoc = "" if raw.strip() == heredoc else heredoc
                continue
            if block.group(1) == "console":
                if not raw.startswith("$ "):
                    continue
                raw = raw[2:]
            line = _strip_comment(raw)
            if not pending:
                first = start + offset
            if line.endswith("\\"):
                pending += line[:-1].strip() + " "
                continue
            full = (pending + line.strip()).strip()
            pending = ""
            if full:
                commands.append(Command(page.name, first, full))
                marker = re.search(r"<<-?\s*'?(\w+)'?", full)
                heredoc = marker.group(1) if marker else ""
    return commands


def synopsis(text: str) -> bool:
    """A usage form rather than a command: optional parts in brackets."""
    return " [" in text


@pytest.fixture(scope="module")
def docs_pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("docs-pool") / "dpbench-data"
    build_pool(get_pool("synthetic"), root, DOCS_TASKS, SMALL_OPTIONS)
    return root


def _shell(folder: Path) -> dict[str, str]:
    """The environment a page's commands run in: ``dpbench`` is this interpreter's, the Hub is offline."""
    bin_dir = folder / ".bin"
    bin_dir.mkdir()
    shim = bin_dir / "dpbench"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m dpbench \"$@\"\n")
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DPBENCH_")}
    env.update(PATH=f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}", COLUMNS="200", HF_HUB_OFFLINE="1")
    return env


def run_page(page: Path, folder: Path, pool: Path, slow: bool) -> list[str]:
    """Run ``page``'s commands in order in ``folder``; return what ran, or fail on the first broken one."""
    folder.mkdir()
    shutil.copytree(pool, folder / "dpbench-data")
    (folder / "docs").symlink_to(REPO / "docs")  # python:docs/examples/... specs are relative to the repository
    env = _shell(folder)
    ran = []
    for command in page_commands(page):
        if command.text in NOT_RUN or (command.text in SLOW and not slow):
            continue
        if synopsis(command.text):
            name = command.text.split(" [")[0].split()
            help_text = subprocess.run([*name, "--help"], capture_output=True, text=True, env=env, cwd=folder,
                                       timeout=120).stdout
            for option in re.findall(r"--[a-z][a-z-]*", command.text):
                assert option in help_text, f"{page.name}:{command.line}: {option} is not an option of {name}"
            continue
        result = subprocess.run(["bash", "-c", command.text], capture_output=True, text=True, env=env, cwd=folder,
                                timeout=900)
        expected = EXIT.get(command.text, 0)
        assert result.returncode == expected, (
            f"{page.name}:{command.line}: `{command.text}` exited {result.returncode}\n{result.stderr[-2000:]}")
        assert "Traceback" not in result.stderr, f"{page.name}:{command.line}: {result.stderr[-2000:]}"
        ran.append(command.text)
    return ran


def test_every_command_is_run_or_has_a_reason() -> None:
    """Each documented command runs or is listed; the lists name only commands still in the docs."""
    found = {c.text for page in PAGES for c in page_commands(page)}
    assert found, "no command found in the docs"
    stale = (set(NOT_RUN) | set(SLOW) | set(EXIT)) - found
    assert not stale, f"listed commands no longer in the docs: {sorted(stale)}"
    for text in found - set(NOT_RUN) - set(SLOW):
        assert text.split()[0] == "dpbench", f"only dpbench commands run; give {text!r} a reason in NOT_RUN"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_documented_commands_run(page: Path, docs_pool: Path, tmp_path: Path) -> None:
    run_page(page, tmp_path / "work", docs_pool, slow=False)


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if any(c.text in SLOW for c in page_commands(p))],
                         ids=lambda p: p.name)
def test_documented_commands_run_slow_ones_too(page: Path, docs_pool: Path, tmp_path: Path) -> None:
    assert run_page(page, tmp_path / "work", docs_pool, slow=True)
