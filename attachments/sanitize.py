"""What a file really is, decided by its content, and a clean copy of it.

A citizen's "can I bring this?" photo and an agent's PDF come from outside: a name ending in
``.jpg`` or a declared ``image/jpeg`` proves nothing. The type is read from the first bytes and
confirmed by a real decode; everything else is refused (:class:`RejectCode` says why, so the
citizen can be told).

Images are never passed on as received: they are decoded, turned upright (EXIF orientation) and
re-encoded from their pixels, so metadata (EXIF with GPS position, XMP, comments, embedded
profiles) and anything hidden after the image (a JPEG+ZIP or JPEG+HTML polyglot) do not survive.
HEIC/HEIF (iPhone photos) become JPEG, which every browser and platform shows. The pixel count
is read from the header and checked before any pixel is decoded, so a small file declaring a huge
canvas (a decompression bomb) costs nothing. PDFs are checked (header at byte 0, end marker) and
kept byte for byte; they are only ever served as a download.

CPU-bound: async callers run :func:`sanitize` in a thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pillow_heif
from PIL import Image, ImageOps

# Pillow reads HEIC/HEIF through this plugin (adds a format; changes no limit or other setting).
pillow_heif.register_heif_opener()

THUMBNAIL_SIDE = 320
JPEG_QUALITY = 88
WEBP_QUALITY = 88
THUMBNAIL_QUALITY = 80
# ``%%EOF`` must be this close to the end of a PDF (incremental saves may add a few bytes).
PDF_EOF_WINDOW = 1024

MIME_JPEG = "image/jpeg"
MIME_PNG = "image/png"
MIME_WEBP = "image/webp"
MIME_HEIC = "image/heic"
MIME_HEIF = "image/heif"
MIME_PDF = "application/pdf"

# What file pickers may offer (``accept=``): HEIC is accepted and stored as JPEG.
ACCEPTED_MIME_TYPES: tuple[str, ...] = (
    MIME_JPEG,
    MIME_PNG,
    MIME_WEBP,
    MIME_HEIC,
    MIME_HEIF,
    MIME_PDF,
)

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_PDF_MAGIC = b"%PDF-"
# ISO base media "ftyp" brands of HEIF stills and sequences (AVIF's "avif"/"avis" are not here).
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"heif"})
_HEIF_GENERIC_BRANDS = frozenset({b"mif1", b"msf1"})


class Kind(StrEnum):
    IMAGE = "image"
    DOCUMENT = "document"


class RejectCode(StrEnum):
    """Why a file was refused; the channels map each to a message the citizen understands."""

    EMPTY = "empty"
    TOO_LARGE = "too_large"
    UNSUPPORTED = "unsupported_type"
    DAMAGED = "damaged"
    TOO_MANY_PIXELS = "too_many_pixels"


class Rejected(ValueError):
    """The file is refused; ``code`` says why (never the file's content)."""

    def __init__(self, code: RejectCode, message: str = "") -> None:
        super().__init__(message or code.value)
        self.code = code


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_pixels: int

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        """The limits configured for this installation (``attachment_max_*``)."""
        return cls(
            max_bytes=int(settings.attachment_max_bytes),
            max_pixels=int(settings.attachment_max_pixels),
        )


@dataclass(frozen=True)
class Clean:
    """A file fit to store and show: ``data`` is the re-encoded image or the unchanged PDF."""

    kind: Kind
    mime: str
    data: bytes
    thumbnail: bytes | None
    width: int | None
    height: int | None
    extension: str


@dataclass(frozen=True)
class _ImageFormat:
    pillow: str  # Pillow's format name, the only plugin allowed to open the file
    mime: str  # what it is stored as
    save_as: str  # Pillow's format name of the re-encoded file
    extension: str
    keeps_alpha: bool


_JPEG = _ImageFormat("JPEG", MIME_JPEG, "JPEG", "jpg", keeps_alpha=False)
_PNG = _ImageFormat("PNG", MIME_PNG, "PNG", "png", keeps_alpha=True)
_WEBP = _ImageFormat("WEBP", MIME_WEBP, "WEBP", "webp", keeps_alpha=True)
_HEIF = _ImageFormat("HEIF", MIME_JPEG, "JPEG", "jpg", keeps_alpha=False)


def sanitize(data: bytes, limits: Limits) -> Clean:
    """The clean version of ``data``, or :class:`Rejected` with the reason."""
    if not data:
        raise Rejected(RejectCode.EMPTY, "the file is empty")
    if len(data) > limits.max_bytes:
        raise Rejected(RejectCode.TOO_LARGE, f"the file is larger than {limits.max_bytes} bytes")
    if data.startswith(_PDF_MAGIC):
        return _pdf(data)
    image_format = _sniff_image(data)
    if image_format is None:
        raise Rejected(RejectCode.UNSUPPORTED, "only JPEG, PNG, WebP, HEIC images and PDF files")
    clean = _image(data, image_format, limits)
    if len(clean.data) > limits.max_bytes:
        raise Rejected(RejectCode.TOO_LARGE, f"the image is larger than {limits.max_bytes} bytes")
    return clean


def _sniff_image(data: bytes) -> _ImageFormat | None:
    """The image format the first bytes announce (a real decode confirms it later)."""
    if data.startswith(_JPEG_MAGIC):
        return _JPEG
    if data.startswith(_PNG_MAGIC):
        return _PNG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _WEBP
    if data[4:8] == b"ftyp" and _is_heif_brand(data):
        return _HEIF
    return None


def _is_heif_brand(data: bytes) -> bool:
    """An ``ftyp`` box naming HEIF as its major brand, or a generic image brand with HEIF among
    the compatible ones (AVIF and MP4 video are refused)."""
    box_size = int.from_bytes(data[:4], "big")
    major = data[8:12]
    compatible = {data[i : i + 4] for i in range(16, min(box_size, 64, len(data)) - 3, 4)}
    if major in _HEIF_BRANDS:
        return True
    return major in _HEIF_GENERIC_BRANDS and bool(compatible & _HEIF_BRANDS)


def _pdf(data: bytes) -> Clean:
    """A PDF kept as it is: it must begin with its header (anything in front of it is another
    file in disguise, caught earlier as "not a known type") and end with ``%%EOF``."""
    if b"%%EOF" not in data[-PDF_EOF_WINDOW:]:
        raise Rejected(RejectCode.DAMAGED, "the PDF is incomplete")
    return Clean(
        kind=Kind.DOCUMENT,
        mime=MIME_PDF,
        data=data,
        thumbnail=None,
        width=None,
        height=None,
        extension="pdf",
    )


def _image(data: bytes, image_format: _ImageFormat, limits: Limits) -> Clean:
    """Decoded and re-encoded; only the announced format's decoder may open the bytes, so a
    PNG header cannot route them to some other (less used, less hardened) plugin."""
    try:
        # Reads the header only. (Pillow refuses on its own past twice its global limit and
        # warns past it; both are far above ours, which decides here, before any decoding.)
        source = Image.open(io.BytesIO(data), formats=[image_format.pillow])
    except Image.DecompressionBombError as error:
        raise Rejected(RejectCode.TOO_MANY_PIXELS, "the image has too many pixels") from error
    except Exception as error:  # noqa: BLE001 - any decoder failure means the same to a citizen
        raise Rejected(RejectCode.DAMAGED, "the image cannot be read") from error
    with source:
        width, height = source.size
        if width <= 0 or height <= 0:
            raise Rejected(RejectCode.DAMAGED, "the image has no pixels")
        if width * height > limits.max_pixels:
            raise Rejected(RejectCode.TOO_MANY_PIXELS, "the image has too many pixels")
        try:
            source.seek(0)  # animated: the first frame only
            source.load()
            ImageOps.exif_transpose(source, in_place=True)  # no copy of a large image
            pixels = _pixels_only(source, image_format)
        except Exception as error:  # noqa: BLE001 - truncated or corrupt pixel data
            raise Rejected(RejectCode.DAMAGED, "the image cannot be read") from error
    encoded = _encode(pixels, image_format)
    return Clean(
        kind=Kind.IMAGE,
        mime=image_format.mime,
        data=encoded,
        thumbnail=_thumbnail(pixels),
        width=pixels.width,
        height=pixels.height,
        extension=image_format.extension,
    )


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def _pixels_only(image: Image.Image, image_format: _ImageFormat) -> Image.Image:
    """A new image holding only pixels, in a mode the output format writes: no ``info`` (EXIF,
    XMP, ICC profile, comments, PNG text chunks) is carried over to the encoder."""
    if image.mode.startswith("I"):  # 16-bit grey PNG: scaled to 8 bits, not clipped to white
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    if _has_alpha(image) and not image_format.keeps_alpha:
        return _on_white(image)  # HEIC with transparency to JPEG: white, not black, behind it
    alpha = _has_alpha(image)
    if image.mode == "L" and not alpha:
        target = "L"
    elif image.mode == "LA" and alpha and image_format is _PNG:
        target = "LA"
    else:
        target = "RGBA" if alpha else "RGB"
    converted = image.convert(target)  # always a new image (a copy when the mode is the same)
    converted.info = {}
    return converted


def _on_white(image: Image.Image) -> Image.Image:
    """An RGB image of ``image`` over a white background (for formats without alpha)."""
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _encode(image: Image.Image, image_format: _ImageFormat) -> bytes:
    out = io.BytesIO()
    if image_format.save_as == "JPEG":
        image.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    elif image_format.save_as == "WEBP":
        image.save(out, format="WEBP", quality=WEBP_QUALITY)
    else:
        image.save(out, format="PNG")
    return out.getvalue()


def _thumbnail(image: Image.Image) -> bytes:
    """A JPEG whose longest side is at most :data:`THUMBNAIL_SIDE` (transparent parts white)."""
    scale = THUMBNAIL_SIDE / max(image.size)
    small = image
    if scale < 1:  # resized straight from the image: no full-size copy
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        small = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if small.mode in ("RGBA", "LA"):
        small = _on_white(small)
    elif small.mode != "L":
        small = small.convert("RGB")
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=THUMBNAIL_QUALITY)
    return out.getvalue()
