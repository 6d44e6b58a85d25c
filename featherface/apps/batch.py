"""Batch runs over images, folders, globs and videos that never lose or mix anything.

Used by ``featherface detect``, ``anonymize`` and ``crop`` (and by the Python API through
:func:`run_batch`). The guarantees:

* **Names.** Each output keeps its input's path below the source root (the folder, or a glob's
  fixed leading folders), so ``a/x.jpg`` and ``b/x.jpg`` never collide; a non-MP4 video gets
  ``.mp4`` appended (``clip.avi`` -> ``clip.avi.mp4``).
* **Ownership.** A run writes ``<output>/run.jsonl``: a ``settings`` record, then one record per
  file (``image``, ``start``/``frame``/``video`` for videos, ``error``, ``skipped``), flushed as it
  goes. An output folder that holds anything else is refused unless ``overwrite``; a folder that
  holds a run is refused unless ``resume`` (continue it) or ``overwrite`` (replace it: the old
  run's records and the files it wrote are removed first).
* **Resume.** ``resume`` skips the files already finished, after checking that every setting that
  shapes results (model and its sha256, thresholds, long side, NMS, engine, job options) equals
  the first run's. An unfinished video is redone from its first frame: the resume first drops the
  records the interruption left half done (a cut line, an unfinished video's ``start`` and
  ``frame`` records), so every file and frame is recorded once.
* **Atomic outputs.** Images and videos are written to a hidden temporary file, then renamed; an
  interrupted run leaves no partial file.
* **Bad files** (unreadable, damaged, too many pixels by their header, truncated videos) are one
  ``error`` record each and the run goes on; files of other types are ``skipped`` records.
"""
from __future__ import annotations

import errno
import glob
import json
import logging
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterator, Protocol

import numpy as np

from ..core.runners import MissingExtra
from ..core.errors import InputError, OutOfSpace, UsageError
from ..core.files import (IMAGE_EXTS, VIDEO_EXTS, atomic_write_image, atomic_write_text, is_image, is_video, read_image,
                          read_image_size, write_json)

log = logging.getLogger(__name__)

RECORDS = "run.jsonl"
SUMMARY = "run.json"


class RunError(UsageError):
    """A run that cannot start (refused output folder, settings that differ from the run resumed)."""


class Job(Protocol):
    """What a batch run does with each image or video frame."""

    #: ``"detect"``, ``"anonymize"`` or ``"crop"``
    kind: str
    #: every option that shapes the results (compared on resume)
    settings: dict

    def image(self, image: np.ndarray) -> tuple[dict, list[tuple[str, np.ndarray]]]:
        """``(record fields, outputs)``: outputs are ``(suffix, image)``; suffix ``""`` writes the
        image under the input's own name, any other suffix is appended to the input's stem."""

    def frame(self, frame: np.ndarray, index: int, detections=None) -> tuple[dict, np.ndarray]:
        """``(record fields, output frame)`` for one video frame (frames come in order);
        ``detections``: the frame's faces when already found (jobs with a ``detect(frame)``
        method have their frames detected ahead, in parallel)."""


@dataclass
class Source:
    """An input file and its name below the source root."""

    path: Path
    rel: Path


