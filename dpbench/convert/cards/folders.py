"""A class-folder tree: ``DATA/<class>/<group>/.../<image>``, or ``DATA/<class>/<image>`` with ``group: image``.

The class is the first folder under the data folder; with ``group: folder`` the group (slide or patient) is the
folder below it, so images of one slide stay together wherever they sit deeper. Files at the top of the data folder
(the card, a README) are ignored; other files that are not images are skipped with a count; a folder that is not
a class of the card, an image directly in a class folder under ``group: folder``, or an unreadable image stop the
scan with the fix.
"""

from __future__ import annotations

from collections.abc import Iterator

from dpbench.convert.base import IMAGE_EXT, raw_files, safe_key, subfolders
from dpbench.convert.cards.base import CardConverter
from dpbench.errors import RawDataError
from dpbench.tasks.cards import FolderData
from dpbench.tasks.samples import Sample


class FolderConverter(CardConverter):
    """Images of a class-folder tree, labelled by their class folder, grouped by the folder below it."""

    def items(self) -> Iterator[Sample]:
        data = self.card.data
        assert isinstance(data, FolderData)
        self.where = f"the folder {self.root}"
        if not self.root.is_dir():
            raise RawDataError(f"{self.task.name}: data folder {self.root} does not exist; fix data.path in the card "
                               "(relative to the card's folder)")
        for folder in subfolders(self.root):
            label = self.label(folder.name, str(folder))
            if label is None:
                continue
            for path in raw_files(folder):
                rel = path.relative_to(folder)
                if path.suffix.lower() not in IMAGE_EXT:
                    self.skip("not an image file", path)
                    continue
                if data.group == "folder" and len(rel.parts) < 2:
                    raise RawDataError(
                        f"{self.task.name}: {path} lies directly in its class folder, but the card groups images by "
                        f"the folder below the class (data.group: folder): move it to {folder}/<{self.task.split_unit}"
                        "-id>/, or set data.group: image and split_unit: image if every image is independent")
                self.readable(path)
                group = rel.parts[0] if data.group == "folder" else self.rel(path)
                yield Sample(key=safe_key(self.rel(path.with_suffix(""))), group=group, label=label,
                             source=self.rel(path), um_per_px=self.card.um_per_px)
