"""The work behind ``featherface detect``: images, folders, globs and videos."""
from __future__ import annotations

import argparse
import glob
import json
import logging
import sys
from pathlib import Path

import cv2
from tqdm import tqdm

from ..detector import FaceDetector, long_side_size
from ..drawing import draw_detections
from ..files import atomic_write_image, is_image, is_video, read_image, write_json

log = logging.getLogger(__name__)


def list_sources(source: str) -> list[Path]:
    """Expand SOURCE (an image, a video, a folder or a glob pattern) into sorted files."""
    p = Path(source)
    if p.is_dir():
        files = [f for f in sorted(p.rglob("*")) if is_image(f) or is_video(f)]
    elif p.is_file():
        files = [p]
    else:
        files = [Path(f) for f in sorted(glob.glob(source, recursive=True)) if Path(f).is_file()]
    if not files:
        if not p.exists() and not glob.has_magic(source):
            raise FileNotFoundError(f"not found: {source}")
        raise FileNotFoundError(f"no images or videos found for {source!r}")
    return files


def _relative_name(path: Path, source: str) -> Path:
    root = Path(source)
    if root.is_dir():
        return path.relative_to(root)
    return Path(path.name)


def output_path(out_dir: Path, rel: Path) -> Path:
    """Annotated copy of input ``rel``: the same relative path and name (so ``a.jpg`` and
    ``a.png`` stay distinct); videos are written as MP4, so a non-MP4 video gets ``.mp4`` APPENDED
    (``clip.avi`` -> ``clip.avi.mp4``), never replacing another input's output."""
    if is_video(rel) and rel.suffix.lower() != ".mp4":
        return out_dir / rel.with_name(rel.name + ".mp4")
    return out_dir / rel


class ResultStream:
    """``detections.jsonl``: one JSON record per line, flushed as soon as it is produced, so an
    interrupted run keeps everything it finished. Records: ``settings``, ``image``, ``frame``
    (one per video frame), ``video`` (after the last frame), ``error``."""

    def __init__(self, path: Path, resume: bool) -> None:
        self.path = path
        self.done: set[str] = set()
        if resume and path.is_file():
            for line in path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a kill: that file is redone
                    continue
                if rec.get("type") in ("image", "video"):
                    self.done.add(rec["file"])
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "a" if resume else "w")

    def write(self, record: dict) -> None:
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def summarise(jsonl: Path) -> dict:
    """``detections.json`` content from the stream: the last settings, one result per file
    (videos with their frames), and the files whose LAST record is an error."""
    settings, results, errors, frames = {}, {}, {}, {}
    for line in jsonl.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        kind = rec.pop("type", None)
        if kind == "settings":
            settings = rec
        elif kind == "frame":
            frames.setdefault(rec["file"], []).append({"frame": rec["frame"], "faces": rec["faces"]})
        elif kind in ("image", "video"):
            if kind == "video":
                rec["frames"] = frames.pop(rec["file"], [])
            results[rec["file"]] = {"type": kind, **rec}
            errors.pop(rec["file"], None)
        elif kind == "error":
            errors[rec["file"]] = rec
            frames.pop(rec["file"], None)
    return {"settings": settings, "results": list(results.values()), "failures": list(errors.values())}


def _detect_image(det: FaceDetector, path: Path, out_img: Path | None, max_pixels: int) -> dict:
    img = read_image(path, strict=True)
    h, w = img.shape[:2]
    nh, nw = long_side_size(h, w, det.long_side)
    n = nh * nw
    if n > max_pixels:
        raise ValueError(f"{path}: {w}x{h} gives {n:,} pixels at the network input, above the limit of {max_pixels:,} "
                         "(raise it with --max-pixels, or resize with --long-side)")
    faces = det.detect(img)
    rec = {"file": str(path), "width": w, "height": h, "faces": [f.to_dict() for f in faces]}
    if out_img is not None:
        atomic_write_image(out_img, draw_detections(img, faces))
        rec["output"] = str(out_img)
    return rec


