"""``dpbench doctor``: the environment in one table, with the fix for each missing piece."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import shutil
import socket
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import typer

from dpbench import __version__
from dpbench.cli.output import emit, format_option
from dpbench.cli.support import friendly

State = Literal["ok", "missing", "warning", "info"]
#: Where ``dpbench doctor`` checks that the Hugging Face Hub answers (only a TCP connection, nothing is sent).
HUB = ("huggingface.co", 443)
#: Free space under which the data folder is flagged: the embedded pool needs little, a real pool hundreds of GB.
LOW_DISK_GB = 5.0


@dataclass(frozen=True)
class Check:
    """One line of the doctor's table."""

    component: str
    state: State
    detail: str
    fix: str = ""


def _version(module: str) -> str | None:
    """The installed version of ``module``'s distribution, or None when it cannot be imported."""
    try:
        imported = importlib.import_module(module)
    except Exception:  # an extra that is absent, or present but broken: both need the same fix
        return None
    version = getattr(imported, "__version__", None)
    if version is None:
        try:
            version = importlib.metadata.version(module)
        except importlib.metadata.PackageNotFoundError:
            version = "installed"
    return str(version)


def python_check() -> Check:
    ok = sys.version_info >= (3, 11)
    return Check("python", "ok" if ok else "missing", f"{sys.version.split()[0]} ({sys.executable})",
                 "" if ok else "install Python >= 3.11")


def torch_checks() -> list[Check]:
    """torch, torchvision, CUDA, cuDNN and each GPU (name, memory)."""
    torch_version = _version("torch")
    fix = "pip install torch torchvision (the CUDA build matching your driver: see pytorch.org)"
    if torch_version is None:
        return [Check("torch", "missing", "not importable", fix)]
    import torch

    found = [Check("torch", "ok", torch_version)]
    vision = _version("torchvision")
    found.append(Check("torchvision", "ok" if vision else "missing", vision or "not importable", "" if vision else fix))
    if not torch.cuda.is_available():
        built = torch.version.cuda
        found.append(Check("CUDA", "info", "not available: evaluation runs on the CPU" +
                           (f" (torch built for CUDA {built}: no usable GPU or driver)" if built else
                            " (CPU-only torch build)"),
                           "install the CUDA build of torch and an NVIDIA driver to use a GPU"))
        return found
    found.append(Check("CUDA", "ok", f"{torch.version.cuda}, {torch.cuda.device_count()} GPU(s)"))
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None  # type: ignore[no-untyped-call]
    found.append(Check("cuDNN", "ok" if cudnn else "warning", str(cudnn) if cudnn else "not available",
                       "" if cudnn else "reinstall the CUDA build of torch (it bundles cuDNN)"))
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        found.append(Check(f"GPU {index}", "ok", f"{props.name}, {props.total_memory / 2**30:.1f} GiB"))
    return found


def extra_checks() -> list[Check]:
    """The optional pieces: openslide (library and its C part), timm, ray."""
    found = []
    try:
        import openslide

        found.append(Check("openslide", "ok", f"{openslide.__version__} (library {openslide.__library_version__})"))
    except ImportError as exc:
        missing_c = "libopenslide" in str(exc) or "shared object" in str(exc)
        fix = ("install the OpenSlide C library (apt-get install libopenslide0, or pip install openslide-bin)"
               if missing_c else "pip install 'dpbench-pathology[convert]'")
        found.append(Check("openslide", "missing", f"whole-slide images cannot be read ({exc})", fix))
    for module, extra, use in (("timm", "timm", "timm: and most pathology presets"),
                               ("ray", "ray", "multi-run sweeps on Ray")):
        version = _version(module)
        found.append(Check(module, "ok" if version else "missing", version or f"not installed (needed for {use})",
                           "" if version else f"pip install 'dpbench-pathology[{extra}]'"))
    return found


def disk_check(data: Path) -> Check:
    """Free space on the file system that holds ``data`` (its nearest existing parent when not built yet)."""
    where = data.resolve()
    while not where.exists() and where != where.parent:
        where = where.parent
    free_gb = shutil.disk_usage(where).free / 1e9
    low = free_gb < LOW_DISK_GB
    return Check(f"disk at {data}", "warning" if low else "ok", f"{free_gb:,.1f} GB free on {where}",
                 "free space or pass --data on a larger disk (a real pool needs up to hundreds of GB)" if low else "")


def _reachable(address: tuple[str, int], timeout: float) -> bool:
    """Whether a TCP connection to ``address`` opens within ``timeout`` s (DNS included, in a daemon thread)."""
    answer: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection(address, timeout=timeout):
                answer.append(True)
        except OSError:
            answer.append(False)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(answer and answer[0])


def hub_check(timeout: float) -> Check:
    """Whether the Hugging Face Hub is reachable, or offline by choice (``HF_HUB_OFFLINE``)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return Check("Hugging Face Hub", "info", "offline (HF_HUB_OFFLINE is set): presets load from the cache only",
                     "unset HF_HUB_OFFLINE to download weights")
    if timeout <= 0:
        return Check("Hugging Face Hub", "info", "not checked (--hub-timeout 0)")
    if _reachable(HUB, timeout):
        return Check("Hugging Face Hub", "ok", f"{HUB[0]} reachable")
    return Check("Hugging Face Hub", "warning", f"{HUB[0]} not reachable within {timeout:g} s",
                 "check the network or proxy (HTTPS_PROXY); offline, fetch weights elsewhere "
                 "(dpbench encoders fetch NAME) and set HF_HUB_OFFLINE=1")


def diagnose(data: Path, hub_timeout: float) -> list[Check]:
    """Every check, in the order of the table."""
    return [Check("dpbench", "ok", __version__), python_check(), *torch_checks(), *extra_checks(), disk_check(data),
            hub_check(hub_timeout)]


@friendly
def doctor_command(
    data: Path = typer.Option(Path("dpbench-data"), help="Data folder whose disk is checked for free space."),
    hub_timeout: float = typer.Option(3.0, help="Seconds to wait for the Hugging Face Hub (0: do not check)."),
    format: str = format_option(),
) -> None:
    """Check the environment: Python, torch, CUDA, cuDNN, GPUs, openslide, timm, ray, disk, Hub; say how to fix."""
    checks = diagnose(data, hub_timeout)
    missing = sum(c.state == "missing" for c in checks)
    emit([asdict(c) for c in checks], format, title=f"dpbench doctor: {missing} missing piece(s)")
