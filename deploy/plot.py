"""Loss and accuracy curves of the demo's trainers as one SVG file (no plotting library needed)."""
import json
import sys

target, histories = sys.argv[1], sys.argv[2:]
runs = {}
for history in histories:
    for line in open(history):
        record = json.loads(line)
        if "step" in record and "loss" in record:
            runs.setdefault(record["trainer"], []).append(record)

width, height, margin = 900, 360, 50
colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
max_time = max((r["time"] for rows in runs.values() for r in rows), default=1) or 1
parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
         '<rect width="100%" height="100%" fill="white"/>']
panels = [("loss", 0, max((r["loss"] for rows in runs.values() for r in rows), default=1) or 1),
          ("accuracy", width // 2, 1.0)]
for key, left, top_value in panels:
    x0, x1, y0, y1 = left + margin, left + width // 2 - 20, height - margin, 30
    parts.append(f'<text x="{(x0 + x1) / 2}" y="18" text-anchor="middle">{key} (batch) vs seconds</text>')
    parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="black"/><line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="black"/>')
    parts.append(f'<text x="{x0 - 5}" y="{y1 + 4}" text-anchor="end">{top_value:.2f}</text><text x="{x0 - 5}" y="{y0}" text-anchor="end">0</text>')
    parts.append(f'<text x="{x1}" y="{y0 + 15}" text-anchor="end">{max_time:.0f} s</text>')
    for index, (name, rows) in enumerate(sorted(runs.items())):
        points = " ".join(f'{x0 + (x1 - x0) * r["time"] / max_time:.1f},{y0 - (y0 - y1) * min(r[key], top_value) / top_value:.1f}' for r in rows)
        parts.append(f'<polyline fill="none" stroke="{colors[index % len(colors)]}" stroke-width="1.2" points="{points}"/>')
        if key == "loss":
            parts.append(f'<text x="{x1 - 5}" y="{y1 + 15 * (index + 1)}" text-anchor="end" fill="{colors[index % len(colors)]}">{name}</text>')
parts.append("</svg>")
open(target, "w").write("\n".join(parts))
