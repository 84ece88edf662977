"""Reading a browser screenshot's pixels in the tests, with the standard library only.

Chromium's screenshots are 8-bit RGB or RGBA PNGs, not interlaced: the rows are zlib data,
each row preceded by its filter byte (PNG specification, section 9). ``pixels`` undoes the
filters; ``tallest_run`` measures how tall something of one colour is drawn (a bar of a
chart), so a test can assert on what the page shows, not only on its markup.
"""

from __future__ import annotations

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def pixels(png: bytes) -> list[list[tuple[int, int, int]]]:
    """The image's rows of (r, g, b)."""
    if not png.startswith(SIGNATURE):
        raise ValueError("not a PNG")
    offset, data, header = len(SIGNATURE), b"", None
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind = png[offset + 4 : offset + 8]
        body = png[offset + 8 : offset + 8 + length]
        offset += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            data += body
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("a PNG without IHDR")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError("only 8-bit RGB or RGBA, not interlaced")
    step = 3 if colour == 2 else 4
    stride = width * step
    raw = zlib.decompress(data)
    rows: list[list[tuple[int, int, int]]] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - step] if i >= step else 0
            up = previous[i]
            corner = previous[i - step] if i >= step else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                estimate = left + up - corner
                pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
                best = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + best) & 0xFF
        rows.append([tuple(line[x : x + 3]) for x in range(0, stride, step)])  # type: ignore[misc]
        previous = line
    return rows


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
