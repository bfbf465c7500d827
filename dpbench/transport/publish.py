"""Make a publishable copy of a built pool (shards, manifest and a Hugging Face dataset card), or upload one to a
dataset repository of the Hugging Face Hub.

Tasks whose licence forbids redistribution (no-derivatives, private, unknown or research-only terms)
are refused unless the publisher names them with ``force_licence``, taking responsibility for the rights.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from huggingface_hub import DatasetCard, DatasetCardData, HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError

from dpbench import __version__
from dpbench.errors import DpbenchError
from dpbench.io import atomic_open, atomic_write_bytes, atomic_write_json, ensure_writable
from dpbench.pool.manifest import MANIFEST, Manifest, load_manifest
from dpbench.pool.verify import file_problem, split_problem
from dpbench.tasks.cards import is_card_pool
from dpbench.tasks.citations import MORMONT2020_JBHI
from dpbench.tasks.models import REDISTRIBUTABLE, Task
from dpbench.tasks.registry import get_task

#: SPDX-style licence id → the Hugging Face Hub's licence identifier.
HF_LICENCE = {"CC0-1.0": "cc0-1.0", "CC-BY-4.0": "cc-by-4.0", "CC-BY-SA-4.0": "cc-by-sa-4.0",
              "CC-BY-NC-4.0": "cc-by-nc-4.0", "CC-BY-NC-SA-4.0": "cc-by-nc-sa-4.0",
              "CC-BY-NC-ND-4.0": "cc-by-nc-nd-4.0", "MIT": "mit"}


HF_SCHEME = "hf://"
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*")
#: Network failures: the HTTP client's own error base (httpx's; requests' in older huggingface_hub, whose errors
#: are OSErrors), of which the Hub's HTTP status errors are a subclass.
_CLIENT_ERRORS = (OSError, cast("type[Exception]", HfHubHTTPError.__bases__[0]))


@dataclass
class PublishReport:
    """What was published where."""

    out: Path
    tasks: list[str]
    files: int
    bytes: int
    forced: list[str] = field(default_factory=list)


@dataclass
class HubReport:
    """What :func:`publish_to_hub` uploaded: the publishable copy (staged in a folder since removed), the
    repository and the URL of the (last) commit."""

    published: PublishReport
    repo: str
    commit_url: str


def refusal_reason(task: Task) -> str | None:
    """Why ``task`` may not be redistributed, or None when its licence allows it."""
    if task.availability == "private":
        return "private data"
    if task.licence == "CC-BY-NC-ND-4.0":
        return "CC-BY-NC-ND-4.0 forbids distributing derived material (patches are derivatives)"
    if task.licence not in REDISTRIBUTABLE:
        return f"licence {task.licence}: redistribution is not granted"
    return None


def publish_pool(root: Path, out: Path, tasks: list[str] | None = None,
                 force_licence: list[str] | None = None) -> PublishReport:
    """Copy the verified shards of ``root`` (or of ``tasks``) to ``out`` with a manifest and dataset card."""
    manifest = load_manifest(root)
    if is_card_pool(manifest.pool):
        raise DpbenchError(f"{root} holds pool {manifest.pool}, built from task cards; publish ships registry pools "
                           "only: share the cards (and the raw data where its licence allows), and dpbench build "
                           "--task CARD rebuilds the same pool, byte for byte, with the same version")
    chosen = [manifest.task(get_task(n).name).name for n in tasks] if tasks else [t.name for t in manifest.tasks]
    forced = [get_task(n).name for n in force_licence or []]
    refused = {n: r for n in chosen if (r := refusal_reason(get_task(n))) and n not in forced}
    if refused:
        listing = "; ".join(f"{n} ({r})" for n, r in refused.items())
        raise DpbenchError(f"refusing to publish {listing}; leave them out with --tasks, or name them with "
                           "--force-licence TASK if you hold the right to redistribute them")
    if out.resolve() == root.resolve():
        raise DpbenchError("--to must be another folder than the built pool")
    ensure_writable(out)
    files = total = 0
    for entry in manifest.shards:
        if entry.task not in chosen:
            continue
        source = root / entry.path
        if file_problem(source, entry):
            raise DpbenchError(f"{source} does not match the manifest; run dpbench verify {root} and rebuild first")
        target = out / entry.path
        if file_problem(target, entry):
            with atomic_open(target) as dst, source.open("rb") as src:
                shutil.copyfileobj(src, dst, 1 << 20)
        files += 1
        total += entry.bytes
    for name in chosen:
        split_file = root / name / "split.json"
        problem = split_problem(split_file, manifest.task(name))
        if problem:
            raise DpbenchError(f"{split_file}: {problem}; rebuild the pool (dpbench build --out {root})")
        atomic_write_bytes(out / name / "split.json", split_file.read_bytes())
        files += 1
    published = Manifest(pool=manifest.pool, pool_version=manifest.pool_version, synthetic=manifest.synthetic,
                         dpbench_version=manifest.dpbench_version,
                         tasks=[t for t in manifest.tasks if t.name in chosen],
                         shards=[s for s in manifest.shards if s.task in chosen])
    atomic_write_json(out / MANIFEST, published.model_dump(mode="json"))
    atomic_write_bytes(out / "README.md", dataset_card(published).encode())
    return PublishReport(out=out, tasks=chosen, files=files + 2, bytes=total, forced=[n for n in forced if n in chosen])


def hub_repo(target: str) -> str | None:
    """``ORG/NAME`` of an ``hf://ORG/NAME`` (or ``hf://datasets/ORG/NAME``) target; None for a local folder."""
    if not target.startswith(HF_SCHEME):
        return None
    repo = target.removeprefix(HF_SCHEME).removeprefix("datasets/").strip("/")
    if not _REPO_ID.fullmatch(repo):
        raise DpbenchError(f"{target} is not a Hub dataset repository: use hf://ORG/NAME")
    return repo


