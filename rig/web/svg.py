"""Charts as inline SVG drawn on the server, and the small formatters pages share.

Inline SVG needs no script and nothing from a CDN, so the same chart works in the dashboard, in
the static report opened offline and in a CI artefact viewer. Every mark carries its numbers as
`data-*` attributes and a `<title>` (the tooltip), so a reader - or a browser test - reads exactly
what was drawn.
"""

from datetime import datetime
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 640, 200
PAD_LEFT, PAD_BOTTOM, PAD_TOP = 44, 36, 12


def duration(seconds) -> str:
    """1.2 s, 3 min 4 s, 2 h 5 min; '-' when unknown."""
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def when(iso) -> str:
    """An ISO timestamp as 'YYYY-MM-DD HH:MM:SS' (UTC as stored); '-' when missing."""
    if not iso:
        return "-"
    try:
        return datetime.fromisoformat(str(iso)).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return str(iso)


def _frame(title: str, top: float, unit: str, count: int, label_of) -> list[str]:
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
             f'xmlns="http://www.w3.org/2000/svg" aria-label="{escape(title)}">', f"<title>{escape(title)}</title>"]
    base = HEIGHT - PAD_BOTTOM
    for frac in (0, 0.5, 1):
        y = base - frac * (base - PAD_TOP)
        parts.append(f'<line class="grid" x1="{PAD_LEFT}" y1="{y:.1f}" x2="{WIDTH}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{PAD_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{_number(top * frac)}{escape(unit)}</text>")
    step = max(1, count // 10)  # at most ~10 labels under the x axis
    for i in range(0, count, step):
        parts.append(f'<text class="axis" x="{_x(i, count):.1f}" y="{HEIGHT - PAD_BOTTOM + 14}" '
                     f'text-anchor="middle">{escape(label_of(i))}</text>')
    return parts


def _x(i: int, count: int) -> float:
    slot = (WIDTH - PAD_LEFT) / max(count, 1)
    return PAD_LEFT + slot * (i + 0.5)


def _number(v: float) -> str:
    return f"{v:.0f}" if v == int(v) or v >= 10 else f"{v:.1f}"


def stacked_bars(columns: list[tuple[str, dict]], keys: tuple[str, ...], title: str, unit: str = "") -> Markup:
    """One bar per column, stacked by `keys` (bottom first); each segment has class `bar-KEY` and
    data-column/data-key/data-value. `columns`: [(label, {key: value})]."""
    if not columns:
        return Markup(f'<p class="empty">{escape(title)}: nothing recorded yet</p>')
    top = max(sum(values.get(k, 0) for k in keys) for _, values in columns) or 1
    parts = _frame(title, top, unit, len(columns), lambda i: columns[i][0])
    base = HEIGHT - PAD_BOTTOM
    scale = (base - PAD_TOP) / top
    width = max(2.0, (WIDTH - PAD_LEFT) / len(columns) * 0.7)
    for i, (label, values) in enumerate(columns):
        y = base
        x = _x(i, len(columns)) - width / 2
        for key in keys:
            value = values.get(key, 0)
            height = value * scale
            y -= height
            parts.append(f'<rect class="bar-{escape(key)}" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
                         f'height="{height:.1f}" data-column="{escape(label)}" data-key="{escape(key)}" '
                         f'data-value="{value}"><title>{escape(label)}: {value} {escape(key)}</title></rect>')
    parts.append("</svg>")
    return Markup("".join(parts))


def line(points: list[tuple[str, float | None]], title: str, unit: str = "") -> Markup:
    """A line through (label, value) points, a dot per point (class `point`, data-column/data-value);
    a None value leaves a gap."""
    known = [v for _, v in points if v is not None]
    if not known:
        return Markup(f'<p class="empty">{escape(title)}: nothing recorded yet</p>')
    top = max(known) or 1
    parts = _frame(title, top, unit, len(points), lambda i: points[i][0])
    base = HEIGHT - PAD_BOTTOM
    scale = (base - PAD_TOP) / top
    path: list[str | None] = []
    dots: list[str] = []
    for i, (label, value) in enumerate(points):
        if value is None:
            path.append(None)
            continue
        x, y = _x(i, len(points)), base - value * scale
        path.append(f"{x:.1f},{y:.1f}")
        dots.append(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3" data-column="{escape(label)}" '
                    f'data-value="{value:g}"><title>{escape(label)}: {_number(value)}{escape(unit)}</title></circle>')
    for segment in " ".join(p or "|" for p in path).split("|"):
        if segment.strip():
            parts.append(f'<polyline class="line" points="{segment.strip()}"/>')
    parts.extend(dots)
    parts.append("</svg>")
    return Markup("".join(parts))
