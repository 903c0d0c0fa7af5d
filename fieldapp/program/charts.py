"""Charts: inline SVG drawn here, so they work offline, print, and need no script."""
import datetime

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


# Forecast lines differ by dash as well as colour, so they read in print and without colour vision.
LINE_STYLES = (("line-a", "#12233d", ""), ("line-b", "#067647", "7 4"), ("line-c", "#b42318", "2 4"))


def _dashed(dash):
    return f' stroke-dasharray="{dash}"' if dash else ""


def step_chart(title, dates, series, target=None):
    """A step-line chart over days as inline SVG, with a dashed target line.

    `dates` are the days along the bottom; `series` is [(name, counts)], one
    whole-number count per day, drawn as steps (a count holds until it changes).
    """
    width, left, right, top, bottom = 520, 40, 12, 30, 28
    peak = max([n for _, counts in series for n in counts] + [target or 0, 1])
    plot_w, plot_h = width - left - right, 34 * peak
    height = top + plot_h + bottom
    step_x = plot_w / max(len(dates), 1)

    def y(n):
        return top + plot_h - n * (plot_h / peak)

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img"'
        f' aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for n in range(peak + 1):
        parts.append(f'<text x="{left - 8}" y="{y(n) + 5:.1f}" font-size="13" text-anchor="end" fill="currentColor">{n}</text>')
    for i, day in enumerate(dates):
        if i % 30 == 0:
            parts.append(f'<text x="{left + i * step_x:.1f}" y="{height - 8}" font-size="13" fill="currentColor">'
                         f"{day.strftime('%d %b')}</text>")
    parts.append(f'<line x1="{left}" y1="{y(0):.1f}" x2="{width - right}" y2="{y(0):.1f}" stroke="currentColor" stroke-width="1"/>')
    if target is not None:
        parts.append(f'<line class="target" x1="{left}" y1="{y(target):.1f}" x2="{width - right}" y2="{y(target):.1f}"'
                     f' stroke="currentColor" stroke-opacity="0.55" stroke-width="1.5" stroke-dasharray="10 5">'
                     f"<title>Target: {target}</title></line>")
        parts.append(f'<text x="{width - right}" y="{y(target) - 4:.1f}" font-size="12" text-anchor="end"'
                     f' fill="currentColor">target {target}</text>')
    x = left
    for (name, _), (css, colour, dash) in zip(series, LINE_STYLES):
        parts.append(f'<line class="{css}" x1="{x}" y1="14" x2="{x + 22}" y2="14" stroke="{colour}" stroke-width="3"'
                     f'{_dashed(dash)}/>')
        parts.append(f'<text x="{x + 27}" y="19" font-size="14" fill="currentColor">{escape(name)}</text>')
        x += 40 + 8 * len(name)
    for j, ((name, counts), (css, colour, dash)) in enumerate(zip(series, LINE_STYLES)):
        # Lines with equal counts would hide each other: each sits a little apart.
        lift = (j - 1) * 3
        points = []
        for i, n in enumerate(counts):
            points += [f"{left + i * step_x:.1f},{y(n) + lift:.1f}", f"{left + (i + 1) * step_x:.1f},{y(n) + lift:.1f}"]
        summary = f"{name}: {counts[0]} today, {counts[-1]} on {dates[-1].isoformat()}" if counts else name
        parts.append(f'<polyline class="{css}" points="{" ".join(points)}" fill="none" stroke="{colour}" stroke-width="3"'
                     f'{_dashed(dash)}><title>{escape(summary)}</title></polyline>')
    parts.append("</svg>")
    return Markup("".join(parts))


def forecast_charts(forecast):
    """The coverage forecast as (caption, SVG), one chart per district with a line for each shift."""
    dates = [forecast["start"] + datetime.timedelta(days=n) for n in range(forecast["days"])]
    by_district = {}
    for row in forecast["rows"]:
        by_district.setdefault(row["district"], []).append((row["shift"].title(), row["counts"]))
    return [(f"{district}: certified CIT officers per shift, next {forecast['days']} days",
             step_chart(f"{district}: certified CIT officers per shift over the next {forecast['days']} days",
                        dates, series, target=forecast["minimum"]))
            for district, series in by_district.items()]


def fidelity_chart(figures):
    """The share of closed requests a CIT officer reached, by month, as a bar chart."""
    rows = figures["by_month"]
    return bar_chart("CIT officer on scene, share of closed requests, by month", [label for label, *_ in rows],
                     [("On scene", "bar-b", [None if share is None else share * 100 for *_, share in rows])],
                     fmt=lambda v: f"{v:.1f}%")