def publish_to_hub(root: Path, repo: str, tasks: list[str] | None = None,
                   force_licence: list[str] | None = None) -> HubReport:
    """Write the publishable copy of ``root`` to a temporary folder (:func:`publish_pool`) and upload it to the
    Hub dataset repository ``repo`` (ORG/NAME; created when absent).

    The token is ``huggingface_hub``'s (``HF_TOKEN``, else the stored ``hf auth login``); ``HF_ENDPOINT`` is read
    at each call. Every failure is one :class:`DpbenchError` line saying what to do.
    """
    token = get_token()
    if not token:
        raise DpbenchError(f"no Hugging Face token to upload to hf://{repo}: run `hf auth login` or set HF_TOKEN")
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)
    with tempfile.TemporaryDirectory(prefix="dpbench-publish-") as staging:
        report = publish_pool(root, Path(staging) / "pool", tasks, force_licence)
        copy = load_manifest(report.out)
        message = f"dpbench publish: pool {copy.pool} {copy.pool_version}, {len(report.tasks)} task(s)"
        try:
            api.create_repo(repo, repo_type="dataset", exist_ok=True)
            commit = api.upload_folder(repo_id=repo, folder_path=report.out, repo_type="dataset",
                                       commit_message=message)
        except HfHubHTTPError as exc:
            raise DpbenchError(_refusal(exc, repo)) from None
        except (*_CLIENT_ERRORS, ValueError) as exc:
            said = " ".join(str(exc).split())
            raise DpbenchError(f"could not upload to hf://{repo} at {api.endpoint} ({said}); check the network "
                               "and HF_ENDPOINT, then rerun") from None
    return HubReport(published=report, repo=repo, commit_url=str(commit.commit_url))


def _refusal(exc: HfHubHTTPError, repo: str) -> str:
    status = exc.response.status_code
    said = " ".join((exc.server_message or "").split())
    if status in (401, 403):
        hint = (f"check that your token may write to {repo.split('/')[0]} (`hf auth login` with a write token, "
                "or HF_TOKEN)")
    else:
        hint = "check the repository name and the Hub's status, then rerun"
    return f"the Hub refused the upload to hf://{repo} (HTTP {status}{': ' + said if said else ''}); {hint}"


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return label
    return "1M<n<10M"


