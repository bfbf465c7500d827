"""Text shared by the private (ULiège Cytomine) sources: how to supply the data, and the common deviations.

The accepted layouts are those of :mod:`dpbench.convert.sources.private`; each source module passes only what
is its own (task folders, data holder, class names, extra notes).
"""

from __future__ import annotations

from collections.abc import Sequence

CROP_DUMP_DEVIATION = (
    "A Cytomine crop dump made now may differ from the authors' crops (zoom level, crop margins, "
    "annotations edited since 2018): the paper does not give its dump parameters."
)
UNPUBLISHED_CLASSES_DEVIATION = (
    "The class names are not published: labels follow the sorted class-folder or term names (as the "
    "authors' ImageFolder-based loader sorts them), so they match the paper's class indices only with the "
    "authors' own folder names."
)


def split_deviation(groups: str = "slides", *, crop_dumps: bool = True) -> str:
    """The deviation of a split drawn without the authors' split folders; ``groups`` names the split unit."""
    pinned = " (or a split column in images.csv)" if crop_dumps else ""
    return (f"Without the authors' train/val/test folders{pinned} dpbench's grouped splitter assigns the same "
            f"{groups} to splits, which gives a split different from the paper's; with them the split is "
            "reproduced exactly.")


def partner_notes(holder: str, more: str) -> str:
    """``Source.notes`` of data held in a Cytomine project of the clinical partner ``holder``."""
    return ("Not publicly released: the images and annotations sit in ULiège Cytomine projects of clinical "
            f"partners (here {holder}); the authors list only their code and models as public. The URL is the "
            f"paper that describes the data. {more}")


def _code(names: Sequence[str], sep: str = " and ") -> str:
    return sep.join(f"`{name}`" for name in names)


def manual(source_id: str, holder: str, folders: Sequence[tuple[str, str]],
           classes: Sequence[Sequence[str]] | None, *, crop_dumps: bool = True, note: str = "") -> str:
    """``Source.manual`` of a private source.

    ``folders`` holds (task name, the authors' folder name) per task; ``classes`` the class names of each task
    in that order, or None when they are not published; ``crop_dumps`` is False where only the image-folder
    export is accepted; ``note`` is inserted before the build command.
    """
    places = "; ".join(f"`DIR/{task}/` or `DIR/{internal}/`" for task, internal in folders)
    if classes is None:
        named = "one class folder per class (names not published; see the deviations)"
    elif len({tuple(names) for names in classes}) == 1:
        named = f"class folders named {_code(classes[0])}"
    else:
        per_task = (f"{_code(names, '/')} ({task})" for (task, _), names in zip(folders, classes, strict=True))
        named = "class folders named " + " and ".join(per_task)
    if crop_dumps:
        dump = (", or a Cytomine Python client crop dump (pattern `{term}/{image}_{id}.png`) with a `terms.json` "
                "of term id to name, an optional `images.csv` (image id, group, optional split) and, when term "
                "names differ from the class names, a `classes.json`")
    else:
        dump = " (a Cytomine crop dump is not accepted)"
    return (f"Private data: ask the authors (ULiège, Cytomine team) and the data holders ({holder}) for access. "
            f"Put each task in its own folder under `--raw DIR`: {places} (also accepted under `DIR/private/` or "
            f"`DIR/{source_id}/`). Use the authors' image-folder export, `[train|val|test/]<class>/<group>_"
            f"<name>.png` with {named} and the slide or patient id before the first `_`{dump}. "
            + (f"{note} " if note else "")
            + "Then run `dpbench build --pool mormont2020 --raw DIR`; shards of private data are marked "
            "non-redistributable.")
