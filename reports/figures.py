"""Comparison figures (matplotlib + seaborn), each written as PNG and SVG.

Frequencies are on a log axis in Hz/kHz, levels in dB, and colours come from seaborn's
colour-blind-safe palette. `FigureSize` picks web or paper proportions.
"""
from __future__ import annotations

import math
import os
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from probe.rundir import CONDITION_LABELS



@dataclass(frozen=True)
class FigureSize:
    width: float = 7.0
    height: float = 3.2
    dpi: int = 110
    font_size: float = 9.0


WEB = FigureSize()
PAPER = FigureSize(width=3.5, height=2.4, dpi=300, font_size=7.0)


def palette(n: int) -> list:
    return sns.color_palette("colorblind", max(n, 1))


def _hz_label(hz: float, _position: int) -> str:
    return f"{hz / 1000:g}k" if hz >= 1000 else f"{hz:g}"


def hz_formatter() -> FuncFormatter:
    return FuncFormatter(_hz_label)  # a module-level function: the figure pickles (`rendering_in_background`)


RC = {"svg.fonttype": "none", "svg.hashsalt": "probe"}
"""Settings read when a figure is drawn, not when it is built: a fixed salt makes the SVGs' element ids, and so the
files, the same on every run; a worker that draws must have them too."""
_background: ContextVar["tuple[Executor, list[Future]] | None"] = ContextVar("figures_background", default=None)
"""Inside `rendering_in_background`: the pool that draws, and the figures it has been given."""


