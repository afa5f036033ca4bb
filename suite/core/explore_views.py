"""Views of an exploration: a self-contained interactive map (HTML with inline SVG and a little
JavaScript, no network) and a PNG of the map with thumbnails or typical texts per cluster."""

from __future__ import annotations

import base64
import html
import io
import json
import textwrap

import numpy as np

from .explore import Exploration, _label_name
from .explore_report import short

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
           "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5",
           "#393b79", "#637939"]
NOISE = "#b0b0b0"
MAX_HTML_THUMBS = 3000  # more items: tooltips only, to keep map.html small
MAX_PNG_CLUSTERS = 12


def colour(cluster: int) -> str:
    return NOISE if cluster < 0 else PALETTE[cluster % len(PALETTE)]


def thumbnail(data, i: int, side: int = 64):
    """Item ``i`` of image or volume ``data`` as an RGB PIL image ``side`` x ``side`` (volumes: the
    middle axial slice), letter-boxed on white."""
    from PIL import Image, ImageOps

    from .io import read_image

    img = read_image(np.asarray(data.items[i])[len(data.items[i]) // 2]) if data.modality == "volume" else data.load(i)
    img = ImageOps.contain(img.convert("RGB"), (side, side))
    canvas = Image.new("RGB", (side, side), "white")
    canvas.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
    return canvas


def _data_uri(img) -> str:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _scaled(coords: np.ndarray, size: int, margin: int) -> np.ndarray:
    """Coordinates ``(N, 2)`` scaled into ``[margin, size - margin]``, y pointing up."""
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    xy = margin + (coords - lo) / span * (size - 2 * margin)
    xy[:, 1] = size - xy[:, 1]
    return xy


_STYLE = """body{font-family:system-ui,sans-serif;margin:16px;color:#222}#wrap{display:flex;gap:16px}
svg{border:1px solid #ddd;background:#fff;max-width:70vw;height:auto}circle{stroke:#fff;stroke-width:.5}
circle.outlier{stroke:#000;stroke-width:1.5}circle.first{stroke:#000;stroke-width:2.5}circle.off{display:none}
#side{min-width:260px;max-width:360px}#card{border:1px solid #ddd;padding:8px;min-height:120px;
white-space:pre-wrap;font-size:13px}#card img{display:block;width:128px;image-rendering:pixelated}
.key{cursor:pointer;font-size:13px;margin:2px 0}.key.off{opacity:.35}.sw{display:inline-block;width:12px;
height:12px;margin-right:6px;vertical-align:middle}p.how{font-size:13px;color:#555}"""

_SCRIPT = """const D=JSON.parse(document.getElementById('data').textContent);
const card=document.getElementById('card'),legend=document.getElementById('legend'),by=document.getElementById('by');
const dots=[...document.querySelectorAll('#map circle')];
function key(i){return by.value==='label'?D.label[i]:D.cluster[i]}
function col(k){if(by.value==='label'){const j=D.classes.indexOf(k);return j<0?D.noise:D.palette[j%D.palette.length]}
return k<0?D.noise:D.palette[k%D.palette.length]}
function draw(){const n={};dots.forEach(d=>{const k=key(+d.dataset.i);d.setAttribute('fill',col(k));
d.dataset.k=String(k);n[k]=(n[k]||0)+1});legend.innerHTML='';Object.keys(n).sort((a,b)=>n[b]-n[a]).forEach(k=>{
const e=document.createElement('div');e.className='key';const s=document.createElement('span');s.className='sw';
s.style.background=col(by.value==='label'?k:+k);e.append(s,(by.value==='label'?(k||'(no label)'):
(+k<0?'noise':'cluster '+k))+' ('+n[k]+')');e.onclick=()=>{e.classList.toggle('off');
dots.forEach(d=>{if(d.dataset.k===String(k))d.classList.toggle('off',e.classList.contains('off'))})};
legend.append(e)})}
dots.forEach(d=>d.addEventListener('mouseenter',()=>{const i=+d.dataset.i;card.textContent='';
if(D.thumbs&&D.thumbs[i]){const im=document.createElement('img');im.src=D.thumbs[i];card.append(im)}
card.append(D.names[i]+'\\ncluster '+D.cluster[i]+(D.label[i]?'\\nlabel '+D.label[i]:'')+
(D.outlier[i]?'\\noutlier':'')+(D.first[i]?'\\nlabel-first rank '+D.first[i]:''))}));
by.onchange=draw;draw();"""


def map_html(x: Exploration, size: int = 800) -> str:
    """A self-contained HTML page: the 2D map as SVG (hover: name, cluster, label, thumbnail;
    legend: click to hide a cluster; colour by cluster or by known label)."""
    emb = x.embeddings
    names, data = emb.names, emb.data
    labels = [_label_name(data, i) for i in range(len(data))]
    outlier = (x.outlier_score > x.outlier_fence).astype(int).tolist()
    rank = {p["index"]: r for r, p in enumerate(x.picks, 1)}
    radius = 5 if len(names) <= 500 else 3.5 if len(names) <= 3000 else 2.5
    dots = []
    for i, (cx, cy) in enumerate(_scaled(x.coords, size, 20)):
        css = "first" if i in rank else "outlier" if outlier[i] else ""
        tip = f"{names[i]} | cluster {int(x.clusters[i])}" + (f" | {labels[i]}" if labels[i] else "")
        dots.append(f'<circle data-i="{i}" cx="{cx:.1f}" cy="{cy:.1f}" r="{radius}" fill="{colour(int(x.clusters[i]))}"'
                    f'{f" class={chr(34)}{css}{chr(34)}" if css else ""}><title>{html.escape(tip)}</title></circle>')
    thumbs = None
    if data.modality in ("image", "volume") and len(data) <= MAX_HTML_THUMBS:
        thumbs = [_data_uri(thumbnail(data, i)) for i in range(len(data))]
    payload = {"names": names, "cluster": x.clusters.tolist(), "label": labels, "classes": list(data.classes),
               "outlier": outlier, "first": [rank.get(i, 0) for i in range(len(names))], "thumbs": thumbs,
               "palette": PALETTE, "noise": NOISE}
    blob = json.dumps(payload, ensure_ascii=False).replace("<", "\\u003c")
    title = html.escape(f"{data.source}: {emb.backbone}")
    how = html.escape(f"{len(names)} items; {x.methods['kmeans'] if x.cluster_source == 'kmeans' else x.methods['density']}"
                      f"; map: {x.map_method}. Black ring: label first; thin black ring: outlier.")
    options = '<option value="cluster">cluster</option>' + ('<option value="label">known label</option>'
                                                              if data.classes else "")
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title><style>{_STYLE}</style>'
            f'</head><body><h2>{title}</h2><p class="how">{how}</p><div id="wrap">'
            f'<svg id="map" viewBox="0 0 {size} {size}" width="{size}" height="{size}" '
            f'xmlns="http://www.w3.org/2000/svg">{"".join(dots)}</svg><div id="side">'
            f'<label>colour by <select id="by">{options}</select></label><div id="card">hover a point</div>'
            f'<div id="legend"></div></div></div><script id="data" type="application/json">{blob}</script>'
            f"<script>{_SCRIPT}</script></body></html>")


def _cluster_order(clusters: np.ndarray) -> list[int]:
    values, counts = np.unique(clusters, return_counts=True)
    return [int(c) for c, _ in sorted(zip(values, counts), key=lambda vc: (vc[0] < 0, -vc[1]))]


def map_png(x: Exploration, path, per_cluster: int = 6) -> None:
    """The map beside one row per cluster (largest first, at most 12): its most typical items as
    thumbnails (images, volumes) or texts."""
    from matplotlib.figure import Figure

    emb = x.embeddings
    order = [c for c in _cluster_order(x.clusters) if c >= 0][:MAX_PNG_CLUSTERS] or _cluster_order(x.clusters)[:1]
    rows = len(order)
    fig = Figure(figsize=(16, max(8.0, 1.15 * rows + 1)), layout="constrained")
    grid = fig.add_gridspec(rows, 2, width_ratios=[1, 1.15])
    ax = fig.add_subplot(grid[:, 0])
    for c in _cluster_order(x.clusters):
        inside = x.clusters == c
        ax.scatter(x.coords[inside, 0], x.coords[inside, 1], s=10 if len(inside) > 1000 else 22, c=colour(c),
                   label="noise" if c < 0 else f"{c}", linewidths=0)
        if c >= 0:
            cx, cy = np.median(x.coords[inside], axis=0)
            ax.text(cx, cy, str(c), fontsize=12, weight="bold", ha="center", va="center",
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": colour(c), "alpha": 0.85})
    flagged = x.outliers
    ax.scatter(x.coords[flagged, 0], x.coords[flagged, 1], s=40, marker="x", c="black", label="outlier")
    picks = [p["index"] for p in x.picks]
    ax.scatter(x.coords[picks, 0], x.coords[picks, 1], s=80, facecolors="none", edgecolors="black",
               linewidths=1.5, label="label first")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"{short(emb.data.source, 80)}\n{emb.backbone}; {x.map_method}", fontsize=10)
    ax.legend(fontsize=7, loc="best", markerscale=0.8, ncol=2)
    visual = emb.data.modality in ("image", "volume")
    names = emb.names
    for row, c in enumerate(order):
        panel = fig.add_subplot(grid[row, 1])
        panel.axis("off")
        typical = x.central_items(c, per_cluster if visual else 3)
        head = f"cluster {c} ({int((x.clusters == c).sum())} items)"
        panel.set_title(head, loc="left", fontsize=9, color=colour(c), weight="bold")
        if visual:
            panel.imshow(np.hstack([np.asarray(thumbnail(emb.data, i, 96)) for i in typical]))
        else:
            lines = [textwrap.shorten(names[i], 110, placeholder="...") for i in typical]
            panel.text(0, 1, "\n".join("- " + t for t in lines), va="top", fontsize=8, transform=panel.transAxes)
    fig.savefig(path, dpi=100)
