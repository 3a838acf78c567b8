"""`probe report`: a static site from analysis folders, readable from file:// with no server.

OUT/index.html                 the classifiers compared: accuracy, band profiles, transfer, findings
OUT/<classifier>/index.html    one page per classifier: overview, examples with audio, a section per category
OUT/figures/, OUT/<classifier>/figures/   PNG (shown) and SVG (for papers) of every figure
OUT/<classifier>/audio/        the example clips, copied beside the page (never inlined)
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probe.errors import ConfigError
from probe.fileio import safe_name as slug, write_text
from probe.outputs import check_output, staged_directory
from probe.probes import PROBES
from probe.progress import Progress
from probe.rundir import AnalysisDir, Tables, current_command
from probe.reports import figures
from probe.reports.config import ReportConfig
from probe.reports.answer import RELIABILITY, answer_table, answers, measured_rows
from probe.reports.data import AnalysedRun, Analysis, load_analysis
from probe.reports.provenance import footer, reproduce
from probe.reports.findings import attribution_checks, cautions, findings, verdict_rule
from probe.reports.gallery import write_gallery

TEMPLATES = Path(__file__).parent / "templates"
ANSWER_CSV = "answer.csv"
"""The answer as data: one row per classifier and claim (comparison/answer), beside the index."""
ANSWER_BANDS_CSV = "answer_bands.csv"
"""The index heatmap's cells (`probe.reports.answer.answer_table`), beside the index."""


def _environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


