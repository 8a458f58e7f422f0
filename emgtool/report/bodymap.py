"""Schematic body map: regions and sides, each examined site coloured by its rate.

The body is drawn in anatomical position (the subject faces the reader, so
the subject's **right is on the viewer's left**; both are labelled).  Regions
are patches: bulbar = head, cervical = neck and arms, thoracic = trunk,
lumbosacral = legs.  A region with an involved site gets a thick red outline.
Each examined site is a disc coloured by fasciculations per minute of rest;
sites with insufficient rest are grey with a "?"; common sites that were not
examined are drawn as small dashed rings, so an empty limb is visibly
"not examined" rather than "normal".  Sites whose muscle has no position
on the map (unknown region or label) are listed in a row under the feet.

Examples
--------
>>> from emgtool.report.bodymap import site_xy
>>> site_xy("biceps", "R")[0] < 5 < site_xy("biceps", "L")[0]
True
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyBboxPatch, Polygon

from emgtool.report.figures import new_figure

__all__ = ["bodymap_figure", "site_xy", "MAP_SITES"]

# Positions of the subject's RIGHT side (viewer's left), in a 10 x 14 box;
# the left side is mirrored about x = 5.  Midline sites sit at x = 5.
MAP_SITES: dict[str, tuple[float, float]] = {
    "facial": (4.6, 13.2),
    "masseter": (4.45, 12.55),
    "tongue": (5.0, 12.45),
    "suprahyoid": (5.0, 12.05),
    "sternocleidomastoid": (4.75, 11.55),
    "trapezius": (4.05, 11.05),
    "deltoid": (3.25, 10.75),
    "biceps": (3.0, 9.9),
    "triceps": (2.6, 9.5),
    "brachioradialis": (2.95, 8.65),
    "flexor_carpi_radialis": (3.05, 8.2),
    "extensor_carpi_radialis": (2.45, 8.35),
    "forearm_flexors": (2.95, 7.85),
    "forearm_extensors": (2.45, 7.85),
    "flexor_carpi_ulnaris": (2.7, 7.5),
    "extensor_digitorum": (2.35, 7.45),
    "abductor_pollicis_brevis": (2.95, 6.45),
    "first_dorsal_interosseous": (2.6, 6.25),
    "abductor_digiti_minimi": (2.25, 6.35),
    "thoracic_paraspinals": (4.4, 9.3),
    "rectus_abdominis": (4.55, 8.0),
    "iliopsoas": (4.4, 6.55),
    "rectus_femoris": (4.3, 5.75),
    "quadriceps": (4.3, 5.35),
    "vastus_lateralis": (3.85, 5.2),
    "vastus_medialis": (4.65, 4.75),
    "hamstrings": (4.15, 4.45),
    "tibialis_anterior": (4.0, 3.1),
    "gastrocnemius": (4.3, 2.6),
    "gastrocnemius_medial": (4.6, 2.75),
    "gastrocnemius_lateral": (3.95, 2.45),
    "soleus": (4.3, 1.95),
    "extensor_digitorum_brevis": (4.05, 0.8),
    "extensor_hallucis_brevis": (4.35, 0.95),
    "abductor_hallucis": (4.7, 0.7),
}
_MIDLINE = {"tongue", "suprahyoid"}
#: Sites drawn as "not examined" rings when absent: the usual survey montage.
COMMON_SITES = (
    "tongue",
    "sternocleidomastoid",
    "deltoid",
    "biceps",
    "triceps",
    "first_dorsal_interosseous",
    "thoracic_paraspinals",
    "rectus_abdominis",
    "vastus_lateralis",
    "tibialis_anterior",
    "gastrocnemius_medial",
    "abductor_hallucis",
)

_REGION_FILL = {
    "bulbar": "#f4ecf7",
    "cervical": "#eaf2f8",
    "thoracic": "#fef9e7",
    "lumbosacral": "#eafaf1",
}


def site_xy(site: str, side: str) -> tuple[float, float] | None:
    """Map position of a site, or None if the map has no place for it."""
    xy = MAP_SITES.get(site)
    if xy is None:
        return None
    x, y = xy
    if site in _MIDLINE:
        return (5.0, y)
    if side == "L":
        return (10.0 - x, y)
    if side == "n/a":  # a lateral muscle without a side: draw it on the midline
        return (5.0, y)
    return (x, y)


def _body_patches() -> dict[str, list]:
    """Region → list of patches (right and left halves)."""

    def mirror(pts):
        return [(10 - x, y) for x, y in pts]

    arm = [
        (3.55, 11.0),
        (2.95, 11.1),
        (2.1, 8.6),
        (1.95, 6.0),
        (2.45, 5.8),
        (3.25, 6.1),
        (3.3, 8.5),
        (3.6, 9.9),
    ]
    leg = [(3.65, 6.8), (4.95, 6.8), (4.95, 1.4), (5.0, 0.45), (3.75, 0.45), (3.8, 1.4)]
    return {
        "bulbar": [Circle((5, 12.7), 0.85)],
        "cervical": [
            FancyBboxPatch((4.55, 11.1), 0.9, 0.75, boxstyle="round,pad=0.02"),
            Polygon(arm, closed=True),
            Polygon(mirror(arm), closed=True),
            Polygon([(3.6, 11.2), (4.6, 11.35), (4.6, 10.9), (3.6, 10.8)], closed=True),
            Polygon(mirror([(3.6, 11.2), (4.6, 11.35), (4.6, 10.9), (3.6, 10.8)]), closed=True),
        ],
        "thoracic": [FancyBboxPatch((3.65, 6.85), 2.7, 4.0, boxstyle="round,pad=0.05")],
        "lumbosacral": [
            Polygon(leg, closed=True),
            Polygon(mirror(leg), closed=True),
            FancyBboxPatch((3.65, 6.3), 2.7, 0.5, boxstyle="round,pad=0.02"),
        ],
    }


def bodymap_figure(summary: dict) -> Figure:
    """The body map figure for a summary dict."""
    fig = new_figure(5.2, 6.4)
    ax = fig.add_axes((0.0, 0.04, 0.82, 0.9))
    ax.set_xlim(0.8, 9.2)
    ax.set_ylim(-0.9, 14.0)
    ax.set_aspect("equal")
    ax.set_axis_off()
    regions = {r["region"]: r for r in summary.get("regions", [])}
    for region, patches in _body_patches().items():
        st = regions.get(region, {}).get("status", "not_examined")
        for p in patches:
            p.set_facecolor(_REGION_FILL[region] if st != "not_examined" else "#f2f2f2")
            if st == "involved":
                p.set_edgecolor("#c0392b")
                p.set_linewidth(2.2)
            else:
                p.set_edgecolor("#7f8c8d")
                p.set_linewidth(0.8)
                if st == "not_examined":
                    p.set_linestyle((0, (3, 2)))
            ax.add_patch(p)
    ax.text(1.2, 13.5, "R", fontsize=14, weight="bold", color="#34495e")
    ax.text(8.5, 13.5, "L", fontsize=14, weight="bold", color="#34495e")
    for region, (x, y) in {
        "bulbar": (6.0, 13.3),
        "cervical": (7.9, 11.4),
        "thoracic": (5.0, 7.15),
        "lumbosacral": (6.8, 4.2),
    }.items():
        st = regions.get(region, {}).get("status", "not_examined").replace("_", " ")
        ax.text(
            x,
            y,
            f"{region}\n({st})",
            fontsize=6,
            ha="left" if region != "thoracic" else "center",
            color="#34495e",
        )

    sites = summary.get("sites", [])
    rates = [
        s["fasciculation_rate_per_min"]
        for s in sites
        if s["fasciculation_rate_per_min"] is not None
    ]
    vmax = max([1.0, *rates])
    norm = PowerNorm(gamma=0.5, vmin=0.0, vmax=vmax)
    cmap = colormaps["YlOrRd"]
    examined = set()
    unplaced = []
    for s in sites:
        examined.add((s["site"], s["side"]))
        xy = site_xy(s["site"], s["side"])
        if xy is None:
            unplaced.append(s)
            continue
        _site_disc(ax, xy, s, cmap, norm)
    for i, s in enumerate(unplaced):
        _site_disc(ax, (1.5 + 1.2 * (i % 7), -0.35), s, cmap, norm)
        ax.text(1.5 + 1.2 * (i % 7), -0.8, s["label"][:12], fontsize=5, ha="center")
    for site in COMMON_SITES:
        for side in ("R", "L") if site not in _MIDLINE else ("n/a",):
            if (site, side) in examined or (
                site in _MIDLINE and any(k[0] == site for k in examined)
            ):
                continue
            xy = site_xy(site, side)
            ax.add_patch(
                Circle(
                    xy,
                    0.16,
                    facecolor="none",
                    edgecolor="#95a5a6",
                    lw=0.8,
                    linestyle=(0, (2, 1.5)),
                )
            )
    cax = fig.add_axes((0.84, 0.25, 0.03, 0.5))
    sm = ScalarMappable(norm=norm, cmap=cmap)
    cb = fig.colorbar(sm, cax=cax)
    cb.set_label("fasciculations / min of rest", fontsize=7)
    cb.ax.tick_params(labelsize=6)
    fig.text(
        0.01,
        0.01,
        "disc = examined site (black ring: involved; grey ?: insufficient rest); "
        "dashed ring = not examined",
        fontsize=5.5,
        color="#34495e",
    )
    return fig


def _site_disc(ax, xy, s: dict, cmap, norm) -> None:
    r = s["fasciculation_rate_per_min"]
    if s["status"] == "insufficient" or r is None:
        ax.add_patch(Circle(xy, 0.2, facecolor="#cccccc", edgecolor="#666666", lw=0.8))
        ax.text(xy[0], xy[1], "?", fontsize=6, ha="center", va="center", color="#333333")
        return
    edge, lw = ("#000000", 1.6) if s["status"] == "involved" else ("#555555", 0.6)
    ax.add_patch(
        Circle(xy, 0.2, facecolor=cmap(norm(np.clip(r, 0, norm.vmax))), edgecolor=edge, lw=lw)
    )
