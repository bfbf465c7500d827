"""The encoder zoo: every preset against its model card, built for real (meta device) and loaded back through the
real loading path from the exact Hugging Face / torch cache layouts with the network off."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from dpbench.encoders import load_encoder
from dpbench.encoders.base import IMAGENET_MEAN, IMAGENET_STD, module_fingerprint
from dpbench.encoders.hub import url_cache
from dpbench.encoders.presets import (
    DATA,
    ConchLoader,
    Preset,
    TimmLoader,
    TransformersLoader,
    get_preset,
    parse_presets,
    presets,
)
from dpbench.encoders.zoo import ZooEncoder, build_preset, input_spec
from dpbench.errors import DpbenchError

pytest.importorskip("timm")  # the dev extra installs it: the timm path is tested, not skipped, there

HOPT = ((0.707223, 0.578729, 0.703617), (0.211883, 0.230117, 0.177517))
HIBOU = ((0.7068, 0.5755, 0.7220), (0.1950, 0.2316, 0.1816))
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
IMN = (IMAGENET_MEAN, IMAGENET_STD)
LUNIT = ((0.70322989, 0.53606487, 0.66096631), (0.21716536, 0.26081574, 0.20723464))

#: The model cards' values, typed in independently of presets.json: feature dim, pooling, prefix tokens (class +
#: registers), (resize, crop) sides, interpolation, (mean, std), parameters in millions.
CARDS: dict[str, tuple[int, str, int, tuple[int, int], str, Any, float]] = {
    "uni": (1024, "cls", 1, (224, 224), "bilinear", IMN, 303.3),
    "uni2-h": (1536, "cls", 9, (224, 224), "bilinear", IMN, 681.4),
    "conch": (512, "attention", 1, (448, 448), "bicubic", CLIP, 87.6),
    "virchow": (2560, "cls+mean", 1, (224, 224), "bicubic", IMN, 632),
    "virchow2": (2560, "cls+mean", 5, (224, 224), "bicubic", IMN, 632),
    "phikon": (768, "cls", 1, (224, 224), "bilinear", IMN, 85.8),
    "phikon-v2": (1024, "cls", 1, (224, 224), "bilinear", IMN, 303.4),
    "h-optimus-0": (1536, "cls", 5, (224, 224), "none", HOPT, 1100),
    "h-optimus-1": (1536, "cls", 5, (224, 224), "none", HOPT, 1134.8),
    "prov-gigapath": (1536, "cls", 1, (256, 224), "bicubic", IMN, 1135.0),
    "hibou-b": (768, "pooler", 5, (224, 224), "bicubic", HIBOU, 85.7),
    "hibou-l": (1024, "pooler", 5, (224, 224), "bicubic", HIBOU, 304),
    "kaiko-vits16": (384, "cls", 1, (224, 224), "bilinear", HALF, 21.7),
    "kaiko-vits8": (384, "cls", 1, (224, 224), "bilinear", HALF, 21.7),
    "kaiko-vitb16": (768, "cls", 1, (224, 224), "bilinear", HALF, 85.8),
    "kaiko-vitb8": (768, "cls", 1, (224, 224), "bilinear", HALF, 85.8),
    "kaiko-vitl14": (1024, "cls", 5, (224, 224), "bilinear", HALF, 304.4),
    "midnight": (3072, "cls+mean", 1, (224, 224), "bilinear", HALF, 1136.5),
    "lunit-vits16": (384, "cls", 1, (224, 224), "bilinear", LUNIT, 21.7),
    "lunit-vits8": (384, "cls", 1, (224, 224), "bilinear", LUNIT, 21.7),
    "resnet50-imagenet": (2048, "avgpool", 0, (224, 224), "bilinear", IMN, 23.5),
    "densenet121-imagenet": (1024, "avgpool", 0, (224, 224), "bilinear", IMN, 6.95),
}
#: The issue's list: each must be a preset (by name or alias).
REQUIRED = ["uni", "uni2", "conch", "virchow", "virchow2", "phikon", "phikon-v2", "h-optimus-0", "h-optimus-1",
            "prov-gigapath", "hibou-b", "hibou-l", "kaiko-vits16", "kaiko-vitb16", "kaiko-vitl14", "lunit-vits16",
            "lunit-vits8", "resnet50-imagenet", "densenet121-imagenet", "dpbench-mtl"]
BUILDABLE = [name for name, p in presets().items() if p.loader.library != "checkpoint"]


def needs_library(name: str) -> None:
    """transformers presets need transformers (not a core dependency): skip where it is missing."""
    if get_preset(name).loader.library == "transformers":
        pytest.importorskip("transformers")


@pytest.fixture
def caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Empty Hugging Face and torch caches under tmp_path, the Hub offline (as HF_HUB_OFFLINE=1 at start-up)."""
    hf, torch_home = tmp_path / "hf", tmp_path / "torch"
    monkeypatch.setenv("HF_HUB_CACHE", str(hf))
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(hf))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    return hf, torch_home


