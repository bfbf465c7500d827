"""Publishing a built pool: a verified copy with a dataset card; restricted licences are refused; uploads to a
(fake, loopback) Hugging Face Hub."""

from __future__ import annotations

import base64
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import huggingface_hub.constants
import pytest
import yaml
from conftest import SMALL_TASKS, run_cli, tree_bytes
from huggingface_hub import DatasetCard

from dpbench.errors import DpbenchError
from dpbench.pool.manifest import load_manifest
from dpbench.pool.verify import verify_pool
from dpbench.tasks import get_task
from dpbench.tasks.models import Task
from dpbench.transport import publish as publish_module
from dpbench.transport.publish import hub_repo, publish_pool, publish_to_hub, refusal_reason


def front_matter(card: str) -> dict[str, object]:
    assert card.startswith("---\n")
    loaded: dict[str, object] = yaml.safe_load(card.split("---\n")[1])
    return loaded


def test_publish_copies_a_verified_pool_with_a_dataset_card(small_pool: Path, tmp_path: Path) -> None:
    out = tmp_path / "pub"
    report = publish_pool(small_pool, out, tasks=SMALL_TASKS[:2])
    manifest = load_manifest(out)
    assert report.tasks == SMALL_TASKS[:2] == [t.name for t in manifest.tasks]
    assert report.files == len(manifest.shards) + 4  # shards, two split.json, manifest.json, README.md
    assert manifest.pool_version == load_manifest(small_pool).pool_version
    for shard in manifest.shards:
        assert (out / shard.path).read_bytes() == (small_pool / shard.path).read_bytes()
    assert verify_pool(out)[1] == []
    card = (out / "README.md").read_text()
    meta = front_matter(card)
    assert meta["license"] == "cc0-1.0" and "synthetic" in meta["tags"]  # type: ignore[operator]
    configs = {c["config_name"]: c for c in meta["configs"]}  # type: ignore[attr-defined]
    assert set(configs) == set(SMALL_TASKS[:2])
    splits = {d["split"] for d in configs["synthetic-Necrosis"]["data_files"]}
    assert splits == {"train", "validation", "test"}
    assert "SYNTHETIC data" in card and "mormont2020multitask" in card and "| synthetic-Necrosis | 2 |" in card
    parsed = DatasetCard(card)  # what the Hub's client reads back
    assert parsed.data.size_categories == ["n<1K"] and parsed.data.task_categories == ["image-classification"]
    assert parsed.text.lstrip().startswith("# dpbench pool `synthetic`")


def _restricted(licence: str, availability: str = "public") -> Task:
    task = get_task("synthetic-Necrosis")
    source = task.source.model_copy(update={"licence": licence, "availability": availability})
    return task.model_copy(update={"source": source})


def test_restricted_licences_are_refused_unless_forced(small_pool: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    assert "derived" in (refusal_reason(_restricted("CC-BY-NC-ND-4.0")) or "")
    assert refusal_reason(_restricted("proprietary", "private")) == "private data"
    assert "unknown" in (refusal_reason(_restricted("unknown")) or "")
    assert refusal_reason(_restricted("CC-BY-4.0")) is None
    nd = _restricted("CC-BY-NC-ND-4.0")
    monkeypatch.setattr(publish_module, "get_task", lambda name: nd if name == nd.name else get_task(name))
    out = tmp_path / "pub"
    with pytest.raises(DpbenchError, match=r"refusing to publish synthetic-Necrosis \(CC-BY-NC-ND-4.0"):
        publish_pool(small_pool, out)
    assert not out.exists()
    report = publish_pool(small_pool, out, force_licence=["synthetic-Necrosis"])
    assert report.forced == ["synthetic-Necrosis"] and "synthetic-Necrosis" in report.tasks
    assert front_matter((out / "README.md").read_text())["license"] == "other"


def test_a_corrupted_source_is_not_published(small_pool: Path, tmp_path: Path) -> None:
    root = tmp_path / "src"
    shutil.copytree(small_pool, root)
    bad = root / load_manifest(root).shards[0].path
    bad.write_bytes(bad.read_bytes()[:-10])
    with pytest.raises(DpbenchError, match="does not match the manifest"):
        publish_pool(root, tmp_path / "pub")


def test_publish_cli(small_pool: Path, tmp_path: Path) -> None:
    result = run_cli("publish", str(small_pool), "--to", str(tmp_path / "pub"), "--tasks", "synthetic-Necrosis")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "pub" / "README.md").exists() and "published 1 task(s)" in result.stdout
    result = run_cli("publish", str(small_pool), "--to", str(small_pool))
    assert result.returncode == 2 and "another folder" in result.stderr


