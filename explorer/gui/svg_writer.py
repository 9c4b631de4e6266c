"""Make Qt's SVG (QSvgGenerator) render the same in Qt, Chromium and librsvg.

QSvgGenerator paints faithfully but writes three things other viewers get wrong:

* cosmetic pens become ``vector-effect="non-scaling-stroke"`` inside ``transform="matrix(...)"``
  groups; librsvg and ImageMagick ignore the vector effect and scale the stroke with the
  transform (a 1.5 px curve in a log-scaled view becomes a band tens of pixels wide).
  Here such strokes are flattened: their coordinates are mapped to user units and the
  transform dropped, so ``stroke-width`` means what it says everywhere;
* images are embedded at their own resolution and every viewer but Qt smooths them when
  scaling up (librsvg 2.54 ignores ``image-rendering`` on images). A heatmap image of at
  most :data:`MAX_VECTOR_CELLS` cells becomes one rectangle per run of equal cells in a
  row (crisp in every viewer and editable); larger ones are upsampled with nearest
  neighbour until a cell spans at least :data:`MIN_IMAGE_SCALE` image pixels per output
  unit, and marked ``image-rendering: pixelated``;
* the font family "Sans Serif" is Qt's alias; browsers need a CSS generic family.

Paths that only move (a curve whose points are all NaN) are dropped: they draw nothing
and make PDF tools complain about a ``closepath`` without a current point.
"""

from __future__ import annotations

import base64
import math
import re
import xml.etree.ElementTree as ET

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QImage

__all__ = ["MAX_VECTOR_CELLS", "MIN_IMAGE_SCALE", "clean_qt_svg"]

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
#: Embedded images up to this many pixels become rectangles (one per run of equal cells in a row).
MAX_VECTOR_CELLS = 40_000
#: Larger images are upsampled (nearest neighbour) to at least this many image pixels per output unit.
MIN_IMAGE_SCALE = 2.0
#: ... but never beyond this many pixels.
MAX_IMAGE_PIXELS = 8_000_000
#: Fraction of a cell by which a rectangle reaches under its right and lower neighbours.
SEAM_OVERLAP = 0.03
FONT_FAMILY = "DejaVu Sans, Sans Serif, sans-serif"

_SHAPES = ("polyline", "polygon", "path", "rect", "line")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_TOKEN = re.compile(r"[MLCQSTZmlcqstzHVAhva]|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")

Matrix = tuple[float, float, float, float, float, float]
IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)

ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)


def _tag(el: ET.Element) -> str:
    return el.tag.rsplit("}", 1)[-1]


def _matrix(text: str | None) -> Matrix | None:
    if not text:
        return IDENTITY
    m = re.fullmatch(r"\s*matrix\(([^)]*)\)\s*", text)
    if m is None:
        return None  # a transform this module does not read: leave the group alone
    values = [float(v) for v in _NUMBER.findall(m.group(1))]
    return tuple(values) if len(values) == 6 else None  # type: ignore[return-value]


def _fmt(v: float) -> str:
    text = f"{v:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _apply(m: Matrix, x: float, y: float) -> tuple[float, float]:
    a, b, c, d, e, f = m
    return a * x + c * y + e, b * x + d * y + f


def _points(text: str) -> list[tuple[float, float]]:
    nums = [float(v) for v in _NUMBER.findall(text)]
    return list(zip(nums[0::2], nums[1::2], strict=False))


def _path_from_shape(el: ET.Element) -> tuple[list[tuple[str, list[tuple[float, float]]]], bool] | None:
    """The shape as absolute commands with point lists, and whether it is closed; None if unreadable."""
    tag = _tag(el)
    if tag in ("polyline", "polygon"):
        pts = _points(el.get("points", ""))
        if not pts:
            return [], False
        return [("M", [pts[0]]), *[("L", [p]) for p in pts[1:]]], tag == "polygon"
    if tag == "line":
        pts = [(float(el.get("x1", 0)), float(el.get("y1", 0))), (float(el.get("x2", 0)), float(el.get("y2", 0)))]
        return [("M", [pts[0]]), ("L", [pts[1]])], False
    if tag == "rect":
        x, y = float(el.get("x", 0)), float(el.get("y", 0))
        w, h = float(el.get("width", 0)), float(el.get("height", 0))
        return [("M", [(x, y)]), ("L", [(x + w, y)]), ("L", [(x + w, y + h)]), ("L", [(x, y + h)])], True
    tokens = _TOKEN.findall(el.get("d", ""))
    commands: list[tuple[str, list[tuple[float, float]]]] = []
    arity = {"M": 1, "L": 1, "C": 3, "Q": 2, "S": 2, "T": 1}
    k, cmd = 0, ""
    while k < len(tokens):
        tok = tokens[k]
        if tok.isalpha():
            if tok in "Zz":
                commands.append(("Z", []))
                k += 1
                continue
            if tok not in arity:
                return None  # relative or arc commands: Qt does not write them
            cmd = tok
            k += 1
            continue
        if not cmd:
            return None
        n = arity[cmd]
        try:
            nums = [float(t) for t in tokens[k : k + 2 * n]]
        except ValueError:
            return None
        if len(nums) < 2 * n:
            return None
        commands.append((cmd, list(zip(nums[0::2], nums[1::2], strict=True))))
        k += 2 * n
        if cmd == "M":
            cmd = "L"  # implicit lineto after a moveto
    return commands, False


