"""Files: the one place that lists images, reads them, and writes anything atomically.

* Images are read (with Pillow) as ``H x W x 3`` uint8 BGR, OpenCV's order, which the models and
  the rest of the package use; an unreadable or damaged file raises ``ValueError`` naming it.
* Every write goes to a temporary file in the destination folder, then is renamed over the
  target (``os.replace``), so a crash or ``kill -9`` never leaves a truncated file; the result gets
  the permissions an ordinary new file gets.
"""
from __future__ import annotations

import io
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image as _Image

from .errors import ImageTooLarge, InputError, NotAnImage, UsageError

log = logging.getLogger(__name__)

# Pillow refuses images above ~179 M pixels as decompression bombs; batch runs check the header
# against their own --max-pixels first (read_image_size), so that limit is the one that applies.
_Image.MAX_IMAGE_PIXELS = None

#: AVIF (what recent phones and browsers save) through Pillow's AVIF support (its wheels since 11.3)
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".avif"}
VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTS


def list_images(folder: str | Path) -> list[str]:
    """Image files under ``folder`` (recursively), as sorted paths relative to it. Raises
    ``FileNotFoundError`` when there are none."""
    folder = Path(folder)
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if is_image(p) and p.is_file())
    if not files:
        raise FileNotFoundError(f"no images under {folder}")
    return files


def _to_bgr(im) -> np.ndarray:
    """A decoded Pillow image as ``H x W x 3`` uint8 BGR, as OpenCV's ``IMREAD_COLOR`` gives it:
    grey and palette images expanded, alpha dropped (not composited), 16-bit samples scaled to 8."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im).astype(np.uint32) >> 8
        arr = np.clip(arr, 0, 255).astype(np.uint8)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(im)[:, :, ::-1])


def decode_image(source: str | os.PathLike | bytes, max_pixels: int | None = None,
                 name: str | None = None) -> tuple[np.ndarray, str]:
    """Decode a file or in-memory bytes as ``H x W x 3`` uint8 BGR, turned upright by its EXIF
    orientation (as OpenCV's ``imread``); returns the image and Pillow's format name (``"JPEG"``,
    ``"PNG"``, ...). With ``max_pixels``, an image whose header declares more is refused
    (:class:`ImageTooLarge`) before its pixels are decoded. Errors name ``name`` (default: the
    path, or "image"): :class:`NotAnImage` for data no reader recognises, :class:`InputError` for a
    missing file or damaged data (truncated or corrupt data is an error, never a half-grey picture)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    data = isinstance(source, (bytes, bytearray, memoryview))
    label = name or ("image" if data else str(source))
    try:
        with Image.open(io.BytesIO(source) if data else source) as im:  # type: ignore[arg-type]
            w, h = im.size
            if max_pixels is not None and w * h > max_pixels:
                raise ImageTooLarge(f"{label}: {w}x{h} = {w * h:,} pixels (from its header), above the limit of "
                                    f"{max_pixels:,}")
            fmt = im.format or "PNG"
            im.load()
            return _to_bgr(ImageOps.exif_transpose(im)), fmt
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{label}: cannot be read as an image (missing)") from None
    except IsADirectoryError:
        raise InputError(f"{label}: cannot be read as an image (a folder)") from None
    except Image.DecompressionBombError as exc:  # Pillow's own ceiling, far above any max_pixels
        raise ImageTooLarge(f"{label}: {exc}") from None
    except UnidentifiedImageError:
        head = bytes(source[:12]) if isinstance(source, (bytes, bytearray, memoryview)) else b""
        if any(head.startswith(m) for m in IMAGE_MAGIC) or head[8:12] == b"WEBP":
            raise InputError(f"{label}: damaged image data (an image's signature, then data no reader accepts)") from None
        if head[4:12] in (b"ftypavif", b"ftypavis") or label.lower().endswith(".avif"):
            from PIL import features

            if not features.check("avif"):
                raise NotAnImage(f"{label}: AVIF, which this Pillow cannot read (pip install 'Pillow>=11.3')") from None
        raise NotAnImage(f"{label}: cannot be read as an image (corrupt or unsupported format)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{label}: damaged image data ({exc})") from None


#: the first bytes of JPEG, PNG, GIF, BMP and TIFF files: data that starts so and does not decode
#: is a damaged image, not another kind of file
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as ``H x W x 3`` uint8 BGR (:func:`decode_image`). Raises
    :class:`InputError` (a ``ValueError``) naming the file when it is missing, not an image, or damaged."""
    return decode_image(path)[0]


def encode_image(image: np.ndarray, fmt: str = "PNG", jpeg_quality: int = 95) -> bytes:
    """A BGR (or grey) uint8 image encoded in Pillow's format ``fmt`` (JPEG at ``jpeg_quality``);
    a format Pillow reads but cannot write gives PNG."""
    from PIL import Image

    rgb = image if image.ndim == 2 else np.ascontiguousarray(image[:, :, 2::-1])
    pil = Image.fromarray(rgb)
    if fmt not in Image.SAVE:
        fmt = "PNG"
    out = io.BytesIO()
    pil.save(out, format=fmt, **({"quality": jpeg_quality} if fmt == "JPEG" else {}))
    return out.getvalue()


def read_image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` from the file's header, without decoding the pixels (Pillow opens
    lazily), so a small file that declares a huge image is refused before it takes memory.
    ``(0, 0)`` when the header cannot be parsed."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        log.debug("%s: no size from the header (%s)", path, exc)
        return 0, 0


def read_images(folder: str | Path) -> list[tuple[str, np.ndarray]]:
    """Every readable image under ``folder`` as ``(relative path, BGR image)``; unreadable files
    are logged and skipped."""
    out = []
    for rel in list_images(folder):
        try:
            out.append((rel, read_image(Path(folder) / rel)))
        except ValueError as exc:
            log.warning("skipped: %s", exc)
    return out


def _default_permissions(path: str | Path) -> None:
    # mkstemp creates owner-only files; give the ordinary 0666 minus the umask
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def atomic_write(path: str | Path, write: Callable[[str], object]) -> None:
    """Call ``write(temporary path)``, then rename the temporary file over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        _default_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any, indent: int | None = 1) -> None:
    """``obj`` as JSON, written atomically; ``indent=None`` for large files (one line, several
    times faster to write)."""
    atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")


def atomic_write_image(path: str | Path, image: np.ndarray, jpeg_quality: int = 95) -> None:
    """Write a BGR (or grey) uint8 image; the format follows the suffix (JPEG at ``jpeg_quality``)."""
    from PIL import Image

    path = Path(path)
    suffix = path.suffix.lower() or ".jpg"
    fmt = Image.registered_extensions().get(suffix)
    if fmt is None:
        raise UsageError(f"cannot encode image for {path}: unknown image type {suffix!r}")
    rgb = image if image.ndim == 2 else np.ascontiguousarray(image[:, :, 2::-1])
    pil = Image.fromarray(rgb)
    options = {"quality": jpeg_quality} if fmt == "JPEG" else {}
    atomic_write(path, lambda tmp: pil.save(tmp, format=fmt, **options))
