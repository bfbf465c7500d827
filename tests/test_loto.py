"""The LOTO protocol (§IV-D to IV-F): protocol definitions, selection from stored trial scores, and the whole
tiny protocol on local Ray (killed and resumed, test splits hidden until the final stage)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from itertools import product
from pathlib import Path

import numpy as np
import pytest
from dpbench_baselines.loto import left_out_sets
from dpbench_baselines.protocols import LotoProtocol, derived_protocol, get_protocol
from dpbench_baselines.selection import select
from dpbench_baselines.sweep import OWNER, TEMP_PREFIX
from dpbench_baselines.sweep_spec import Grid, SweepSpec, asha_fraction
from dpbench_baselines.trial import ATTEMPTS, SCORES, trial_folder

from dpbench.errors import DpbenchError
from dpbench.pool.built import BuiltPool
from dpbench.tasks.registry import get_pool, get_task

#: The tiny protocol: 2 learning rates × 2 seeds × 2 left-out sets of the small pool, tiny backbone, CPU.
TINY = ["--protocol", "synthetic-tiny", "--lrs", "0.05,0.005", "--taus", "1", "--archs", "tiny", "--warmups", "off",
        "--seeds", "2", "--iterations", "120", "--checkpoint-every", "40", "--batch-size", "16", "--size", "32",
        "--weights", "none", "--probe", "fast", "--bn-adapt-batches", "1", "--local-cpus", "2"]


def _cli(*args: str, timeout: int = 300, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {"COLUMNS": "200", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "RAY_AUTH_MODE": "disabled", "HOME": str(Path.home())}
    return subprocess.run([sys.executable, "-m", "dpbench", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, **kwargs)  # type: ignore[call-overload]


def test_protocols_are_linked_closed_data_with_hashes() -> None:
    paper = get_protocol("mormont2020-loto")
    assert len(paper.sets) == 8 and len(paper.tasks()) == 10
    assert set(paper.tasks()) == {t for t in get_pool("mormont2020").tasks if get_task(t).role == "evaluate"}
    assert ("Breast1", "Breast2") in paper.sets and ("CellInclusion", "ProliferativePattern") in paper.sets
    every = derived_protocol("mormont2020")
    assert len(every.sets) == 20 and sorted(every.tasks()) == sorted(get_pool("mormont2020").tasks)
    assert len(derived_protocol("synthetic").sets) == 20
    assert len(left_out_sets(get_pool("mormont2020"))) == 8  # 10 evaluation tasks, 8 distinct runs
    hashes = {get_protocol(n).sha256() for n in ("mormont2020-loto", "synthetic-loto", "mormont2020-all")}
    assert len(hashes) == 3
    moved = LotoProtocol(name="x", pool="mormont2020", sets=(("Breast1", "Breast2"), ("Lung",)))
    assert moved.sha256() != LotoProtocol(name="x", pool="mormont2020", sets=(("Lung",),)).sha256()
    assert paper.subset(["Breast2", "7"]).sets == (("Breast1", "Breast2"), ("BoneMarrow",))
    with pytest.raises(DpbenchError, match="out of range"):
        paper.subset(["8"])
    with pytest.raises(DpbenchError, match="unknown LOTO protocol"):
        get_protocol("nope")


def test_plan_counts_the_paper_grid_and_its_cost() -> None:
    plan = _cli("loto", "plan")
    assert plan.returncode == 0, plan.stderr
    assert "48 configurations × 5 seeds × 8 sets = 1920 trials" in plan.stdout
    # 960 runs × 50k × 64 images at the measured ceilings: 3,342 and 1,521 img/s
    expected = 960 * 50_000 * 64 / 3342 / 3600 + 960 * 50_000 * 64 / 1521 / 3600
    assert f"{expected:,.1f}" in plan.stdout and "20,000" in plan.stdout
    spec = SweepSpec(protocol=get_protocol("mormont2020-loto"), protocol_sha256="x", scheduler="asha")
    assert 0 < asha_fraction(spec) < 0.5
    bad = _cli("loto", "plan", "--warmups", "maybe")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "--warmups" in bad.stderr


def _fake_sweep(tmp_path: Path, scores: dict[tuple[str, int, int], dict[str, float]]) -> tuple[SweepSpec, Path]:
    """A sweep folder holding only trial records: (config key, set, seed) → task scores."""
    protocol = LotoProtocol(name="t", pool="synthetic",
                            sets=(("synthetic-Necrosis",), ("synthetic-Lung",), ("synthetic-Glomeruli",)))
    spec = SweepSpec(protocol=protocol, protocol_sha256=protocol.sha256(), seeds=(0, 1),
                     grid=Grid(lrs=(0.1, 0.01, 0.001), taus=(1.0,), archs=("tiny",), warmups=(False,)))
    for trial in spec.trials():
        key = (trial.config.key, trial.set_index, trial.seed)
        if key in scores:
            folder = trial_folder(tmp_path, trial)
            folder.mkdir(parents=True)
            (folder / SCORES).write_text(json.dumps({"scores": scores[key]}))
    return spec, tmp_path


def test_selection_excludes_the_own_column_and_records_degenerate_cases(tmp_path: Path) -> None:
    a, b, c = "tiny-lr0.1-tau1-nowarmup", "tiny-lr0.01-tau1-nowarmup", "tiny-lr0.001-tau1-nowarmup"
    nec, lung, glom = "synthetic-Necrosis", "synthetic-Lung", "synthetic-Glomeruli"
    table = {(a, nec): 0.9, (b, nec): 0.8, (c, nec): 0.7,  # a best on Necrosis
             (a, lung): 0.6, (b, lung): 0.9, (c, lung): 0.8,  # b best on Lung
             (a, glom): 0.5, (b, glom): 0.7}  # c never scored on Glomeruli
    scores = {(cfg, s, seed): {task: value + 0.01 * seed} for (cfg, task), value in table.items()
              for s, name in enumerate((nec, lung, glom)) if name == task for seed in (0, 1)}
    spec, folder = _fake_sweep(tmp_path, scores)
    record = select(spec, folder)
    assert record.configs == [a, b, c] and record.tasks == [nec, lung, glom]
    assert record.ranks == [[1, 2, 3], [3, 1, 2], [2, 1, 3]]  # missing cell ranks last (2 present + 1)
    # Necrosis: over Lung and Glomeruli b averages rank 1, although a is best on Necrosis itself; Lung: a and b tie
    # at 1.5 (grid order picks a, the tie is recorded); Glomeruli: b at 1.5 beats a at 2
    assert {ch.task: ch.config for ch in record.choices} == {nec: b, lung: a, glom: b}
    lung_choice = next(ch for ch in record.choices if ch.task == lung)
    assert lung_choice.loto_rank == 1.5 and lung_choice.tied == [b] and lung_choice.basis == [nec, glom]
    assert any("ranked last" in n for n in record.notes) and any("have no record" in n for n in record.notes)
    assert any(n.startswith(f"{lung}: 2 configurations tie") for n in record.notes)


def _independent_selection(folder: Path, tasks: list[str], configs: list[str]) -> dict[str, str]:
    """The selection recomputed from scores.json files alone, without dpbench code."""
    cells: dict[tuple[str, str], list[float]] = {}
    for path in folder.glob("trials/*/scores.json"):
        record = json.loads(path.read_text())
        for task, value in record["scores"].items():
            cells.setdefault((record["config"], task), []).append(value)
    ranks: dict[tuple[str, str], float] = {}
    for task in tasks:
        means = {c: round(sum(cells[(c, task)]) / len(cells[(c, task)]), 4) for c in configs}
        for c in configs:
            better = sum(m > means[c] for m in means.values())
            same = sum(m == means[c] for m in means.values())
            ranks[(c, task)] = better + (same + 1) / 2
    chosen = {}
    for task in tasks:
        others = [t for t in tasks if t != task]
        average = {c: sum(ranks[(c, t)] for t in others) / len(others) for c in configs}
        chosen[task] = min(configs, key=lambda c: (average[c], configs.index(c)))
    return chosen


def _hide_test_shards(pool: Path, away: Path) -> list[Path]:
    moved = []
    for shard in BuiltPool(pool).manifest.shards:
        if shard.split == "test":
            target = away / shard.path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(pool / shard.path, target)
            moved.append(Path(shard.path))
    return moved


def test_tiny_protocol_end_to_end_on_local_ray(small_pool: Path, tmp_path: Path) -> None:
    pool, sweep = tmp_path / "pool", tmp_path / "sweep"
    shutil.copytree(small_pool, pool)
    hidden = _hide_test_shards(pool, tmp_path / "away")  # no test split can be read before the final stage
    assert hidden
    # 1. start the sweep and kill it (driver, Ray and trials: its whole session) once some trials are done
    args = ["loto", "run", "--data", str(pool), "--out", str(sweep), *TINY, "--final", "none"]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    process = subprocess.Popen([sys.executable, "-m", "dpbench", *args], env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(sweep.glob("trials/*/scores.json"))) < 2:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished_before = {p.parent.name for p in sweep.glob("trials/*/scores.json")}
    assert 2 <= len(finished_before) < 8
    killed_temp = [d for d in Path("/tmp").glob(f"{TEMP_PREFIX}*") if (d / OWNER).is_file()
                   and (d / OWNER).read_text() == str(process.pid)]
    assert len(killed_temp) == 1  # the killed driver could not remove its local Ray's temp dir
    # 2. the same command resumes: only unfinished trials run again; still no test shard present
    resumed = _cli(*args)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert not killed_temp[0].exists()  # the next sweep removed it (its driver is gone, no process names it)
    spec = SweepSpec.model_validate_json((sweep / "sweep.json").read_bytes())
    assert len(spec.trials()) == 8
    for trial in spec.trials():
        folder = trial_folder(sweep, trial)
        attempts = (folder / ATTEMPTS).read_text().splitlines()
        assert (folder / SCORES).is_file()
        assert len(attempts) == (1 if trial.key in finished_before else len(attempts)) >= 1
        record = json.loads((folder / SCORES).read_text())
        assert record["scored_split"] == "val" and set(record["scores"]) == set(trial.left_out)
    # 3. the stored selection equals an independent computation from the stored trial scores
    stored = json.loads((sweep / "selection.json").read_text())
    configs = [c.key for c in spec.grid.configs()]
    expected = _independent_selection(sweep, stored["tasks"], configs)
    assert {c["task"]: c["config"] for c in stored["choices"]} == expected
    assert stored["tasks"] == ["synthetic-Necrosis", "synthetic-Janowczyk7"]
    # 4. final stage: test shards back, the selected seed models are scored on test
    for path in hidden:
        shutil.move(tmp_path / "away" / path, pool / path)
    final = _cli(*args[:-2], "--final", "linear", "--device", "cpu")
    assert final.returncode == 0, final.stderr[-2000:]
    results = json.loads((sweep / "final" / "linear" / "results.json").read_text())
    assert results["provenance"]["scored_split"] == "test"
    assert results["provenance"]["settings"]["loto_protocol_sha256"] == get_protocol("synthetic-tiny").sha256()
    assert sorted({(s["task"], s["seed"]) for s in results["scores"]}) == sorted(
        product(expected, spec.seeds))
    report = _cli("loto", "report", "--out", str(sweep))
    assert report.returncode == 0, report.stderr
    page = (sweep / "report.html").read_text()
    assert "matches the selection recomputed" in page and "SYNTHETIC" in page and page.count("<img") >= 2


def test_a_gpu_request_no_node_can_meet_is_one_clear_error(small_pool: Path, tmp_path: Path) -> None:
    result = _cli("loto", "run", "--data", str(small_pool), "--out", str(tmp_path / "s"), *TINY,
                  "--gpus-per-trial", "1")
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert len(lines) == 1 and "GPU" in lines[0] and "--gpus-per-trial 0" in lines[0], result.stderr[-1500:]


def _asha_decisions(sweep: Path, spec: SweepSpec) -> list[str]:
    """ASHA's rule (asynchronous successive halving, one bracket), replayed independently from the stored rung
    scores of sequential trials in the order they started: the trials it must have stopped."""
    rungs, rate = spec.iterations // spec.checkpoint_every, spec.asha.reduction
    milestones = [spec.asha.grace * rate ** k for k in range(8) if spec.asha.grace * rate ** k <= rungs + 1]
    assert max(milestones) <= rungs  # every milestone is a checkpoint with stored rung scores
    started = sorted(spec.trials(), key=lambda t: json.loads(
        (trial_folder(sweep, t) / ATTEMPTS).read_text().splitlines()[0])["started"])
    recorded: dict[int, list[float]] = {m: [] for m in milestones}
    stopped = []
    for trial in started:
        for milestone in milestones:
            result = trial_folder(sweep, trial) / "rungs" / str(milestone * spec.checkpoint_every) / "results.json"
            scores = json.loads(result.read_text())["scores"]
            value = sum(s["score"] for s in scores) / len(scores)
            seen = recorded[milestone]
            cutoff = float(np.percentile(seen, (1 - 1 / rate) * 100)) if seen else None
            seen.append(value)
            if cutoff is not None and value < cutoff:
                stopped.append(trial.key)
                break
    return sorted(stopped)


def test_asha_is_opt_in_per_left_out_set_and_recorded(small_pool: Path, tmp_path: Path) -> None:
    """Trials one after another (--max-concurrent-trials 1), so ASHA's decisions follow from the stored rung scores;
    the two learning rates differ by 3 of 30 validation images at the first rung (0.01 first, 0.05 worse)."""
    sweep = tmp_path / "asha"
    args = [*TINY, "--set", "1", "--lrs", "0.01,0.05", "--seeds", "1", "--iterations", "90",
            "--checkpoint-every", "30", "--scheduler", "asha", "--max-concurrent-trials", "1"]
    result = _cli("loto", "run", "--data", str(small_pool), "--out", str(sweep), *args, "--final", "none")
    assert result.returncode == 0, result.stderr[-2000:]
    spec = SweepSpec.model_validate_json((sweep / "sweep.json").read_bytes())
    assert spec.scheduler == "asha" and spec.protocol.sets == (("synthetic-Janowczyk7",),)
    stopped = json.loads((sweep / "asha_stopped.json").read_text())
    finished = [t.key for t in spec.trials() if (trial_folder(sweep, t) / SCORES).is_file()]
    assert stopped == _asha_decisions(sweep, spec)
    assert stopped and finished and sorted(stopped + finished) == sorted(t.key for t in spec.trials())
    selection = json.loads((sweep / "selection.json").read_text())
    assert selection["scheduler"] == "asha" and any("ASHA" in n for n in selection["notes"])
    assert _cli("loto", "report", "--out", str(sweep)).returncode == 0
    assert "NOT the paper's protocol" in (sweep / "report.html").read_text()


def test_under_asha_a_failed_trial_is_unfinished_not_stopped(small_pool: Path, tmp_path: Path) -> None:
    """A trial that crashes (here: a training shard is missing) has no record either; ASHA did not stop it, so it
    stays pending for a rerun and the run says it did not finish."""
    pool = tmp_path / "pool"
    shutil.copytree(small_pool, pool)
    for shard in pool.glob("synthetic-Necrosis/train-*.tar"):
        shard.unlink()
    sweep = tmp_path / "asha"
    args = [*TINY, "--set", "1", "--lrs", "0.01,0.05", "--seeds", "1", "--iterations", "90",
            "--checkpoint-every", "30", "--scheduler", "asha", "--max-concurrent-trials", "1"]
    result = _cli("loto", "run", "--data", str(pool), "--out", str(sweep), *args, "--final", "none")
    assert "2 trial(s) did not finish" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
    assert json.loads((sweep / "asha_stopped.json").read_text()) == []
    timing = json.loads((sweep / "timing.json").read_text())
    assert len(timing["unfinished"]) == 2 and timing["stopped_by_asha"] == []


def test_a_diverging_configuration_is_a_recorded_result_ranked_last(small_pool: Path, tmp_path: Path) -> None:
    from dpbench_baselines.trial import run_trial

    protocol = get_protocol("synthetic-tiny").subset(["0"])
    spec = SweepSpec(protocol=protocol, protocol_sha256=protocol.sha256(), seeds=(0,), iterations=20,
                     checkpoint_every=10, batch_size=8, size=32, weights="none", probe="fast", bn_adapt_batches=0,
                     grid=Grid(lrs=(1e30, 0.01), taus=(1.0,), archs=("tiny",), warmups=(False,)))
    records = [run_trial(spec, trial, small_pool, tmp_path, "cpu") for trial in spec.trials()]
    assert records[0]["diverged"] and records[0]["scores"] == {} and records[0]["encoder"] is None
    assert "diverged" in records[0]["unscorable"]["synthetic-Necrosis"]
    assert not records[1]["diverged"] and set(records[1]["scores"]) == {"synthetic-Necrosis"}
    assert run_trial(spec, spec.trials()[0], small_pool, tmp_path, "cpu") == records[0]  # stored, not rerun
    record = select(spec, tmp_path)
    assert record.ranks == [[2.0, 1.0]] and any("ranked last" in n for n in record.notes)
