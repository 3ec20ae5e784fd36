"""The paper's size-distribution figure: target vs source, before and after SM and MSM (reference §3–§5)."""
from __future__ import annotations

from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

TINY_SIZE = 20.0  # reference §1.3: the paper's persons are "less than 20 pixels"


def plot_size_distributions(target: np.ndarray, source: np.ndarray, matched: Mapping[str, np.ndarray],
                            target_name: str = "target", source_name: str = "source",
                            tiny_size: float = TINY_SIZE, bins: int = 60) -> Figure:
    """One panel for the source and one per entry of `matched` (e.g. after SM, after MSM), each drawn
    over the target as log-x densities, with the "tiny" line."""
    panels = {f"{source_name} (before)": source, **{f"{source_name} after {k}": v for k, v in matched.items()}}
    everything = np.concatenate([target, *panels.values()])
    everything = everything[everything > 0]
    log_edges = np.linspace(np.log10(everything.min()), np.log10(everything.max()), bins + 1)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), sharex=True, sharey=True,
                             squeeze=False, layout="constrained")
    palette = sns.color_palette("colorblind")
    for index, (ax, (title, sizes)) in enumerate(zip(axes[0], panels.items())):
        sns.histplot(x=target, bins=log_edges, log_scale=True, stat="density", element="step", fill=True,
                     color="0.6", alpha=0.5, label=f"{target_name} (n={len(target)})", ax=ax)
        sns.histplot(x=sizes[sizes > 0], bins=log_edges, log_scale=True, stat="density", element="step",
                     fill=False, color=palette[index], linewidth=1.8, label=f"{title} (n={len(sizes)})", ax=ax)
        ax.axvline(tiny_size, color="black", linestyle="--", linewidth=1)
        ax.text(tiny_size, 0.97, f" tiny < {tiny_size:g} px", transform=ax.get_xaxis_transform(),
                va="top", ha="left", fontsize=8)
        ax.set_title(title)
        ax.set_xlabel("object size √(wh) [px], log scale")
        ax.legend(fontsize=8, loc="upper right", bbox_to_anchor=(1.0, 0.9))
    axes[0][0].set_ylabel("density per log₁₀ px")
    return fig