def test_publish_then_download_from_the_cli(small_pool: Path, tmp_path: Path) -> None:
    assert run_cli("publish", str(small_pool), "--to", str(tmp_path / "pub")).returncode == 0
    out = tmp_path / "data"
    args = ("download", "--pool", "synthetic", "--mirror", str(tmp_path / "pub"), "--out", str(out))
    unpinned = run_cli(*args, "--tasks", "synthetic-Necrosis")  # a self-published pool: no pin in this release
    assert unpinned.returncode == 2 and "--trust-mirror" in unpinned.stderr and "Traceback" not in unpinned.stderr
    args = (*args, "--trust-mirror")
    first = run_cli(*args, "--tasks", "synthetic-Necrosis")
    assert first.returncode == 0, first.stderr
    assert "only trust root" in first.stdout
    assert [t.name for t in load_manifest(out).tasks] == ["synthetic-Necrosis"]
    again = run_cli(*args, "--tasks", "synthetic-Necrosis")
    assert "0 file(s) fetched" in again.stdout
    assert run_cli("verify", str(out)).returncode == 0
    wrong = run_cli("download", "--pool", "mormont2020", "--mirror", str(tmp_path / "pub"),
                    "--out", str(tmp_path / "x"))
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr and "synthetic" in wrong.stderr


