"""Every shell block of the README and the docs that calls `probe` runs as printed, at small scale.

Each page's blocks run in page order, through bash, in one fresh folder per page, with `probe` the installed command.
Only these stand-ins are made (docs/development.md names them):

- a hub id (`hf:ORG/NAME`) is a tiny AST saved locally with `save_pretrained`, in a folder of the same name;
- the reader's folders (`my-recordings`, `DIR`, `originals/`, `processed/`, ESC-50 where `probe download esc50`
  unpacks it) hold a few seconds of synthetic recordings, and a published checkpoint the block names is a checkpoint
  in its published format with seeded weights, where `probe download weights` would have put it (the block runs
  with its own `~` and `$PROBE_HOME`);
- sizes: `probe` is a shell function that appends `--epochs 1` to the training commands and `--methods saliency`
  to `probe analyse` (the flag given last wins).

A block that cannot run here says why on the line before its fence: `<!-- not run: REASON -->` (the internet,
SLURM, hours of a GPU, or a name that stands for the reader's own code). Every other block must exit 0 and leave
what it promises: an analysis folder, and a report with its index and, where the analysis answered, answer.csv.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SHELL = ("", "bash", "sh", "shell", "console")
SIZES = """
probe() {
    case "$1" in
        finetune|pretrain-ae|train-classifier) command probe "$@" --epochs 1 ;;
        analyse|analyze) command probe "$@" --methods saliency ;;
        *) command probe "$@" ;;
    esac
}
"""

pytestmark = pytest.mark.integration


def page_blocks(path: Path) -> list[tuple[str, str | None]]:
    """(code, the reason it is not run, or None) of each shell block of a page that calls `probe`."""
    found, language, lines, reason, previous = [], None, [], None, ""
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            if language is None:
                language, lines = line[3:].strip(), []
                marked = re.fullmatch(r"<!-- not run: (.+) -->", previous.strip())
                reason = marked.group(1) if marked else None
            else:
                code = "\n".join(lines) + "\n"
                commands = re.sub(r"(^|\s)#.*$", "", code, flags=re.M)  # comments may name probe too
                if language in SHELL and re.search(r"(^|[\s;&|(])(\S*/)?probe(\.app\.cli)?\s", commands, flags=re.M):
                    found.append((code, reason))
                language = None
        elif language is not None:
            lines.append(line)
        if line.strip():
            previous = line
    return found


def run_blocks() -> list[tuple[str, int, str]]:
    return [(str(path.relative_to(ROOT)), index, code) for path in PAGES
            for index, (code, reason) in enumerate(page_blocks(path)) if reason is None]


def test_every_block_runs_or_says_why_not() -> None:
    """The markers are honest: a reason is words, and most pages' blocks run."""
    reasons = [reason for path in PAGES for _, reason in page_blocks(path) if reason is not None]
    assert all(len(reason.split()) >= 3 for reason in reasons), reasons
    assert len(run_blocks()) >= 4
    readme = page_blocks(ROOT / "README.md")
    assert any(reason is None and "audio:my-recordings" in code for code, reason in readme), \
        "the README's quick start with the reader's own recordings runs"


def test_the_block_finder_sees_markers() -> None:
    page = "text\n\n<!-- not run: needs the internet -->\n```bash\nprobe download esc50\n```\n\n```bash\nprobe models\n```\n" \
           "```python\nprobe.wrap\n```\n```bash\nmake demo\n```\n"
    path = Path(os.environ.get("TMPDIR", "/tmp")) / "probe-docs-run-finder.md"
    path.write_text(page)
    try:
        assert page_blocks(path) == [("probe download esc50\n", "needs the internet"), ("probe models\n", None)]
    finally:
        path.unlink()


def _recordings(folder: Path, count: int, seconds: float, rate: int = 16000, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    for i in range(count):
        tone = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 7000) * t)
        clip = tone if i % 2 else 0.1 * rng.standard_normal(len(t))
        sf.write(folder / f"rec-{i:02d}.wav", clip.astype(np.float32), rate)


def _ast(folder: Path, labels: list[str]) -> None:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.ASTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                    max_length=100, num_mel_bins=32, id2label=dict(enumerate(labels)),
                                    label2id={label: i for i, label in enumerate(labels)})
    transformers.ASTForAudioClassification(config).save_pretrained(folder)
    transformers.ASTFeatureExtractor(num_mel_bins=32, max_length=100).save_pretrained(folder)


