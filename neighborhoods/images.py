"""Photo uploads: checked for type, size and pixels, re-encoded, stripped of metadata."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from PIL import Image, ImageOps, UnidentifiedImageError

ACCEPTED_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
MAX_PIXELS = 40_000_000  # decompression bombs are refused before decoding


@dataclass
class ProcessedPhoto:
    file: ContentFile
    width: int
    height: int
    gps: tuple[float, float] | None  # (lat, lon) found in the original, never published as is


def _gps_of(image: Image.Image) -> tuple[float, float] | None:
    try:
        info = image.getexif().get_ifd(0x8825)
    except Exception:
        return None
    try:
        lat_ref, lat, lon_ref, lon = info[1], info[2], info[3], info[4]

        def degrees(value) -> float:
            d, m, s = (float(v) for v in value)
            return d + m / 60 + s / 3600

        lat_f, lon_f = degrees(lat), degrees(lon)
        if str(lat_ref).upper().startswith("S"):
            lat_f = -lat_f
        if str(lon_ref).upper().startswith("W"):
            lon_f = -lon_f
        if -90 <= lat_f <= 90 and -180 <= lon_f <= 180:
            return round(lat_f, 6), round(lon_f, 6)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    return None


def process_photo(upload, *, max_bytes: int, max_side: int) -> ProcessedPhoto:
    """Validate an uploaded photo and return a clean re-encoded copy (no EXIF, no profile data).

    Raises ``ValidationError`` with a message for the person who uploaded it.
    """
    size = getattr(upload, "size", None)
    if size is not None and size > max_bytes:
        raise ValidationError(
            f"The photo is {size / 1_048_576:.1f} MB; the limit is {max_bytes / 1_048_576:.0f} MB."
        )
    data = upload.read()
    if len(data) > max_bytes:
        raise ValidationError(f"The photo is larger than {max_bytes / 1_048_576:.0f} MB.")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            image_format = probe.format
            width, height = probe.size
            if image_format not in ACCEPTED_FORMATS:
                raise ValidationError("Upload a JPEG, PNG or WebP photo.")
            if width * height > MAX_PIXELS:
                raise ValidationError("The photo has too many pixels.")
            probe.verify()
        image = Image.open(io.BytesIO(data))
        image.load()
    except ValidationError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ValidationError("That file is not a photo we can read (JPEG, PNG or WebP).") from None
    gps = _gps_of(image)
    image = ImageOps.exif_transpose(image)
    image.thumbnail((max_side, max_side))
    out = io.BytesIO()
    extension = ACCEPTED_FORMATS[image_format]
    if image_format == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=85, optimize=True)
    elif image_format == "PNG":
        if image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
            image = image.convert("RGBA")
        image.save(out, "PNG", optimize=True)
    else:
        image.save(out, "WEBP", quality=85)
    return ProcessedPhoto(
        file=ContentFile(out.getvalue(), name=f"{uuid.uuid4().hex}.{extension}"),
        width=image.width,
        height=image.height,
        gps=gps,
    )
