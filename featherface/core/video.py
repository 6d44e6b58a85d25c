"""Video in and out for batch runs.

Frames are read with OpenCV (BGR, in order) and written as H.264 MP4 through imageio-ffmpeg (the
``[video]`` extra, which ships an ffmpeg binary) with the source's audio track copied in (AAC), the
same frame rate and one output frame per input frame. Without the extra, videos are written with
OpenCV's MPEG-4 encoder and no audio; :func:`open_writer` with ``need_audio=True`` refuses instead.
Every output goes to a hidden temporary file in the destination folder and is renamed when
complete, so an interrupted run leaves nothing behind.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from .runners import require

log = logging.getLogger(__name__)


class FrameReader:
    """Iterate over a video's frames (``H x W x 3`` uint8 BGR). ``fps`` and ``total`` (the frame
    count the container states, or ``None``) come from the header."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._cap = cv2.VideoCapture(str(path))
        if not self._cap.isOpened():
            self._cap.release()
            raise ValueError(f"{path}: cannot be opened as a video")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else 25.0
        total = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.total = total if total > 0 else None

    def __iter__(self):
        while True:
            ok, frame = self._cap.read()
            if not ok:
                return
            yield frame

    def check_complete(self, decoded: int) -> None:
        """Raise when fewer frames decoded than the header states (a truncated or damaged file)."""
        if decoded == 0:
            raise ValueError(f"{self.path}: no frames could be decoded")
        # containers may state a count one off (rounded durations); more than that is damage
        if self.total is not None and decoded < self.total - 1:
            raise ValueError(f"{self.path}: truncated or damaged video: decoded {decoded} of the {self.total} "
                             "frames its header states")

    def close(self) -> None:
        self._cap.release()


def read_frames(path: Path) -> FrameReader:
    return FrameReader(path)


def has_audio(path: Path) -> bool:
    """Whether ``path`` has an audio stream (asks ffmpeg; needs the ``[video]`` extra)."""
    ffmpeg = require("imageio_ffmpeg", "video")
    gen = ffmpeg.read_frames(str(path))
    try:
        meta = next(gen)
    except Exception:  # noqa: BLE001 - ffmpeg could not read it: no audio to keep
        return False
    finally:
        gen.close()
    return bool(meta.get("audio_codec"))


class _Writer:
    """A video being written to a hidden temporary file; :meth:`close` renames it into place."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int], audio_from: Path | None, use_ffmpeg: bool):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial.mp4")
        self.size = size
        self.audio = False
        if use_ffmpeg:
            ffmpeg = require("imageio_ffmpeg", "video")
            self.audio = audio_from is not None and has_audio(audio_from)
            self._gen = ffmpeg.write_frames(str(self.tmp), size, fps=fps, codec="libx264", pix_fmt_in="bgr24",
                                            quality=7, macro_block_size=1, ffmpeg_log_level="error",
                                            audio_path=str(audio_from) if self.audio else None,
                                            audio_codec="aac" if self.audio else None)
            self._gen.send(None)
            self._cv = None
        else:
            self._gen = None
            self._cv = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
            if not self._cv.isOpened():
                raise OSError(f"{path}: OpenCV cannot open a video writer here")

    def write(self, frame: np.ndarray) -> None:
        if self._gen is not None:
            self._gen.send(np.ascontiguousarray(frame))
        else:
            self._cv.write(frame)

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()
        else:
            self._cv.release()
        self.tmp.replace(self.path)

    def abort(self) -> None:
        try:
            if self._gen is not None:
                self._gen.close()
            elif self._cv is not None:
                self._cv.release()
        finally:
            self.tmp.unlink(missing_ok=True)


def ffmpeg_available() -> bool:
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return False
    return True


def open_writer(path: Path, fps: float, size: tuple[int, int], source: Path | None = None,
                need_audio: bool = False) -> _Writer:
    """A writer for ``path`` (MP4). With ``source``, its audio is copied in when ffmpeg is
    available; ``need_audio`` makes a missing ``[video]`` extra an error instead of a silent loss."""
    use_ffmpeg = ffmpeg_available()
    if need_audio and not use_ffmpeg:
        require("imageio_ffmpeg", "video")
    if not use_ffmpeg and source is not None:
        log.warning("%s: written without audio (pip install 'featherface[video]' keeps it)", path)
    return _Writer(path, fps, size, source, use_ffmpeg)
