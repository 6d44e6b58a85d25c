"""The work behind ``featherface detect``: images, folders, globs and videos."""
from __future__ import annotations

import argparse
import glob
import logging
import sys
from pathlib import Path

import cv2
from tqdm import tqdm

from ..detector import FaceDetector
from ..drawing import draw_detections
from ..files import IMAGE_EXTS, VIDEO_EXTS, atomic_write_image, is_video, read_image, write_json

log = logging.getLogger(__name__)


def list_sources(source: str) -> list[Path]:
    """Expand SOURCE (an image, a video, a folder or a glob pattern) into sorted files."""
    p = Path(source)
    if p.is_dir():
        files = [f for f in sorted(p.rglob("*")) if f.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS]
    elif p.is_file():
        files = [p]
    else:
        files = [Path(f) for f in sorted(glob.glob(source, recursive=True)) if Path(f).is_file()]
    if not files:
        raise FileNotFoundError(f"no images or videos found for {source!r}")
    return files


def _relative_name(path: Path, source: str) -> Path:
    root = Path(source)
    if root.is_dir():
        return path.relative_to(root)
    return Path(path.name)


def _detect_video(det: FaceDetector, path: Path, out_dir: Path, rel: Path, draw: bool) -> dict:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"{path}: cannot be opened as a video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    writer = None
    frames = []
    out_video = out_dir / rel.with_suffix(".mp4")
    tmp_video = out_video.with_name(f".{out_video.stem}.partial.mp4")
    try:
        with tqdm(total=total, desc=path.name, unit="frame", disable=None) as bar:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                faces = det.detect(frame)
                frames.append({"frame": len(frames), "faces": [f.to_dict() for f in faces]})
                if draw:
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
    if not frames:
        raise ValueError(f"{path}: no frames could be decoded")
    if writer is not None:
        tmp_video.replace(out_video)
    return {"file": str(path), "type": "video", "fps": fps, "frames": frames,
            "output": str(out_video) if draw else None}


def run_detect(args: argparse.Namespace, files: list[Path], det: FaceDetector) -> int:
    out_dir: Path = args.output
    records, failures = [], []
    images = [f for f in files if not is_video(f)]
    for path in tqdm(images, desc="images", unit="img", disable=None if len(images) > 1 else True):
        rel = _relative_name(path, args.source)
        try:
            img = read_image(path)
            faces = det.detect(img)
        except ValueError as exc:
            failures.append({"file": str(path), "error": str(exc)})
            log.error("%s", exc)
            continue
        rec = {"file": str(path), "type": "image", "width": img.shape[1], "height": img.shape[0],
               "faces": [f.to_dict() for f in faces]}
        if not args.no_draw:
            out_img = out_dir / rel.with_suffix(".jpg")
            atomic_write_image(out_img, draw_detections(img, faces))
            rec["output"] = str(out_img)
        records.append(rec)
        log.info("%s: %d face(s)", path, len(faces))
    for path in (f for f in files if is_video(f)):
        rel = _relative_name(path, args.source)
        try:
            rec = _detect_video(det, path, out_dir, rel, not args.no_draw)
        except ValueError as exc:
            failures.append({"file": str(path), "error": str(exc)})
            log.error("%s", exc)
            continue
        records.append(rec)
        log.info("%s: %d frame(s), %d face(s) in total", path, len(rec["frames"]),
                 sum(len(fr["faces"]) for fr in rec["frames"]))
    settings = {"model": str(args.model), "arch": det.arch, "score_threshold": det.cfg.score_threshold,
                "nms_iou": det.cfg.nms_iou, "top_k": det.cfg.top_k, "keep_top_k": det.cfg.keep_top_k,
                "long_side": det.long_side, "coordinates": "original-image pixels, boxes x1,y1,x2,y2",
                "landmarks": ["left_eye", "right_eye", "nose", "left_mouth", "right_mouth"]}
    write_json(out_dir / "detections.json", {"settings": settings, "results": records, "failures": failures})
    print(f"{len(records)} file(s) processed, {len(failures)} failed; results in {out_dir / 'detections.json'}")
    for f in failures:
        print(f"failed: {f['error']}", file=sys.stderr)
    return 1 if failures else 0
