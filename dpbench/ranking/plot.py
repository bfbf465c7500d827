"""Critical-difference diagram (Demšar 2006 style) with matplotlib."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.backend_bases import FigureCanvasBase

from dpbench.io import atomic_write_bytes

#: Image formats a diagram can be written in, chosen by the file's suffix (png without one).
FORMATS = frozenset(FigureCanvasBase.get_supported_filetypes())


def image_format(path: Path) -> str:
    """The format ``path``'s suffix names (``png`` without a suffix); may be outside :data:`FORMATS`."""
    return path.suffix.lstrip(".").lower() or "png"


def cd_diagram(avg_ranks: pd.Series, cd: float, groups: list[list[str]], path: Path, title: str = "") -> None:
    """Draw methods on an average-rank axis (best on the left), the CD bar, and a bar per tied group."""
    ordered = avg_ranks.sort_values()
    k = len(ordered)
    half = (k + 1) // 2
    rows = max(half, k - half)
    height = 1.5 + 0.12 * len(groups) + 0.3 * rows
    fig, ax = plt.subplots(figsize=(8, 1.2 * height))
    low, high = 1, max(k, 2)
    ax.set_xlim(low - 0.3, high + 0.3)
    ax.set_ylim(0, height)
    ax.axis("off")
    axis_y = height - 1.0
    ax.hlines(axis_y, low, high, color="black", lw=1)
    for r in range(low, high + 1):
        ax.vlines(r, axis_y, axis_y + 0.08, color="black", lw=1)
        ax.text(r, axis_y + 0.12, str(r), ha="center", va="bottom", fontsize=9)
    ax.hlines(axis_y + 0.5, low, low + cd, color="tab:red", lw=2)
    ax.text(low + cd + 0.05, axis_y + 0.5, f"CD = {cd:.2f}", ha="left", va="center", fontsize=9, color="tab:red")
    if title:
        ax.text((low + high) / 2, height - 0.1, title, ha="center", va="top", fontsize=10)
    for j, group in enumerate(groups):
        y = axis_y - 0.15 - 0.12 * j
        ax.hlines(y, ordered[group[0]] - 0.03, ordered[group[-1]] + 0.03, color="tab:blue", lw=3)
    first_row = axis_y - 0.35 - 0.12 * len(groups)
    for i, (name, value) in enumerate(ordered.items()):
        left = i < half
        row = i if left else k - 1 - i
        y = first_row - 0.3 * row
        x_text = low - 0.2 if left else high + 0.2
        ax.plot([value, value, x_text], [axis_y, y, y], color="black", lw=0.8, zorder=1)
        ax.text(x_text, y, f"{name} ({value:.2f})", ha="right" if left else "left", va="center", fontsize=9)
    fig.tight_layout()
    suffix = image_format(path)
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format=suffix, dpi=150, bbox_inches="tight", metadata={"Software": None}
                if suffix == "png" else None)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