def write_snapshot(cache: Path, hub_id: str, files: dict[str, bytes], revision: str = "main") -> Path:
    """Files as the Hub caches them: blobs/SHA, snapshots/COMMIT/NAME -> ../../blobs/SHA, refs/REVISION = COMMIT."""
    repo = cache / ("models--" + hub_id.replace("/", "--"))
    commit = hashlib.sha1(f"{hub_id}@{revision}".encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        blob = hashlib.sha256(data).hexdigest()
        (repo / "blobs" / blob).write_bytes(data)
        os.symlink(os.path.join("..", "..", "blobs", blob), snapshot / name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / revision).write_text(commit)
    return snapshot


def stand_in(preset: Preset) -> Preset:
    """The preset with a tiny version of its architecture: same library, loader options and pooling."""
    loader = preset.loader
    if isinstance(loader, TimmLoader):
        small = {"embed_dim": 48, "depth": 1, "num_heads": 2}
        kwargs = loader.args.model_copy(update={k: v for k, v in small.items()
                                                  if getattr(loader.args, k) is not None})
        new: Any = loader.model_copy(update={"args": kwargs,
                                             "arch_args": loader.arch_args.model_copy(update=small)})
    elif isinstance(loader, TransformersLoader):
        config = loader.config.model_copy(update={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                                  "intermediate_size": 64 if loader.config.intermediate_size else None})
        new = loader.model_copy(update={"config": config})
    elif isinstance(loader, ConchLoader):
        new = loader.model_copy(update={"width": 48, "depth": 1, "heads": 2, "embed_dim": 32, "pool_heads": 2})
    else:
        return preset
    return preset.model_copy(update={"loader": new})


def perturbed(module: torch.nn.Module, seed: int = 7) -> torch.nn.Module:
    """Move every weight away from the seeded init, so a load that silently kept the init is caught."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.05)
    return module


def timm_config(loader: TimmLoader, preset: Preset, num_features: int) -> bytes:
    """A hub ``config.json`` as timm writes them: architecture, model_args, pretrained_cfg."""
    assert preset.transform is not None
    config = {"architecture": loader.arch, "num_classes": 0, "num_features": num_features,
              "model_args": loader.arch_args.values(),
              "pretrained_cfg": {"tag": "test", "custom_load": False, "input_size": [3, 224, 224],
                                 "fixed_input_size": True, "interpolation": "bicubic", "crop_pct": 1.0,
                                 "crop_mode": "center", "mean": list(preset.transform.mean),
                                 "std": list(preset.transform.std), "num_classes": 0, "pool_size": None,
                                 "first_conv": "patch_embed.proj", "classifier": "head"}}
    return json.dumps(config).encode()


def publish(preset: Preset, caches: tuple[Path, Path], tmp_path: Path) -> ZooEncoder | torch.nn.Module:
    """Put the (perturbed) stand-in's weights where its loader looks, in the library's own format; returns it."""
    hf, _ = caches
    module, _ = build_preset(preset, weights=False)
    perturbed(module)
    loader = preset.loader
    if isinstance(loader, TimmLoader):
        assert isinstance(module, ZooEncoder)
        state = {k: v.contiguous() for k, v in module.backbone.state_dict().items()}
        if loader.weights == "url":
            assert loader.url is not None
            url_cache(loader.url).parent.mkdir(parents=True, exist_ok=True)
            torch.save(state, url_cache(loader.url))
        else:
            assert preset.hub_id is not None
            save_file(state, tmp_path / "w.safetensors")
            write_snapshot(hf, preset.hub_id, {
                "config.json": timm_config(loader, preset, int(module.backbone.num_features)),  # type: ignore[arg-type]
                "model.safetensors": (tmp_path / "w.safetensors").read_bytes()})
    elif isinstance(loader, TransformersLoader):
        assert isinstance(module, ZooEncoder) and preset.hub_id is not None
        folder = tmp_path / "saved"
        module.backbone.save_pretrained(folder)  # type: ignore[operator]
        write_snapshot(hf, preset.hub_id, {p.name: p.read_bytes() for p in folder.iterdir()})
    elif isinstance(loader, ConchLoader):
        assert isinstance(module, ZooEncoder) and preset.hub_id is not None
        coca = {f"visual.{k}": v for k, v in module.backbone.state_dict().items()}
        coca |= {"visual.attn_pool_caption.query": torch.zeros(4, 8), "visual.proj_contrast": torch.eye(32),
                 "text.token_embedding.weight": torch.zeros(5, 8), "logit_scale": torch.ones(())}
        torch.save(coca, tmp_path / "coca.bin")
        write_snapshot(hf, preset.hub_id, {loader.filename: (tmp_path / "coca.bin").read_bytes()})
    else:
        from torchvision.models import get_model, get_model_weights

        from dpbench.encoders.libraries import strip_classifier

        assert loader.library == "torchvision"
        url = getattr(get_model_weights(loader.model), loader.weights).url
        full = perturbed(get_model(loader.model, weights=None))  # torchvision's file holds the classifier too
        url_cache(url).parent.mkdir(parents=True, exist_ok=True)
        torch.save(full.state_dict(), url_cache(url))
        strip_classifier(full, loader.model)
        return full
    return module


# ---- the registry ----

def test_every_required_model_is_a_preset_with_a_cited_card() -> None:
    for name in REQUIRED:
        preset = get_preset(name)
        assert preset.card.startswith("https://") and preset.sources, name
    assert sorted(CARDS) == sorted(BUILDABLE)  # every preset is checked against its card below


def test_unknown_fields_and_values_are_refused_in_one_line() -> None:
    good = json.loads(DATA.read_text())[0]
    for change, where in [({"colour": "blue"}, "colour"), ({"pooling": "max"}, "pooling"),
                          ({"loader": {**good["loader"], "args": {"mlp_layer": "Magic"}}}, "mlp_layer"),
                          ({"transform": {**good["transform"], "resize": 100}}, "resize")]:
        with pytest.raises(DpbenchError, match=where) as info:
            parse_presets([{**good, **change}], "test.json")
        assert "\n" not in str(info.value) and "'uni'" in str(info.value)


@pytest.mark.parametrize("name", BUILDABLE)
def test_preset_matches_its_model_card(name: str) -> None:
    """The real architecture on the meta device: parameter count, output dim, pooling, prefix tokens, transform."""
    dim, pooling, prefix, (resize, size), interpolation, (mean, std), params = CARDS[name]
    needs_library(name)
    preset = get_preset(name)
    assert preset.transform is not None
    assert (preset.dim, preset.pooling) == (dim, pooling)
    t = preset.transform
    assert (t.resize, t.size, t.interpolation) == (resize, size, interpolation)
    assert t.mean == pytest.approx(mean) and t.std == pytest.approx(std)
    spec = input_spec(preset)
    assert (spec.size, spec.mean, spec.std) == (resize, t.mean, t.std)
    with torch.device("meta"):
        module, _ = build_preset(preset, weights=False)
        out = module(torch.empty(2, 3, resize, resize))
    assert tuple(out.shape) == (2, dim)
    count = sum(p.numel() for p in module.parameters()) / 1e6
    assert count == pytest.approx(params, rel=0.04)  # cards round ("1.1B", "632M")
    assert count == pytest.approx(preset.params_m, rel=0.04 if preset.params_source != "computed" else 1e-3)
    if isinstance(module, ZooEncoder):
        assert module.prefix == prefix and module.pooling == pooling
        assert module.crop == (size if resize > size else None)


@pytest.mark.parametrize("name", BUILDABLE)
def test_preset_loads_through_the_real_path_from_the_offline_cache(
        name: str, caches: tuple[Path, Path], tmp_path: Path) -> None:
    """Save a perturbed stand-in in the library's cache layout, load it back offline: same weights, same output."""
    if get_preset(name).loader.library == "torchvision":
        pytest.skip("torchvision presets: test_torchvision_presets_equal_the_torchvision_spec")
    needs_library(name)
    preset = stand_in(get_preset(name))
    reference = publish(preset, caches, tmp_path).eval()
    module, spec = build_preset(preset, offline=True)
    module.eval()
    images = torch.rand(2, 3, spec.size, spec.size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, got = reference(images), module(images)
        fresh, _ = build_preset(preset, weights=False)
        untouched = fresh.eval()(images)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(got, untouched)  # the weights did come from the cache
    if preset.pooling == "cls+mean":  # class token and mean patch token of the stand-in's width, side by side
        assert got.shape[1] == 2 * (48 if preset.loader.library == "timm" else 32)


def test_bare_names_aliases_and_the_preset_scheme_give_the_same_encoder(caches: tuple[Path, Path],
                                                                        tmp_path: Path) -> None:
    preset = get_preset("kaiko-vits16")
    publish(stand_in(preset), caches, tmp_path)  # the stand-in's weights are cached under the real preset's URL
    random = load_encoder("preset:kaiko-vits16:random")
    assert random.dim == 384 and random.input.mean == (0.5, 0.5, 0.5)
    with pytest.raises(DpbenchError, match=r"kaiko-vits16 could not be built: RuntimeError: .*Missing key"):
        load_encoder("kaiko-vits16")  # a 48-wide stand-in does not fit the real ViT-S: loading is strict
    again = load_encoder("kaiko-vits16:random")  # the bare form takes :random too
    assert again.fingerprint() == random.fingerprint() and again.spec == "kaiko-vits16:random"


def test_unknown_names_suggest_presets() -> None:
    with pytest.raises(DpbenchError, match=r"did you mean.*uni2") as info:
        load_encoder("uni3")
    assert "\n" not in str(info.value)
    with pytest.raises(DpbenchError, match="unknown encoder preset"):
        load_encoder("preset:nope")
    with pytest.raises(DpbenchError, match=r"not downloadable.*checkpoint:"):
        load_encoder("dpbench-mtl")


def test_offline_missing_files_name_the_cache_to_fill(caches: tuple[Path, Path]) -> None:
    hf, torch_home = caches
    with pytest.raises(DpbenchError) as info:
        load_encoder("uni")  # HF_HUB_OFFLINE=1 from the environment
    message = str(info.value)
    assert "\n" not in message and str(hf / "models--MahmoodLab--UNI") in message and "HF_HUB_OFFLINE" in message
    with pytest.raises(DpbenchError, match=f"put .* at {torch_home}/hub/checkpoints/vitb16.pth"):
        load_encoder("kaiko-vitb16", offline=True)
    for name in ("phikon", "conch"):
        needs_library(name)
        with pytest.raises(DpbenchError, match="not in the Hugging Face cache"):
            load_encoder(name, offline=True)


def test_torchvision_presets_equal_the_torchvision_spec(caches: tuple[Path, Path], tmp_path: Path) -> None:
    reference = publish(get_preset("densenet121-imagenet"), caches, tmp_path)
    preset = load_encoder("imagenet-densenet121", offline=True)
    assert preset.fingerprint() == module_fingerprint(reference, preset.input)  # the cached (perturbed) weights
    assert preset.fingerprint() == load_encoder("torchvision:densenet121:IMAGENET1K_V1").fingerprint()


def test_plugins_add_presets_through_the_entry_point_group(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    from dpbench.encoders import presets as registry

    entry = json.loads(DATA.read_text())
    mine = {**next(p for p in entry if p["name"] == "kaiko-vits16"), "name": "mylab-vits16", "aliases": []}
    monkeypatch.setitem(globals(), "PLUGIN_PRESETS", [mine])
    points = [EntryPoint("mylab", f"{__name__}:PLUGIN_PRESETS", registry.PRESET_GROUP)]
    monkeypatch.setattr(registry, "entry_points", lambda group: points if group == registry.PRESET_GROUP else [])
    registry.presets.cache_clear()
    try:
        assert load_encoder("preset:mylab-vits16:random").dim == 384
        mine["name"] = "uni"
        registry.presets.cache_clear()
        with pytest.raises(DpbenchError, match=r"'uni' is already defined by presets.json"):
            registry.presets()
        points[0] = EntryPoint("broken", f"{__name__}:NOT_THERE", registry.PRESET_GROUP)
        registry.presets.cache_clear()
        with pytest.raises(DpbenchError, match=r"plug-in 'broken'.*failed to load"):
            registry.presets()
    finally:
        monkeypatch.undo()
        registry.presets.cache_clear()


def test_input_spec_resizes_with_the_presets_interpolation() -> None:
    """A bicubic preset's eval transform differs from the bilinear one; a bilinear preset's does not."""
    import numpy as np
    from PIL import Image

    from dpbench.encoders.base import InputSpec
    from dpbench.encoders.presets import get_preset
    from dpbench.encoders.zoo import input_spec

    image = Image.fromarray((np.random.default_rng(0).random((300, 300, 3)) * 255).astype("uint8"))
    for name, expected in (("virchow2", "bicubic"), ("uni", "bilinear")):
        spec = input_spec(get_preset(name))
        assert spec.interpolation == expected
        mine = spec.transform()(image)
        bilinear = InputSpec(size=spec.size, mean=spec.mean, std=spec.std).transform()(image)
        assert (mine.equal(bilinear)) == (expected == "bilinear")