@dataclass(frozen=True)
class Marks:
    """What every band figure marks: the ±threshold its verdicts test against, and named ranges (planted bands)."""

    threshold_db: float | None = None
    bands_hz: dict[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def of(cls, analysis: Analysis) -> "Marks":
        threshold = next((run.summary["bands"]["threshold_db"] for run in analysis.runs
                          if "threshold_db" in run.summary.get("bands", {})), None)
        planted = analysis.planted
        bands = {f"planted {name} band": tuple(planted[f"{name}_band_hz"]) for name in ("low", "high")
                 if f"{name}_band_hz" in planted}
        return cls(threshold, bands)

    def figure_options(self) -> dict[str, Any]:
        return {"threshold_db": self.threshold_db, "marked_hz": self.bands_hz}


def cautions_above_all(analysis) -> list[str]:
    """The cautions every page opens with (synthetic clips, an untrained classifier), each naming its runs."""
    runs_of: dict[str, list[str]] = {}
    for run in analysis.runs:
        for caution in run.summary.get("cautions", []):
            runs_of.setdefault(caution, []).append(run.label)
    every = len(analysis.runs)
    return [caution if len(labels) == every else f"{caution} (runs: {', '.join(labels)})"
            for caution, labels in runs_of.items()]


def build_report(config: ReportConfig) -> Path:
    """Write the report atomically; returns the path of its index.html."""
    if not config.analyses:
        raise ConfigError(None, "give at least one analysis folder (written by `probe analyse`)")
    if config.jobs is not None and config.jobs < 1:
        raise ConfigError(None, f"--jobs is the number of processes that draw the figures, at least 1; got {config.jobs}")
    analysis = load_analysis(list(config.analyses))
    check_output(config.out, "report", config.analyses)
    marks = Marks.of(analysis)
    env = _environment()
    env.globals["reproduce"] = reproduce(analysis, current_command())
    env.globals["data"] = table_links
    env.globals["cautions_above_all"] = cautions_above_all(analysis)
    say = Progress(config.progress, prefix="probe report: ")
    with staged_directory(config.out, "report", config.analyses) as site, figures.rendering_in_background(config.jobs):
        for static in ("style.css", "sort.js"):
            shutil.copy(TEMPLATES / static, site / static)
        pages = []
        for classifier, runs in analysis.by_classifier().items():
            say(f"page for {classifier} ({len(runs)} probe setting(s))")
            correlations = analysis.comparison_tables.get(Tables.ROUTE_CORRELATIONS, pd.DataFrame())
            if len(correlations):
                correlations = correlations[correlations.classifier == classifier]
            pages.append(_classifier_page(env, site, classifier, runs, config, correlations, footer(analysis, runs), marks))
        say("listening gallery")
        gallery = write_gallery(env, site, analysis, footer(analysis, analysis.runs), verdict_rule(analysis.runs))
        say("index")
        _index_page(env, site, analysis, pages, config, marks, gallery)
    return Path(config.out) / "index.html"


def written_files(folder: Path, names: tuple[str, ...]) -> list[str]:
    """Those of `names` that were written into `folder`: a page links only to files that are there (answer.csv, for
    one, is written only where the answer has claims)."""
    return [name for name in names if (folder / name).is_file()]


def _figure(fig, folder: Path, name: str, site: Path) -> str:
    """Save a figure as PNG and SVG; returns the PNG's path relative to the page folder."""
    figures.save(fig, folder / "figures" / name)
    return f"figures/{name}.png"


def _index_page(env, site: Path, analysis: Analysis, pages: list[dict[str, Any]], config: ReportConfig,
                marks: Marks, gallery: str | None = None) -> None:
    accuracy_rows = [{"label": run.label, "classifier": run.classifier, "setting": run.probe_setting, "objective": run.objective,
                      "scored": run.accuracy_word,
                      **{c: run.summary["accuracy"].get(c, {}).get("top1") for c in ("original", "before", "after")}}
                     for run in analysis.runs]
    profiles = {run.label: run.overall(config.band_set, run.headline_condition) for run in analysis.runs
                if not run.summary.get("control")}
    figure_paths = {"bands": _figure(figures.band_profiles(
        {k: v for k, v in profiles.items() if len(v)}, f"{config.band_set.replace('_', '-')} bands: what finetuning changed, against each control",
        ylabel="energy change (dB)\nfinetuned − control", **marks.figure_options()),
        site, "overview_bands", site)}
    accuracy = pd.DataFrame([{"group": r["label"], "condition": c, "top1": r[c]} for r in accuracy_rows
                             for c in ("original", "before", "after") if r[c] is not None])
    if len(accuracy):
        figure_paths["accuracy"] = _figure(figures.accuracy_bars(accuracy, "group", f"top-1 {_scored_as(analysis.runs)} per run"),
                                           site, "overview_accuracy", site)
    contrasts = analysis.comparison_tables.get(Tables.CLASSIFIER_CONTRASTS)
    if contrasts is not None and len(contrasts):
        chosen = contrasts[contrasts.band_set == config.band_set]
        curves = {f"{a} − {b} ({setting})": part for (a, b, setting), part in
                  chosen.groupby(["classifier_a", "classifier_b", "setting"], sort=False)}
        if curves:
            figure_paths["contrasts"] = _figure(figures.band_profiles(
                curves, f"classifier against classifier, same probe ({config.band_set.replace('_', '-')})",
                ylabel="difference of band shifts (dB)\nclassifier A − classifier B", **marks.figure_options()), site,
                "classifier_contrasts", site)
    transfer = analysis.comparison_tables.get(Tables.TRANSFER)
    if transfer is not None and transfer.classifier_of.nunique() > 1:
        figure_paths["transfer"] = _figure(figures.transfer_heatmap(transfer), site, "transfer", site)
    measured = analysis.measured_answer
    chosen = answers(analysis, config.band_set, {c: a["runs"][0] for c, a in measured.items()} if analysis.answered else None)
    cells = answer_table(chosen, config.band_set, analysis.comparison_tables.get(Tables.BAND_CONTRAST_POOLED))
    claims = analysis.comparison_tables.get(Tables.ANSWER)
    if claims is not None and len(claims):
        write_text(site / ANSWER_CSV, claims.to_csv(index=False))
    if len(cells):
        write_text(site / ANSWER_BANDS_CSV, cells.to_csv(index=False))
        figure_paths["answer"] = _figure(figures.answer_heatmap(
            cells, marks.threshold_db, f"what each classifier needs: its most reliable probe, {config.band_set.replace('_', '-')} "
            "bands"), site, "answer", site)
    page_of = {page["classifier"]: page["href"] for page in pages}
    if analysis.answered:  # every word measured: the probe's replicates propose, removal from the originals confirms
        answer_rows = measured_rows(analysis, page_of)
    else:
        answer_rows = [{"classifier": a.classifier, "sentence": a.sentence, "href": page_of.get(a.classifier)}
                       for a in chosen]
    labels = {c: analysis.runs[0].condition_label(c) for c in ("before", "after")} if analysis.runs else {}
    on_pages = lambda name: [(f"{page['classifier']}: {name}", f"{page['href'].rpartition('/')[0]}/index.html#table-{name}")  # noqa: E731
                             for page in pages]
    data_links = {"accuracy": on_pages(Tables.ACCURACY_OVERALL), "bands": on_pages(Tables.BAND_CONTRAST_VS_CONTROL),
                  "answer": [(name, name) for name in written_files(site, (ANSWER_CSV, ANSWER_BANDS_CSV))] + [
                      entry for entry in on_pages(Tables.BAND_CONTRAST_VS_CONTROL)
                      if entry[0].rpartition(": ")[0] in {a.classifier for a in chosen}],
                  **{key: _comparison_links(config, name, site) for key, name in
                     (("contrasts", Tables.CLASSIFIER_CONTRASTS), ("transfer", Tables.TRANSFER))}}
    html = env.get_template("index.html.j2").render(labels=labels, provenance=footer(analysis, analysis.runs),
        verdict_rule=verdict_rule(analysis.runs), planted=_planted_rows(analysis), gallery=gallery, answers=answer_rows,
        measured_answer=analysis.answered, claims_csv=ANSWER_CSV if (site / ANSWER_CSV).is_file() else None,
        reliability=list(RELIABILITY),
        title="probe report", notes=config.notes, findings=findings(analysis, config.band_set), accuracy_rows=accuracy_rows,
        band_set=config.band_set.replace("_", "-"),
        figures=figure_paths, data_links=data_links, pages=pages, stylesheet="style.css")
    write_text(site / "index.html", html)


def _classifier_page(env, site: Path, classifier: str, runs: list[AnalysedRun], config: ReportConfig,
                     correlations: pd.DataFrame, provenance: dict[str, Any], marks: Marks) -> dict[str, Any]:
    folder = site / slug(classifier)
    (folder / "figures").mkdir(parents=True)
    first = runs[0].summary
    class_names, category_names = first["class_names"], first["category_names"]
    class_categories = first["class_categories"]
    seconds = _clip_seconds(runs[0])

    overview, band_figures = {}, []
    for band_set in runs[0].fixed_band_sets:
        curves = {}
        for run in runs:
            for condition in ("after", "before"):
                frame = run.overall(band_set, condition)
                if len(frame):
                    curves[f"{run.setting}: {run.condition_label(condition)}"] = frame
        if curves:
            band_figures.append((f"{band_set.replace('_', '-')} band shift", _figure(figures.band_profiles(
                curves, f"{classifier}: {band_set.replace('_', '-')} absolute band shift (includes the AE's own error)",
                **marks.figure_options()),
                                         folder, f"bands_{band_set}", site)))
    contrasts = {}
    for run in runs:
        table = run.table(Tables.BAND_CONTRAST_VS_CONTROL)
        if len(table) and not run.summary.get("control"):
            contrasts[run.setting] = table[table.band_set == run.fine_band_set]
    if contrasts:
        overview["contrast"] = _figure(figures.band_profiles(
            contrasts, f"{classifier}: what finetuning changed against the control ({runs[0].fine_band_set.replace('_', '-')})",
            ylabel="energy change (dB)\nfinetuned − control", **marks.figure_options()), folder,
            "contrast_vs_control", site)
    routes = _three_routes(runs, classifier, runs[0].fine_band_set)
    if routes is not None:
        overview["routes"] = _figure(routes, folder, "three_routes", site)
    spectra = {}
    for run in runs:
        frequencies, differences = run.spectrum_differences()
        spectra.update({f"{run.setting}: {run.condition_label(c)}": curve for c, curve in differences.items()})
    overview["spectrum"] = _figure(figures.spectrum_difference(frequencies, spectra, f"{classifier}: mean spectrum difference"),
                                   folder, "spectrum", site)

    sections = []
    present = _classes_with_clips(runs)
    for category_index, category in enumerate(category_names):
        members = [i for i, c in enumerate(class_categories)
                   if c == category_index and (present is None or class_names[i] in present)]
        if not members:
            continue
        sections.append({"name": category, "anchor": f"category-{category_index}",
                         "figures": _category_figures(runs, folder, site, category_index, category, members, class_names,
                                                      seconds, config, marks),
                         "classes": [_class_row(runs, class_names[i], config.band_set) for i in members],
                         "information": _category_information(runs, category)})

    html = env.get_template("classifier.html.j2").render(
        title=f"{classifier}: what it listens to", classifier=classifier, runs=[_run_card(r, config.band_set) for r in runs],
        cautions=cautions(runs), checks=attribution_checks(runs), band_set=config.band_set.replace("_", "-"),
        input_band=_input_band(runs),
        overview=overview, band_figures=band_figures, examples=_examples(runs, folder), sections=sections, stylesheet="../style.css",
        information=[_information_row(r) for r in runs if r.summary.get("information")],
        correlations=correlations.to_dict("records") if len(correlations) else [], tables=_tables(runs, folder),
        provenance=provenance, verdict_rule=verdict_rule(runs))
    write_text(folder / "index.html", html)
    return {"classifier": classifier, "href": f"{slug(classifier)}/index.html", "runs": [r.label for r in runs],
            "sentences": [f"{r.setting}: {r.headline(config.band_set)}" for r in runs
                          if r.headline(config.band_set) and not r.summary.get("control")]}


def _planted_rows(analysis: Analysis) -> list[dict[str, Any]]:
    """The planted answer (the demo's) as table rows: classifier, planted band, probe, contrast, interval, verdict."""
    planted = analysis.planted
    if not planted:
        return []
    rows = []
    for classifier, entry in planted["classifiers"].items():
        for probe, result in entry["probes"].items():
            verdict = {True: "recovered", False: "missed", None: "–"}[result.get("recovered")]
            rows.append({"classifier": classifier, "relies_on": entry["relies_on"] or "both", "probe": probe,
                         "contrast": result["high_minus_low_db"], "low": result.get("ci_low", float("nan")),
                         "high": result.get("ci_high", float("nan")), "verdict": verdict,
                         "against": {"identity": "the identity (includes the AE's own error)",
                                     "before": "the untuned probe"}.get(result.get("reference"), "–")})
    return rows


def _tables(runs: list[AnalysedRun], page_folder: Path) -> list[dict[str, Any]]:
    """Every registered table of the page's runs, linked to its CSV in the analysis folder (relative to the page);
    the first row of each table name carries the anchor its figures link to (`table_links`)."""
    rows, anchored = [], set()
    for run in runs:
        written = run.summary.get("tables", {})
        for name in run.table_names:
            rows.append({"setting": run.setting, "name": name, "analysis": written.get(name, ""),
                         "rows": len(run.table(name)), "href": _csv_href(run.folder, name, page_folder),
                         "anchor": None if name in anchored else f"table-{name}"})
            anchored.add(name)
    return rows


def _csv_href(folder: Path, name: str, page_folder: Path) -> str:
    import os

    from urllib.parse import quote

    csv = AnalysisDir.table_file(folder, name, ".csv").resolve()
    # a replicate's folder is named "... #2": unescaped, a browser reads '#' as the start of an anchor
    return quote(Path(os.path.relpath(csv, page_folder.resolve())).as_posix(), safe="/ ()+,=@")


def _comparison_links(config: ReportConfig, name: str, site: Path) -> list[tuple[str, str]]:
    """A comparison table's CSV in each analysis folder that has it, relative to the site's root."""
    links = []
    for folder in config.analyses:
        csv = AnalysisDir.table_file(AnalysisDir(Path(folder)).comparison, name, ".csv")
        if csv.is_file():
            links.append((f"{name}.csv", _csv_href(AnalysisDir(Path(folder)).comparison, name, site)))
    return links


def table_links(*names: str) -> list[tuple[str, str]]:
    """A figure's data: its tables, linked to their rows in the page's table list (one CSV per setting there)."""
    return [(name, f"#table-{name}") for name in names]


def _input_band(runs: list[AnalysedRun]) -> str:
    """What the classifier's input bands are called: its mel bands, or (a waveform-in network) the STFT bins of the
    inspection layer its attributions go through."""
    return "STFT bin" if runs[0].summary.get("attributions", {}).get("input") == "stft" else "mel band"


def _three_routes(runs: list[AnalysedRun], classifier: str, band_set: str):
    """Every probe's band shift on `band_set`, with the classifier's attribution mass per input band behind them."""
    profiles = {}
    for run in runs:
        frame = run.overall(band_set, run.headline_condition)
        if len(frame) and not run.summary.get("control"):
            profiles[run.setting] = frame
    attribution = None
    profile = runs[0].table(Tables.ATTRIBUTION_BAND_PROFILE)
    if len(profile) and "centre_hz" in profile:
        method = profile.method.iloc[0]
        attribution = profile[(profile.method == method) & (profile.condition == "original")].dropna(subset=["centre_hz"])
    if not profiles:
        return None
    return figures.three_routes(profiles, attribution, f"{classifier}: three routes to what it listens to",
                                input_band=_input_band(runs))


def _clip_seconds(run: AnalysedRun) -> float:
    rows = run.summary.get("examples") or []
    if rows:
        import soundfile as sf

        info = sf.info(str(run.folder / AnalysisDir.AUDIO / rows[0]["files"]["original"]))
        return info.frames / info.samplerate
    return 1.0


def _run_card(run: AnalysedRun, band_set: str) -> dict[str, Any]:
    accuracy = run.summary["accuracy"]
    attributions = run.summary.get("attributions", {})
    return {"label": run.label, "setting": run.setting, "objective": run.objective, "clips": run.summary["clips"],
            "labels": {c: run.condition_label(c) for c in ("before", "after")},
            "accuracy": {c: accuracy.get(c, {}).get("top1") for c in ("original", "before", "after")},
            "sentence": run.headline(band_set),
            "agreement": attributions.get("agreement_with_contrast", {}),
            "caveat": "; ".join(filter(None, [
                PROBES[run.summary["probe"]].caveat if run.summary.get("probe") in PROBES.ensure_loaded() else "",
                run.scoring_note()])),
}


def _nmi_numbers(values: dict[str, Any]) -> dict[str, float]:
    """The NMI means and CIs a page shows: intra, chance, inter (reconstructions) and inter (originals); NaN where
    absent."""
    names = [f"nmi_{m}{s}" for m in ("intra", "chance", "inter", "inter_originals") for s in ("", "_ci_low", "_ci_high")]
    return {name: float(values[name]) if values.get(name) is not None else float("nan") for name in names}


def _category_information(runs: list[AnalysedRun], category: str) -> list[dict[str, Any]]:
    """Per setting: the finetuned probe's NMI within this category (intra with its CI, chance, inter against originals)."""
    rows = []
    for run in runs:
        nmi = run.table(Tables.NMI_SUMMARY)
        if not len(nmi):
            continue
        chosen = nmi[(nmi.scope == "category") & (nmi.group == category) & (nmi.condition == "after")]
        if len(chosen):
            wide = {f"{r.measure}{suffix}": value for r in chosen.itertuples()
                    for suffix, value in (("", r.mean), ("_ci_low", r.ci_low), ("_ci_high", r.ci_high))}
            rows.append({"setting": run.setting, **_nmi_numbers(wide)})
    return rows


def _information_row(run: AnalysedRun) -> dict[str, Any]:
    """Palacio's NMI for one setting, per condition: kept (intra) against chance, and inter (reconstructions of two
    different inputs) against the same inputs' originals."""
    information = run.summary["information"]
    return {"setting": run.setting,
            "conditions": [{"label": run.condition_label(c), **_nmi_numbers(information[c])}
                           for c in ("before", "after") if c in information]}


def _category_figures(runs: list[AnalysedRun], folder: Path, site: Path, category_index: int, category: str,
                      members: list[int], class_names: list[str], seconds: float, config: ReportConfig,
                      marks: Marks) -> dict[str, Any]:
    """One figure per kind and category, with every AE setting of the page in it."""
    stem = f"category{category_index}"
    out: dict[str, Any] = {}
    accuracy = []
    for number, run in enumerate(runs):
        rows = run.table(Tables.ACCURACY_PER_CLASS)
        rows = rows[rows.class_index.isin(members)] if len(rows) else rows
        if not len(rows):
            continue
        accuracy.append(rows[rows.condition == "after"].assign(condition=f"{run.setting}: {run.condition_label('after')}"))
        if number == 0:
            accuracy.insert(0, rows[rows.condition == "original"])
    accuracy_frame = pd.concat(accuracy, ignore_index=True) if accuracy else pd.DataFrame()
    if len(accuracy_frame):
        out["accuracy"] = _figure(figures.accuracy_bars(accuracy_frame, "class", f"{category}: {_scored_as(runs)} per class"),
                                  folder, f"{stem}_accuracy", site)
    curves = {}
    for run in runs:
        shifts = run.table(Tables.BAND_SHIFT_PER_CATEGORY)
        shifts = shifts[(shifts.band_set == config.band_set) & (shifts.condition == run.headline_condition)
                        & (shifts.category == category)]
        if len(shifts) and not run.summary.get("control"):
            overall = run.overall(config.band_set, run.headline_condition)
            if "near_noise_floor" in overall:  # the floor is the originals' (all clips): marked on every category
                shifts = shifts.merge(overall[["band_index", "near_noise_floor"]], on="band_index", how="left")
            curves[run.setting] = shifts
    if curves:
        out["bands"] = _figure(figures.band_profiles(curves, f"{category}: what finetuning changed, against the control",
                                                     **marks.figure_options()),
                               folder, f"{stem}_bands", site)
    arrays = {run.setting: run.arrays() for run in runs}
    first = arrays[runs[0].setting]
    if not np.isnan(first["mel_db_category_original"][category_index]).all():  # a subset may hold none of its clips
        out["mel"] = _figure(figures.spectrogram_grid(
            first["mel_db_category_original"][category_index],
            {setting: a["mel_db_category_after"][category_index] for setting, a in arrays.items()},
            f"{category}: mean log-mel spectrograms", seconds), folder, f"{stem}_mel", site)
    for run in runs:  # a per-class probe curve (the spectral gain's): each class's, trained on that class's clips
        curve = next((c for spec in PROBES.ensure_loaded().values() for c in spec.curves
                      if c.per_class and c.name in arrays[run.setting].files), None)
        if curve is not None:
            values = arrays[run.setting]
            frequencies = values[f"{curve.name}_frequencies_hz"]
            out["gains"] = _figure(figures.spectrum_difference(
                frequencies, {class_names[i]: values[curve.name][i] for i in members},
                f"{category}: {curve.name.replace('_', ' ')} ({run.setting})", ylabel=curve.label), folder, f"{stem}_gains", site)
            break
    # Attributions on the originals belong to the classifier, not to the probe: one figure per page.
    methods = runs[0].summary.get("attributions", {}).get("methods", [])
    method = config.attribution_method if config.attribution_method in methods else (methods[0] if methods else None)
    key = f"attribution_class_{method}_original"
    if method and key in first.files:
        maps = {class_names[i]: first[key][i] for i in members if not np.isnan(first[key][i]).all()}
        if maps:
            through_stft = runs[0].summary.get("attributions", {}).get("input") == "stft"
            out["attribution"] = _figure(figures.attribution_grid(
                maps, f"{category}: mean {method.replace('_', ' ')} map",
                frequency_label="frequency (STFT bin)" if through_stft else "mel band"), folder, f"{stem}_attribution", site)
            out["attribution_method"] = method
    return out


def _scored_as(runs: list[AnalysedRun]) -> str:
    """What the runs' accuracy figures show: accuracy, agreement (runs trained without labels), or both."""
    return " / ".join(dict.fromkeys(run.accuracy_word for run in runs))


def _classes_with_clips(runs: list[AnalysedRun]) -> set[str] | None:
    """The classes some run has clips of (an AudioSet classifier on unlabeled audio: the few of its 527 classes that
    were its top class on some clip); None where no run has per-class accuracy (every class is shown)."""
    tables = [run.table(Tables.ACCURACY_PER_CLASS) for run in runs]
    tables = [table for table in tables if len(table)]
    return set().union(*(set(table["class"]) for table in tables)) if tables else None


def _class_row(runs: list[AnalysedRun], name: str, band_set: str) -> dict[str, Any]:
    """Per class: accuracy per run and condition, and the band it shifts most."""
    cells = []
    for run in runs:
        per_class = run.table(Tables.ACCURACY_PER_CLASS)
        rows = per_class[per_class["class"] == name].set_index("condition") if len(per_class) else pd.DataFrame()
        shifts = run.table(Tables.BAND_SHIFT_PER_CLASS)
        shifts = shifts[(shifts["class"] == name) & (shifts.band_set == band_set) & (shifts.condition == run.headline_condition)]
        shifts = shifts.dropna(subset=["mean_shift_db"])
        largest = shifts.loc[shifts.mean_shift_db.abs().idxmax()] if len(shifts) else None
        cells.append({
            "setting": run.setting, "scored": run.accuracy_word,
            "accuracy": {c: (float(rows.loc[c, "top1"]) if len(rows) and c in rows.index else None)
                         for c in ("original", "before", "after")},
            "largest_shift": None if largest is None else {
                "band": largest.band, "db": float(largest.mean_shift_db),  # no interval below the minimum n: None
                **{key: (None if pd.isna(largest[column]) else float(largest[column]))
                   for key, column in (("low", "ci_low"), ("high", "ci_high"))}},
        })
    return {"name": name, "cells": cells}


def _examples(runs: list[AnalysedRun], folder: Path) -> list[dict[str, Any]]:
    """Example clips: the original once, then each AE setting's reconstructions and residual; audio copied beside the page."""
    by_clip: dict[str, dict[str, Any]] = {}
    for run in runs:
        target = folder / AnalysisDir.AUDIO / slug(run.label)
        target.mkdir(parents=True, exist_ok=True)
        for row in run.summary.get("examples", []):
            entry = by_clip.setdefault(row["clip_id"], {"clip_id": row["clip_id"], "class": row["class"],
                                                        "category": row["category"], "original": None, "settings": []})
            files = {}
            for kind, name in row["files"].items():
                shutil.copy(run.folder / AnalysisDir.AUDIO / name, target / name)
                files[kind] = f"{AnalysisDir.AUDIO}/{slug(run.label)}/{name}"
            entry["original"] = entry["original"] or files["original"]
            entry["settings"].append({"setting": run.setting, "files": files, "predicted": row["predicted"],
                                      "labels": {c: run.condition_label(c) for c in ("before", "after")}})
    return list(by_clip.values())
