"""Group leakage over every converter: no patient, slide or case id that the raw names carry may span two splits.

Each converter documents the id its names carry as ``group_id`` (a pattern searched in a sample's ``source``).
The real-name trees (UMCM, BreakHis, Janowczyk 7 and 6, built from the public files under ``fixtures/``) are
split by the registry's rules and checked id by id; every other converter is checked on its own test tree.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from dpbench.build import split_task
from dpbench.convert import converter_for, supported_sources
from dpbench.convert.base import Converter, ids_across_splits
from dpbench.errors import RawDataError
from dpbench.tasks.models import Task
from dpbench.tasks.registry import all_tasks, get_task
from tests.convert import test_breakhis, test_janowczyk_idc, test_janowczyk_lymphoma, test_umcm_colorectal

REAL: dict[str, tuple[Callable[[Path], object], str]] = {  # task → (real-name tree builder, what the id is)
    "UmcmColorectal": (test_umcm_colorectal.make_real_raw, "slide"),
    "BreakHis": (test_breakhis.make_real_raw, "patient"),
    "Janowczyk7": (test_janowczyk_lymphoma.make_real_raw, "case"),
    "Janowczyk6": (test_janowczyk_idc.make_real_raw, "patient"),
}


def converted(task: Task, raw: Path) -> tuple[Converter, dict[str, str]]:
    conv = converter_for(task, raw)
    assert isinstance(conv, Converter)
    return conv, split_task(task, conv.samples()).samples


def assert_no_id_spans_splits(conv: Converter, split_of: dict[str, str], every_sample: bool) -> None:
    assert conv.group_id is not None, f"{conv.task.name}: the names carry an id, so the converter documents it"
    samples = conv.samples()
    matched = [bool(conv.group_id.search(s.source)) for s in samples]
    assert all(matched) if every_sample else any(matched), f"{conv.task.name}: the id pattern matches no name"
    assert ids_across_splits(samples, conv.group_id, split_of) == {}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_names_no_id_spans_two_splits(tmp_path: Path, name: str) -> None:
    build, kind = REAL[name]
    build(tmp_path)
    conv, split_of = converted(get_task(name), tmp_path)
    assert conv.group_id_kind == kind
    assert_no_id_spans_splits(conv, split_of, every_sample=True)


def _test_modules() -> list[str]:
    """Sources whose converter has a test module with a ``make_raw(raw)`` tree builder."""
    folder = Path(__file__).parent
    return sorted(s for s in supported_sources() if (folder / f"test_{s}.py").is_file()
                  and "def make_raw(" in (folder / f"test_{s}.py").read_text())


@pytest.mark.parametrize("source", _test_modules())
def test_every_converter_keeps_its_documented_ids_in_one_split(tmp_path: Path, source: str) -> None:
    module = importlib.import_module(f"tests.convert.test_{source}")
    module.make_raw(tmp_path)
    for task in (t for t in all_tasks().values() if t.source.id == source and not t.synthetic):
        conv, split_of = converted(task, tmp_path)
        if conv.group_id is None:  # the names carry no id beyond the group itself
            continue
        assert_no_id_spans_splits(conv, split_of, every_sample=False)


def test_a_grouping_that_ignores_the_documented_id_is_refused(tmp_path: Path) -> None:
    test_janowczyk_lymphoma.make_raw(tmp_path, per_class=2, size=(400, 400))
    conv = converter_for(get_task("Janowczyk7"), tmp_path)
    scan = conv.scan

    def by_image() -> object:  # the old rule: one group per image, although both images name one case
        return (replace(s, group=s.source) for s in scan())

    conv.scan = by_image  # type: ignore[method-assign,assignment]
    with pytest.raises(RawDataError, match=r"case sj-05-0000 in 2 groups"):
        conv.samples()