def save(fig: plt.Figure, path_stem: Path, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Write the figure in each format (atomically) and close it; returns the paths it writes. Inside
    `rendering_in_background` the drawing happens in a worker process and the files are there when the block ends."""
    paths = [path_stem.with_suffix(f".{fmt}") for fmt in formats]
    background = _background.get()
    if background is not None:
        pool, pending = background
        import pickle

        try:
            payload = pickle.dumps(fig)
        except Exception:  # an artist that does not pickle is drawn here instead
            payload = None
        if payload is not None:
            plt.close(fig)
            # drawing reads some settings afresh (the font size sizes the tick labels, and so how many ticks fit)
            settings = {"font.size": plt.rcParams["font.size"], **RC}
            pending.append(pool.submit(_draw_pickled, payload, paths, settings))
            return paths
    _draw(fig, paths)
    return paths


def _draw(fig: plt.Figure, paths: Sequence[Path]) -> None:
    from probe.fileio import atomic_write

    for path in paths:
        with atomic_write(path) as handle:
            # constrained layout already fits (a tight bbox would draw twice); no date in an SVG, so reruns match
            fig.savefig(handle, format=path.suffix[1:], metadata={"Date": None} if path.suffix == ".svg" else None)
    plt.close(fig)


def _draw_pickled(payload: bytes, paths: Sequence[Path], settings: dict) -> None:
    import pickle

    plt.rcParams.update(settings)
    _draw(pickle.loads(payload), paths)


@contextmanager
def rendering_in_background(workers: int | None = None) -> Iterator[None]:
    """Draw the figures saved inside the block in `workers` processes (default: one per core, at most 4; 1: here,
    as usual) while the block goes on building the next; on leaving, wait for every file, and raise the first
    error. Drawing (PNG and SVG) is most of a report's time, and the figures are independent."""
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    if workers < 2:
        yield
        return
    from probe.workers import spawn_pool

    pending: list[Future] = []
    with spawn_pool(workers) as pool:
        token = _background.set((pool, pending))
        try:
            yield
            for future in pending:
                future.result()
        except BaseException:
            for future in pending:
                future.cancel()
            raise
        finally:
            _background.reset(token)


def _figure(size: FigureSize, nrows: int = 1, ncols: int = 1, height_scale: float = 1.0, **kwargs):
    plt.rcParams.update({"font.size": size.font_size, **RC})
    return plt.subplots(nrows, ncols, figsize=(size.width, size.height * height_scale), dpi=size.dpi,
                        layout="constrained", **kwargs)


def band_profiles(profiles: dict[str, pd.DataFrame], title: str, size: FigureSize = WEB,
                  ylabel: str = "energy shift (dB)\nreconstruction − original", threshold_db: float | None = None,
                  marked_hz: dict[str, tuple[float, float]] | None = None) -> plt.Figure:
    """Mean band shift (dB) with its CI band, one line per entry of `profiles` (rows sorted by band); optionally the
    ±threshold the verdicts test against (grey) and named frequency ranges (the demo's planted bands)."""
    fig, ax = _figure(size)
    if threshold_db:
        ax.axhspan(-threshold_db, threshold_db, color="0.5", alpha=0.12, linewidth=0,
                   label=f"±{threshold_db:g} dB (verdict threshold)")
    for (name, (low, high)), colour in zip((marked_hz or {}).items(), ("#e69f00", "#56b4e9", "#009e73")):
        ax.axvspan(low, high, color=colour, alpha=0.12, linewidth=0, label=name)
    _mark_noise_floor(ax, profiles.values())
    for colour, (name, frame) in zip(palette(len(profiles)), profiles.items()):
        frame = frame.sort_values("centre_hz")
        ax.plot(frame.centre_hz, frame.mean_shift_db, marker="o", markersize=3, color=colour, label=name)
        ax.fill_between(frame.centre_hz, frame.ci_low, frame.ci_high, color=colour, alpha=0.2, linewidth=0)
    _frequency_axes(ax, "band centre frequency (Hz)", ylabel, title, size)
    return fig


def _mark_noise_floor(ax, frames) -> None:
    """Hatch the bands that lie near the noise floor of the originals (`near_noise_floor`, in any of the frames): a
    shift there is a change of almost nothing, and no verdict is given."""
    floor = [frame[frame.near_noise_floor.eq(True)] for frame in frames
             if len(frame) and {"near_noise_floor", "low_hz", "high_hz"} <= set(frame.columns)]
    spans: list[list[float]] = []
    for low, high in sorted({(float(r.low_hz), float(r.high_hz)) for part in floor for r in part.itertuples()}):
        if spans and low <= spans[-1][1] * 1.0001:
            spans[-1][1] = max(spans[-1][1], high)
        else:
            spans.append([low, high])
    for index, (low, high) in enumerate(spans):
        ax.axvspan(low, high, facecolor="none", edgecolor="0.6", hatch="///", linewidth=0,
                   label="near the originals' noise floor (no verdict)" if index == 0 else None)


def three_routes(profiles: dict[str, pd.DataFrame], attribution: pd.DataFrame | None, title: str,
                 size: FigureSize = WEB, ylabel: str = "energy change (dB), finetuned − control",
                 input_band: str = "mel band") -> plt.Figure:
    """The probes' changes against their controls (left axis, dB) and the attribution mass per mel band (right axis) on
    one frequency axis."""
    fig, ax = _figure(size, height_scale=1.2)
    _mark_noise_floor(ax, profiles.values())
    for colour, (name, frame) in zip(palette(len(profiles) + 1), profiles.items()):
        frame = frame.sort_values("centre_hz")
        ax.plot(frame.centre_hz, frame.mean_shift_db, marker="o", markersize=3, color=colour, label=name)
    if attribution is not None and len(attribution):
        twin = ax.twinx()
        attribution = attribution.sort_values("centre_hz")
        twin.fill_between(attribution.centre_hz, 0, 100 * attribution["mass"], color="0.5", alpha=0.25, linewidth=0,
                          label="attribution mass")
        twin.set_ylabel(f"attribution mass per {input_band} (%), {attribution.method.iloc[0].replace('_', ' ')}")
        twin.set_ylim(bottom=0)
    _frequency_axes(ax, "frequency (Hz)", ylabel, title, size)
    return fig


def _frequency_axes(ax, xlabel: str, ylabel: str, title: str, size: FigureSize) -> None:
    """A log-frequency axis in Hz/kHz with a 0 dB reference line, labels, legend and grid."""
    ax.axhline(0, color="0.4", linewidth=0.8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(hz_formatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    _legend(ax, size)
    ax.grid(alpha=0.3)


def _legend(ax, size: FigureSize, inside_up_to: int = 4) -> None:
    """A few entries go inside the axes; more go below them, in two columns, and the figure grows to hold them."""
    handles, labels = ax.get_legend_handles_labels()
    if len(handles) <= inside_up_to:
        ax.legend(fontsize=size.font_size * 0.85, frameon=False)
        return
    fig = ax.figure
    rows = math.ceil(len(handles) / 2)
    width, height = fig.get_size_inches()
    fig.set_size_inches(width, height + rows * size.font_size * 1.5 / 72)
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=size.font_size * 0.85, frameon=False)


def accuracy_bars(frame: pd.DataFrame, group: str, title: str, size: FigureSize = WEB) -> plt.Figure:
    """Top-1 accuracy per `group` value and condition, as grouped bars."""
    data = frame.assign(condition=frame.condition.map(CONDITION_LABELS).fillna(frame.condition))
    height = max(1.0, 0.25 * data[group].nunique() / 3)
    fig, ax = _figure(size, height_scale=height)
    sns.barplot(data=data, y=group, x="top1", hue="condition", palette="colorblind", ax=ax, orient="h")
    ax.set_xlim(0, 1)
    ax.set_xlabel("top-1 accuracy")
    ax.set_ylabel("")
    ax.set_title(title)
    ax.legend(fontsize=size.font_size * 0.85, frameon=False, loc="lower right")
    return fig


def spectrogram_grid(original: np.ndarray, reconstructions: dict[str, np.ndarray], title: str, seconds: float,
                     size: FigureSize = WEB) -> plt.Figure:
    """Mean log-mel spectrograms: the original, then per setting its reconstruction (top) and difference (bottom), dB."""
    names = list(reconstructions)
    fig, axes = _figure(size, 2, 1 + len(names), squeeze=False, height_scale=1.4, sharex=True, sharey=True)
    extent = (0, seconds, 0, original.shape[0])
    level = np.nanpercentile(np.concatenate([original.ravel(), *(r.ravel() for r in reconstructions.values())]), [2, 99.5])
    limit = max(1.0, max(float(np.nanpercentile(np.abs(r - original), 99)) for r in reconstructions.values()))
    image = axes[0][0].imshow(original, origin="lower", aspect="auto", extent=extent, cmap="magma", vmin=level[0], vmax=level[1])
    axes[0][0].set_title("original", fontsize=size.font_size)
    axes[1][0].axis("off")
    for column, name in enumerate(names, start=1):
        axes[0][column].imshow(reconstructions[name], origin="lower", aspect="auto", extent=extent, cmap="magma",
                               vmin=level[0], vmax=level[1])
        axes[0][column].set_title(name, fontsize=size.font_size * 0.85)
        difference = axes[1][column].imshow(reconstructions[name] - original, origin="lower", aspect="auto", extent=extent,
                                            cmap="RdBu_r", vmin=-limit, vmax=limit)
        axes[1][column].set_title("difference", fontsize=size.font_size * 0.85)
    fig.colorbar(image, ax=axes[0].tolist(), label="dB", fraction=0.03)
    if names:
        fig.colorbar(difference, ax=axes[1].tolist(), label="dB", fraction=0.03)
    axes[0][0].set_ylabel("mel band")
    for ax in axes[1][1:]:
        ax.set_xlabel("time (s)")
    fig.suptitle(title, fontsize=size.font_size * 1.1)
    return fig


def attribution_grid(maps: dict[str, np.ndarray], title: str, size: FigureSize = WEB,
                     frequency_label: str = "mel band") -> plt.Figure:
    """Mean attribution maps side by side (e.g. one per class), a shared colour scale per map, frequency up (`frequency_
    label` names the axis: a waveform-in network's maps lie on its STFT inspection layer's bins). Maps of one row
    (mass over time) are drawn as a curve."""
    names = list(maps)
    over_time = all(np.asarray(maps[name]).shape[0] == 1 for name in names)
    fig, axes = _figure(size, 1, len(names), squeeze=False, height_scale=0.8, sharey=over_time)
    for ax, name in zip(axes[0], names):
        if over_time:
            ax.fill_between(np.arange(maps[name].shape[-1]), 0, maps[name][0], color="C0", linewidth=0)
            ax.set_xlim(0, maps[name].shape[-1] - 1)
        else:
            ax.imshow(maps[name], origin="lower", aspect="auto", cmap="viridis")
            ax.set_yticks([])
        ax.set_title(name, fontsize=size.font_size * 0.85)
        ax.set_xticks([])
    axes[0][0].set_ylabel("attribution mass over time" if over_time else frequency_label)
    fig.suptitle(title, fontsize=size.font_size * 1.1)
    return fig


def information_kept(rows: pd.DataFrame, title: str, size: FigureSize = WEB) -> plt.Figure:
    """Palacio's NMI per run (rows: label, nmi_intra, nmi_intra_ci_low, nmi_intra_ci_high, nmi_chance), with the
    chance level (a clip against another clip's reconstruction)."""
    fig, ax = _figure(size, height_scale=max(1.0, 0.2 * len(rows)))
    positions = np.arange(len(rows))
    errors = np.vstack([rows.nmi_intra - rows.nmi_intra_ci_low, rows.nmi_intra_ci_high - rows.nmi_intra])
    ax.barh(positions, rows.nmi_intra, xerr=np.nan_to_num(errors), color=palette(1)[0], capsize=2)
    chance = rows.nmi_chance
    ax.scatter(chance, positions, marker="|", s=120, color="black", zorder=3)
    ax.set_yticks(positions, rows.label)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("NMI with the original (bars, with CI; |: chance)")
    ax.set_title(title)
    return fig


def answer_heatmap(cells: pd.DataFrame, threshold_db: float | None, title: str, size: FigureSize = WEB) -> plt.Figure:
    """Classifiers (rows) by band (columns): the contrast of each classifier's most reliable probe against its control
    (`probe.reports.answer.answer_table`), blue where finetuning removed energy. A dot marks a verdict a test showed
    beyond the threshold; hatching marks a band with no verdict (noise floor, too few clips, inconclusive)."""
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.patches import Patch, Rectangle

    rows = list(dict.fromkeys(cells.classifier))
    bands = cells.drop_duplicates("band").sort_values("centre_hz").band.tolist()
    grid = cells.pivot(index="classifier", columns="band", values="contrast_db").reindex(index=rows, columns=bands)
    limit = max(float(np.nanmax(np.abs(grid.to_numpy()))) if np.isfinite(grid.to_numpy()).any() else 0.0,
                2 * (threshold_db or 1.0))
    fig, ax = _figure(size, height_scale=max(0.55, 0.18 * len(rows) + 0.35))
    image = ax.imshow(grid.to_numpy(), aspect="auto", cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -limit, limit),
                      interpolation="nearest")
    for _, cell in cells.iterrows():
        y, x = rows.index(cell.classifier), bands.index(cell.band)
        if cell.no_verdict:
            ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, hatch="////", edgecolor="0.35", linewidth=0))
        elif cell.significant:
            ax.plot(x, y, "o", color="black", markersize=3)
    labels = cells.drop_duplicates("classifier").set_index("classifier")
    ax.set_yticks(range(len(rows)), [f"{name}\n({labels.loc[name, 'probe']})" for name in rows])
    ax.set_xticks(range(len(bands)), bands, rotation=90, fontsize=size.font_size * 0.8)
    ax.set_title(title)
    colourbar = fig.colorbar(image, ax=ax, pad=0.01)
    colourbar.set_label("finetuned − control (dB)")
    marks = [plt.Line2D([], [], marker="o", color="black", linestyle="", markersize=3,
                        label=f"a test shows it beyond ±{threshold_db:g} dB" if threshold_db else "significant"),
             Patch(facecolor="white", edgecolor="0.35", hatch="////", label="no verdict (noise floor, too few clips, "
                                                                           "inconclusive)")]
    fig.legend(handles=marks, loc="outside lower center", ncol=2, fontsize=size.font_size * 0.8, frameon=False)
    return fig


