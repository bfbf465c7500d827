"""The converter base class: a ``TaskSource`` that lists a raw dataset's samples and crops them lazily.

A converter knows one raw layout. ``scan`` yields :class:`~dpbench.tasks.samples.Sample` records whose ``source``
is the raw file (relative to the source folder) and whose ``coords`` are the crop in that file's level-0
pixels; pixels are read only when a shard is written. Bad raw input raises :class:`RawDataError` naming the
file, or is skipped with a reason that is logged and counted, never silently mislabelled.

Where a source's file names carry the patient, slide or case an image comes from, the converter documents it as
:attr:`Converter.group_id` (a pattern with an ``id`` group searched in each sample's ``source``), and
:meth:`Converter.samples` refuses a grouping that puts one such id in two groups: groups go whole to one split,
so an id confined to one group can never span two splits.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from dpbench.errors import RawDataError
from dpbench.tasks.models import Task
from dpbench.tasks.samples import Sample

log = logging.getLogger("dpbench.convert")

#: Image files converters read (others in a class folder are skipped with a count).
#: The largest image a shard may hold: Pillow's decompression-bomb warning limit, which readers of the shards
#: (verify, audit, loaders in other processes) keep; twice it is an error there.
STORED_MAX_PIXELS = 89_478_485
#: Subfolder of a source's raw folder where ``dpbench sources fetch`` keeps the archives it downloaded.
ARCHIVES = ".archives"
IMAGE_EXT = frozenset({".tif", ".tiff", ".png", ".bmp", ".jpg", ".jpeg"})
_UNSAFE_KEY = re.compile(r"[^A-Za-z0-9_\-]+")


def ids_in_groups(samples: Iterable[Sample], pattern: re.Pattern[str]) -> dict[str, set[str]]:
    """Id (``pattern``'s ``id`` group, searched in each sample's ``source``) → the groups its samples are in;
    samples whose source does not match are left out."""
    found: dict[str, set[str]] = {}
    for sample in samples:
        match = pattern.search(sample.source)
        if match is not None:
            found.setdefault(match["id"], set()).add(sample.group)
    return found


def ids_across_splits(samples: Iterable[Sample], pattern: re.Pattern[str],
                      split_of: Mapping[str, str]) -> dict[str, set[str]]:
    """Id → splits, for each id of ``pattern`` (see :func:`ids_in_groups`) whose samples sit in more than one
    split (``split_of``: sample key → split); empty when the split keeps every id whole."""
    found: dict[str, set[str]] = {}
    for sample in samples:
        match = pattern.search(sample.source)
        if match is not None:
            found.setdefault(match["id"], set()).add(split_of[sample.key])
    return {k: v for k, v in found.items() if len(v) > 1}


def seeded_rng(*parts: object) -> np.random.Generator:
    """A generator seeded by a stable hash of ``parts`` (never Python's salted ``hash``)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def key_safe(text: str, fill: str = "-") -> str:
    """``text`` with each run of characters a shard key cannot hold (all but letters, digits, ``_``, ``-``)
    replaced by ``fill`` (webdataset cuts keys at the first ``.``)."""
    return _UNSAFE_KEY.sub(fill, text)


def safe_key(*parts: str) -> str:
    """A shard-safe sample key joined with ``-`` from the non-empty ``parts``."""
    return "-".join(key_safe(part).strip("-") for part in parts if part)


def raw_files(root: Path) -> list[Path]:
    """Every file under ``root`` in sorted order, leaving out hidden entries (``.archives``, ``._x``, ...)."""
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))


def subfolders(folder: Path) -> list[Path]:
    """The visible (not dot-named) sub-folders of ``folder``, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def encode_png(pixels: np.ndarray) -> bytes:
    """Deterministic PNG bytes of an RGB (or grey) uint8 array, with no metadata."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def read_rows(path: Path, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of each data row of a CSV file with a header (UTF-8, an optional BOM), the first row
    being line 2; column names and values are stripped (a missing value reads ``""``). Raises RawDataError
    when the header lacks one of ``columns``."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in columns if c not in header]
        if missing:
            raise RawDataError(f"{path} lacks column(s) {', '.join(missing)}; re-download it")
        for line, row in enumerate(reader, start=2):
            yield line, {(k or "").strip(): v.strip() if isinstance(v, str) else "" for k, v in row.items()}


