"""A table of the samples: CSV (comma-separated, UTF-8) or Parquet, one row per image.

Columns ``path`` (relative to the table's folder, or absolute), ``label`` (a class of the card), ``group`` (the
patient or slide: the split keeps a group whole) and, when the card's ``split.column`` names one, a split column
(``train``, ``val``, ``test``; empty cells are split by the card's fractions). The group always comes from its
column, never from file names. A row with an empty cell, a label outside the card, a missing or unreadable image or
a path listed twice stops the scan with the line number and the fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from dpbench.convert.base import read_rows, safe_key
from dpbench.convert.cards.base import CardConverter
from dpbench.errors import RawDataError
from dpbench.tasks.samples import Sample

COLUMNS = ("path", "label", "group")
PARQUET = (".parquet", ".pq")


def table_rows(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row) of a CSV or Parquet table (Parquet rows are numbered as CSV lines would be: the first is 2);
    one clear error when the file is missing or lacks a column."""
    if not path.is_file():
        raise RawDataError(f"table {path} not found; fix data.path in the card (relative to the card's folder)")
    if path.suffix.lower() not in PARQUET:
        try:
            yield from read_rows(path, columns)
        except RawDataError as exc:
            raise RawDataError(str(exc).replace("; re-download it", f"; the table needs columns {', '.join(columns)}")
                               ) from exc
        return
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except (ImportError, OSError, ValueError) as exc:
        raise RawDataError(f"cannot read Parquet table {path} ({exc.__class__.__name__}: {exc}); write it again, "
                           "or as CSV") from exc
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RawDataError(f"{path} lacks column(s) {', '.join(missing)}; the table needs {', '.join(columns)}")
    frame = frame[list(columns)].astype(object).where(frame[list(columns)].notna(), "")
    for line, row in enumerate(frame.itertuples(index=False), start=2):
        yield line, {c: str(v).strip() for c, v in zip(columns, row, strict=True)}


class TableConverter(CardConverter):
    """Images listed in a table with their label, group and optional split."""

    def data_root(self) -> Path:
        return (self.base / self.card.data.path).parent

    def items(self) -> Iterator[Sample]:
        table = self.base / self.card.data.path
        self.where = f"the table {table}"
        column = self.card.split.column
        columns = COLUMNS + ((column,) if column else ())
        seen: dict[Path, int] = {}
        for line, row in table_rows(table, columns):
            at = f"{table} line {line}"
            empty = [c for c in COLUMNS if not row[c]]
            if empty:
                raise RawDataError(f"{at}: empty {', '.join(empty)}; every row needs a path, a label and a group")
            label = self.label(row["label"], at)
            path = (self.root / row["path"]).resolve()
            if path in seen:
                raise RawDataError(f"{at}: image {row['path']} is listed twice (also line {seen[path]}); list each "
                                   "image once")
            seen[path] = line
            if not path.is_file():
                raise RawDataError(f"{at}: image {path} not found; fix the path (relative to the table's folder)")
            self.readable(path)
            split = self.split_value(row[column], at) if column else None
            if label is None:
                continue
            source = row["path"].replace("\\", "/")
            stem = source.rsplit(".", 1)[0] if "." in source.rsplit("/", 1)[-1] else source
            yield Sample(key=safe_key(stem) or "image", group=row["group"], label=label, source=source,
                         um_per_px=self.card.um_per_px, split=split)