def transfer_heatmap(frame: pd.DataFrame, size: FigureSize = WEB) -> plt.Figure:
    """Accuracy of each classifier (columns) on each run's finetuned reconstructions (rows)."""
    matrix = frame.pivot(index="autoencoder_of", columns="classifier_of", values="accuracy_after")
    fig, ax = _figure(size, height_scale=max(1.0, 0.35 * len(matrix)))
    sns.heatmap(matrix, annot=True, fmt=".2f", vmin=0, vmax=1, cmap="mako", ax=ax, cbar_kws={"label": "top-1 accuracy"})
    ax.set_xlabel("classifier that judges")
    ax.set_ylabel("reconstructions of the AE finetuned for")
    ax.set_title("transfer: finetuned AE of one classifier, judged by another")
    return fig


def spectrum_difference(frequencies: np.ndarray, curves: dict[str, np.ndarray], title: str,
                        size: FigureSize = WEB, ylabel: str = "level difference (dB)") -> plt.Figure:
    """Mean log-power difference (reconstruction − original) along frequency, one line per entry (or any dB curves)."""
    fig, ax = _figure(size)
    keep = frequencies > 20
    for colour, (name, curve) in zip(palette(len(curves)), curves.items()):
        ax.plot(frequencies[keep], curve[keep], color=colour, label=name, linewidth=1)
    _frequency_axes(ax, "frequency (Hz)", ylabel, title, size)
    return fig


