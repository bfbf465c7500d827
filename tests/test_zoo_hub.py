"""Fetching preset weights over HTTP: a stand-in for the Hugging Face Hub (and for a release URL) on 127.0.0.1,
with gated refusals and dropped connections. Only loopback addresses; every server is stopped by its fixture."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file
from test_zoo import perturbed, stand_in, timm_config

from dpbench.encoders import load_encoder
from dpbench.encoders.presets import Preset, TimmLoader, get_preset
from dpbench.encoders.zoo import ZooEncoder, build_preset
from dpbench.errors import DpbenchError

pytest.importorskip("timm")
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    """``HEAD``/``GET /ORG/NAME/resolve/REV/FILE`` and ``GET /files/NAME`` on 127.0.0.1, as the Hub answers them.

    ``mode``: ``ok``; ``gated`` (401 unauthenticated or 403 without access, with the Hub's ``X-Error-Code:
    GatedRepo``); ``drop`` (a GET sends the headers and half the body, then closes; ``drops`` limits how many).
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.mode = "ok"
        self.status = 401
        self.drops: int | None = None
        self.log: list[tuple[str, str, str | None]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    hub.answer(self, body=False)

            def do_GET(self) -> None:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    hub.answer(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        path, rng = handler.path.split("?")[0], handler.headers.get("Range")
        self.log.append((handler.command, path, rng))
        key = path.replace(f"/resolve/{COMMIT}/", "/resolve/main/")
        if self.mode == "gated" and "/resolve/" in path:
            handler.send_response(self.status)
            handler.send_header("X-Error-Code", "GatedRepo")
            handler.send_header("X-Error-Message", "Access to model is restricted. You must have access to it and be "
                                                   "authenticated to access it. Please log in.")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if key not in self.files:
            handler.send_response(404)
            handler.send_header("X-Error-Code", "EntryNotFound")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        data = self.files[key]
        start = int(rng.removeprefix("bytes=").split("-")[0]) if rng else 0
        handler.send_response(206 if rng else 200)
        if rng:
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        handler.send_header("Content-Length", str(len(data) - start))
        handler.send_header("X-Repo-Commit", COMMIT)
        handler.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        handler.send_header("Accept-Ranges", "bytes")
        handler.end_headers()
        if not body:
            return
        payload = data[start:]
        if self.mode == "drop" and (self.drops is None or self.drops > 0):
            self.drops = None if self.drops is None else self.drops - 1
            handler.wfile.write(payload[: len(payload) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            return
        handler.wfile.write(payload)

    def serve(self, hub_id: str, files: dict[str, bytes]) -> None:
        for name, data in files.items():
            self.files[f"/{hub_id}/resolve/main/{name}"] = data


class NoSleep:
    """``time`` for huggingface_hub's download module, without the one-second pause before a resume."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        pass


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """The fake hub as HF_ENDPOINT (huggingface_hub reads it at import: the constants are patched), empty caches."""
    server = FakeHub()
    server.thread.start()
    try:
        monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", server.url)
        monkeypatch.setattr("huggingface_hub.constants.HUGGINGFACE_CO_URL_TEMPLATE",
                            server.url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
        monkeypatch.setattr("huggingface_hub.file_download.time", NoSleep())
        monkeypatch.setattr("dpbench.encoders.hub.BACKOFF", 0.01)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no stored token either
        monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
        server.thread.join(timeout=5)


def uni_stand_in(hub: FakeHub, tmp_path: Path) -> tuple[Preset, torch.nn.Module]:
    """UNI's loader with a tiny architecture, its (perturbed) files on the fake hub."""
    preset = stand_in(get_preset("uni"))
    assert isinstance(preset.loader, TimmLoader) and preset.hub_id is not None
    module, _ = build_preset(preset, weights=False)
    assert isinstance(module, ZooEncoder)
    perturbed(module)
    save_file({k: v.contiguous() for k, v in module.backbone.state_dict().items()}, tmp_path / "w.safetensors")
    hub.serve(preset.hub_id, {"config.json": timm_config(preset.loader, preset, 48),
                              "model.safetensors": (tmp_path / "w.safetensors").read_bytes()})
    return preset, module.eval()


def same_output(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    images = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return bool(torch.allclose(a.eval()(images), b.eval()(images), atol=1e-5))


def test_download_fills_the_hub_cache_then_loads_offline(hub: FakeHub, tmp_path: Path) -> None:
    preset, reference = uni_stand_in(hub, tmp_path)
    module, _ = build_preset(preset)  # online: HEAD + GET through the real timm hf-hub path
    assert same_output(module, reference)
    repo = tmp_path / "hf" / "models--MahmoodLab--UNI"
    assert (repo / "refs" / "main").read_text() == COMMIT
    assert {p.name for p in (repo / "snapshots" / COMMIT).iterdir()} == {"config.json", "model.safetensors"}
    requests = len(hub.log)
    again, _ = build_preset(preset, offline=True)
    assert same_output(again, reference) and len(hub.log) == requests  # offline: not one request


@pytest.mark.parametrize("status", [401, 403])
def test_a_gated_model_without_access_is_one_line(hub: FakeHub, status: int) -> None:
    hub.mode, hub.status = "gated", status
    with pytest.raises(DpbenchError) as info:
        load_encoder("uni")  # the real preset: refused at its first file
    message = str(info.value)
    assert "\n" not in message and "gated" in message and "accept its licence" in message
    assert f"{hub.url}/MahmoodLab/UNI" in message and "hf auth login" in message and "HF_TOKEN" in message


def test_a_dropped_connection_resumes_or_fails_in_one_line(hub: FakeHub, tmp_path: Path) -> None:
    preset, reference = uni_stand_in(hub, tmp_path)
    hub.mode, hub.drops = "drop", 1  # one drop: huggingface_hub resumes with a Range request
    module, _ = build_preset(preset)
    assert same_output(module, reference)
    gets = [path for method, path, _ in hub.log if method == "GET" and "/resolve/" in path]
    assert gets[0] == gets[1]  # the dropped file was asked for again (from where it stopped when data arrived)
    other = preset.model_copy(update={"hub_id": "MahmoodLab/UNI-copy"})
    hub.serve("MahmoodLab/UNI-copy", {k.rsplit("/", 1)[1]: v for k, v in hub.files.items()})
    hub.mode, hub.drops = "drop", None  # every attempt dropped half-way
    with pytest.raises(DpbenchError, match=r"downloading MahmoodLab/UNI-copy failed .*rerun") as info:
        build_preset(other)
    assert "\n" not in str(info.value)
    snapshot = tmp_path / "hf" / "models--MahmoodLab--UNI-copy" / "snapshots" / COMMIT
    assert not (snapshot / "model.safetensors").exists()  # no truncated file where a complete one belongs
    hub.mode = "ok"
    module, _ = build_preset(other)
    assert same_output(module, reference)


def test_release_url_weights_download_into_the_torch_cache(hub: FakeHub, tmp_path: Path) -> None:
    real = stand_in(get_preset("kaiko-vits16"))
    assert isinstance(real.loader, TimmLoader)
    preset = real.model_copy(update={"loader": real.loader.model_copy(update={"url": f"{hub.url}/files/vits16.pth"})})
    module, _ = build_preset(preset, weights=False)
    perturbed(module)
    assert isinstance(module, ZooEncoder)
    torch.save(module.backbone.state_dict(), tmp_path / "vits16.pth")
    hub.files["/files/vits16.pth"] = (tmp_path / "vits16.pth").read_bytes()
    target = tmp_path / "torch" / "hub" / "checkpoints" / "vits16.pth"
    hub.mode, hub.drops = "drop", None
    failed = rf"downloading {hub.url}/files/vits16.pth failed .*put the file at {target}"
    with pytest.raises(DpbenchError, match=failed):
        build_preset(preset)
    assert not target.exists()  # never a truncated file where timm looks
    hub.mode = "ok"
    loaded, _ = build_preset(preset)
    assert target.is_file() and same_output(loaded, module)
    assert any(rng for _, path, rng in hub.log if path == "/files/vits16.pth")  # it resumed the partial file
