"""What an encoder is: a module mapping normalised (B, 3, S, S) images to (B, D) features, plus its input spec."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from PIL import Image
from torchvision import transforms as T

from dpbench.errors import DpbenchError

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: ``resized-crop`` augmentation: a random square covering 50-100 % of the image, resized back to ``size``.
TRAIN_CROP_SCALE: tuple[float, float] = (0.5, 1.0)
#: Train-time augmentations by name. ``paper`` (the default) is Mormont et al. 2020 §IV-F exactly.
AUGMENTATIONS: dict[str, str] = {
    "paper": "random horizontal and vertical flips; a random square crop (side = the shorter side) only when the "
             "image is not square; then resize to the input size",
    "resized-crop": "a random square covering 50-100 % of the image area, resized to the input size (zooms square "
                    "tiles up to sqrt(2)), and random flips",
}


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; otherwise the named device (checked)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise DpbenchError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DpbenchError(f"device {device!r} requested but CUDA is not available here; use --device cpu")
    return dev


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of the module's first parameter or buffer; CPU for a module without either."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when the message is empty."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (just the type name when the message is empty)."""
    return f"{type(exc).__name__}: {first_line(exc)}" if str(exc).strip() else type(exc).__name__


def _to_rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")


def random_square(image: Image.Image) -> Image.Image:
    """A random square crop whose side is the image's shorter side; a square image is returned as it is.

    The position is drawn from torch's default generator, which the loaders seed per sample."""
    width, height = image.size
    if width == height:
        return image
    side = min(width, height)
    left = int(torch.randint(0, width - side + 1, ()).item())
    top = int(torch.randint(0, height - side + 1, ()).item())
    return image.crop((left, top, left + side, top + side))


def check_augmentation(name: str) -> str:
    """``name`` if it is a known augmentation, else a DpbenchError listing them."""
    if name not in AUGMENTATIONS:
        raise DpbenchError(f"unknown augmentation {name!r}; use one of {', '.join(AUGMENTATIONS)}")
    return name


