"""Real files for the attachment tests, built with Pillow (and pillow-heif) or byte by byte, so
every test states exactly what is in the file it sends."""

from __future__ import annotations

import io
import struct
import zlib

import pillow_heif
from PIL import Image

from attachments.sanitize import Limits

LIMITS = Limits(max_bytes=10 * 1024 * 1024, max_pixels=40_000_000)
# An EXIF GPS position (Paris) that must never leave a citizen's phone through us.
GPS = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
GPS_IFD = 0x8825
ORIENTATION = 0x0112
ROTATE_90_CW = 6  # EXIF: the stored pixels must be turned 90° clockwise to be upright


def exif_with_gps(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[GPS_IFD] = GPS
    return exif


def image_bytes(
    fmt: str,
    size: tuple[int, int] = (64, 48),
    mode: str = "RGB",
    color: tuple[int, ...] | int = (200, 30, 30),
    **save: object,
) -> bytes:
    if fmt in ("HEIF", "HEIC"):
        pillow_heif.register_heif_opener()
        fmt = "HEIF"
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, format=fmt, **save)
    return out.getvalue()


def animated(
    fmt: str, colors: list[tuple[int, int, int]], size: tuple[int, int] = (32, 32)
) -> bytes:
    frames = [Image.new("RGB", size, c) for c in colors]
    out = io.BytesIO()
    frames[0].save(out, format=fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int, idat: bytes = b"") -> bytes:
    """A PNG whose header declares ``width`` x ``height`` 8-bit grey pixels, with ``idat`` as
    its (possibly tiny, possibly truncated) compressed data: a decompression bomb's shape."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", idat or zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


def zero_png_bomb(width: int, height: int) -> bytes:
    """A valid PNG of ``width`` x ``height`` black grey pixels: a few kB that inflate to
    ``width * height`` bytes when decoded."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return png_declaring(width, height, body)


def pdf(body: bytes = b"1 0 obj << /Type /Catalog >> endobj\n") -> bytes:
    return b"%PDF-1.7\n" + body + b"trailer << /Root 1 0 R >>\n%%EOF\n"


def decoded(data: bytes) -> Image.Image:
    pillow_heif.register_heif_opener()
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
