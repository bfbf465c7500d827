"""Every exception of the project, all deriving from :class:`DpbenchError`.

The CLI turns a ``DpbenchError`` into one clear error line (``error: …``) and exit code 2; the message says what
is wrong and how to fix it. Subclasses let library callers tell the cases apart.
"""

from __future__ import annotations

from typing import Literal


class DpbenchError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it."""


class RegistryError(DpbenchError, LookupError):
    """An unknown task, pool or source name (the message lists what exists or the close matches)."""


class RawDataError(DpbenchError):
    """Raw data that cannot be converted; the message names the file and the fix."""


class Unscorable(DpbenchError):
    """A task that cannot be scored with this data (a single class, no validation split): skipped, not fatal."""


class ShardMismatch(DpbenchError):
    """What a checked shard read found wrong: a sample without its entries (``kind`` "entries"), a label out
    of range ("label"), both naming the sample ``key`` with ``what`` describing it, or a sample ``count``
    differing from the manifest's ("count")."""

    def __init__(self, kind: Literal["entries", "label", "count"], key: str = "", what: str = "",
                 count: int = 0) -> None:
        super().__init__(kind, key, what, count)
        self.kind = kind
        self.key = key
        self.what = what
        self.count = count


class TransferFailure(DpbenchError):
    """One failed download attempt; ``permanent``: do not retry this mirror; ``restart``: drop the partial file."""

    def __init__(self, message: str, *, permanent: bool = False, restart: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.restart = restart


class AllMirrorsFailed(DpbenchError):
    """Every mirror and retry of a download failed (the message is the last failure)."""


class TransferCancelled(DpbenchError):
    """A download stopped because another part of the same run failed."""


class EncoderCheckFailed(DpbenchError):
    """One contract check of an encoder failed (``dpbench check-encoder``)."""


#: What allocators say when memory runs out: CUDA ("CUDA out of memory"), torch's CPU allocator ("can't allocate
#: memory", "not enough memory"), MPS ("MPS backend out of memory").
_OOM_WORDS = ("out of memory", "can't allocate memory", "not enough memory")


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says memory ran out: Python's MemoryError, torch's OutOfMemoryError (CUDA), or a
    RuntimeError whose message says so (torch's CPU allocator). Needs no torch import."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and any(w in str(exc).lower() for w in _OOM_WORDS)
