"""The submission's wire format, validated strictly: unknown fields, odd names and unsafe URLs are refused.

A submission is ``{"board": SLUG, "card": {...}, "results": <results.json as dpbench eval writes it>}``. The card
carries what the results file cannot: the name to show, the code URL, the declared pre-training data and, for a
leave-one-task-out entry, the tasks each evaluated model never saw.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dpbench.results import Results

_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True)
SLUG_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
NAME_CHARS = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._+:@()=/-]{0,99}")
TASK_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,99}")
#: Control, format (bidi overrides, zero-width), private-use and unassigned characters.
_HIDDEN = {"Cc", "Cf", "Co", "Cn", "Cs"}


def check_name(name: str) -> str:
    """A model name shown on the board: printable ASCII letters, digits and ``._+:@()=-``, single spaces and at most
    one ``/`` (``org/model``); never ``..``, a leading or trailing ``/`` or space, or a character NFKC changes."""
    if unicodedata.normalize("NFKC", name) != name or any(unicodedata.category(c) in _HIDDEN for c in name):
        raise ValueError("the name holds invisible, control or look-alike characters")
    if not NAME_CHARS.fullmatch(name):
        raise ValueError("a name is 1-100 characters: letters, digits, space and ._+:@()=-/, starting with a letter "
                         "or digit")
    if ".." in name or "  " in name or name.count("/") > 1 or name.endswith(("/", " ")) or "/ " in name:
        raise ValueError("a name may not hold '..', double spaces, more than one '/' or end with '/' or a space")
    return name


def check_text(text: str, limit: int) -> str:
    """Free text (shown escaped): at most ``limit`` characters, no control or invisible characters but newlines."""
    if len(text) > limit:
        raise ValueError(f"at most {limit} characters")
    if any(unicodedata.category(c) in _HIDDEN and c != "\n" for c in text):
        raise ValueError("control or invisible characters are not allowed")
    return text


def check_url(url: str) -> str:
    """An https URL with a host and no credentials, whitespace or control characters."""
    if len(url) > 300 or any(c.isspace() or unicodedata.category(c) in _HIDDEN for c in url):
        raise ValueError("a URL is at most 300 characters without spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise ValueError("only https://HOST/... URLs without credentials are accepted")
    return url


class ModelCard(BaseModel):
    """What the board shows about the model beside its scores."""

    model_config = _STRICT

    model_name: str
    code_url: str | None = None
    paper_url: str | None = None
    pretraining_data: str = ""  # empty: shown as "undeclared"
    #: leave-one-task-out entries: evaluated task → the tasks that task's model never saw (itself included)
    unseen_tasks: dict[str, list[str]] | None = Field(default=None, max_length=200)

    @field_validator("model_name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)

    @field_validator("code_url", "paper_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)

    @field_validator("pretraining_data")
    @classmethod
    def _data(cls, value: str) -> str:
        return check_text(value, 1000)

    @field_validator("unseen_tasks")
    @classmethod
    def _unseen(cls, value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        if value is None:
            return None
        for task, unseen in value.items():
            names = [task, *unseen]
            if len(unseen) > 200 or not all(TASK_RE.fullmatch(n) for n in names):
                raise ValueError("unseen_tasks maps task names to lists of (at most 200) task names")
            if task not in unseen:
                raise ValueError(f"the model evaluated on {task} must never have seen {task}: list it in its own "
                                 "unseen tasks")
        return value


class SubmissionIn(BaseModel):
    """A submission: the board it is for, the model card and the results file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    board: str = Field(pattern=SLUG_RE)
    card: ModelCard
    results: Results