THUMBNAIL_PIXELS = (110, 220)
"""The gallery's spectrograms, (height, width): drawn at the size the page shows them."""


def spectrogram_thumbnail(waveform: np.ndarray, path: Path, floor_db: float = 80.0) -> Path:
    """A small log-power spectrogram of one clip as a bare PNG image (0 Hz to Nyquist upwards, the loudest `floor_db`;
    the gallery's note says so), for the listening gallery. Straight from the array to pixels, with no axes: a
    figure per clip made the gallery a quarter of the report's time."""
    import torch
    from matplotlib.image import imsave

    from probe.fileio import atomic_write

    x = torch.as_tensor(np.asarray(waveform, dtype=np.float32))
    window = torch.hann_window(512)
    power = torch.stft(x, 512, 128, window=window, center=True, return_complex=True).abs().pow(2)
    db = 10 * torch.log10(power + 1e-12)
    db = torch.maximum(db, db.max() - floor_db)
    pixels = torch.nn.functional.interpolate(db[None, None], size=THUMBNAIL_PIXELS, mode="bilinear", antialias=True,
                                             align_corners=False)[0, 0].numpy()
    with atomic_write(path) as handle:
        imsave(handle, pixels, cmap="magma", origin="lower", format="png", vmin=float(db.max()) - floor_db,
               vmax=float(db.max()))
    return path
