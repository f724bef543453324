"""Figures for notebook 08 (deployment): the allocator study, the ladder and the roofline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from effnb.allocator import Study
from effnb.bench import Comparison
from effnb.plots import figure, plain_log
from effnb.roofline import Peaks, Placement, attainable

__all__ = ["plot_allocator_study", "plot_ladder", "plot_roofline"]

_MARKERS = "osD^v<>PX*"


def plot_allocator_study(study: Study):
    """Two panels over the fresh processes of ``study``: median ms and minor page faults per
    call, one dot per process, one column per environment and model."""
    fig, (ax_ms, ax_f) = figure(ncols=2, width=10.0, height=3.8)
    columns = [
        (env, label) for env in study.envs if env not in study.skipped for label in study.labels
    ]
    for x, (env, label) in enumerate(columns):
        recs = study.select(env, label)
        jitter = np.linspace(-0.12, 0.12, max(len(recs), 1))
        ax_ms.plot(x + jitter[: len(recs)], [r.median_ms for r in recs], "o", ms=7)
        faults = [r.faults_per_call for r in recs]
        if all(f is not None for f in faults):
            ax_f.plot(x + jitter[: len(recs)], faults, "o", ms=7)
    names = [f"{env}\n{label}" if len(study.labels) > 1 else env for env, label in columns]
    for ax in (ax_ms, ax_f):
        ax.set_xticks(range(len(columns)), names)
        ax.set_xlim(-0.6, len(columns) - 0.4)
    ax_ms.set_ylabel("median ms per forward (one dot per process)")
    ax_ms.set_ylim(bottom=0)
    ax_f.set_ylabel("minor page faults per forward")
    ax_f.set_ylim(bottom=0)
    shape = "x".join(map(str, study.input_shape))
    fig.suptitle(
        f"the same model in fresh processes, per allocator ({shape}, batch 1, "
        f"{study.threads} thread{'s' if study.threads != 1 else ''})"
    )
    return fig


def plot_ladder(run: Comparison, ladders: Mapping[str, Sequence[tuple[str, str]]]):
    """Speed-up over eager of every rung, with its 95% interval, one group of bars per model.

    ``ladders[model] = [(rung name, label in run), ...]``, the first rung being eager.
    """
    fig, ax = figure(width=8.0, height=3.8)
    models = list(ladders)
    rungs = list(dict.fromkeys(name for steps in ladders.values() for name, _ in steps))
    width = 0.8 / max(len(rungs), 1)
    for j, rung in enumerate(rungs):
        xs: list[float] = []
        meds: list[float] = []
        errs: list[list[float]] = [[], []]
        for i, model in enumerate(models):
            labels = dict(ladders[model])
            if rung not in labels:
                continue
            eager = ladders[model][0][1]
            lo, med, hi = run.ratio_ci(eager, labels[rung])  # eager time / rung time
            xs.append(i + (j - (len(rungs) - 1) / 2) * width)
            meds.append(med)
            errs[0].append(med - lo if np.isfinite(lo) else 0.0)
            errs[1].append(hi - med if np.isfinite(hi) else 0.0)
        if xs:
            ax.bar(xs, meds, width * 0.95, yerr=errs, capsize=3, label=rung)
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xticks(range(len(models)), models)
    ax.set_ylabel("speed-up over eager (x), 95% CI")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    rec = next(iter(run.records.values()))
    ax.set_title(
        f"each rung in one interleaved run ({rec.device}, {rec.threads} threads, "
        f"{len(next(iter(run.rounds.values())))} rounds)"
    )
    return fig


def plot_roofline(peaks: Peaks, placements: Mapping[str, Mapping[str, Placement]]):
    """The measured roofs and every model (colour) and backend (marker) placed under them.

    ``placements[model][backend]`` from ``effnb.roofline.place``.
    """
    fig, ax = figure(width=8.0, height=4.6)
    points = [p for per in placements.values() for p in per.values()]
    xs = [p.intensity for p in points] + [peaks.ridge]
    grid = np.geomspace(min(xs) / 4, max(xs) * 4, 200)
    ax.plot(grid, attainable(grid, peaks) / 1e9, color="black", lw=2, label="attainable (roofs)")
    ax.axvline(peaks.ridge, color="tab:gray", lw=0.8, ls="--")
    backends = list(dict.fromkeys(b for per in placements.values() for b in per))
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    for i, per in enumerate(placements.values()):
        for backend, p in per.items():
            marker = _MARKERS[backends.index(backend) % len(_MARKERS)]
            ax.plot([p.intensity], [p.achieved / 1e9], marker, color=colours[i % len(colours)],
                    ms=8, mec="black", mew=0.5)  # fmt: skip
    for i, model in enumerate(placements):  # legend: models by colour, backends by marker
        ax.plot([], [], "s", color=colours[i % len(colours)], label=model)
    for b in backends:
        ax.plot([], [], _MARKERS[backends.index(b) % len(_MARKERS)], color="gray", label=b)
    plain_log(ax)
    lowest = min(p.achieved for p in points) / 1e9
    ax.set_ylim(lowest / 3, peaks.macs_per_s / 1e9 * 3)
    ax.set_xlim(grid[0], grid[-1])
    ax.set_xlabel(
        "arithmetic intensity (MACs per byte; bytes: weights + conv/linear inputs and outputs)"
    )
    ax.set_ylabel("GMAC/s (log scale)")
    m, k, n = peaks.matmul_shape
    ax.set_title(
        f"roofline, {peaks.device}, {peaks.threads} threads: compute roof "
        f"{peaks.macs_per_s / 1e9:.0f} GMAC/s ({m}x{k}x{n} product), "
        f"bandwidth {peaks.bytes_per_s / 1e9:.0f} GB/s",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig
