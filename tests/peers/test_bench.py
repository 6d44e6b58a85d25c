"""``featherface benchmark --peers`` end to end on two photos (timings are not asserted)."""
import json
import shutil

from featherface.cli import main
from featherface.peers.bench import render_peers_markdown
from tests.conftest import shared_file


def test_benchmark_with_peers_end_to_end(tmp_path, monkeypatch, capsys):
    shared = shared_file("peers").parent
    monkeypatch.setenv("FEATHERFACE_SHARED", str(shared))
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("crowd_baseball.jpg", "small_pair.jpg"):
        shutil.copy(shared / "images" / name, photos / name)
    (photos / "empty.jpg").write_bytes(b"")  # unreadable files are skipped, not fatal
    out = tmp_path / "bench"
    rc = main(["benchmark", "--peers", "--threads", "1", "--warmup", "0", "--repeat", "1", "--images", str(photos),
               "--output", str(out)])
    assert rc == 0
    result = json.loads((out / "peers.json").read_text())
    names = [r["name"] for r in result["rows"]]
    assert names[:3] == ["FeatherFace V1", "FeatherFace Nano", "RetinaFace-MNet0.25"]
    assert {"YuNet-n", "YuNet-s", "SCRFD-0.5G", "SCRFD-2.5G", "Ultra-Light-slim-320", "Ultra-Light-RFB-320"} <= set(names)
    assert len(names) == 12 and result["photos"] == 2
    v1 = result["rows"][0]
    assert v1["agreement_ap"] == 1.0 and v1["faces"] == result["reference_faces"] >= 25
    for r in result["rows"]:
        assert set(r["latency"]) == {"640x640@1t", "640x480@1t"}
        assert all(v["median_ms"] > 0 for v in r["latency"].values())
        assert 0.0 <= r["agreement_ap"] <= 1.0 and r["parameters"] > 10_000
    md = (out / "peers.md").read_text()
    assert md == render_peers_markdown(result, result_command(md))
    assert "Machine:" in md and "| SCRFD-2.5G |" in md
    assert (out / "peers_grid.jpg").stat().st_size > 10_000 and (out / "peers_latency.png").is_file()


def result_command(md: str) -> str:
    return md.split("command: `", 1)[1].split("`", 1)[0]
