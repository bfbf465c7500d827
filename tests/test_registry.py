"""The registry: every task validates, the paper pool adds up, metadata is strict."""

from __future__ import annotations

import pytest
from dpbench_baselines.loto import loto_folds
from pydantic import ValidationError

from dpbench.errors import RegistryError
from dpbench.tasks import Task, all_tasks, get_pool, get_task, pool_version
from dpbench.tasks.models import REDISTRIBUTABLE
from dpbench.tasks.registry import pool_tasks

ALL = sorted(all_tasks())


@pytest.mark.parametrize("name", ALL)
def test_every_registered_task_validates(name: str) -> None:
    task = get_task(name)
    again = Task.model_validate(task.model_dump())  # round-trips through the strict schema
    assert again == task
    assert len(task.class_names) == task.n_classes
    assert task.metric == ("roc_auc" if task.n_classes == 2 else "accuracy")
    assert task.source.citation.lstrip().startswith("@")
    for split in ("train", "test"):
        assert task.sizes[split].images > 0
    for other in task.linked:
        assert name in get_task(other).linked
    if task.availability == "private":
        assert not task.redistributable


def test_paper_pool_adds_up() -> None:
    tasks = pool_tasks(get_pool("mormont2020"))
    assert len(tasks) == 22
    assert sum(t.n_classes for t in tasks) == 81
    assert sum(t.sizes.images for t in tasks) == 882_800
    assert sum(t.sizes.train.images for t in tasks) == 663_918
    assert sum(t.sizes.test.images for t in tasks) == 114_519
    assert sum(t.role == "evaluate" for t in tasks) == 10
    assert get_task("BreakHis").role == "external"


def test_linked_groups_and_loto_keep_them_together() -> None:
    assert get_task("Breast1").linked == ("Breast2",)
    assert set(get_task("CellInclusion").linked) == {"ProliferativePattern"}
    folds = {f.target: f for f in loto_folds(get_pool("mormont2020"))}
    assert len(folds) == 10
    assert folds["Breast2"].held_out == ("Breast1", "Breast2")
    assert "Breast1" not in folds["Breast2"].train and "Lung" in folds["Breast2"].train
    assert len(folds["Lung"].train) == 21
    syn = {f.target: f for f in loto_folds(get_pool("synthetic"))}
    assert syn["synthetic-CellInclusion"].held_out == ("synthetic-CellInclusion", "synthetic-ProliferativePattern")


def test_paper_inconsistencies_are_recorded() -> None:
    bone = get_task("BoneMarrow")
    assert bone.n_classes == 8
    assert any("9" in " ".join(i.seen) for i in bone.inconsistencies)
    assert get_task("Camelyon16").sizes.images == 292_226
    assert get_task("Camelyon16").inconsistencies
    assert get_task("Breast1").inconsistencies and get_task("Breast1").sizes.train.images == 14_055


def test_schema_is_strict() -> None:
    data = get_task("Lung").model_dump()
    with pytest.raises(ValidationError, match="extra"):
        Task.model_validate({**data, "colour": "pink"})
    with pytest.raises(ValidationError):
        Task.model_validate({**data, "stain": "Giemsa"})
    with pytest.raises(ValidationError, match="metric"):
        Task.model_validate({**data, "metric": "roc_auc"})
    with pytest.raises(ValidationError, match="class names"):
        Task.model_validate({**data, "classes": ["a", "b"]})
    with pytest.raises(ValidationError, match="synthetic"):
        Task.model_validate({**data, "name": "synthetic-Lung"})


def test_licences_and_redistribution() -> None:
    assert get_task("Camelyon16").redistributable
    assert not get_task("Bach18Micro").redistributable  # CC BY-NC-ND: no derived re-hosting
    assert all(t.redistributable == (t.licence in REDISTRIBUTABLE and t.availability != "private")
               for t in all_tasks().values())


def test_unknown_names_give_suggestions() -> None:
    with pytest.raises(RegistryError, match="did you mean Breast1"):
        get_task("Breast11")
    assert get_task("lung").name == "Lung"
    with pytest.raises(RegistryError, match="choose one of"):
        get_pool("mormont2021")
    with pytest.raises(RegistryError, match="not in pool"):
        pool_tasks(get_pool("synthetic"), ["Lung"])


def test_pool_version_tracks_splits_and_metrics() -> None:
    pool = get_pool("synthetic")
    assert pool_version(pool) == pool_version(pool)
    changed = pool_version(pool, {"synthetic-Lung": "0" * 64})
    assert changed != pool_version(pool)
    assert pool_version(get_pool("mormont2020")) != pool_version(pool)