@dataclass
class Listing:
    sources: list[Source]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def _glob_root(pattern: str) -> Path:
    """The fixed leading folders of a glob pattern (``photos/*/x*.jpg`` -> ``photos``)."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def list_sources(source: str | Path) -> Listing:
    """Expand SOURCE (an image, a video, a folder or a quoted glob pattern) into files with their
    names below the source root, plus every file passed over and why (sorted)."""
    source = str(source)
    p = Path(source)
    skipped: list[tuple[str, str]] = []
    if p.is_dir():
        root, candidates = p, []
        seen_dirs: set[tuple[int, int]] = set()
        for dirpath, dirnames, filenames in os.walk(p, followlinks=True):
            st = os.stat(dirpath)
            if (st.st_dev, st.st_ino) in seen_dirs:  # a symlink loop: listed once, not followed again
                skipped.append((dirpath, "folder already visited (symlink loop)"))
                dirnames[:] = []
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            candidates += [Path(dirpath) / f for f in filenames if not f.startswith(".")]
    elif p.is_file():
        root, candidates = p.parent, [p]
    elif glob.has_magic(source):
        root, candidates = _glob_root(source), [Path(f) for f in glob.glob(source, recursive=True)]
    else:
        raise FileNotFoundError(f"not found: {source}")
    files = []
    for c in sorted(set(candidates)):
        if c.is_dir():
            if not p.is_dir():
                skipped.append((str(c), "a folder, not a file"))
            continue
        if not c.is_file():
            skipped.append((str(c), "not a regular file (broken link or device)"))
        elif is_image(c) or is_video(c):
            files.append(Source(c, c.relative_to(root) if c.is_relative_to(root) else Path(c.name)))
        else:
            kind = c.suffix.lower() or "no extension"
            skipped.append((str(c), f"unsupported type ({kind}; images: {', '.join(sorted(IMAGE_EXTS))}; "
                                    f"videos: {', '.join(sorted(VIDEO_EXTS))})"))
    if not files:
        raise FileNotFoundError(f"no images or videos found for {source!r}"
                                + (f" ({len(skipped)} other file(s) passed over)" if skipped else ""))
    return Listing(files, skipped)


def output_path(out_dir: Path, rel: Path, suffix: str = "") -> Path:
    """Where the output of input ``rel`` goes (see the module docstring)."""
    if suffix:
        return out_dir / rel.parent / f"{rel.stem}{suffix}"
    if is_video(rel) and rel.suffix.lower() != ".mp4":
        return out_dir / rel.with_name(rel.name + ".mp4")
    return out_dir / rel


def _read_records(path: Path) -> Iterator[dict]:
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            yield json.loads(line)
        except json.JSONDecodeError:  # a line cut by a kill: that file is redone
            continue


def summarise(records_path: Path) -> dict:
    """``run.json``: the settings, one result per finished file (videos with their frames), the
    files whose last record is an error, and the files passed over."""
    settings: dict = {}
    results: dict = {}
    errors: dict = {}
    frames: dict = {}
    skipped: dict = {}
    for rec in _read_records(records_path):
        kind = rec.pop("type", None)
        if kind == "settings":
            settings = settings or rec  # the first run's (resumes are checked equal)
        elif kind == "start":
            frames[rec["file"]] = []
        elif kind == "frame":
            frames.setdefault(rec["file"], []).append({k: v for k, v in rec.items() if k != "file"})
        elif kind in ("image", "video"):
            if kind == "video":
                rec["frames"] = frames.pop(rec["file"], [])
            results[rec["file"]] = {"type": kind, **rec}
            errors.pop(rec["file"], None)
        elif kind == "error":
            errors[rec["file"]] = rec
            frames.pop(rec["file"], None)
        elif kind == "skipped":
            skipped[rec["file"]] = rec
    return {"settings": settings, "results": list(results.values()), "failures": list(errors.values()),
            "skipped": list(skipped.values())}


#: one row per file, written by Ray runs (featherface.apps.raydata)
PARQUET = "run.parquet"
#: what a run writes besides its outputs
RUN_FILES = (RECORDS, SUMMARY, PARQUET)
#: held (flock) by the run writing to a folder; the kernel releases it when that process ends, even by kill -9
LOCK = ".featherface.lock"


def out_of_space(folder: Path) -> OutOfSpace:
    """The one-line error that stops a run whose output disk is full."""
    return OutOfSpace(f"{folder}: no space left on the device; free some and rerun with --resume")


def _is_ours(out_dir: Path, path: Path, written: set[Path]) -> bool:
    return path.name in RUN_FILES or path.name == LOCK or path.resolve() in written


def lock_output(out_dir: Path) -> IO[str] | None:
    """Hold ``out_dir``'s lock for this process (close the returned file to release it): a second
    run into the same folder is refused (:class:`RunError`, naming the holder's pid). Where the
    system has no ``flock`` (Windows), no lock is taken."""
    try:
        import fcntl
    except ImportError:
        return None
    check_writable(out_dir)
    fh = open(out_dir / LOCK, "a+", encoding="utf-8")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        holder = fh.read().strip() or "?"
        fh.close()
        raise RunError(f"another run (pid {holder}) is writing to {out_dir}: wait for it to end, or choose another "
                       "--output") from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return fh


def _written_by(records_path: Path) -> set[Path]:
    out = set()
    for rec in _read_records(records_path):
        for key in ("output", "outputs"):
            v = rec.get(key)
            for o in ([v] if isinstance(v, str) else v or []):
                out.add(Path(o).resolve())
    return out


def check_writable(out_dir: Path) -> None:
    """Create ``out_dir`` if needed and make sure files can be written there (before any work)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise RunError(f"output {out_dir} exists and is not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".featherface-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RunError(f"cannot write to the output folder {out_dir}: {exc.strerror or exc}") from None


def _unfinished(out_dir: Path, sources: list[Source]) -> Callable[[Path], bool]:
    """Whether a file in ``out_dir`` is one of these sources' outputs (an image, a video, a crop
    ``<stem>_face<i>.png``) or a temporary file of ours (``atomic_write``'s ``.<name>.<random>.tmp``,
    a video's ``.<name>.<pid>.partial.mp4``): what an interrupted run may leave without a record."""
    exact = {output_path(out_dir, s.rel).resolve() for s in sources}
    crops = {(output_path(out_dir, s.rel).resolve().parent, s.rel.stem + "_face") for s in sources}

    def check(path: Path) -> bool:
        p = path.resolve()
        if p in exact or (p.name.startswith(".") and p.name.endswith((".partial.mp4", ".tmp"))):
            return True
        return p.suffix == ".png" and any(p.parent == d and p.stem.startswith(stem) and p.stem[len(stem):].isdigit()
                                          for d, stem in crops)
    return check


def compact_records(records: Path) -> int:
    """Rewrite ``records`` (atomically) without what an interruption left half done: lines cut
    mid-write, and the ``start`` and ``frame`` records of a video that has no ``video`` record after
    them (the resume redoes that video from its first frame, so each frame ends up recorded once).
    A finished video's frames are kept, just before its ``video`` record. Returns the records dropped."""
    kept: list[dict] = []
    pending: dict[str, list[dict]] = {}  # a video's records since its last start
    total = 0
    for line in records.read_text(encoding="utf-8").splitlines():
        total += 1
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        kind, file = rec.get("type"), rec.get("file")
        if kind == "start":
            pending[file] = [rec]
        elif kind == "frame":
            pending.setdefault(file, []).append(rec)
        elif kind == "video":
            kept += pending.pop(file, []) + [rec]
        else:  # settings, image, error, skipped
            if kind == "error":  # a video that failed: its frames go, as in run.json
                pending.pop(file, None)
            kept.append(rec)
    dropped = total - len(kept)
    if dropped:
        log.info("--resume: %d record(s) of unfinished work dropped from %s", dropped, records)
        atomic_write_text(records, "".join(json.dumps(r) + "\n" for r in kept))
    return dropped


def prepare_output(out_dir: Path, settings: dict, resume: bool, overwrite: bool, retry_failed: bool = False,
                   unfinished: Callable[[Path], bool] | None = None) -> set[str]:
    """Check the output folder against the rules of the module docstring; returns the files the
    run being resumed already recorded, done or failed (``retry_failed``: done only), so that a
    resume adds no second record for them (empty for a new run). On ``resume``, files that
    ``unfinished`` recognises as this run's outputs without a record (written in the instant
    before an interruption) are removed: their inputs are done again."""
    check_writable(out_dir)
    records = out_dir / RECORDS
    written = _written_by(records) if records.is_file() else set()
    unrecorded = [p for p in out_dir.rglob("*") if p.is_file() and not p.name.startswith(".featherface-probe")
                  and not _is_ours(out_dir, p, written)]
    if resume and records.is_file() and unfinished is not None:
        orphans = [p for p in unrecorded if unfinished(p)]
        for p in orphans:
            log.info("--resume: %s has no record (the run was interrupted while writing it): done again", p)
            p.unlink()
        unrecorded = [p for p in unrecorded if p not in orphans]
    foreign = sorted(str(p.relative_to(out_dir)) for p in unrecorded)
    if records.is_file() and not (resume or overwrite):
        raise RunError(f"{out_dir} already holds a run ({RECORDS}): continue it with --resume, replace it with "
                       "--overwrite, or choose another --output")
    if foreign and not overwrite:
        raise RunError(f"{out_dir} holds {len(foreign)} file(s) this run did not write (e.g. {foreign[0]}): "
                       "choose an empty or new --output, or pass --overwrite")
    if resume and records.is_file() and not overwrite:
        first = next((r for r in _read_records(records) if r.get("type") == "settings"), None)
        if first is not None:
            for key, value in settings.items():
                if first.get(key) != value:
                    raise RunError(f"--resume: {key} was {first.get(key)!r} in the run being resumed, now {value!r}; "
                                   "rerun with the same settings, or start a new --output")
        compact_records(records)
        finished = ("image", "video") if retry_failed else ("image", "video", "error")
        return {rec["file"] for rec in _read_records(records) if rec.get("type") in finished}
    if overwrite and records.is_file():
        for p in written:
            if p.is_file() and out_dir.resolve() in p.parents:
                p.unlink()
        for name in RUN_FILES:
            (out_dir / name).unlink(missing_ok=True)
    return set()


class RecordStream:
    """``run.jsonl``, appended and flushed record by record."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # a line cut by a kill has no newline: end it, so the next record starts on its own line
        cut = path.is_file() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
        self._fh = open(path, "a", encoding="utf-8")
        if cut:
            self._fh.write("\n")

    def write(self, record: dict) -> None:
        try:
            self._fh.write(json.dumps(record) + "\n")
            self._fh.flush()
        except OSError as exc:
            if exc.errno == errno.ENOSPC:  # a cut line is ended by the next run's first write
                raise out_of_space(self.path.parent) from None
            raise

    def close(self) -> None:
        try:
            self._fh.close()
        except OSError as exc:  # the last buffered bytes found the disk full: what was flushed stays
            if exc.errno != errno.ENOSPC:
                raise


@dataclass
class RunResult:
    processed: int = 0
    failed: int = 0
    already_done: int = 0
    skipped: int = 0
    summary: dict = field(default_factory=dict)


def _one_line(exc: BaseException, path: Path) -> str:
    msg = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    return msg if msg.startswith(str(path)) else f"{path}: {msg}"


@dataclass
class OpenRun:
    """A run whose output folder is checked and whose records are open: what is left to do."""

    stream: RecordStream
    todo: list[Source]
    result: RunResult
    settings: dict
    lock: IO[str] | None = None


def open_run(job: Job, listing: Listing, out_dir: Path, *, draw: bool, resume: bool, overwrite: bool,
             max_pixels: int, retry_failed: bool = False) -> OpenRun:
    """Check ``out_dir`` (:func:`prepare_output`), open ``run.jsonl``, write the settings and the
    skipped files of a new run, and list the files still to do (a resumed run's done files left out)."""
    settings = {"job": job.kind, **job.settings, "max_pixels": max_pixels, "draw": draw}
    # our own earlier outputs in an output folder INSIDE the source folder are not inputs
    out_res = out_dir.resolve()
    sources = [s for s in listing.sources if out_res not in s.path.resolve().parents]
    if listing.sources and not sources:  # checked before prepare_output, which may clear the folder
        raise RunError(f"every input lies inside the output folder {out_dir}: choose an --output outside the inputs")
    lock = lock_output(out_dir)  # before prepare_output, which may clear the folder
    try:
        return _open_locked(listing, out_dir, sources, settings, lock, draw=draw, resume=resume, overwrite=overwrite,
                            retry_failed=retry_failed)
    except BaseException:
        if lock is not None:
            lock.close()
        raise


def _open_locked(listing: Listing, out_dir: Path, sources: list[Source], settings: dict, lock: IO[str] | None, *,
                 draw: bool, resume: bool, overwrite: bool, retry_failed: bool) -> OpenRun:
    done = prepare_output(out_dir, settings, resume, overwrite, retry_failed, _unfinished(out_dir, sources))
    inputs = {s.path.resolve() for s in sources}
    if draw:
        clash = [str(s.path) for s in sources if output_path(out_dir, s.rel).resolve() in inputs]
        if clash:
            raise RunError(f"refusing to overwrite input files (e.g. {clash[0]}): choose an --output folder "
                           "outside the inputs")
    stream = RecordStream(out_dir / RECORDS)
    if not done:
        stream.write({"type": "settings", **settings})
        for path, reason in listing.skipped:
            stream.write({"type": "skipped", "file": path, "reason": reason})
            log.warning("skipped %s: %s", path, reason)
    todo = [s for s in sources if str(s.path) not in done]
    result = RunResult(already_done=len(sources) - len(todo), skipped=len(listing.skipped))
    return OpenRun(stream, todo, result, settings, lock)


def close_run(run: OpenRun, out_dir: Path) -> RunResult:
    """Close the records and write ``run.json`` (also after an interruption)."""
    run.stream.close()
    run.result.summary = summarise(out_dir / RECORDS)
    try:
        write_json(out_dir / SUMMARY, run.result.summary, indent=None)  # every face of every file: megabytes
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        log.warning("%s not written (no space left on the device); --resume writes it", out_dir / SUMMARY)
    if run.lock is not None:  # the run is over: the folder is left as it was, lock file included
        (out_dir / LOCK).unlink(missing_ok=True)
        run.lock.close()
    return run.result


def record_outcome(run: OpenRun, rec: dict) -> None:
    """Write one file's record (its result or its error) and count it."""
    run.stream.write(rec)
    if rec["type"] == "error":
        # listed once, in run.json and at the end of the command (the CLI's "failed:" lines)
        log.debug("failed: %s", rec["error"])
        run.result.failed += 1
    else:
        run.result.processed += 1


def process_file(job: Job, src: Source, out_dir: Path, draw: bool, max_pixels: int, **video) -> dict:
    """One file's record; a file that cannot be processed gives an ``error`` record (never raises
    for a bad file). ``video``: what :func:`_run_video` needs besides (videos only)."""
    try:
        if is_video(src.path):
            return _run_video(job, src, out_dir, draw, **video)
        return _run_image(job, src, out_dir, draw, max_pixels)
    except UsageError:
        raise  # a bad call (options, model, output folder) stops the run: it is never a per-file failure
    except OSError as exc:
        if exc.errno == errno.ENOSPC:  # not this file's fault: every next one would fail alike
            raise out_of_space(out_dir) from None
        return {"type": "error", "file": str(src.path), "error": _one_line(exc, src.path)}
    except (ValueError, MemoryError, MissingExtra) as exc:  # MissingExtra: a video without [video]
        return {"type": "error", "file": str(src.path), "error": _one_line(exc, src.path)}


def video_args(run: OpenRun, progress: Callable, video_writer: Callable | None = None) -> dict:
    """What :func:`process_file` needs for videos besides the job: the run's records, a writer
    (default: :func:`featherface.apps.video.open_writer`), the frame reader, the progress wrapper."""
    from .video import open_writer, read_frames

    return {"stream": run.stream, "video_writer": video_writer or open_writer, "read_frames": read_frames,
            "progress": progress}


def run_batch(job: Job, listing: Listing, out_dir: Path, *, draw: bool = True, resume: bool = False,
              overwrite: bool = False, max_pixels: int = 100_000_000, retry_failed: bool = False,
              workers: int = 1, video_writer: Callable | None = None, progress: Callable | None = None) -> RunResult:
    """Run ``job`` over ``listing`` into ``out_dir`` with the guarantees of the module docstring.

    ``draw=False`` writes only the records. ``max_pixels``: images whose header states more pixels
    are refused before decoding. ``resume`` skips the files the earlier run recorded, failed ones
    included unless ``retry_failed``. ``video_writer(path, fps, size, source)`` opens a writer for
    output videos (default: :func:`featherface.apps.video.open_writer`). ``progress(iterable,
    total)`` wraps loops (a progress bar in the CLI). ``workers``: images processed at once, in
    threads sharing the job (decoding, encoding and onnxruntime release the GIL); used only with a
    runner that takes concurrent calls (``thread_safe``), one otherwise. Records keep the listing's
    order; videos run one at a time.
    """
    progress = progress or (lambda it, **kw: it)
    run = open_run(job, listing, out_dir, draw=draw, resume=resume, overwrite=overwrite, max_pixels=max_pixels,
                   retry_failed=retry_failed)
    video = video_args(run, progress, video_writer)
    detector = getattr(job, "detector", None)
    if not getattr(getattr(detector, "runner", None), "thread_safe", False):
        workers = 1
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            if workers > 1:
                video.update(pool=pool, workers=workers)
            pending: deque = deque()  # futures of images, at most 2 x workers ahead, in listing order
            for src in progress(run.todo, total=len(run.todo)):
                if is_video(src.path) or workers <= 1:
                    while pending:
                        record_outcome(run, pending.popleft().result())
                    record_outcome(run, process_file(job, src, out_dir, draw, max_pixels, **video))
                    continue
                pending.append(pool.submit(process_file, job, src, out_dir, draw, max_pixels))
                while len(pending) > 2 * workers or (pending and pending[0].done()):
                    record_outcome(run, pending.popleft().result())
            while pending:
                record_outcome(run, pending.popleft().result())
    finally:
        close_run(run, out_dir)
    return run.result


def _run_image(job: Job, src: Source, out_dir: Path, draw: bool, max_pixels: int) -> dict:
    w, h = read_image_size(src.path)
    if w * h > max_pixels:
        raise InputError(f"{src.path}: {w}x{h} = {w * h:,} pixels (from its header), above the limit of "
                         f"{max_pixels:,} (raise it with --max-pixels)")
    img = read_image(src.path)
    fields, outputs = job.image(img)
    rec = {"type": "image", "file": str(src.path), "width": img.shape[1], "height": img.shape[0], **fields}
    if draw:
        paths = []
        for suffix, out_img in outputs:
            p = output_path(out_dir, src.rel, suffix)
            atomic_write_image(p, out_img)
            paths.append(str(p))
        if len(outputs) == 1 and outputs[0][0] == "":
            rec["output"] = paths[0]
        else:
            rec["outputs"] = paths
    return rec


def _detected_ahead(job: Job, frames, pool: ThreadPoolExecutor | None, ahead: int):
    """``(frame, detections or None)`` in order; with a pool, up to ``ahead`` frames are detected
    in parallel while the job masks, draws and writes the earlier ones in order."""
    if pool is None or not hasattr(job, "detect"):
        yield from ((f, None) for f in frames)
        return
    queue: deque = deque()
    for frame in frames:
        queue.append((frame, pool.submit(job.detect, frame)))
        if len(queue) > ahead:
            f, fut = queue.popleft()
            yield f, fut.result()
    while queue:
        f, fut = queue.popleft()
        yield f, fut.result()


def _run_video(job: Job, src: Source, out_dir: Path, draw: bool, stream: RecordStream, video_writer, read_frames,
               progress, pool: ThreadPoolExecutor | None = None, workers: int = 1) -> dict:
    stream.write({"type": "start", "file": str(src.path)})
    out = output_path(out_dir, src.rel) if draw else None
    writer = None
    n = 0
    frames = read_frames(src.path)
    try:
        for frame, found in _detected_ahead(job, progress(frames, total=frames.total), pool, 2 * workers):
            fields, out_frame = job.frame(frame, n, found)
            stream.write({"type": "frame", "file": str(src.path), "frame": n, **fields})
            if out is not None:
                if writer is None:
                    writer = video_writer(out, frames.fps, (frame.shape[1], frame.shape[0]), src.path)
                writer.write(out_frame)
            n += 1
        frames.check_complete(n)
        if writer is not None:
            writer.close()
            writer = None
    finally:
        frames.close()
        if writer is not None:
            writer.abort()
    rec = {"type": "video", "file": str(src.path), "fps": frames.fps, "num_frames": n}
    if out is not None:
        rec["output"] = str(out)
    return rec