def _published(name: str, weights_dir: Path) -> None:
    """A seeded checkpoint in `name`'s published format, where `probe download weights NAME` puts it."""
    from probe.download import weight_sources

    target = weights_dir / weight_sources()[name].filename
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if name == "archisound_at_v1":
        from audio_encoders_pytorch import AutoEncoder1d, TanhBottleneck

        autoencoder = AutoEncoder1d(in_channels=2, patch_size=4, channels=32, multipliers=[1, 2, 4, 8, 8, 8, 1],
                                    factors=[2, 2, 2, 1, 1, 1], num_blocks=[2, 2, 8, 8, 8, 8],
                                    bottleneck=TanhBottleneck())
        torch.save({f"autoencoder.{k}": v for k, v in autoencoder.state_dict().items()}, target)
    elif name in ("mn10_as", "dymn10_as"):
        from probe.models import load_classifier

        torch.save(load_classifier(name.removesuffix("_as"), num_classes=527).net.state_dict(), target)
    elif name.startswith("passt_esc50_fold"):
        import contextlib
        import io

        from hear21passt.base import get_model_passt

        with contextlib.redirect_stdout(io.StringIO()):
            passt = get_model_passt(arch="passt_s_swa_p16_128_ap476", pretrained=False, n_classes=50)
        torch.save(passt.state_dict(), target)
    else:
        raise AssertionError(f"no stand-in for {name}")


def _world(code: str, folder: Path, home: Path) -> None:
    """The stand-ins a block names, made in its page's folder before it runs."""
    from probe.synthetic import SyntheticConfig, write_synthetic_dataset

    small = SyntheticConfig(classes_per_category=1, clips_per_class=6, clip_seconds=0.5)
    for hub_id in re.findall(r"hf:([\w.-]+/[\w.-]+)", code):
        if not (folder / hub_id).exists() and not hub_id.startswith("."):
            _ast(folder / hub_id, [f"tag_{i}" for i in range(4)])
    for local in re.findall(r"hf:\./([\w.-]+)", code):
        if not (folder / local).exists():
            dataset = write_synthetic_dataset(folder / "DIR", small)
            from probe.data import load_esc50

            _ast(folder / local, list(load_esc50(dataset).class_names))
    if "my-recordings" in code and not (folder / "my-recordings").exists():
        _recordings(folder / "my-recordings" / "day-1", 60, 1.0)
    if re.search(r"esc50:DIR", code):
        write_synthetic_dataset(folder / "DIR", small)
    downloaded = re.search(r"^DATA=~/(\S+)", code, flags=re.M)  # where `probe download esc50` unpacks it
    if downloaded:
        write_synthetic_dataset(home.parent.parent / downloaded.group(1) / "ESC-50-master", small)
    if "originals/" in code and not (folder / "originals").exists():
        # no class folders: a class folder's name must then be one of the classifier's classes, in its order
        _recordings(folder / "originals", 8, 1.0)
        shutil.copytree(folder / "originals", folder / "processed")
    names = ["archisound_at_v1", "mn10_as", "dymn10_as", *(f"passt_esc50_fold{k}" for k in range(1, 6))]
    audioset = {f"{name}_as" for name in re.findall(r"--classifier (\w+) --classifier-weights audioset", code)}
    for name in names:
        if re.search(rf"\b{name}\b", code) or name in audioset or (
                name.startswith("passt_esc50") and "passt_esc50_fold{fold}" in code):
            _published(name, home / "weights")


@pytest.mark.parametrize("page, index, code", run_blocks(), ids=lambda value: str(value)[:40])
def test_the_block_runs_as_printed(page: str, index: int, code: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.getbasetemp() / f"docs-run-{Path(page).stem}"
    folder.mkdir(exist_ok=True)
    home = folder / "home" / ".cache" / "probe"  # the reader's ~ and $PROBE_HOME, as a first `make` leaves them
    _world(code, folder, home)
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
           "HOME": str(folder / "home"), "PROBE_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", SIZES + code], cwd=folder, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{page} block {index}:\n{code}\n{result.stderr[-3000:]}"
    for analysis in re.findall(r"probe analy[sz]e .*?--out (\S+)", code):
        assert (folder / analysis / "summary.json").is_file(), analysis
    for source, report in re.findall(r"probe report (\S+) --out (\S+)", code):
        assert (folder / report / "index.html").is_file(), report
        if (folder / source / "comparison" / "answer.csv").is_file():
            assert (folder / report / "answer.csv").is_file() and 'href="answer.csv"' in \
                (folder / report / "index.html").read_text()
        if "--replicates 5" in code:  # the quick start with the reader's recordings ends in an answer
            assert (folder / report / "answer.csv").is_file(), report