def _detect_video(det: FaceDetector, path: Path, out_video: Path | None, stream: ResultStream) -> dict:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"{path}: cannot be opened as a video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    writer = None
    n = 0
    tmp_video = out_video.with_name(f".{out_video.name}.partial.mp4") if out_video else None
    try:
        with tqdm(total=total, desc=path.name, unit="frame", disable=None) as bar:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                faces = det.detect(frame)
                stream.write({"type": "frame", "file": str(path), "frame": n, "faces": [f.to_dict() for f in faces]})
                n += 1
                if out_video is not None:
                    if writer is None:
                        out_video.parent.mkdir(parents=True, exist_ok=True)
                        h, w = frame.shape[:2]
                        writer = cv2.VideoWriter(str(tmp_video), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                    writer.write(draw_detections(frame, faces))
                bar.update(1)
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    if n == 0:
        raise ValueError(f"{path}: no frames could be decoded")
    if writer is not None:
        tmp_video.replace(out_video)
    return {"file": str(path), "fps": fps, "num_frames": n, "output": str(out_video) if out_video else None}


def run_detect(args: argparse.Namespace, files: list[Path], det: FaceDetector) -> int:
    """Detect in every file, streaming records to ``<output>/detections.jsonl`` and, at the end,
    ``detections.json``. One failing file (unreadable, damaged, too large, out of memory) is
    recorded and the rest go on; exit code 1 when any file failed."""
    out_dir: Path = args.output
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--output {out_dir} exists and is not a folder")
    draw = not args.no_draw
    # our own earlier outputs in an output folder INSIDE the source folder are not inputs
    src_root = Path(args.source).resolve()
    if src_root.is_dir() and src_root in out_dir.resolve().parents:
        files = [f for f in files if out_dir.resolve() not in f.resolve().parents]
    if not files:
        raise FileNotFoundError(f"no inputs outside the output folder {out_dir}")
    jobs = [(path, output_path(out_dir, _relative_name(path, args.source)) if draw else None) for path in files]
    inputs = {p.resolve() for p in files}
    clash = [str(o) for _, o in jobs if o is not None and o.resolve() in inputs]
    if clash:
        raise ValueError(f"refusing to overwrite input files with annotated copies (e.g. {clash[0]}): "
                         "choose an --output folder outside the inputs, or --no-draw")
    stream = ResultStream(out_dir / "detections.jsonl", resume=args.resume)
    settings = {"model": str(args.model), "arch": det.arch, "score_threshold": det.cfg.score_threshold,
                "nms_iou": det.cfg.nms_iou, "box_voting": det.cfg.box_voting, "top_k": det.cfg.top_k,
                "keep_top_k": det.cfg.keep_top_k,
                "long_side": det.long_side, "max_pixels": args.max_pixels,
                "coordinates": "original-image pixels, boxes x1,y1,x2,y2",
                "landmarks": ["left_eye", "right_eye", "nose", "left_mouth", "right_mouth"],
                "outputs": "annotated copies keep each input's relative path and name; non-MP4 videos get .mp4 appended"}
    stream.write({"type": "settings", **settings})
    todo = [(p, o) for p, o in jobs if str(p) not in stream.done]
    if stream.done:
        log.info("--resume: %d of %d file(s) already done", len(jobs) - len(todo), len(jobs))
    failed = 0
    try:
        for path, out in tqdm(todo, desc="files", unit="file", disable=None if len(todo) > 1 else True):
            try:
                if is_video(path):
                    rec = {"type": "video", **_detect_video(det, path, out, stream)}
                    log.info("%s: %d frame(s)", path, rec["num_frames"])
                else:
                    rec = {"type": "image", **_detect_image(det, path, out, args.max_pixels)}
                    log.info("%s: %d face(s)", path, len(rec["faces"]))
            except (ValueError, MemoryError, RuntimeError) as exc:  # RuntimeError: e.g. torch out of memory
                msg = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
                if not msg.startswith(str(path)):
                    msg = f"{path}: {msg}"
                stream.write({"type": "error", "file": str(path), "error": msg})
                log.error("%s", msg)
                failed += 1
                continue
            stream.write(rec)
    finally:
        stream.close()
        summary = summarise(out_dir / "detections.jsonl")
        write_json(out_dir / "detections.json", summary)
    print(f"{len(todo) - failed} file(s) processed, {failed} failed"
          + (f", {len(jobs) - len(todo)} already done (--resume)" if len(jobs) > len(todo) else "")
          + f"; results in {out_dir / 'detections.jsonl'} (streamed) and {out_dir / 'detections.json'}")
    for f in summary["failures"]:
        print(f"failed: {f['error']}", file=sys.stderr)
    return 1 if summary["failures"] else 0