def _draws(commands: list[tuple[str, list[tuple[float, float]]]]) -> bool:
    return any(c not in ("M", "Z") for c, _ in commands)


def _d(commands: list[tuple[str, list[tuple[float, float]]]], m: Matrix, closed: bool) -> str:
    """Path data with every point mapped through ``m``; bare moves (a subpath that draws nothing) dropped."""
    out: list[str] = []
    pending_move: str | None = None
    for cmd, pts in commands:
        mapped = " ".join(",".join(_fmt(v) for v in _apply(m, *p)) for p in pts)
        if cmd == "M":
            pending_move = f"M{mapped}"
        elif cmd == "Z":
            if pending_move is None and out:
                out.append("Z")
        else:
            if pending_move is not None:
                out.append(pending_move)
                pending_move = None
            out.append(f"{cmd}{mapped}")
    if closed and out:
        out.append("Z")
    return " ".join(out)


def _is_stroked(group: ET.Element) -> bool:
    return group.get("stroke", "none") != "none"


def _png_image(href: str) -> QImage | None:
    if not href.startswith("data:image/"):
        return None
    try:
        data = base64.b64decode(href.split(",", 1)[1], validate=False)
    except (ValueError, IndexError):
        return None
    image = QImage.fromData(data)
    return None if image.isNull() else image.convertToFormat(QImage.Format.Format_ARGB32)


def _argb(image: QImage) -> np.ndarray:
    h, w = image.height(), image.width()
    raw = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    rows = raw.reshape(h, image.bytesPerLine())[:, : 4 * w]
    return rows.copy().view(np.uint32).reshape(h, w)  # 0xAARRGGBB on little- and big-endian alike via QImage


def _image_as_rects(el: ET.Element, image: QImage) -> ET.Element:
    """One ``<rect>`` per run of equal pixels in a row, in a group mapping pixels onto the image's box."""
    x, y = float(el.get("x", 0)), float(el.get("y", 0))
    w, h = float(el.get("width", image.width())), float(el.get("height", image.height()))
    sx, sy = w / image.width(), h / image.height()
    group = ET.Element(
        f"{{{SVG_NS}}}g",
        {
            "transform": f"matrix({_fmt_exact(sx)},0,0,{_fmt_exact(sy)},{_fmt_exact(x)},{_fmt_exact(y)})",
            "stroke": "none",
            "shape-rendering": "crispEdges",
        },
    )
    pixels = _argb(image)
    n_rows, n_cols = pixels.shape
    for row in range(n_rows):
        # Runs overlap the next cell by SEAM_OVERLAP (drawn over by it), so antialiased viewers show no seams.
        height = "1" if row == n_rows - 1 else f"{1 + SEAM_OVERLAP:g}"
        line = pixels[row]
        starts = np.flatnonzero(np.r_[True, line[1:] != line[:-1]])
        ends = np.r_[starts[1:], line.size]
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            value = int(line[s])
            alpha = (value >> 24) & 0xFF
            if alpha == 0:
                continue
            width = str(e - s) if e == n_cols else f"{e - s + SEAM_OVERLAP:g}"
            attrs = {"x": str(s), "y": str(row), "width": width, "height": height, "fill": f"#{value & 0xFFFFFF:06x}"}
            if alpha != 255:
                attrs["fill-opacity"] = _fmt_exact(alpha / 255)
            ET.SubElement(group, f"{{{SVG_NS}}}rect", attrs)
    return group


def _fmt_exact(v: float) -> str:
    return f"{v:.9g}"


