"""Procedural H&E-like tile renderer for the embedded synthetic pool.

A tile is built in optical-density space (Beer-Lambert): a haematoxylin and an eosin
concentration map are mixed with per-group stain vectors and ``RGB = 255 * exp(-OD)``.
Eosin carries the stroma (wavy collagen fibres, smooth noise, pale lumen/fat holes);
haematoxylin carries the nuclei, drawn as anti-aliased textured ellipses on small local
patches and scatter-added with ``np.bincount``. Only element-wise float64 numpy maths and
the given ``np.random.Generator`` are used, so output is reproducible across machines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Vec3 = tuple[float, float, float]
F64 = NDArray[np.float64]

#: Reference stain optical-density vectors (normalised), after Ruifrok & Johnston.
H_REF: Vec3 = (0.65, 0.70, 0.29)
E_REF: Vec3 = (0.07, 0.99, 0.11)
#: Residual absorbance of glass/mountant (everywhere) and of unstained tissue protein.
BG_REF: Vec3 = (0.02, 0.03, 0.05)
TISSUE_REF: Vec3 = (0.01, 0.05, 0.17)


@dataclass(frozen=True)
class ClassStyle:
    """Appearance of one class (lengths in px at group scale 1)."""

    density: float  # nuclei per 1000 px^2
    radius: float  # mean nucleus radius
    size_var: float  # log-sd of nucleus radius (pleomorphism)
    elongation: float  # mean axis ratio, >= 1 (spindle nuclei align with fibres)
    chromatin: float  # 0 = dense homogeneous, 1 = vesicular: pale core, dark rim, clumps
    hema: float  # haematoxylin concentration inside nuclei
    eosin: float  # eosin concentration of stroma/cytoplasm
    fibre: float  # amplitude of the collagen-fibre texture, 0..1
    lumen: float  # mean fraction of pale lumen/fat area
    cluster: float  # fraction of nuclei placed in clumps rather than uniformly


@dataclass(frozen=True)
class GroupStyle:
    """Appearance shift of one patient/slide."""

    h_vec: Vec3  # haematoxylin OD vector (unit norm)
    e_vec: Vec3  # eosin OD vector (unit norm)
    h_scale: float  # haematoxylin concentration multiplier (stain intensity)
    e_scale: float  # eosin concentration multiplier
    bg_od: Vec3  # additive residual OD (tint)
    scale: float  # magnification: multiplies nucleus size, divides density by scale^2
    brightness: float  # illumination multiplier on transmitted light


# (low, high) of each ClassStyle field; classes are spread over these ranges.
_RANGES: dict[str, tuple[float, float]] = {
    "density": (2.5, 11.0),
    "radius": (2.6, 5.2),
    "size_var": (0.06, 0.32),
    "elongation": (1.0, 2.8),
    "chromatin": (0.0, 1.0),
    "hema": (1.4, 2.2),
    "eosin": (0.3, 0.75),
    "fibre": (0.1, 0.7),
    "lumen": (0.0, 0.22),
    "cluster": (0.0, 0.8),
}


#: Fields that move together with a latent "grade" (more, bigger, darker, pleomorphic).
_GRADED = frozenset({"density", "radius", "size_var", "hema"})


def class_styles(n_classes: int, separation: float, rng: np.random.Generator) -> list[ClassStyle]:
    """Return ``n_classes`` distinct styles; ``separation`` in (0, 1] scales their spread.

    Each field gets evenly spaced levels, randomly permuted over classes (the nuclear
    "grade" fields share one permutation), shrunk towards a random common centre by
    ``separation`` (1 = classes span the full range).
    """
    if n_classes < 1:
        raise ValueError("n_classes must be >= 1")
    if not 0.0 < separation <= 1.0:
        raise ValueError("separation must be in (0, 1]")
    levels = (np.arange(n_classes) + 0.5) / n_classes
    grade = rng.permutation(levels)
    cols: dict[str, F64] = {}
    for name, (lo, hi) in _RANGES.items():
        centre = rng.uniform(0.3, 0.7)
        perm = grade if name in _GRADED else rng.permutation(levels)
        perm = perm + rng.uniform(-0.15, 0.15, n_classes) / n_classes
        u = np.clip(centre + separation * (perm - centre), 0.0, 1.0)
        cols[name] = lo + (hi - lo) * u
    return [ClassStyle(**{k: float(v[i]) for k, v in cols.items()}) for i in range(n_classes)]


def _vec3(v: F64) -> Vec3:
    return (float(v[0]), float(v[1]), float(v[2]))


def _unit(v: F64) -> Vec3:
    v = np.maximum(v, 0.01)
    return _vec3(v / math.sqrt(float(v[0] ** 2 + v[1] ** 2 + v[2] ** 2)))


def group_style(rng: np.random.Generator, strength: float = 1.0) -> GroupStyle:
    """Random per-group stain and scale shift; ``strength`` scales its size (0 = none)."""
    s = float(strength)
    return GroupStyle(
        h_vec=_unit(np.array(H_REF) + s * rng.normal(0.0, (0.07, 0.05, 0.05))),
        e_vec=_unit(np.array(E_REF) + s * rng.normal(0.0, (0.04, 0.02, 0.07))),
        h_scale=math.exp(s * float(np.clip(rng.normal(0.0, 0.25), -0.6, 0.6))),
        e_scale=math.exp(s * float(np.clip(rng.normal(0.0, 0.3), -0.7, 0.7))),
        bg_od=_vec3(s * np.abs(rng.normal(0.0, 0.07, 3))),
        scale=math.exp(s * float(np.clip(rng.normal(0.0, 0.15), -0.35, 0.35))),
        brightness=float(np.clip(1.0 + s * rng.normal(0.0, 0.05), 0.8, 1.06)),
    )


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> F64:
    """Zero-mean, roughly unit-variance noise, smooth at scale ``size / cells``."""
    g = rng.standard_normal((cells + 2, cells + 2))
    t = np.arange(size) * (cells / size) + rng.uniform(0.0, 1.0, 2)[:, None]
    i = t.astype(np.intp)
    f = t - i
    f = f * f * (3.0 - 2.0 * f)  # smoothstep: no visible grid creases
    fy, fx = f[0][:, None], f[1][None, :]
    rows = g[i[0]] * (1.0 - fy) + g[i[0] + 1] * fy  # (size, cells + 2)
    out: F64 = rows[:, i[1]] * (1.0 - fx) + rows[:, i[1] + 1] * fx
    return out * 1.6


def _nuclei(
    style: ClassStyle, group: GroupStyle, size: int, theta_f: float, pale: F64, rng: np.random.Generator
) -> F64:
    """Haematoxylin concentration map of the nuclei, shape (size, size)."""
    s = group.scale
    n = int(rng.poisson(style.density * size * size / 1000.0 / (s * s)))
    m = math.ceil(1.5 * style.radius * s)  # centres may lie this far outside the tile
    # centres: clumps around a few foci (wrapped into range), the rest uniform
    n_cl = int(rng.binomial(n, style.cluster))
    foci = rng.uniform(0.0, size, (int(rng.integers(1, 4)), 2))
    cl = foci[rng.integers(0, len(foci), n_cl)] + rng.normal(0.0, 0.11 * size, (n_cl, 2))
    c = np.concatenate([(cl + m) % (size + 2 * m) - m, rng.uniform(-m, size + m, (n - n_cl, 2))])
    r = style.radius * s * np.exp(np.clip(rng.normal(0.0, style.size_var, n), -0.6, 0.6))
    e = 1.0 + (style.elongation - 1.0) * np.exp(rng.normal(0.0, 0.25, n))
    spindle = min(1.0, style.elongation - 1.0)  # elongated nuclei follow the fibres
    th = theta_f + rng.normal(0.0, 0.25 + 1.6 * (1.0 - spindle), n)
    conc = style.hema * group.h_scale * np.exp(rng.normal(0.0, 0.15, n))
    nucleolus = 1.2 * (rng.uniform(0.0, 1.0, n) < style.chromatin)
    grain = rng.uniform(-0.5, 0.5, (size, size))
    iy = np.floor(c[:, 0]).astype(np.intp)
    ix = np.floor(c[:, 1]).astype(np.intp)
    keep = pale[np.clip(iy, 0, size - 1), np.clip(ix, 0, size - 1)] < 0.5  # none in lumen
    if not keep.any():
        return np.zeros((size, size))
    c, r, e, th, conc, nucleolus, iy, ix = (x[keep] for x in (c, r, e, th, conc, nucleolus, iy, ix))
    a, b = r * np.sqrt(e), r / np.sqrt(e)
    pad = math.ceil(float(a.max())) + 1
    d = np.arange(-pad, pad + 1)
    yy = d[None, :, None] - (c[:, 0] - iy)[:, None, None]
    xx = d[None, None, :] - (c[:, 1] - ix)[:, None, None]
    cs, sn = np.cos(th)[:, None, None], np.sin(th)[:, None, None]
    u = (xx * cs + yy * sn) / a[:, None, None]
    v = (yy * cs - xx * sn) / b[:, None, None]
    rho = np.sqrt(u * u + v * v)
    mass = conc[:, None, None] * np.clip((1.0 - rho) * r[:, None, None] + 0.5, 0.0, 1.0)
    k = style.chromatin  # vesicular: pale core, dark rim (membrane), nucleolus
    prof = (1.0 - 0.55 * k) + 0.9 * k * rho**4
    prof = prof + nucleolus[:, None, None] * np.clip(1.0 - 4.0 * rho, 0.0, 1.0)
    w = size + 2 * (m + pad) + 2
    flat = (iy[:, None, None] + (m + pad + 1) + d[None, :, None]) * w
    flat = (flat + ix[:, None, None] + (m + pad + 1) + d[None, None, :]).ravel()
    crop = (slice(m + pad + 1, m + pad + 1 + size),) * 2
    tot = np.bincount(flat, weights=mass.ravel(), minlength=w * w).reshape(w, w)[crop]
    body = np.bincount(flat, weights=(mass * prof).ravel(), minlength=w * w).reshape(w, w)[crop]
    out: F64 = np.clip(body + (0.25 + 0.9 * k) * grain * tot, 0.1 * tot, 3.5)
    return out


def render_tile(
    style: ClassStyle, group: GroupStyle, size: int, rng: np.random.Generator
) -> NDArray[np.uint8]:
    """Render one ``(size, size, 3)`` uint8 RGB tile of ``style`` under ``group``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    theta_f = float(rng.uniform(0.0, math.pi))
    # collagen fibres: wavy stripes, warped by smooth noise
    period = 5.0 * group.scale * rng.uniform(0.8, 1.25)
    phase = (xx * math.cos(theta_f) + yy * math.sin(theta_f)) * (2.0 * math.pi / period)
    warp = _smooth_noise(rng, size, max(2, size // 16)) * 2.0
    fib = (0.5 + 0.5 * np.sin(phase + warp)) * np.clip(0.6 + 0.5 * warp, 0.0, 1.0)
    mottle = _smooth_noise(rng, size, max(2, size // 10))
    eos = style.eosin * group.e_scale * (1.0 + 0.12 * mottle + style.fibre * (fib - 0.3))
    # pale lumen / fat: threshold a low-frequency field at the wanted area fraction
    frac = min(0.9, style.lumen * rng.uniform(0.2, 1.8))
    pale = np.zeros((size, size))
    if frac > 0.005:
        field = _smooth_noise(rng, size, max(2, size // 32))
        thr = float(np.quantile(field, 1.0 - frac))
        pale = np.clip((field - thr) * 4.0 + 0.5, 0.0, 1.0)
    eos = np.maximum(eos, 0.02) * (1.0 - 0.92 * pale)
    hem = _nuclei(style, group, size, theta_f, pale, rng)
    hem[1:-1] = 0.5 * hem[1:-1] + 0.25 * (hem[:-2] + hem[2:])  # slight optical blur
    hem[:, 1:-1] = 0.5 * hem[:, 1:-1] + 0.25 * (hem[:, :-2] + hem[:, 2:])
    eos = eos / (1.0 + 0.7 * hem)  # nuclei take up little eosin
    tissue = 1.0 - pale
    hem = hem + 0.08 * group.h_scale * tissue * (1.0 + 0.3 * mottle)
    od = (
        hem[..., None] * np.array(group.h_vec)
        + eos[..., None] * np.array(group.e_vec)
        + tissue[..., None] * np.array(TISSUE_REF)
        + (np.array(BG_REF) + np.array(group.bg_od))
    )
    rgb = 255.0 * group.brightness * np.exp(-od) + rng.normal(0.0, 2.0, (size, size, 3))
    tile: NDArray[np.uint8] = np.rint(np.clip(rgb, 0.0, 255.0)).astype(np.uint8)
    return tile
