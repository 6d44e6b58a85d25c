"""Batch runs on Ray Data give the single-process run's records: bad files are records, a resume
adds no duplicate, a cut run finishes, and a job reaches a two-node cluster through its address."""
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import shared_file

pytest.importorskip("ray", reason="the ray extra is not installed")
pytestmark = pytest.mark.ray

PHOTOS = ("crowd_baseball.jpg", "group_indoor.jpg", "small_pair.jpg", "selfie_group.jpg")


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "featherface.cli", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})})


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        shutil.copy(shared_file(f"images/{name}"), folder / name)
    (folder / "bad.jpg").write_text("not an image")
    (folder / "truncated.jpg").write_bytes(shared_file("images/small_pair.jpg").read_bytes()[:3000])
    return folder


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]


def _per_file(out: Path) -> dict:
    return {r["file"]: r for r in json.loads((out / "run.json").read_text())["results"]}


def test_ray_run_matches_the_single_process_run_and_resumes(photos, tmp_path):
    single, on_ray = tmp_path / "single", tmp_path / "ray"
    r = _cli("detect", str(photos), "--output", str(single), "--no-draw")
    assert r.returncode == 1, r.stderr
    r = _cli("detect", str(photos), "--output", str(on_ray), "--no-draw", "--ray", "--actors", "2")
    assert r.returncode == 1, r.stderr[-3000:]  # the two bad files: exit 1, as without Ray
    assert "Traceback" not in r.stderr and r.stderr.count("failed: ") == 2
    assert r.stderr.count("bad.jpg") == 1 and r.stderr.count("truncated.jpg") == 1  # each failure said once
    assert _per_file(on_ray) == _per_file(single) and len(_per_file(on_ray)) == len(PHOTOS)
    summary = json.loads((on_ray / "run.json").read_text())
    assert sorted(Path(f["file"]).name for f in summary["failures"]) == ["bad.jpg", "truncated.jpg"]
    assert summary["settings"] == json.loads((single / "run.json").read_text())["settings"]

    import pyarrow.parquet as pq

    table = pq.read_table(on_ray / "run.parquet").to_pylist()
    assert {row["file"]: row["num_faces"] for row in table if row["type"] == "image"} == \
        {f: len(rec["faces"]) for f, rec in _per_file(single).items()}
    assert sorted(Path(row["file"]).name for row in table if row["type"] == "error") == ["bad.jpg", "truncated.jpg"]

    # a resume of a finished run adds no record
    before = _records(on_ray)
    r = _cli("detect", str(photos), "--output", str(on_ray), "--no-draw", "--ray", "--resume")
    assert r.returncode == 1 and _records(on_ray) == before

    # a run cut after two files (what a kill leaves: records are written after their outputs)
    # finishes on resume, each file recorded once
    kept = [rec for rec in before if rec["type"] not in ("image", "error")] + \
        [rec for rec in before if rec["type"] == "image"][:2]
    (on_ray / "run.jsonl").write_text("".join(json.dumps(rec) + "\n" for rec in kept))
    r = _cli("detect", str(photos), "--output", str(on_ray), "--no-draw", "--ray", "--resume")
    assert r.returncode == 1, r.stderr[-3000:]
    files = [rec["file"] for rec in _records(on_ray) if rec["type"] in ("image", "error")]
    assert len(files) == len(set(files)) == len(PHOTOS) + 2
    assert _per_file(on_ray) == _per_file(single)


def test_anonymize_on_ray_writes_the_masked_files(photos, tmp_path):
    single, on_ray = tmp_path / "single", tmp_path / "ray"
    assert _cli("anonymize", str(photos), "--output", str(single)).returncode == 1
    r = _cli("anonymize", str(photos), "--output", str(on_ray), "--ray")
    assert r.returncode == 1, r.stderr[-3000:]
    for name in PHOTOS:
        assert (on_ray / name).read_bytes() == (single / name).read_bytes()  # written by the actors


def test_a_file_name_that_is_not_utf8_runs_on_ray(tmp_path):
    """A photo named in Latin-1 bytes (not UTF-8) aborted a Ray run; now it is detected, recorded
    under its name, and named with \\xNN escapes in run.parquet."""
    import pyarrow.parquet as pq

    src = tmp_path / "in"
    src.mkdir()
    name = os.fsdecode(b"caf\xe9.jpg")  # the byte 0xe9 alone is no UTF-8
    shutil.copy(shared_file("images/small_pair.jpg"), src / name)
    shutil.copy(shared_file("images/group_indoor.jpg"), src / "plain.jpg")
    out = tmp_path / "out"
    r = _cli("detect", str(src), "--output", str(out), "--ray", "--no-draw")
    assert r.returncode == 0, r.stderr[-3000:]
    results = _per_file(out)
    assert set(results) == {str(src / name), str(src / "plain.jpg")} and results[str(src / name)]["faces"]
    files = pq.read_table(out / "run.parquet").column("file").to_pylist()
    assert sorted(files) == sorted([str(src / "plain.jpg"), str(src / "caf\\xe9.jpg")])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_job_runs_on_a_two_node_cluster_through_its_address(photos, tmp_path):
    """`ray start --head` and `ray start --address` (the README's recipe) on this machine, then
    `featherface detect --ray HOST:PORT`: the job joins the cluster, both nodes alive."""
    ray_bin = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    # Ray >= 2.5x authenticates the nodes of a cluster with a shared token (README, "Ray")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    start = [ray_bin, "start", "--disable-usage-stats", "--num-cpus", "1"]
    try:
        head = subprocess.run([*start, "--head", "--include-dashboard=false", "--node-ip-address", "127.0.0.1",
                               "--port", str(port)],
                              capture_output=True, text=True, timeout=120, env=env)
        assert head.returncode == 0, head.stderr[-2000:]
        worker = subprocess.run([*start, "--address", address, "--node-ip-address", "127.0.0.1"],
                                capture_output=True, text=True, timeout=120, env=env)
        assert worker.returncode == 0, worker.stderr[-2000:]
        nodes = subprocess.run([sys.executable, "-c", "import ray; ray.init(address=%r, logging_level='ERROR'); "
                                "print(sum(n['Alive'] for n in ray.nodes()), ray.cluster_resources().get('CPU'))" % address],
                               capture_output=True, text=True, timeout=120, env=env)
        assert nodes.stdout.split()[-2:] == ["2", "2.0"], nodes.stderr[-2000:]
        out = tmp_path / "cluster"
        r = _cli("detect", str(photos), "--output", str(out), "--no-draw", "--ray", address, env=env)
        assert r.returncode == 1, r.stderr[-3000:]
        assert len(_per_file(out)) == len(PHOTOS)
        assert len(json.loads((out / "run.json").read_text())["failures"]) == 2
    finally:
        subprocess.run([ray_bin, "stop", "--force"], capture_output=True, timeout=120, env=env)


def test_a_wrong_ray_address_is_refused_at_once():
    """Ray waits for a wrong address indefinitely; the run checks the head's port first (only
    127.0.0.1 here: a closed port answers at once)."""
    import socket
    import time

    from featherface.apps.raydata import check_reachable
    from featherface.core.errors import UsageError

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    with pytest.raises(UsageError, match="no Ray head"):
        check_reachable(f"127.0.0.1:{port}")
    assert time.perf_counter() - t0 < 5
    with pytest.raises(UsageError, match="HOST:PORT"):
        check_reachable("nonsense")
