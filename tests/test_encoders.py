"""Encoders: every spec scheme, fingerprints, checkpoints, the contract checks and the check-encoder command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import encoder_fixtures as fx
import numpy as np
import pytest
import torch
import typer
from PIL import Image
from typer.testing import CliRunner

from dpbench.cli.check_encoder import check_encoder_command
from dpbench.encoders import (
    Encoder,
    InputSpec,
    check_encoder,
    load_encoder,
    read_encoder_checkpoint,
    save_encoder_checkpoint,
    synthetic_batch,
)
from dpbench.encoders.random_net import RandomConvNet
from dpbench.errors import DpbenchError

FIXTURES = Path(fx.__file__).resolve()
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")  # torch.jit.script/save deprecation


def features(encoder: Encoder, batch: int = 3) -> torch.Tensor:
    with torch.no_grad():
        out: torch.Tensor = encoder.module(synthetic_batch(encoder.input, batch, seed=1))
    return out


def assert_features(encoder: Encoder, dim: int | None = None) -> None:
    out = features(encoder)
    assert out.shape == (3, encoder.dim)
    assert dim is None or encoder.dim == dim
    assert torch.isfinite(out).all()
    assert not encoder.module.training


# ---- InputSpec ----

def test_input_spec_transform_resizes_and_normalises() -> None:
    spec = InputSpec(size=48)
    grey = Image.new("RGBA", (100, 60), (*(round(m * 255) for m in spec.mean), 255))
    out = spec.transform()(grey)
    assert out.shape == (3, 48, 48) and out.dtype == torch.float32
    assert out.abs().max() < 0.05  # the mean colour normalises to ~0
    train = spec.transform(train=True)(Image.new("RGB", (80, 80)))
    assert train.shape == (3, 48, 48)


@pytest.mark.parametrize("train", [False, True])
def test_uint8_transform_then_batch_normaliser_is_bit_identical_to_the_float_transform(train: bool) -> None:
    spec = InputSpec(size=40, mean=(0.7, 0.5, 0.3), std=(0.2, 0.25, 0.3))
    images = [Image.fromarray(np.random.default_rng(i).integers(0, 256, (57 + i, 73, 3), dtype=np.uint8))
              for i in range(3)]
    expected, small = [], []
    for i, image in enumerate(images):  # same augmentation draws for both paths
        torch.manual_seed(i)
        expected.append(spec.transform(train=train)(image))
        torch.manual_seed(i)
        small.append(spec.transform(train=train, as_uint8=True)(image))
    assert all(s.dtype == torch.uint8 and s.shape == (3, 40, 40) for s in small)
    out = spec.normaliser(torch.device("cpu"))(torch.stack(small))
    assert torch.equal(out, torch.stack(expected))


def test_input_spec_validates() -> None:
    with pytest.raises(DpbenchError, match="std must be positive"):
        InputSpec(std=(0.2, 0.0, 0.2))
    with pytest.raises(DpbenchError, match="unknown key"):
        InputSpec.from_dict({"size": 32, "colour": "blue"})
    assert InputSpec.from_dict(fx.TINY_INPUT.to_dict()) == fx.TINY_INPUT


# ---- random ----

def test_random_is_deterministic_and_seeded() -> None:
    a, b = load_encoder("random"), load_encoder("random:0")
    assert_features(a, 512)
    assert a.fingerprint() == b.fingerprint()
    assert torch.equal(features(a), features(b))
    c = load_encoder("random:1")
    assert c.fingerprint() != a.fingerprint()
    assert not torch.allclose(features(a), features(c))


def test_random_does_not_disturb_global_rng() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_encoder("random:5")
    load_encoder("torchvision:resnet18")
    assert torch.equal(torch.rand(3), expected)


def test_fingerprint_changes_with_a_weight() -> None:
    encoder = load_encoder("random:2")
    before = encoder.fingerprint()
    assert encoder.fingerprint() == before  # cached and stable
    with torch.no_grad():
        next(encoder.module.parameters())[0, 0, 0, 0] += 1.0
    assert encoder.fingerprint() != before
    assert load_encoder("random:2").fingerprint() == before


def test_bad_random_seed() -> None:
    with pytest.raises(DpbenchError, match="integer SEED"):
        load_encoder("random:abc")


# ---- torchvision ----

def test_torchvision_random_init_is_deterministic() -> None:
    a, b = load_encoder("torchvision:resnet18"), load_encoder("torchvision:resnet18:none")
    assert_features(a, 512)
    assert a.fingerprint() == b.fingerprint()
    assert isinstance(a.module.fc, torch.nn.Identity)


def test_torchvision_uncached_weights_explain_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(DpbenchError, match="TORCH_HOME") as info:
        load_encoder("torchvision:resnet18:IMAGENET1K_V1")
    assert "resnet18-f37072fd.pth" in str(info.value)
    assert not (tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth").exists()


def test_torchvision_cached_weights_load_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.models import resnet18

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(7)
    source = resnet18()
    torch.save(source.state_dict(), cache / "resnet18-f37072fd.pth")
    encoder = load_encoder("torchvision:resnet18:DEFAULT")
    source.fc = torch.nn.Identity()
    assert torch.allclose(features(encoder), features(Encoder("x", source.eval(), encoder.input, 512)))
    (cache / "resnet18-f37072fd.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DpbenchError, match="delete the file"):
        load_encoder("torchvision:resnet18:IMAGENET1K_V1")


@pytest.mark.parametrize(("spec", "message"), [
    ("torchvision:resnet17", "did you mean resnet18"),
    ("torchvision:resnet18:IMAGENET9K", "IMAGENET1K_V1"),
    ("torchvision:squeezenet1_0", "no linear classifier head"),
])
def test_torchvision_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(DpbenchError, match=message):
        load_encoder(spec)


# ---- timm (only when installed) ----

def test_timm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("timm")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
    encoder = load_encoder("timm:resnet18:random")
    assert_features(encoder, 512)
    assert encoder.fingerprint() == load_encoder("timm:resnet18:random").fingerprint()
    with pytest.raises(DpbenchError, match="not cached"):
        load_encoder("timm:resnet18")
    with pytest.raises(DpbenchError, match="unknown timm model"):
        load_encoder("timm:resnet17:random")


def test_timm_missing_says_pip_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # makes `import timm` fail
    with pytest.raises(DpbenchError, match="pip install timm"):
        load_encoder("timm:resnet18")


# ---- torchscript ----

def test_torchscript_round_trip_with_sidecar(tmp_path: Path) -> None:
    module = fx.Tiny(seed=3).eval()
    path = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(module), str(path))
    default = load_encoder(f"torchscript:{path}")
    assert default.input == InputSpec()
    Path(f"{path}.json").write_text(json.dumps(fx.TINY_INPUT.to_dict()))
    encoder = load_encoder(f"torchscript:{path}")
    assert encoder.input == fx.TINY_INPUT and encoder.dim == fx.TINY_DIM
    assert torch.allclose(features(encoder), features(fx.tiny_encoder(module)))
    assert encoder.fingerprint() == load_encoder(f"torchscript:{path}").fingerprint()


def test_torchscript_errors(tmp_path: Path) -> None:
    with pytest.raises(DpbenchError, match=r"not found.*missing\.pt"):
        load_encoder(f"torchscript:{tmp_path / 'missing.pt'}")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(DpbenchError, match="not a loadable TorchScript"):
        load_encoder(f"torchscript:{tmp_path / 'junk.pt'}")
    path = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(fx.Tiny()), str(path))
    Path(f"{path}.json").write_text("{not json")
    with pytest.raises(DpbenchError, match="not valid JSON"):
        load_encoder(f"torchscript:{path}")


# ---- python ----

@pytest.mark.parametrize("attr", ["build_tiny", "build_tiny_with_spec", "build_tiny_encoder", "TINY_INSTANCE"])
@pytest.mark.parametrize("module", ["encoder_fixtures", str(FIXTURES)])
def test_python_specs(module: str, attr: str) -> None:
    spec = f"python:{module}:{attr}"
    encoder = load_encoder(spec)
    assert encoder.spec == spec
    assert_features(encoder, fx.TINY_DIM)
    assert encoder.input == (InputSpec() if attr in ("build_tiny", "TINY_INSTANCE") else fx.TINY_INPUT)


@pytest.mark.parametrize(("spec", "message"), [
    ("onnx:model.onnx", "accepted forms: random"),
    ("", "accepted forms"),
    ("python:no_such_module_xyz:build", "'no_such_module_xyz' not found.*PYTHONPATH"),
    ("python:encoder_fixtures", "expected python:MODULE:ATTR"),
    ("python:encoder_fixtures:nope", "has no attribute 'nope'.*build_tiny"),
    ("python:encoder_fixtures:returns_int", r"returns_int\(\) returned int; it must return an Encoder"),
    ("python:encoder_fixtures:raises", r"raises\(\) raised ValueError: no weights for you"),
    ("python:encoder_fixtures:NOT_CALLABLE", "is a int, not callable"),
    ("python:encoder_fixtures:build_extra_axis", r"returned \(2, 8, 1\).*\(B, D\)"),
    ("python:/no/such/file.py:build", "python file not found: /no/such/file.py"),
])
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(DpbenchError, match=message):
        load_encoder(spec)


def test_python_file_that_fails_to_import(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import no_such_dependency_xyz\n")
    with pytest.raises(DpbenchError, match=r"importing .*broken\.py failed: ModuleNotFoundError"):
        load_encoder(f"python:{tmp_path / 'broken.py'}:build")


# ---- checkpoint ----

def test_checkpoint_round_trip(tmp_path: Path) -> None:
    source = load_encoder("torchvision:resnet18")
    with torch.no_grad():
        for p in source.module.parameters():
            p.add_(0.01)  # differ from the random init the loader starts from
    spec = InputSpec(size=64, um_per_px=0.5)
    path = save_encoder_checkpoint(source.module.state_dict(), "torchvision:resnet18", spec,
                                   tmp_path / "sub" / "enc.pt", {"epoch": 3, "tasks": ["a", "b"]})
    assert [p.name for p in path.parent.iterdir()] == ["enc.pt"]  # no temp file left behind
    loaded = load_encoder(f"checkpoint:{path}")
    assert loaded.input == spec and loaded.dim == 512
    source_at_64 = Encoder(source.spec, source.module, spec, source.dim)
    assert torch.allclose(features(loaded), features(source_at_64))
    assert loaded.fingerprint() == source_at_64.fingerprint()
    data = read_encoder_checkpoint(path)
    assert (data["format"], data["version"], data["arch"]) == ("dpbench-encoder", 1, "torchvision:resnet18")
    assert data["extra"] == {"epoch": 3, "tasks": ["a", "b"]}


def test_checkpoint_of_python_arch(tmp_path: Path) -> None:
    module = fx.Tiny(seed=9)
    path = save_encoder_checkpoint(module, "python:encoder_fixtures:build_tiny", fx.TINY_INPUT, tmp_path / "t.pt", {})
    loaded = load_encoder(f"checkpoint:{path}")
    assert torch.allclose(features(loaded), features(fx.tiny_encoder(module)))


def test_checkpoint_errors(tmp_path: Path) -> None:
    (tmp_path / "corrupt.pt").write_bytes(b"\x80\x02garbage" * 10)
    with pytest.raises(DpbenchError, match="not a readable dpbench encoder checkpoint"):
        load_encoder(f"checkpoint:{tmp_path / 'corrupt.pt'}")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(DpbenchError, match="not a dpbench encoder checkpoint"):
        load_encoder(f"checkpoint:{tmp_path / 'foreign.pt'}")
    with pytest.raises(DpbenchError, match="not found"):
        load_encoder(f"checkpoint:{tmp_path / 'absent.pt'}")
    state = RandomConvNet(0).state_dict()
    with pytest.raises(DpbenchError, match="do not fit arch"):
        save_encoder_checkpoint(state, "torchvision:resnet18", InputSpec(), tmp_path / "x.pt", {})
    with pytest.raises(DpbenchError, match="weight-free"):
        save_encoder_checkpoint(state, "torchvision:resnet18:IMAGENET1K_V1", InputSpec(), tmp_path / "x.pt", {})
    with pytest.raises(DpbenchError, match="extra metadata must be plain"):
        save_encoder_checkpoint(state, "random", InputSpec(), tmp_path / "x.pt", {"when": object()})
    assert not (tmp_path / "x.pt").exists()


# ---- contract checks ----

def verdicts(module: torch.nn.Module) -> dict[str, bool]:
    checks = check_encoder(fx.tiny_encoder(module), batch=8)
    assert [c.name for c in checks] == ["shape", "dtype", "finite", "deterministic", "batch independence",
                                        "throughput"]
    assert all(c.detail and "\n" not in c.detail for c in checks)
    return {c.name: c.passed for c in checks}


def test_check_passes_for_good_encoders() -> None:
    assert all(verdicts(fx.Tiny().eval()).values())
    assert all(verdicts(fx.WithDropout().eval()).values())
    checks = check_encoder(load_encoder("random"), batch=4)
    assert all(c.passed for c in checks), checks
    assert "images/s" in checks[-1].detail


@pytest.mark.parametrize(("module", "failing"), [
    (fx.NaNOutput().eval(), {"finite"}),
    (fx.ExtraAxis().eval(), {"shape", "batch independence"}),
    (fx.DropsOne().eval(), {"shape", "batch independence"}),
    (fx.Noisy().eval(), {"deterministic", "batch independence"}),
    (fx.WithDropout().train(), {"deterministic", "batch independence"}),
    (fx.BatchCentred().eval(), {"batch independence"}),
    (fx.IntOutput().eval(), {"dtype"}),
], ids=["nan", "extra-axis", "drops-one", "noisy", "dropout-train", "batch-centred", "int"])
def test_check_flags_broken_encoders(module: torch.nn.Module, failing: set[str]) -> None:
    result = verdicts(module)
    assert {name for name, ok in result.items() if not ok} == failing


def test_check_reports_exceptions_in_one_line() -> None:
    class Boom(fx.Tiny):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("kernel exploded\nwith a long second line")

    checks = check_encoder(fx.tiny_encoder(Boom().eval()), batch=2)
    assert not any(c.passed for c in checks)
    assert checks[0].detail == "RuntimeError: kernel exploded"


class OutOfMemoryAbove(fx.Tiny):
    """Runs out of (simulated) GPU memory on batches above ``limit`` images."""

    def __init__(self, limit: int, error: type[RuntimeError] = torch.cuda.OutOfMemoryError) -> None:
        super().__init__()
        self.limit, self.error = limit, error

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > self.limit:
            raise self.error("CUDA out of memory. Tried to allocate 8.00 GiB\n(more detail)")
        return super().forward(x)


@pytest.mark.parametrize("error", [torch.cuda.OutOfMemoryError, RuntimeError])
def test_check_tries_the_eval_batch_size_and_names_the_fix_when_it_runs_out_of_memory(
        error: type[RuntimeError]) -> None:
    checks = check_encoder(fx.tiny_encoder(OutOfMemoryAbove(8, error).eval()), batch=4, eval_batch=64)
    assert checks[-1].name == "eval batch size" and all(c.passed for c in checks[:-1])
    assert not checks[-1].passed and "\n" not in checks[-1].detail
    assert "out of memory on a batch of 64" in checks[-1].detail and "lower --batch-size" in checks[-1].detail
    fits = check_encoder(fx.tiny_encoder(OutOfMemoryAbove(8, error).eval()), batch=4, eval_batch=8)
    assert all(c.passed for c in fits) and fits[-1].detail.startswith("(8, 8) for a batch of 8")
    assert [c.name for c in check_encoder(fx.tiny_encoder(), batch=4)][-1] == "throughput"  # only when asked
    with pytest.raises(DpbenchError, match="eval_batch must be >= 1"):
        check_encoder(fx.tiny_encoder(), batch=4, eval_batch=0)


def test_check_hints_training_mode_and_rejects_an_unknown_device() -> None:
    checks = {c.name: c for c in check_encoder(fx.tiny_encoder(fx.WithDropout().train()), batch=4)}
    assert "training mode" in checks["deterministic"].detail
    with pytest.raises(DpbenchError, match="unknown device"):
        check_encoder(fx.tiny_encoder(), device="tpu9")


# ---- check-encoder command ----

def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("check-encoder")(check_encoder_command)
    app.command("noop")(lambda: None)  # two commands, so the sub-command name is required
    return app


def test_check_encoder_command() -> None:
    runner = CliRunner()
    ok = runner.invoke(cli(), ["check-encoder", "random", "--device", "cpu", "--batch", "2"])
    assert ok.exit_code == 0, ok.output
    assert "batch independence" in ok.output and "all 7 checks passed" in ok.output
    assert "eval batch size" in ok.output and "(64, 512) for a batch of 64" in ok.output
    bad = runner.invoke(cli(), ["check-encoder", "python:encoder_fixtures:build_nan", "--batch", "2"])
    assert bad.exit_code == 1
    assert "FAIL" in bad.output and "1 check(s) failed: finite" in bad.output
    unknown = runner.invoke(cli(), ["check-encoder", "nonsense:x"])
    assert unknown.exit_code == 2 and "accepted forms" in unknown.output
    assert "Traceback" not in unknown.output
