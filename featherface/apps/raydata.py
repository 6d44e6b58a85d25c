"""Batch runs on Ray Data: the same jobs, records and guarantees as :func:`featherface.apps.batch.run_batch`,
spread over the CPUs of one machine or of a cluster.

The driver lists the files once and checks the output folder (:func:`~featherface.apps.batch.open_run`:
refusals, ``--resume`` settings check). Image paths then stream through ``map_batches`` into a pool
of actors, each holding one detector (the light, torch-free core): the actor reads and decodes each
file, runs the job, writes its output images into the output folder (which must be a path that every
node sees: a shared or network file system) and returns the file's record, an ``error`` record for
a bad file. The driver appends each record to ``run.jsonl`` as it arrives, so a killed run resumes
with ``--resume`` and no file is recorded twice. Videos (frames in order, one writer) run in the
driver process after the images. At the end the driver writes ``run.json`` and ``run.parquet``
(one row per file: the same fields, ``faces`` as JSON text) for tables too large for JSON.

Needs the ``ray`` extra (``pip install "featherface[ray]"``).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Callable

from ..core.errors import UsageError
from ..core.files import is_video
from ..core.runners import require
from .batch import PARQUET, Job, Listing, RunResult, Source, close_run, open_run, process_file, record_outcome, video_args

log = logging.getLogger(__name__)

#: files per call of an actor: small, so that records reach run.jsonl steadily
BATCH_SIZE = 4


class _Worker:
    """A Ray Data actor: one job (and so one loaded detector) for its lifetime."""

    def __init__(self, job_factory: Callable[[], Job], out_dir: str, draw: bool, max_pixels: int) -> None:
        self.job = job_factory()
        self.out_dir, self.draw, self.max_pixels = Path(out_dir), draw, max_pixels

    def __call__(self, batch: dict) -> dict:
        records = [json.dumps(process_file(self.job, Source(Path(os.fsdecode(p)), Path(os.fsdecode(r))), self.out_dir,
                                           self.draw, self.max_pixels))
                   for p, r in zip(batch["path"], batch["rel"])]
        return {"record": records}


#: seconds to wait for a Ray head's port to accept a connection before the run is refused
REACH_TIMEOUT = 10.0


def check_reachable(address: str, timeout: float = REACH_TIMEOUT) -> None:
    """:class:`UsageError` unless ``host:port`` accepts a TCP connection within ``timeout``: Ray
    itself would wait for a wrong address indefinitely, printing warnings."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"--ray {address!r}: expected HOST:PORT of a `ray start --head`, or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise UsageError(f"--ray {address}: no Ray head answers there ({exc.strerror or exc})") from None


def connect(address: str | None = None, num_cpus: int | None = None) -> dict:
    """Join the cluster at ``address`` ("host:port", or "auto" for the one this machine belongs to),
    or start a local one (``address=None``; ``num_cpus`` caps it). Returns the cluster's resources.
    An existing connection of this process is reused."""
    ray = require("ray", "ray")
    if not ray.is_initialized():
        if address and address != "auto":
            check_reachable(address)
        kwargs = {"address": address} if address else {"num_cpus": num_cpus}
        ray.init(**kwargs, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        for name in ("ray", "ray.data"):  # Ray's own INFO lines would bury the run's
            logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    return ray.cluster_resources()


def run_batch_ray(job_factory: Callable[[], Job], listing: Listing, out_dir: Path, *, draw: bool = True,
                  resume: bool = False, overwrite: bool = False, max_pixels: int = 100_000_000, retry_failed: bool = False,
                  address: str | None = None, actors: int | None = None, progress: Callable | None = None) -> RunResult:
    """Run the job that ``job_factory()`` builds over ``listing`` on Ray (module docstring).

    ``job_factory`` is called once in the driver (the settings recorded and checked on resume, and
    the videos) and once in each actor; it must be picklable (a function or a lambda over plain
    values). ``actors``: size of the detector pool (default: the cluster's CPUs, at least 1).
    """
    ray = require("ray", "ray")
    from ray.data import ActorPoolStrategy, DataContext

    progress = progress or (lambda it, **kw: it)
    job = job_factory()
    run = open_run(job, listing, out_dir, draw=draw, resume=resume, overwrite=overwrite, max_pixels=max_pixels,
                   retry_failed=retry_failed)
    try:
        images = [s for s in run.todo if not is_video(s.path)]
        videos = [s for s in run.todo if is_video(s.path)]
        if images:
            cpus = int(connect(address).get("CPU", 1))
            size = max(1, actors or cpus)
            ctx = DataContext.get_current()
            ctx.enable_progress_bars = False
            # paths as bytes: a file name that is not UTF-8 is no Arrow string (it aborted the run)
            ds = ray.data.from_items([{"path": os.fsencode(s.path), "rel": os.fsencode(s.rel)} for s in images],
                                     override_num_blocks=min(len(images), max(1, size * 4)))
            # Fractional CPUs: with whole ones, a pool as large as the machine leaves Ray Data no CPU
            # for its own tasks and the pipeline can stall; detectors run one thread each anyway.
            ds = ds.map_batches(_Worker, fn_constructor_args=(job_factory, str(out_dir), draw, max_pixels),
                                batch_size=BATCH_SIZE, compute=ActorPoolStrategy(size=size),
                                num_cpus=max(0.25, min(1.0, cpus / size) * 0.9))
            log.info("Ray: %d image(s) over %d detector actor(s) on %d CPU(s)", len(images), size, cpus)
            for row in progress(ds.iter_rows(), total=len(images)):
                record_outcome(run, json.loads(row["record"]))
        if videos:
            video = video_args(run, progress)
            for src in progress(videos, total=len(videos)):
                record_outcome(run, process_file(job, src, out_dir, draw, max_pixels, **video))
    finally:
        result = close_run(run, out_dir)
        write_parquet(out_dir / PARQUET, result.summary)
    return result


def _text(name: str) -> str:
    """A file name as Parquet text: bytes that are not UTF-8 (kept by Python as surrogates)
    written as ``\\xNN`` escapes."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def write_parquet(path: Path, summary: dict) -> None:
    """One row per file of ``run.json`` (results, then failures): file, type, width, height,
    num_faces, faces (JSON text), output(s), error."""
    pa = require("pyarrow", "ray")
    import pyarrow.parquet as pq

    rows = []
    for rec in [*summary["results"], *summary["failures"]]:
        outputs = rec.get("outputs") or ([rec["output"]] if rec.get("output") else [])
        rows.append({"file": _text(rec["file"]), "type": rec.get("type", "error"), "width": rec.get("width"),
                     "height": rec.get("height"), "num_faces": len(rec.get("faces", [])),
                     "faces": json.dumps(rec.get("faces", [])), "outputs": [_text(o) for o in outputs],
                     "error": None if rec.get("error") is None else _text(rec["error"])})
    schema = pa.schema([("file", pa.string()), ("type", pa.string()), ("width", pa.int64()), ("height", pa.int64()),
                        ("num_faces", pa.int64()), ("faces", pa.string()), ("outputs", pa.list_(pa.string())),
                        ("error", pa.string())])
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
    tmp.replace(path)