@dataclass(frozen=True)
class InputSpec:
    """The input an encoder expects: square side, normalisation and (optionally) the resolution it was trained at."""

    size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    um_per_px: float | None = None
    #: resampling of every resize: ``bilinear`` (dpbench's default) or ``bicubic`` (as some presets' authors resize)
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        if self.interpolation not in ("bilinear", "bicubic"):
            raise DpbenchError(f"input interpolation must be bilinear or bicubic, got {self.interpolation!r}")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise DpbenchError(f"input size must be a positive integer, got {self.size!r}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if (not isinstance(value, list | tuple) or len(value) != 3
                    or not all(isinstance(v, int | float) and math.isfinite(v) for v in value)):
                raise DpbenchError(f"input {name} must be 3 finite numbers (one per RGB channel), got {value!r}")
            object.__setattr__(self, name, tuple(float(v) for v in value))
        if any(s <= 0 for s in self.std):
            raise DpbenchError(f"input std must be positive, got {self.std!r}")
        if self.um_per_px is not None and (not isinstance(self.um_per_px, int | float) or not self.um_per_px > 0):
            raise DpbenchError(f"input um_per_px must be a positive number or null, got {self.um_per_px!r}")

    def transform(self, train: bool = False, as_uint8: bool = False,
                  augment: str = "paper") -> Callable[[Image.Image], torch.Tensor]:
        """PIL image → normalised (3, size, size) float tensor.

        Eval: convert to RGB, resize the whole image to ``size``×``size`` (``interpolation``, antialiased, no crop),
        scale to [0, 1], normalise. ``train=True`` adds the augmentation ``augment`` (see :data:`AUGMENTATIONS`):
        ``paper`` (§IV-F) is a random square crop of the shorter side's length only when the image is not square,
        the resize, and random horizontal and vertical flips; ``resized-crop`` is ``RandomResizedCrop(size,
        scale=(0.5, 1), ratio=(1, 1))`` in place of the resize, and the flips. ``um_per_px`` is not used here:
        matching resolutions is the task's job.

        ``as_uint8``: stop before the scaling and return the (3, size, size) uint8 tensor; :meth:`normaliser` on a
        batch of those (e.g. on the GPU, after a 4x smaller transfer) gives exactly the float tensors.
        """
        mode = T.InterpolationMode(self.interpolation)
        resize = T.Resize((self.size, self.size), interpolation=mode, antialias=True)
        if train and check_augmentation(augment) == "paper":
            geometry = [random_square, resize, T.RandomHorizontalFlip(), T.RandomVerticalFlip()]
        elif train:
            geometry = [T.RandomResizedCrop(self.size, scale=TRAIN_CROP_SCALE, ratio=(1.0, 1.0),
                                            interpolation=mode, antialias=True),
                        T.RandomHorizontalFlip(), T.RandomVerticalFlip()]
        else:
            geometry = [resize]
        finish = [T.PILToTensor()] if as_uint8 else [T.ToTensor(), T.Normalize(self.mean, self.std)]
        pipeline: Callable[[Image.Image], torch.Tensor] = T.Compose([_to_rgb, *geometry, *finish])
        return pipeline

    def normaliser(self, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
        """uint8 (B, 3, S, S) on ``device`` → float, scaled to [0, 1] and normalised with ``ToTensor`` + ``Normalize``'s
        arithmetic. Made once per run: the constants go to the device here, not at every batch (no host sync)."""
        mean = torch.tensor(self.mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        # A device tensor, not the number 255: CUDA turns division by a host scalar into a multiplication by its
        # reciprocal (one bit off for half the byte values); tensor division is exact, as ToTensor's on the CPU.
        scale = torch.tensor(255.0, dtype=torch.float32, device=device)

        def normalise(images: torch.Tensor) -> torch.Tensor:
            return images.float().div(scale).sub_(mean).div_(std)

        return normalise

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (lists for the tuples)."""
        data = asdict(self)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        if self.interpolation == "bilinear":  # the default stays implicit: fingerprints of earlier specs are unchanged
            del data["interpolation"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "input spec") -> InputSpec:
        """Inverse of :meth:`to_dict`; missing keys take the defaults, unknown keys are an error."""
        if not isinstance(data, Mapping):
            raise DpbenchError(f"{source}: expected a JSON object with size/mean/std/um_per_px, "
                               f"got {type(data).__name__}")
        allowed = ("interpolation", "mean", "size", "std", "um_per_px")
        unknown = sorted(str(k) for k in set(data) - set(allowed))
        if unknown:
            raise DpbenchError(f"{source}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
        try:
            return cls(**data)
        except DpbenchError as exc:
            raise DpbenchError(f"{source}: {exc}") from None


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return bytes(flat.view(torch.uint8).numpy().tobytes()) if flat.numel() else b""


def module_fingerprint(module: torch.nn.Module, input: InputSpec) -> str:
    """sha256 over the state_dict (sorted names, dtype, shape, raw bytes), the module's class name and ``input``."""
    digest = hashlib.sha256()
    name = getattr(module, "original_name", None) or type(module).__name__  # script modules keep the Python name
    digest.update(f"class={name}\ninput={sorted(input.to_dict().items())}\n".encode())
    for key, value in sorted(module.state_dict().items()):
        if not isinstance(value, torch.Tensor):  # extra_state may be anything; hash its repr
            digest.update(f"{key}:extra:{value!r}\n".encode())
            continue
        digest.update(f"{key}:{value.dtype}:{tuple(value.shape)}\n".encode())
        digest.update(_tensor_bytes(value))
    return digest.hexdigest()


def _state_key(module: torch.nn.Module, input: InputSpec) -> tuple[Any, ...] | None:
    """Cheap identity of the weights (tensor ids + in-place version counters); None where it cannot be read."""
    try:
        return (id(module), input, tuple((k, id(v), v._version) if isinstance(v, torch.Tensor) else (k, repr(v))
                                         for k, v in module.state_dict(keep_vars=True).items()))
    except RuntimeError:  # inference tensors have no version counter
        return None


@dataclass
class Encoder:
    """A loaded encoder: ``module`` maps (B, 3, size, size) normalised images to (B, dim) features."""

    spec: str
    module: torch.nn.Module
    input: InputSpec
    dim: int
    _fingerprint: tuple[tuple[Any, ...] | None, str] | None = field(default=None, init=False, repr=False, compare=False)

    def fingerprint(self) -> str:
        """sha256 of the weights, class name and input spec; cached until a weight is replaced or modified in place."""
        key = _state_key(self.module, self.input)
        if key is not None and self._fingerprint is not None and self._fingerprint[0] == key:
            return self._fingerprint[1]
        value = module_fingerprint(self.module, self.input)
        self._fingerprint = (key, value)
        return value