class FakeHub:
    """The Hub's upload API on 127.0.0.1, as far as ``create_repo`` and ``upload_folder`` use it: repo creation,
    the README metadata check, preupload (every file "regular": no LFS or Xet) and the ndjson commit.
    ``refuse``: answer every request with this HTTP status instead."""

    def __init__(self, refuse: int | None = None) -> None:
        self.refuse = refuse
        self.repos: dict[str, dict[str, bytes]] = {}  # repo id → path → committed bytes
        self.metadata: list[dict[str, Any]] = []  # README front matter sent for validation
        self.auth: set[str | None] = set()  # Authorization headers seen
        self.lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.reply(b"")

            def do_POST(self) -> None:
                self.reply(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def reply(self, body: bytes) -> None:
                with hub.lock:
                    hub.auth.add(self.headers.get("Authorization"))
                    status, answer = hub.route(self.command, urlsplit(self.path).path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def route(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        if self.refuse:
            return self.refuse, {"error": "Invalid credentials in Authorization header"}
        if (method, path) == ("POST", "/api/repos/create"):
            asked = json.loads(body)
            repo = f"{asked['organization']}/{asked['name']}"
            url = f"{self.url}/datasets/{repo}"
            if asked.get("type") != "dataset":
                return 400, {"error": "this Hub holds dataset repositories only"}
            if repo in self.repos:
                return 409, {"error": "You already created this dataset repo", "url": url}
            self.repos[repo] = {}
            return 200, {"url": url}
        if (method, path) == ("POST", "/api/validate-yaml"):
            self.metadata.append(yaml.safe_load(json.loads(body)["content"].split("---\n")[1]))
            return 200, {"errors": [], "warnings": []}
        match = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/(preupload|commit)/main", path)
        if method != "POST" or not match or match[1] not in self.repos:
            return 404, {"error": f"no route for {method} {path}"}
        if match[2] == "preupload":
            files = json.loads(body)["files"]
            return 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                   for f in files]}
        for item in map(json.loads, body.splitlines()):
            if item["key"] == "file" and item["value"]["encoding"] == "base64":
                self.repos[match[1]][item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            elif item["key"] != "header":
                return 400, {"error": f"unexpected commit entry {item['key']}"}
        return 200, {"commitUrl": f"{self.url}/datasets/{match[1]}/commit/{'0' * 40}", "commitOid": "0" * 40}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    """A fake Hub the client is pointed at, with a test token and no stored login of the machine's user."""
    server = FakeHub()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    for name in ("HF_OIDC_RESOURCE", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-stored-token"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    yield server
    server.stop()


def test_hf_targets_are_parsed() -> None:
    assert hub_repo("hf://org/pool") == hub_repo("hf://datasets/org/pool/") == "org/pool"
    assert hub_repo("published/") is None
    for bad in ("hf://pool", "hf://org/pool/extra", "hf://org/../x"):
        with pytest.raises(DpbenchError, match="use hf://ORG/NAME"):
            hub_repo(bad)


def test_publish_uploads_the_publishable_copy(small_pool: Path, tmp_path: Path, hub: FakeHub) -> None:
    report = publish_to_hub(small_pool, "org/pool", tasks=SMALL_TASKS[:2])
    local = tree_bytes(publish_pool(small_pool, tmp_path / "local", tasks=SMALL_TASKS[:2]).out)
    assert hub.repos["org/pool"] == local  # every file, byte for byte, and nothing else
    assert report.published.files == len(local) and not report.published.out.exists()  # staging removed
    assert report.commit_url.startswith(hub.url) and hub.auth == {"Bearer hf_test_token"}
    assert hub.metadata and hub.metadata[0]["license"] == "cc0-1.0"
    again = publish_to_hub(small_pool, "org/pool", tasks=SMALL_TASKS[:1])  # the repo exists: updated in place
    assert again.published.tasks == SMALL_TASKS[:1] and set(hub.repos) == {"org/pool"}


def test_publish_without_a_token_says_how_to_log_in(small_pool: Path, hub: FakeHub,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(DpbenchError, match=r"run `hf auth login` or set HF_TOKEN") as caught:
        publish_to_hub(small_pool, "org/pool")
    assert "\n" not in str(caught.value) and hub.auth == set()  # refused before any request


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_upload_is_one_clear_error(small_pool: Path, hub: FakeHub, status: int) -> None:
    hub.refuse = status
    with pytest.raises(DpbenchError, match=rf"refused the upload to hf://org/pool \(HTTP {status}.*write to org"
                       ) as caught:
        publish_to_hub(small_pool, "org/pool")
    assert "\n" not in str(caught.value) and hub.repos == {}


def test_an_unreachable_hub_is_one_clear_error(small_pool: Path, hub: FakeHub,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(DpbenchError, match=rf"could not upload to hf://org/pool at http://127.0.0.1:{port}"):
        publish_to_hub(small_pool, "org/pool")


def test_publish_to_hf_from_the_cli(small_pool: Path, tmp_path: Path, hub: FakeHub) -> None:
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HF_HOME": str(tmp_path / "hf-home"),
           "HF_ENDPOINT": hub.url, "NO_PROXY": "127.0.0.1"}

    def cli(*args: str, token: bool = True) -> subprocess.CompletedProcess[str]:
        extra = {"HF_TOKEN": "hf_test_token"} if token else {}
        return subprocess.run([sys.executable, "-m", "dpbench", "publish", str(small_pool), *args], text=True,
                              capture_output=True, timeout=300, env=env | extra)

    done = cli("--to", "hf://org/pool", "--tasks", "synthetic-Necrosis")
    assert done.returncode == 0, done.stderr
    assert "published 1 task(s)" in done.stdout and "→ hf://org/pool" in done.stdout
    assert "synthetic-Necrosis/split.json" in hub.repos["org/pool"] and "README.md" in hub.repos["org/pool"]
    no_token, bad_target = cli("--to", "hf://org/pool", token=False), cli("--to", "hf://org")
    for result in (no_token, bad_target):
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert "hf auth login" in no_token.stderr and "hf://ORG/NAME" in bad_target.stderr