def dataset_card(manifest: Manifest) -> str:
    """README.md: the metadata the Hugging Face Hub reads (``DatasetCardData`` as YAML front matter), then the
    human part: tasks, licences and attribution, citations."""
    tasks = [get_task(t.name) for t in manifest.tasks]
    licences = sorted({t.licence for t in tasks})
    n_images = sum(s.count for s in manifest.shards)
    meta: dict[str, Any] = {"license": HF_LICENCE.get(licences[0], "other") if len(licences) == 1 else "other"}
    if meta["license"] == "other":
        meta |= {"license_name": "per-task", "license_link": "README.md"}  # the licences are in the card's text
    meta |= {"pretty_name": f"dpbench {manifest.pool} {manifest.pool_version}",
             "task_categories": ["image-classification"], "size_categories": [_size_category(n_images)],
             "tags": ["histopathology", "digital-pathology", "webdataset", "dpbench",
                      *(["synthetic"] if manifest.synthetic else [])],
             "configs": [{"config_name": entry.name,
                          "data_files": [{"split": "validation" if split == "val" else split,
                                          "path": f"{entry.name}/{split}-*.tar"}
                                         for split in ("train", "val", "test") if entry.splits[split].images]}
                         for entry in manifest.tasks]}
    body = [f"# dpbench pool `{manifest.pool}` (version `{manifest.pool_version}`)", ""]
    if manifest.synthetic:
        body += ["**SYNTHETIC data**: every image was generated by dpbench's procedural H&E-like renderer. "
                 "No image comes from a patient. Scores on this pool test a pipeline, not a model's "
                 "value on real histology.", ""]
    body += [f"Built by dpbench {manifest.dpbench_version} (published with {__version__}): {len(tasks)} "
             f"tasks, {n_images:,} images in {len(manifest.shards)} webdataset shards. Each sample holds "
             "`<key>.png` (the image), `<key>.cls` (the class index) and `<key>.json` (task, class name, "
             "patient/slide group, split, source and licence).", "",
             "## Get it", "", "```bash",
             f"dpbench download --pool {manifest.pool} --out dpbench-data \\",
             "    --mirror https://huggingface.co/datasets/ORG/NAME/resolve/main/",
             "dpbench verify dpbench-data", "```", "",
             'or, without dpbench: `datasets.load_dataset("webdataset", data_files={"train": [...tar URLs...]})`.',
             "", "## Tasks", "", "| task | classes | train | val | test | split by | licence | source |",
             "|---|---:|---:|---:|---:|---|---|---|"]
    for entry, task in zip(manifest.tasks, tasks, strict=True):
        s = entry.splits
        link = f"[{task.source.title}]({task.source.url})"
        body.append(f"| {task.name} | {task.n_classes} | {s['train'].images:,} | {s['val'].images:,} | "
                    f"{s['test'].images:,} | {task.split_unit} | {task.licence} | {link} |")
    body += ["", "## Licences and attribution", ""]
    for source in {t.source.id: t.source for t in tasks}.values():
        users = ", ".join(t.name for t in tasks if t.source.id == source.id)
        body += [f"- **{users}**: {source.title}, licence {source.licence}. {source.notes}".rstrip()]
    body += ["", "## Citation", "", "Cite the benchmark's method paper and each source dataset you use:", "",
             "```bibtex", MORMONT2020_JBHI, ""]
    seen: set[str] = {MORMONT2020_JBHI}
    for task in tasks:
        if task.source.citation not in seen:
            seen.add(task.source.citation)
            body += [task.source.citation, ""]
    body += ["```", ""]
    card = DatasetCard("\n".join(["---", DatasetCardData(**meta).to_yaml(), "---", "", *body]))
    return str(card)
