"""``featherface benchmark --peers`` end to end on two photos (timings are not asserted)."""
import json
import shutil

from featherface.cli import main
from featherface.benchmarks.peers import render_peers_markdown
from tests.conftest import shared_file

import pytest

pytestmark = pytest.mark.benchmark


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
    assert len(names) == 15 and result["photos"] == 2  # ours on PyTorch, onnxruntime, OpenVINO + 6 peers
    assert [r["engine"] for r in result["rows"]].count("OpenVINO") == 3
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


def test_benchmark_peers_accuracy_against_labels(tmp_path, monkeypatch, capsys):
    """``--peers --labels``: one AP row per detector (a network on two engines is measured once),
    every detector fed the same images; V1's numbers equal ``featherface evaluate --labels``."""
    bench = shared_file("benchmarks/maskfaces_dev")
    monkeypatch.setenv("FEATHERFACE_SHARED", str(bench.parents[1]))
    labels = json.loads((bench / "labels.json").read_text())
    names = sorted(labels["images"])[:4]
    images = tmp_path / "maskfaces_mini"
    images.mkdir()
    for n in names:
        shutil.copy(bench / "images" / n, images / n)
    sub = tmp_path / "labels.json"
    sub.write_text(json.dumps({"images": {n: labels["images"][n] for n in names}}))
    out = tmp_path / "acc"
    assert main(["benchmark", "--peers", "--accuracy-only", "--labels", str(sub), "--images", str(images),
                 "--output", str(out)]) == 0
    rows = json.loads((out / "accuracy.json").read_text())["rows"]
    assert [r["name"] for r in rows][:3] == ["FeatherFace V1", "FeatherFace Nano", "RetinaFace-MNet0.25"]
    assert len(rows) == 11 and not (out / "peers.json").exists()
    # Nano and RetinaFace also with greedy NMS alone (no box voting), for the comparison
    assert [r["name"] for r in rows][-2:] == ["FeatherFace Nano, greedy NMS", "RetinaFace-MNet0.25, greedy NMS"]
    for r in rows:
        m = r["sets"][tmp_path.name]
        assert 0.0 <= m["ap"] <= 1.0 and m["num_faces"] == sum(len(labels["images"][n]["boxes"]) for n in names)
        lo, hi = m["ap_ci95"]
        assert lo <= m["ap"] + 1e-9 and m["ap"] - 1e-9 <= hi
        if r["name"].startswith("RetinaFace"):  # the reference itself gets no difference
            assert "ap_minus_reference" not in m
        else:  # paired difference: voting rows against RetinaFace with voting, greedy rows against greedy
            d = m["ap_minus_reference"]
            ref = "RetinaFace-MNet0.25" + (", greedy NMS" if r["name"].endswith("greedy NMS") else "")
            ref_ap = next(q for q in rows if q["name"] == ref)["sets"][tmp_path.name]["ap"]
            assert d["reference"] == ref and d["diff"] == pytest.approx(m["ap"] - ref_ap)
            assert d["ci95"][0] <= d["diff"] + 1e-9 and d["diff"] - 1e-9 <= d["ci95"][1]
    ev = tmp_path / "ev"
    assert main(["evaluate", "--model", str(shared_file("weights/featherface_v1_official.pth")), "--images", str(images),
                 "--labels", str(sub), "--output", str(ev)]) == 0
    direct = json.loads((ev / "result.json").read_text())
    assert rows[0]["sets"][tmp_path.name]["ap"] == direct["ap"]
    assert "| FeatherFace V1 |" in (out / "accuracy.md").read_text()


def test_benchmark_peers_int8_rows(tmp_path, monkeypatch):
    """``--int8 GRAPH``: the INT8 graph gets one accuracy row per engine (their INT8 kernels differ)."""
    pytest.importorskip("openvino")
    bench = shared_file("benchmarks/groupselfies_dev")
    monkeypatch.setenv("FEATHERFACE_SHARED", str(bench.parents[1]))
    labels = json.loads((bench / "labels.json").read_text())
    names = sorted(labels["images"])[:2]
    images = tmp_path / "mini"
    images.mkdir()
    for n in names:
        shutil.copy(bench / "images" / n, images / n)
    sub = tmp_path / "labels.json"
    sub.write_text(json.dumps({"images": {n: labels["images"][n] for n in names}}))
    calib = tmp_path / "calib"
    calib.mkdir()
    for p in sorted(shared_file("images/portraits").glob("img*.jpg"))[:4]:
        shutil.copy(p, calib / p.name)
    assert main(["export", "--model", "nano", "-o", str(tmp_path / "nano.onnx"), "--int8",
                 "--calibration-images", str(calib), "--calibration-count", "4"]) == 0
    out = tmp_path / "acc"
    assert main(["benchmark", "--peers", "--accuracy-only", "--int8", str(tmp_path / "nano_int8.onnx"), "--labels", str(sub),
                 "--images", str(images), "--output", str(out)]) == 0
    rows = {r["name"]: r for r in json.loads((out / "accuracy.json").read_text())["rows"]}
    for engine in ("onnxruntime", "OpenVINO"):
        r = rows[f"FeatherFace Nano INT8 ({engine})"]
        assert r["engine"] == engine and 0.0 <= r["sets"][tmp_path.name]["ap"] <= 1.0