class Converter:
    """Base of every raw-source converter (subclasses implement :meth:`scan`).

    ``root`` is the source's folder under the raw-data root. ``resize_to`` (pixels) rescales every crop to a
    square of that side after extraction (e.g. Camelyon16's 768 px tiles stored at 384 px).
    """

    image_ext = "png"
    resize_to: int | None = None
    #: The patient, slide or case id the raw names carry: searched in each sample's ``source``, its ``id``
    #: group must map to one sample group (None: the names carry none, or the converter groups by file).
    group_id: re.Pattern[str] | None = None
    #: What :attr:`group_id` names ("patient", "slide", "case", ...), for messages.
    group_id_kind = "patient"

    def __init__(self, task: Task, root: Path) -> None:
        self.task = task
        self.root = root
        self.skipped: Counter[str] = Counter()
        self._samples: list[Sample] | None = None
        self._ready: dict[str, bytes] = {}

    # -- to implement -------------------------------------------------------------------------------------
    def scan(self) -> Iterable[Sample]:
        """Every sample of the task from the raw layout under ``self.root``."""
        raise NotImplementedError

    # -- shared machinery -----------------------------------------------------------------------------------
    def samples(self) -> list[Sample]:
        """The scanned samples sorted by key (checked: unique keys, labels in range, at least one)."""
        if self._samples is None:
            try:
                found = sorted(self.scan(), key=lambda s: s.key)
            except (OSError, UnicodeDecodeError, csv.Error) as exc:  # converters name the file where they can
                where = getattr(exc, "filename", None) or self.root
                raise RawDataError(f"{self.task.name}: cannot read the raw data ({where}: {exc}); check or "
                                   "re-extract the file") from exc
            seen: set[str] = set()
            for sample in found:
                if key_safe(sample.key) != sample.key:
                    raise RawDataError(f"{self.task.name}: sample key {sample.key!r} of {sample.source} holds "
                                       "characters a shard key cannot (only letters, digits, _ and -); this is a "
                                       "converter bug: report it")
                if sample.key in seen:
                    raise RawDataError(f"{self.task.name}: two samples share the key {sample.key!r} "
                                       f"({sample.source}); the raw folder holds duplicated files")
                seen.add(sample.key)
                if not 0 <= sample.label < self.task.n_classes:
                    raise RawDataError(f"{self.task.name}: label {sample.label} of {sample.source} is outside "
                                       f"0..{self.task.n_classes - 1}")
            if not found:
                raise RawDataError(f"{self.task.name}: no samples found under {self.root}; check that it holds "
                                   f"the {self.task.source.title} layout (see `dpbench sources list`)")
            empty = sorted(set(range(self.task.n_classes)) - {s.label for s in found})
            if empty:
                names = ", ".join(self.task.class_names[k] for k in empty)
                raise RawDataError(f"{self.task.name}: no sample of class {names} under {self.root} (skipped: "
                                   f"{dict(self.skipped) or 'none'}); the raw data are incomplete or their "
                                   "annotations were not read")
            self._check_group_ids(found)
            for reason, count in sorted(self.skipped.items()):
                log.warning("%s: skipped %d item(s): %s", self.task.name, count, reason)
            self._samples = found
        return self._samples

    def _check_group_ids(self, samples: list[Sample]) -> None:
        """Stop when an id of :attr:`group_id` falls in two groups (its images could land in two splits)."""
        if self.group_id is None:
            return
        for name, groups in sorted(ids_in_groups(samples, self.group_id).items()):
            if len(groups) > 1:
                shown = ", ".join(sorted(groups)[:3]) + (", ..." if len(groups) > 3 else "")
                raise RawDataError(f"{self.task.name}: the raw names put {self.group_id_kind} {name} in "
                                   f"{len(groups)} groups ({shown}), so it could span two splits; the grouping "
                                   "ignores the id the names carry (a converter bug: report it)")

    def skip(self, reason: str, path: Path | str, count: int = 1) -> None:
        """Record that ``path`` (or ``count`` items of it, e.g. tiles of one slide) was left out, and why
        (counted per reason; :meth:`samples` logs each reason once with its count)."""
        if count <= 0:
            return
        self.skipped[reason] += count
        if count == 1:
            log.info("%s: skipping %s: %s", self.task.name, path, reason)
        else:
            log.info("%s: skipping %d items of %s: %s", self.task.name, count, path, reason)

    def rel(self, path: Path) -> str:
        """``path`` relative to the source folder, with forward slashes (the sample's provenance)."""
        return path.relative_to(self.root).as_posix()

    def read(self, rel: str) -> np.ndarray:
        """The RGB uint8 pixels of raw file ``rel`` (subclasses override for slides or arrays)."""
        from dpbench.convert.imaging import read_rgb

        return read_rgb(self.root / rel)

    def crop(self, pixels: np.ndarray, sample: Sample) -> np.ndarray:
        """The sample's region of ``pixels`` (the whole image when it has no coords)."""
        if sample.coords is None:
            return pixels
        x, y, w, h = sample.coords
        if x < 0 or y < 0 or y + h > pixels.shape[0] or x + w > pixels.shape[1]:
            raise RawDataError(f"{self.task.name}: crop {sample.coords} of {sample.source} falls outside the "
                               f"{pixels.shape[1]}x{pixels.shape[0]} image; the raw file changed since the scan")
        return pixels[y:y + h, x:x + w]

    def finish(self, pixels: np.ndarray, source: str = "") -> bytes:
        """Resize (when ``resize_to`` is set) and encode a crop; refuse one too large for a shard."""
        height, width = pixels.shape[:2]
        if not self.resize_to and height * width > STORED_MAX_PIXELS:
            raise RawDataError(
                f"{self.task.name}: {source or 'an image'} is {width}x{height} px ({height * width / 1e6:.0f} Mpx), "
                f"more than a shard image may hold ({STORED_MAX_PIXELS / 1e6:.0f} Mpx, the most every image reader "
                f"decodes without a decompression-bomb error); tile or crop it to the task's patch size "
                f"({self.task.patch_px or 'see the task card'} px) before converting")
        if self.resize_to and pixels.shape[:2] != (self.resize_to, self.resize_to):
            image = Image.fromarray(pixels).resize((self.resize_to, self.resize_to), Image.Resampling.LANCZOS)
            pixels = np.asarray(image)
        return encode_png(pixels)

    def pixels(self, sample: Sample) -> np.ndarray:
        """The RGB pixels of ``sample`` read on their own (a converter that reads regions, never whole files,
        overrides this, and :meth:`prepare` then asks it for each sample)."""
        return self.crop(self.read(sample.source), sample)

    def prepare(self, batch: list[Sample]) -> None:
        """Encode the crops of ``batch`` ahead, decoding each raw file once, and keep them until they are taken
        (with :meth:`pixels` overridden: sample by sample, in file order)."""
        if type(self).pixels is not Converter.pixels:
            for sample in sorted(batch, key=lambda s: (s.source, s.key)):
                self._ready[sample.key] = self.finish(self.pixels(sample), sample.source)
            return
        by_file: dict[str, list[Sample]] = {}
        for sample in batch:
            by_file.setdefault(sample.source, []).append(sample)
        for rel, members in by_file.items():
            pixels = self.read(rel)
            for sample in members:
                self._ready[sample.key] = self.finish(self.crop(pixels, sample), sample.source)

    def image(self, sample: Sample) -> bytes:
        """Encoded image of ``sample`` (prepared in a batch, or read now)."""
        ready = self._ready.pop(sample.key, None)
        if ready is not None:
            return ready
        return self.finish(self.pixels(sample), sample.source)
