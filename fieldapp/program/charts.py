"""Charts: inline SVG drawn here, so they work offline, print, and need no script."""
from markupsafe import Markup, escape

# Each series names its class; app.css themes it, and the fill attribute is the fallback.
CHART_COLOURS = {"bar-a": "#12233d", "bar-b": "#067647", "bar-c": "#b42318"}


def bar_chart(title, labels, series, fmt=str):
    """A horizontal bar chart as inline SVG: one band per label, one bar per series.

    `series` is [(name, css_class, values)], one value per label; None draws
    no bar and shows a dash.
    """
    # A narrow viewBox keeps the text readable when the chart shrinks to a phone's width.
    width, label_w, value_w, bar_h, gap = 520, 112, 92, 18, 14
    legend_h = 28 if len(series) > 1 else 0
    band_h = len(series) * (bar_h + 3) + gap
    height = legend_h + band_h * len(labels) + 4
    peak = max([v for _, _, values in series for v in values if v is not None], default=0) or 1
    scale = (width - label_w - value_w) / peak
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img"'
        f' aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    if legend_h:
        x = label_w
        for name, css, _ in series:
            parts.append(f'<rect class="{css}" x="{x}" y="6" width="14" height="14" fill="{CHART_COLOURS[css]}"/>')
            parts.append(f'<text x="{x + 19}" y="18" font-size="14" fill="currentColor">{escape(name)}</text>')
            x += 36 + 8 * len(name)
    for i, label in enumerate(labels):
        top = legend_h + i * band_h
        parts.append(f'<text x="{label_w - 8}" y="{top + (band_h - gap) / 2 + 5:.1f}" font-size="15" text-anchor="end"'
                     f' fill="currentColor">{escape(str(label)[:14])}</text>')
        for j, (name, css, values) in enumerate(series):
            value, y = values[i], top + j * (bar_h + 3)
            bar_w = 0 if value is None else value * scale
            shown = "—" if value is None else fmt(value)
            if bar_w:
                parts.append(f'<rect class="{css}" x="{label_w}" y="{y}" width="{bar_w:.1f}" height="{bar_h}"'
                             f' fill="{CHART_COLOURS[css]}"><title>{escape(name)}: {escape(shown)}</title></rect>')
            parts.append(f'<text x="{label_w + bar_w + 5:.1f}" y="{y + bar_h - 4}" font-size="14" fill="currentColor">'
                         f"{escape(shown)}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def report_charts(rows):
    """The report's charts as (caption, SVG): requests, diverted against arrested, minutes to accept and to scene."""
    labels = [label for label, _ in rows]
    figures = [f for _, f in rows]

    def scaled(key, factor):
        return [None if f[key] is None else f[key] * factor for f in figures]

    return [
        ("Requests", bar_chart("Requests", labels, [("Requests", "bar-a", [f["requests"] for f in figures])])),
        ("Diverted to crisis services and arrested, as a share of resolved requests",
         bar_chart("Diverted and arrested, share of resolved requests", labels,
                   [("Diverted", "bar-b", scaled("diverted_share", 100)), ("Arrested", "bar-c", scaled("arrested_share", 100))],
                   fmt=lambda v: f"{v:.1f}%")),
        ("Median minutes from the request to the first accept and to on scene",
         bar_chart("Median minutes to first accept and to on scene", labels,
                   [("To accept", "bar-a", scaled("accept_median", 1 / 60)), ("To on scene", "bar-b", scaled("on_scene_median", 1 / 60))],
                   fmt=lambda v: f"{v:.1f} min")),
    ]
