"""Reading a browser screenshot's pixels in the tests (Pillow decodes the PNG).

``tallest_run`` measures how tall something of one colour is drawn (a bar of a chart), so a
test can assert on what the page shows, not only on its markup.
"""

from __future__ import annotations

import io

from PIL import Image


def pixels(png: bytes) -> list[list[tuple[int, int, int]]]:
    """The image's rows of (r, g, b)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    width, height = image.size
    raw = image.tobytes()
    return [
        [(raw[i], raw[i + 1], raw[i + 2]) for i in range(row * width * 3, (row + 1) * width * 3, 3)]
        for row in range(height)
    ]


def hex_colour(text: str) -> tuple[int, int, int]:
    value = text.lstrip("#")
    return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))


def tallest_run(image: list[list[tuple[int, int, int]]], colour: str, tolerance: int = 6) -> int:
    """The most pixels of ``colour`` (within ``tolerance`` per channel) stacked in one column
    without a break: the height of the tallest bar of that colour."""
    want = hex_colour(colour)
    best = 0
    for x in range(len(image[0]) if image else 0):
        run = 0
        for row in image:
            r, g, b = row[x]
            if (
                abs(r - want[0]) <= tolerance
                and abs(g - want[1]) <= tolerance
                and abs(b - want[2]) <= tolerance
            ):
                run += 1
                best = max(best, run)
            else:
                run = 0
    return best
