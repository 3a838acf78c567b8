"""Reports: a static site from a real (small) analysis, escaped, self-contained, and rendered in headless Chromium."""
from __future__ import annotations

import json
import re
from urllib.parse import unquote
from pathlib import Path

import pytest

from browser import check_in_chromium
from probe.app.cli import main

ANALYSE_FLAGS = ["--attribution-clips", "5", "--bootstrap", "200", "--methods", "saliency,integrated_gradients",
                 "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def analysis_dir(tmp_path_factory: pytest.TempPathFactory, two_runs: list[Path]) -> Path:
    out = tmp_path_factory.mktemp("analysis") / "analysis"
    assert main(["analyse", *map(str, two_runs), "--out", str(out), *ANALYSE_FLAGS]) == 0
    return out


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory, analysis_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("report") / "report"
    assert main(["report", str(analysis_dir), "--out", str(out), "--quiet"]) == 0
    return out


def _local_references(html: str) -> list[str]:
    """The page's local targets, percent-decoded as a browser does before it opens the file."""
    return [unquote(ref) for ref in re.findall(r'(?:src|href)="([^"#]+)"', html)]


def test_report_pages_are_self_contained(report_dir: Path) -> None:
    pages = [report_dir / "index.html", *report_dir.glob("*/index.html")]
    assert len(pages) == 2  # the index and one page for the one classifier (two AE settings)
    for page in pages:
        html = page.read_text()
        assert "http://" not in html and "https://" not in html and "base64" not in html, page
        for reference in _local_references(html):
            assert (page.parent / reference).is_file(), f"{page}: broken reference {reference}"
        assert len(html) < 200_000
    classifier_page = next(report_dir.glob("*/index.html")).read_text()
    assert classifier_page.count("<audio") >= 4 and "<section id=\"category-" in classifier_page
    figures_png = [p for p in report_dir.rglob("*.png") if p.parent.name == "figures"]  # gallery thumbnails: PNG only
    assert list(report_dir.rglob("*.svg")) and len(figures_png) == len(list(report_dir.rglob("*.svg")))
    index = (report_dir / "index.html").read_text()
    assert "Main findings" in index and "finetuning" in index
    # findings grouped per classifier, one sentence per probe setting, every page stating what the verdicts mean
    assert index.count("<h3>small_cnn</h3>") == 1 and "Verdicts: " in index and "Verdicts: " in classifier_page
    assert "normalised mutual information" in index and "rank the mel bands most alike" in index
    assert "Information kept" in classifier_page and "Spearman ρ over the mel bands" in classifier_page
    assert list(report_dir.glob("*/figures/contrast_vs_control.svg")), "the contrast against the untuned control is drawn"


def test_the_index_opens_with_the_answer_and_its_cells_are_the_analysis_numbers(report_dir: Path,
                                                                                analysis_dir: Path) -> None:
    """Two random-init AE runs behind one classifier: no probe the planted validation admits (a plain AE keeps what it
    reconstructs well, needed or not), so the index says there is no answer and draws no cells. The heatmap's rule
    itself, on these runs: the answer comes from the first (the rule ranks them alike), against the identity, its
    cells exactly the analysis' contrast per band."""
    import pandas as pd

    from probe.reports.answer import answer_table, answers
    from probe.reports.data import load_analysis

    index = (report_dir / "index.html").read_text()
    assert index.index("What each classifier needs") < index.index("Main findings")
    listed = index[index.index('<ul class="answers">'):].split("</ul>")[0]
    assert listed.count("<li>") == 1 and "no answer: none of its probes is one the planted validation" in listed
    assert "needs" not in listed and not (report_dir / "answer_bands.csv").exists()
    chosen = answers(load_analysis([analysis_dir]), "octave")
    assert len(chosen) == 1 and chosen[0].kind == "random AE" and "the identity on the same chain" in chosen[0].sentence
    cells = answer_table(chosen, "octave")
    first = sorted(analysis_dir.glob("*/summary.json"))[0].parent
    contrast = pd.read_parquet(first / "band_contrast_vs_control.parquet")
    contrast = contrast[contrast.band_set == "octave"].sort_values("band_index")
    assert cells.run.unique().tolist() == [json.loads((first / "summary.json").read_text())["label"]]
    assert cells.contrast_db.to_numpy() == pytest.approx(contrast.mean_shift_db.to_numpy(), nan_ok=True)
    assert "Every word is measured" in index


def test_names_are_html_escaped(tmp_path: Path, trained_classifier: Path) -> None:
    """Class and file names from a user's folder dataset cannot inject markup."""
    import numpy as np
    import soundfile as sf

    from probe.models import load_classifier, save_classifier
    from probe.train.finetune import FinetuneConfig, finetune

    hostile = ['<script>alert("x")</script>', "a&b"]
    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    for name in hostile:
        (root / name).mkdir(parents=True)
        for i in range(6):
            sf.write(root / name / f'clip"{i}<i>.wav', rng.standard_normal(8000).astype(np.float32) * 0.1, 16000)
    classifier = load_classifier("small_cnn", num_classes=2, class_names=sorted(hostile), sample_rate=16000, channels=4)
    weights = save_classifier(classifier, tmp_path / "clf.pt")
    run = finetune(FinetuneConfig(classifier="small_cnn", classifier_weights=str(weights), autoencoder="tiny",
                                  ae_options={"sample_rate": 16000, "channels": 1}, data=f"folder:{root}", fold=1,
                                  out=str(tmp_path / "run"), epochs=1, progress=False, allow_untrained=True))
    assert main(["analyse", str(run.path), "--out", str(tmp_path / "analysis"), *ANALYSE_FLAGS, "--allow-untrained"]) == 0
    assert main(["report", str(tmp_path / "analysis"), "--out", str(tmp_path / "report"), "--quiet"]) == 0
    for page in (tmp_path / "report").rglob("*.html"):
        html = page.read_text()
        scripts = re.findall(r"<script[^>]*>", html)  # only the report's own table sorter, never a name's markup
        assert set(scripts) <= {'<script src="sort.js">', '<script src="../sort.js">'} and "<i>" not in html, scripts
    assert "&lt;script&gt;" in next((tmp_path / "report").glob("*/index.html")).read_text()


def test_bad_analysis_folder_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "not an analysis folder" in err and str(tmp_path) in err
    assert not (tmp_path / "r").exists()


def _answered(tmp_path: Path, verdicts: list[str] | None, replicates: int, claimed: bool = False):
    """An analysis as the report reads it, made up: one classifier whose measured answer has no claim (the analysis
    then writes one sentence, "no band analysis to read", whatever is missing), its first run's contrast verdicts
    (None: no band table), and a claim table naming it where `claimed`."""
    import pandas as pd

    from probe.reports.data import AnalysedRun, Analysis
    from probe.rundir import Tables

    tables = {}
    if verdicts is not None:
        tables[Tables.BAND_CONTRAST_VS_CONTROL] = pd.DataFrame({
            "band_set": "octave", "condition": "contrast", "band_index": range(len(verdicts)), "verdict": verdicts,
            "band": [f"{125 * 2 ** i} Hz" for i in range(len(verdicts))]})
    run = AnalysedRun(tmp_path, {"label": "cnn--gain", "classifier": "cnn", "setting": "gain",
                                 "band_sets": {"answer": "octave"}},
                      _tables=tables)
    said = {"sentence": "cnn: no band analysis to read", "setting": "gain", "replicates": replicates,
            "runs": ["cnn--gain"], "units": 5}
    claims = {Tables.ANSWER: pd.DataFrame({"classifier": ["cnn"], "claim": ["needs"]})} if claimed else {}
    return Analysis([run], [{"answer": {"cnn": said}}], claims)


@pytest.mark.parametrize("verdicts, replicates, says", [
    (["too few clips"] * 3, 1, "cnn: no answer: a word needs at least 2 replicates that agree, and it has 1 (train "
                               "them with --replicates); its 5 clips in the scored fold are too few for a verdict on "
                               "any band (from gain, 1 replicate)."),
    (["too few clips"] * 3, 5, "cnn: no answer: its 5 clips in the scored fold are too few for a verdict on any band "
                               "(from gain, 5 replicates)."),
    (["inconclusive", "noise floor"], 1, "cnn: no answer: a word needs at least 2 replicates that agree, and it has 1 "
                                         "(train them with --replicates); none of its bands has a verdict that keeps or "
                                         "drops it (from gain, 1 replicate)."),
    (None, 1, "cnn: no answer: no band analysis against its control to read (from gain, 1 replicate)."),
])
def test_an_answer_without_claims_says_what_it_lacks(tmp_path: Path, verdicts: list[str] | None, replicates: int,
                                                     says: str) -> None:
    """"No band analysis" only where there is none: one replicate and too few clips are said as such."""
    from probe.reports.answer import measured_rows

    rows = measured_rows(_answered(tmp_path, verdicts, replicates), {"cnn": "cnn/index.html"})
    assert rows == [{"classifier": "cnn", "sentence": says, "href": "cnn/index.html"}]
    claimed = measured_rows(_answered(tmp_path, verdicts, replicates, claimed=True), {})
    assert claimed[0]["sentence"] == "cnn: no band analysis to read"  # the analysis's own sentence, where it has claims


def test_the_index_links_only_to_the_answer_files_written(tmp_path: Path) -> None:
    """answer.csv is written only where the answer has claims: without it, no link to it."""
    from probe.reports.build import ANSWER_BANDS_CSV, ANSWER_CSV, written_files

    (tmp_path / ANSWER_BANDS_CSV).write_text("classifier,band\n")
    assert written_files(tmp_path, (ANSWER_CSV, ANSWER_BANDS_CSV)) == [ANSWER_BANDS_CSV]
    (tmp_path / ANSWER_CSV).write_text("classifier,claim\n")
    assert written_files(tmp_path, (ANSWER_CSV, ANSWER_BANDS_CSV)) == [ANSWER_CSV, ANSWER_BANDS_CSV]
    template = (Path(__file__).parents[1] / "reports" / "templates" / "index.html.j2").read_text()
    assert "answer.csv" not in template, "the index names the claims file only where it was written"


def test_paper_figures(tmp_path: Path, analysis_dir: Path, capsys) -> None:
    assert main(["figures", str(analysis_dir), "--out", str(tmp_path / "fig"), "--format", "pdf,svg"]) == 0
    names = {p.name for p in (tmp_path / "fig").iterdir()}
    assert "comparison_bands.pdf" in names and "comparison_information.pdf" in names
    assert any(n.endswith("_bands_third_octave.pdf") for n in names)
    assert main(["figures", str(analysis_dir), "--out", str(tmp_path / "x"), "--format", "gif"]) == 2


def test_report_renders_in_headless_chromium(report_dir: Path) -> None:
    """Every page loads without console errors; every img and audio source resolves; audio has a duration."""
    check_in_chromium([report_dir / "index.html", *sorted(report_dir.glob("*/index.html")), report_dir / "gallery.html"],
                      "report")


def test_the_gallery_puts_each_example_beside_every_probe(report_dir: Path, analysis_dir: Path) -> None:
    """One row per category's first example (the study's six on ESC-50), the original and every finetuned probe as
    columns, each cell an audio player over a spectrogram, the residual one click away."""
    gallery = (report_dir / "gallery.html").read_text()
    index = (report_dir / "index.html").read_text()
    assert 'href="gallery.html"' in index
    rows = gallery.count("<tr><td><strong>")
    summary = json.loads(next(analysis_dir.glob("*/summary.json")).read_text())
    assert rows == len({row["category"] for row in summary["examples"]})
    settings = gallery.count('<span class="note">', 0, gallery.index("</thead>"))
    assert gallery.count("<audio") == rows * (1 + settings) and gallery.count(">residual</a>") == rows * settings
    assert len(list((report_dir / "gallery").glob("*.png"))) == rows * (1 + settings)


def test_figures_drawn_in_worker_processes_are_the_ones_drawn_here(tmp_path: Path, analysis_dir: Path,
                                                                    report_dir: Path) -> None:
    """Parity: the report's figures drawn by worker processes (the default; pickled figures, the font size sent along)
    match, byte for byte, the figures drawn in this process; and a rerun's SVGs match (no date stamped in them)."""
    here = tmp_path / "here"
    assert main(["report", str(analysis_dir), "--out", str(here), "--jobs", "1", "--quiet"]) == 0
    drawn = sorted(p.relative_to(here) for p in here.rglob("*") if p.suffix in (".png", ".svg"))
    assert len(drawn) > 10 and any(p.suffix == ".svg" for p in drawn)
    assert drawn == sorted(p.relative_to(report_dir) for p in report_dir.rglob("*") if p.suffix in (".png", ".svg"))
    differ = [str(p) for p in drawn if (here / p).read_bytes() != (report_dir / p).read_bytes()]
    assert not differ, differ


def test_a_killed_report_leaves_no_workers_behind(tmp_path: Path, analysis_dir: Path) -> None:
    """kill -9 of `probe report` while its figure workers run: the workers die with it (they would otherwise wait for
    work forever, each holding its imports' memory)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    process = subprocess.Popen([sys.executable, "-m", "probe.app.cli", "report", str(analysis_dir), "--out",
                                str(tmp_path / "site"), "--jobs", "2", "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def children() -> list[int]:
        listed = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
        return [int(pid) for pid in listed]

    deadline = time.monotonic() + 60
    while len(children()) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    workers = children()
    assert len(workers) >= 2, "the report's figure workers never started"
    process.send_signal(signal.SIGKILL)
    process.wait()

    def alive(pid: int) -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except FileNotFoundError:
            return False
        return state != "Z"

    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in workers if alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"workers {left} outlived their report"
