"""Labelled slide annotations as polygons: QuPath GeoJSON exports and ASAP XML (read by :mod:`.slides`).

Coordinates are level-0 pixels. A QuPath annotation's class is ``properties.classification.name``; an ASAP
annotation's class is its group (``PartOfGroup``). Annotations that carry no area (points, lines, fewer than three
vertices), no class, or that QuPath exported as detections rather than annotations are returned as skips with a
reason; a file that cannot be parsed is an error naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dpbench.convert.slides import parse_asap_xml
from dpbench.errors import RawDataError

#: Annotation files looked up beside each slide, in this order (``<slide stem>`` or ``<slide file name>`` + suffix).
ANNOTATION_SUFFIXES = (".geojson", ".json", ".xml")


@dataclass(frozen=True)
class Region:
    """One annotated polygon: its class name, outer ring and holes, as (N, 2) level-0 x, y arrays."""

    name: str
    label: str
    outer: np.ndarray
    holes: tuple[np.ndarray, ...] = ()


Skip = tuple[str, str]  # (reason, where)


def read_regions(path: Path) -> tuple[list[Region], list[Skip]]:
    """The labelled polygons of an annotation file (``.geojson``/``.json``: QuPath, ``.xml``: ASAP) and the
    annotations left out, with why."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RawDataError(f"cannot read annotation file {path} ({exc.strerror}); check its permissions") from exc
    if path.suffix.lower() == ".xml":
        return _asap(data, str(path))
    return parse_geojson(data, str(path))


def _asap(data: bytes, where: str) -> tuple[list[Region], list[Skip]]:
    regions: list[Region] = []
    skips: list[Skip] = []
    for index, note in enumerate(parse_asap_xml(data, where)):
        name = note.name or f"#{index}"
        if not note.group:
            skips.append(("annotation without a class (PartOfGroup)", f"{where}:{name}"))
        elif len(note.points) < 3:
            skips.append(("annotation without an area (fewer than 3 points)", f"{where}:{name}"))
        else:
            regions.append(Region(name=name, label=note.group, outer=note.points))
    return regions, skips


def _ring(raw: Any, where: str) -> np.ndarray:
    try:
        points = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise RawDataError(f"{where}: a polygon ring is not a list of [x, y] pairs; re-export the file") from exc
    if points.ndim != 2 or points.shape[1] < 2 or not np.isfinite(points[:, :2]).all():
        raise RawDataError(f"{where}: a polygon ring is not a list of finite [x, y] pairs; re-export the file")
    return points[:, :2]


def _features(document: Any, where: str) -> list[Any]:
    if isinstance(document, list):
        return document  # older QuPath exports: a bare array of features
    if isinstance(document, dict) and document.get("type") == "FeatureCollection":
        return list(document.get("features") or [])
    if isinstance(document, dict) and document.get("type") == "Feature":
        return [document]
    raise RawDataError(f"{where} is not a GeoJSON FeatureCollection, Feature or list of features; export the "
                       "annotations from QuPath with File > Export objects as GeoJSON")


def _label(properties: dict[str, Any]) -> str:
    classification = properties.get("classification")
    if isinstance(classification, dict):
        return str(classification.get("name") or "").strip()
    return str(classification or "").strip()


def parse_geojson(data: bytes, where: str) -> tuple[list[Region], list[Skip]]:
    """Labelled polygons of a QuPath GeoJSON export (Polygon and MultiPolygon geometries; holes kept)."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RawDataError(f"malformed GeoJSON {where} ({exc}); re-export it from QuPath") from exc
    regions: list[Region] = []
    skips: list[Skip] = []
    for index, feature in enumerate(_features(document, where)):
        if not isinstance(feature, dict):
            raise RawDataError(f"{where}: feature {index} is not a GeoJSON object; re-export the file")
        properties = feature.get("properties") or {}
        geometry = feature.get("geometry") or {}
        name = str(properties.get("name") or feature.get("id") or f"#{index}")
        at = f"{where}:{name}"
        kind = properties.get("objectType", "annotation")
        if kind != "annotation":
            skips.append((f"QuPath {kind}, not an annotation", at))
            continue
        label = _label(properties)
        if not label:
            skips.append(("annotation without a class (set one in QuPath)", at))
            continue
        shapes = {"Polygon": [geometry.get("coordinates")],
                  "MultiPolygon": list(geometry.get("coordinates") or [])}.get(str(geometry.get("type")))
        if shapes is None:
            skips.append((f"annotation without an area ({geometry.get('type')})", at))
            continue
        for part, rings in enumerate(shapes):
            if not isinstance(rings, list) or not rings:
                raise RawDataError(f"{at}: a polygon without coordinates; re-export the file")
            outer, *holes = (_ring(ring, at) for ring in rings)
            if len(outer) < 3:
                skips.append(("annotation without an area (fewer than 3 points)", at))
                continue
            suffix = f"/{part}" if len(shapes) > 1 else ""
            regions.append(Region(name=name + suffix, label=label, outer=outer,
                                  holes=tuple(h for h in holes if len(h) >= 3)))
    return regions, skips


def outside(region: Region, width: int, height: int) -> bool:
    """Whether ``region`` lies entirely outside a ``width`` x ``height`` slide."""
    xs, ys = region.outer[:, 0], region.outer[:, 1]
    return bool(xs.max() < 0 or ys.max() < 0 or xs.min() >= width or ys.min() >= height)

