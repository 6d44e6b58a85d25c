"""Video in and out for batch runs, through imageio-ffmpeg (the ``[video]`` extra, which ships an
ffmpeg binary).

Frames are read as ``H x W x 3`` uint8 BGR, in order, and written as H.264 MP4 with the source's
audio track copied in (AAC), the same frame rate and one output frame per input frame. A video of
variable frame rate (what phones record) is read at its stream's base rate (ffmpeg's ``tbr``),
repeating a frame where the gap to the next is longer, and written at that constant rate: the
same duration, the audio in sync, no frame left out. Every output
goes to a hidden temporary file in the destination folder and is renamed when complete, so an
interrupted run leaves nothing behind.
"""
from __future__ import annotations

import logging
import os
import re
import struct
import subprocess
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from ..core.runners import require

log = logging.getLogger(__name__)


def _avi_total_frames(path: Path) -> int | None:
    """The frame count an AVI's main header states (``avih`` ``dwTotalFrames``). ffmpeg estimates an
    AVI's duration from the file size, so a truncated AVI would otherwise look complete."""
    if path.suffix.lower() != ".avi":
        return None
    with open(path, "rb") as fh:
        head = fh.read(4096)
    i = head.find(b"avih")
    if head[:4] != b"RIFF" or i < 0 or len(head) < i + 28:
        return None
    total = struct.unpack_from("<I", head, i + 8 + 16)[0]  # after the chunk id and size: 4 fields of 4 bytes
    return total or None


def stream_rates(path: Path) -> tuple[float | None, float | None]:
    """The video stream's mean frame rate and base rate (``fps`` and ``tbr`` in ffmpeg's description
    of the file), each ``None`` where ffmpeg states none."""
    ffmpeg = require("imageio_ffmpeg", "video")
    try:
        out = subprocess.run([ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True,
                             text=True, errors="replace", timeout=60).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    line = next((ln for ln in out.splitlines() if ln.lstrip().startswith("Stream ") and " Video: " in ln), "")
    rates = [re.search(rf" ([0-9]+(?:\.[0-9]+)?) {unit}\b", line) for unit in ("fps", "tbr")]
    mean, base = (float(m.group(1)) if m else None for m in rates)
    return mean, base


class FrameReader:
    """Iterate over a video's frames (``H x W x 3`` uint8 BGR) at a constant rate ``fps``;
    ``total`` is the frame count the container's duration and that rate state (or ``None``).
    ``variable``: the stream's frame rate varies (its mean rate is below its base rate), so it is
    read at the base rate (module docstring)."""

    def __init__(self, path: Path) -> None:
        ffmpeg = require("imageio_ffmpeg", "video")
        self.path = Path(path)
        mean, base = stream_rates(self.path)
        # ffmpeg's raw output repeats frames up to the base rate: the writer must use that rate,
        # or a 10 s phone video plays for 20 s; stated explicitly (-r) so reader and writer agree
        # (a stream that states no mean rate is taken as 25 fps, as below)
        self.variable = base is not None and base > (mean or 25.0) * 1.01
        self._gen = ffmpeg.read_frames(str(path), pix_fmt="bgr24",
                                       output_params=["-r", f"{base:g}"] if self.variable else None)
        try:
            meta = next(self._gen)
        except (OSError, RuntimeError, StopIteration):
            self._gen.close()
            raise InputError(f"{path}: cannot be opened as a video") from None
        fps = meta.get("fps")  # the stream's MEAN rate
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else 25.0
        if self.variable:
            log.info("%s: variable frame rate (mean %.2f fps): read and written at its base rate, %g fps",
                     path, self.fps, base)
            self.fps = float(base)  # type: ignore[arg-type]
        self.size = tuple(meta["size"])
        duration = meta.get("duration")
        self.total = _avi_total_frames(self.path) or (
            int(round(duration * self.fps)) if duration and np.isfinite(duration) and duration > 0 else None)

    def __iter__(self):
        w, h = self.size
        try:
            for buf in self._gen:
                yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
        except (OSError, RuntimeError) as exc:  # ffmpeg gave up mid-stream: check_complete reports it
            log.debug("%s: %s", self.path, exc)

    def check_complete(self, decoded: int) -> None:
        """Raise when fewer frames decoded than the header states (a truncated or damaged file)."""
        if decoded == 0:
            raise InputError(f"{self.path}: no frames could be decoded")
        # containers may state a count one off (rounded durations); more than that is damage
        if self.total is not None and decoded < self.total - 1:
            raise InputError(f"{self.path}: truncated or damaged video: decoded {decoded} of the {self.total} "
                             "frames its header states")

    def close(self) -> None:
        self._gen.close()


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

    def __init__(self, path: Path, fps: float, size: tuple[int, int], audio_from: Path | None):
        ffmpeg = require("imageio_ffmpeg", "video")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial.mp4")
        self.size = size
        self.audio = audio_from is not None and has_audio(audio_from)
        # H.264 4:2:0 needs an even width and height: an odd one gets one black column or row (nothing cut)
        pad = ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"] if size[0] % 2 or size[1] % 2 else []
        self._gen = ffmpeg.write_frames(str(self.tmp), size, fps=fps, codec="libx264", pix_fmt_in="bgr24",
                                        quality=7, macro_block_size=1, ffmpeg_log_level="error", output_params=pad,
                                        audio_path=str(audio_from) if self.audio else None,
                                        audio_codec="aac" if self.audio else None)
        self._gen.send(None)

    def write(self, frame: np.ndarray) -> None:
        self._gen.send(np.ascontiguousarray(frame))

    def close(self) -> None:
        self._gen.close()
        self.tmp.replace(self.path)

    def abort(self) -> None:
        try:
            self._gen.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def open_writer(path: Path, fps: float, size: tuple[int, int], source: Path | None = None) -> _Writer:
    """A writer for ``path`` (H.264 MP4); with ``source``, its audio track is copied in."""
    return _Writer(path, fps, size, source)