def _crisp_image(el: ET.Element, image: QImage, m: Matrix) -> None:
    """Upsample a large image (nearest neighbour) so viewers that smooth it cannot blur its cells."""
    w, h = float(el.get("width", image.width())), float(el.get("height", image.height()))
    a, b, c, d, _, _ = m
    out_w, out_h = w * math.hypot(a, b), h * math.hypot(c, d)
    k = math.ceil(max(out_w / image.width(), out_h / image.height()) * MIN_IMAGE_SCALE)
    k = min(k, int(math.sqrt(MAX_IMAGE_PIXELS / max(image.width() * image.height(), 1))))
    if k > 1:
        image = image.scaled(image.width() * k, image.height() * k, Qt.AspectRatioMode.IgnoreAspectRatio,
                             Qt.TransformationMode.FastTransformation)  # fmt: skip
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        image.save(buffer, "PNG")
        buffer.close()
        el.set(f"{{{XLINK_NS}}}href", "data:image/png;base64," + bytes(data.toBase64().data()).decode("ascii"))
    el.set("image-rendering", "pixelated")
    el.set("style", "image-rendering:optimizeSpeed;image-rendering:pixelated")


def _clean_group(group: ET.Element, flattenable: bool = True) -> list[ET.Element]:
    """The group split into runs: flattened strokes (no transform) and everything else (kept transformed).

    ``flattenable`` is False inside an ancestor with a transform (strokes are then left as they are).
    """
    m = _matrix(group.get("transform")) if flattenable else None
    attrs = dict(group.attrib)
    if "font-family" in attrs:
        attrs["font-family"] = FONT_FAMILY
    flat_attrs = {k: v for k, v in attrs.items() if k != "transform"}
    runs: list[tuple[bool, list[ET.Element]]] = []
    for child in list(group):
        tag = _tag(child)
        flat = False
        if tag == "g":
            inner_ok = m is not None and m == IDENTITY
            parts = [part for part in _clean_group(child, inner_ok) if len(part)]
            if parts and runs and not runs[-1][0]:
                runs[-1][1].extend(parts)
            elif parts:
                runs.append((False, parts))
            continue
        if tag in _SHAPES:
            cosmetic = child.attrib.pop("vector-effect", None) == "non-scaling-stroke"
            parsed = _path_from_shape(child)
            if parsed is not None and not _draws(parsed[0]):
                continue  # draws nothing (all its points were NaN)
            if cosmetic and m is not None and _is_stroked(group) and parsed is not None:
                commands, closed = parsed
                new = ET.Element(f"{{{SVG_NS}}}path", {k: v for k, v in child.attrib.items()
                                                        if k not in ("points", "d", "x", "y", "width", "height",
                                                                     "x1", "y1", "x2", "y2")})  # fmt: skip
                new.set("d", _d(commands, m, closed))
                child, flat = new, True
        elif tag == "image":
            href = child.get(f"{{{XLINK_NS}}}href") or child.get("href") or ""
            image = _png_image(href)
            if image is not None and image.width() * image.height() <= MAX_VECTOR_CELLS:
                child = _image_as_rects(child, image)
            elif image is not None and m is not None:
                _crisp_image(child, image, m)
        if runs and runs[-1][0] == flat:
            runs[-1][1].append(child)
        else:
            runs.append((flat, [child]))
    out = []
    for flat, children in runs:
        g = ET.Element(f"{{{SVG_NS}}}g", flat_attrs if flat else attrs)
        g.text = "\n"
        g.extend(children)
        for c in children:
            c.tail = "\n"
        out.append(g)
    return out


def clean_qt_svg(svg: bytes | str) -> bytes:
    """Rewrite QSvgGenerator's output for every viewer (see the module docstring).

    Parameters
    ----------
    svg : bytes or str
        A document written by ``QSvgGenerator``.

    Returns
    -------
    bytes
        UTF-8 SVG 1.1 with the same drawing: strokes in user units, no vector effects,
        heatmap cells as rectangles (or crisp upsampled images), text still text.
    """
    root = ET.fromstring(svg.encode("utf-8") if isinstance(svg, str) else svg)
    root.set("version", "1.1")
    root.attrib.pop("baseProfile", None)
    children = list(root)
    for child in children:
        root.remove(child)
    for child in children:
        if _tag(child) == "g":
            for part in _clean_group(child):
                if len(part):
                    root.append(part)
        else:
            root.append(child)
    root.text = "\n"
    body = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n' + body + "\n").encode("utf-8")
