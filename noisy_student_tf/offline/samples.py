"""Sample JPEGs for a person to look at (upstream `utils.py`, `decode_raw_image` and `save_pic`): decoded from
the stored bytes, first frame, RGB, quality 100 without chroma subsampling."""

from __future__ import annotations

import io

from PIL import Image

from noisy_student_tf import storage

JPEG_QUALITY = 100  # upstream utils.save_pic


def save_sample(image_bytes: bytes, path: str) -> bool:
    """Writes the image as a JPEG at `path`; returns False (writes nothing) if the bytes are not an image."""
    try:
        with Image.open(io.BytesIO(image_bytes)) as image:
            image.seek(0)
            rgb = image.convert("RGB")
    except (OSError, ValueError):
        return False
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    storage.write_bytes(path, out.getvalue())
    return True
