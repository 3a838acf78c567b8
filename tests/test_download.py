"""Downloads against a local HTTP server on 127.0.0.1: hashes, resume, atomic rename, errors."""
from __future__ import annotations

import hashlib
import http.server
import zipfile
from pathlib import Path

import pytest

from probe.app.cli import main
from probe.download import ESC50_ARCHIVE, download, download_esc50, safe_extract
from probe.errors import DownloadError


@pytest.fixture
def server(http_server: http.server.ThreadingHTTPServer) -> http.server.ThreadingHTTPServer:
    return http_server


def _url(server: http.server.ThreadingHTTPServer, name: str = "") -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/{name}"


def test_download_verifies_hash_and_renames(server, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 1000
    server.files["w.pt"] = payload
    target = download(_url(server, "w.pt"), tmp_path / "w.pt", hashlib.sha256(payload).hexdigest(), progress=False)
    assert target.read_bytes() == payload
    assert not (tmp_path / "w.pt.part").exists()


def test_hash_mismatch_leaves_nothing(server, tmp_path: Path) -> None:
    server.files["w.pt"] = b"tampered"
    with pytest.raises(DownloadError, match="SHA-256 mismatch"):
        download(_url(server, "w.pt"), tmp_path / "w.pt", "0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_resume_sends_a_range_request(server, tmp_path: Path) -> None:
    payload = b"0123456789" * 5000
    server.files["big.bin"] = payload
    (tmp_path / "big.bin.part").write_bytes(payload[:12345])
    download(_url(server, "big.bin"), tmp_path / "big.bin", hashlib.sha256(payload).hexdigest(), progress=False)
    assert (tmp_path / "big.bin").read_bytes() == payload
    assert server.requests[-1] == ("/big.bin", "bytes=12345-")


def test_offline_and_missing_files_are_clear(server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(_url(server, "nope.pt"), tmp_path / "nope.pt", progress=False)
    closed = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()
    with pytest.raises(DownloadError, match="cannot connect"):
        download(f"http://127.0.0.1:{port}/x.pt", tmp_path / "x.pt", progress=False)


def _zip(path: Path, members: dict[str, bytes]) -> bytes:
    with zipfile.ZipFile(path, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return path.read_bytes()


def test_archive_path_traversal_is_refused(tmp_path: Path) -> None:
    _zip(tmp_path / "evil.zip", {"esc50/meta/esc50.csv": b"x", "../../outside.txt": b"gotcha"})
    with pytest.raises(DownloadError, match="unsafe archive member"):
        safe_extract(tmp_path / "evil.zip", tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "outside.txt").exists()


def test_esc50_download_and_unpack_through_a_mirror(server, tmp_path: Path) -> None:
    csv = b"filename,fold,target,category\n1-1-A-0.wav,1,0,dog\n"
    server.files[ESC50_ARCHIVE.filename] = _zip(tmp_path / "fixture.zip", {"esc50/meta/esc50.csv": csv, "esc50/audio_32k/1-1-A-0.wav": b"RIFF"})
    root = download_esc50(tmp_path / "data", mirror=_url(server), progress=False)
    assert (root / "meta" / "esc50.csv").read_bytes() == csv and (root / "audio_32k").is_dir()


def test_unpublished_hash_is_recorded_at_first_download_and_checked_after(server, tmp_path: Path, caplog) -> None:
    server.files["w.pt"] = b"first"
    with caplog.at_level("WARNING", logger="probe.download"):
        target = download(_url(server, "w.pt"), tmp_path / "w.pt", progress=False)
    record = tmp_path / "w.pt.sha256"
    assert record.read_text().split()[0] == hashlib.sha256(b"first").hexdigest()
    assert "no published SHA-256" in caplog.text
    target.unlink()
    server.files["w.pt"] = b"swapped upstream"
    with pytest.raises(DownloadError, match="recorded at the first download"):
        download(_url(server, "w.pt"), target, progress=False)
    assert not target.exists() and not (tmp_path / "w.pt.part").exists()


def test_a_size_that_differs_from_the_published_one_is_refused_before_downloading(server, tmp_path: Path) -> None:
    server.files["w.pt"] = b"x" * 100
    with pytest.raises(DownloadError, match="offers 100 bytes, the published file has 99"):
        download(_url(server, "w.pt"), tmp_path / "w.pt", size_bytes=99, progress=False)
    assert not (tmp_path / "w.pt").exists()


def test_cli_download_weights(server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server.files["dymn10_as.pt"] = b"weights"
    assert main(["download", "weights", "dymn10_as", "--out", str(tmp_path), "--mirror", _url(server)]) == 0
    assert (tmp_path / "dymn10_as.pt").read_bytes() == b"weights"
    assert (tmp_path / "dymn10_as.pt.sha256").exists()
    # mn10_as has a published hash and size: a file that is not the release asset is refused.
    server.files["mn10_as_mAP_471.pt"] = b"not the release asset"
    assert main(["download", "weights", "mn10_as", "--out", str(tmp_path), "--mirror", _url(server)]) == 3  # runtime
    assert "mn10_as_mAP_471.pt" in capsys.readouterr().err
    assert not (tmp_path / "mn10_as_mAP_471.pt").exists()
    assert main(["download", "weights", "no_such_model", "--out", str(tmp_path)]) == 2
    assert "unknown checkpoint" in capsys.readouterr().err
    assert main(["download", "weights", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "passt_esc50_fold1" in listing and "archisound_at_v1" in listing and "dymn10_as" in listing


def test_an_unknown_checkpoint_name_suggests_the_published_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["download", "weights", "mn10", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown checkpoint 'mn10' (did you mean mn10_as?)" in err
    assert main(["download", "weights", "passt_esc50_fold6", "--out", str(tmp_path)]) == 2
    assert "did you mean passt_esc50_fold5 or" in capsys.readouterr().err
    assert main(["download", "weights", "zzz", "--out", str(tmp_path)]) == 2
    assert "did you mean" not in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    sine = tmp_path.parent / "nothing.wav"
    assert main(["predict", "--classifier", "mn10", "--classifier-weights", "dymn10", str(sine)]) == 2
    assert "not the name of a published checkpoint (did you mean dymn10_as?)" in capsys.readouterr().err
