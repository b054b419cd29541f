"""Figures of a feature: a sequence logo of its motif and its landmark profiles.

    from dnatlas.atlas.figures import sequence_logo, landmark_profiles
    page = Atlas.open("runs/atlas").feature("sae:topk16", 317)
    sequence_logo(page["motif"]["pwm"], "logo.png", title="sae:topk16 #317")
    landmark_profiles(page["landmarks"], "profile.png", mean=page["feature"]["mean"])

matplotlib is imported inside the functions (the Agg backend when none is set), so the
rest of the atlas stays light.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLOURS = {"A": "#2ca02c", "C": "#1f77b4", "G": "#ff7f0e", "T": "#d62728"}
LANDMARK_LABELS = {"cds_start": "CDS start", "cds_end": "CDS end", "trna_end": "tRNA 3' end",
                   "rrna_end": "rRNA 3' end", "tss": "TSS"}


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path, dpi: int = 150):
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return fig


def _letter(ax, letter: str, x: float, y: float, height: float):
    """Draw ``letter`` as a filled path scaled into the box [x, x+1] x [y, y+height]."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import PathPatch
    from matplotlib.textpath import TextPath
    from matplotlib.transforms import Affine2D

    path = TextPath((0, 0), letter, size=1, prop=FontProperties(family="DejaVu Sans",
                                                                 weight="bold"))
    box = path.get_extents()
    sx, sy = 0.9 / box.width, height / box.height
    transform = Affine2D().translate(-box.x0, -box.y0).scale(sx, sy).translate(x + 0.05, y)
    ax.add_patch(PathPatch(transform.transform_path(path), color=COLOURS[letter], lw=0))


def sequence_logo(pwm, path=None, title: str | None = None, ax=None, dpi: int = 150):
    """An information-content logo of a position frequency matrix (width x 4, A C G T;
    a flat row-major list as in the ``motifs`` table is accepted). Each column's letters
    are stacked by frequency, the most frequent on top, to a total height of the
    column's information (bits, 2 at most)."""
    plt = _pyplot()
    pfm = np.asarray(pwm, dtype=np.float64).reshape(-1, 4)
    pfm = pfm / np.maximum(pfm.sum(axis=1, keepdims=True), 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        bits = 2.0 + np.where(pfm > 0, pfm * np.log2(pfm), 0.0).sum(axis=1)
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(3.0, 0.45 * len(pfm) + 1), 2.2))
    for i, (row, info) in enumerate(zip(pfm, bits, strict=True)):
        y = 0.0
        for b in np.argsort(row, kind="stable"):
            h = row[b] * info
            if h > 1e-3:
                _letter(ax, "ACGT"[b], i + 0.5, y, h)
                y += h
    ax.set_xlim(0.5, len(pfm) + 0.5)
    ax.set_ylim(0, 2)
    ax.set_xticks(range(1, len(pfm) + 1))
    ax.set_xlabel("position")
    ax.set_ylabel("bits")
    ax.spines[["top", "right"]].set_visible(False)
    if title:
        ax.set_title(title, fontsize=9)
    fig = fig or ax.figure
    return _save(fig, path, dpi)


def landmark_profiles(rows, path=None, title: str | None = None, mean: float | None = None,
                      min_n: int = 1, ax=None, dpi: int = 150, peak: str | None = None,
                      peak_offset: int | None = None):
    """Mean activation against the offset from each landmark: one colour per landmark,
    solid for the sense strand, dashed for antisense; offset 0 (the landmark) marked, and
    the feature's genome-wide ``mean`` as a grey line. ``rows`` are ``landmarks`` table
    rows (``landmark``, ``orientation``, ``offset_min``, ``profile``, ``n``); ``peak``
    (a ``best_landmark``, ``landmark/orientation``) and ``peak_offset`` circle the peak."""
    plt = _pyplot()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 3.2))
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colours: dict[str, str] = {}
    for row in rows:
        if row["n"] < min_n:
            continue
        colour = colours.setdefault(row["landmark"], cycle[len(colours) % len(cycle)])
        prof = np.array([np.nan if v is None else v for v in row["profile"]], dtype=float)
        x = row["offset_min"] + np.arange(len(prof))
        label = f"{LANDMARK_LABELS.get(row['landmark'], row['landmark'])}, " \
                f"{row['orientation']} (n={row['n']})"
        ax.plot(x, prof, color=colour, lw=1.2,
                ls="-" if row["orientation"] == "sense" else "--", label=label)
        if peak == f"{row['landmark']}/{row['orientation']}" and peak_offset is not None \
                and 0 <= peak_offset - row["offset_min"] < len(prof):
            ax.plot([peak_offset], [prof[peak_offset - row["offset_min"]]], "o", ms=9,
                    mfc="none", mec="black", mew=1.2, label=f"peak at {peak_offset:+d} nt")
    ax.axvline(0, color="black", lw=0.8, ls=":")
    if mean is not None:
        ax.axhline(mean, color="grey", lw=0.8, label="genome-wide mean")
    ax.set_xlabel("offset from the landmark (nt, its 5'->3' direction; < 0 upstream)")
    ax.set_ylabel("mean activation")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        ax.set_title(title, fontsize=9)
    fig = fig or ax.figure
    return _save(fig, path, dpi)


def _evidence(row: dict) -> tuple:
    """Sort key of the best-described features: kinds of evidence (concept beyond its
    control, landmark peak, motif), then the concept margin, then the landmark ratio."""
    from dnatlas.atlas.describe import concept_beyond

    kinds = int(concept_beyond(row)) + int(row.get("best_landmark") is not None) + int(
        row.get("top_motif") is not None)
    return (-kinds, -(row.get("score_concept") or 0.0), -(row.get("landmark_ratio") or 0.0),
            row["feature"])


def showcase(folder, dictionary: str, out, n: int = 10, link: str = "",
             prefix: str | None = None) -> str:
    """Figures and a Markdown section for an atlas's ``n`` best-described features
    (explained; most kinds of evidence first) and ``n`` strongest unexplained ones
    (``score_unexplained``): a logo per motif and a landmark-profile figure per feature
    (the profiles of at least 20 landmarks, those a peak may come from),
    written to ``out`` as ``PREFIX-FEATURE-{logo,profile}.png`` (``prefix``: the
    dictionary's name by default; ``link`` prefixes the image paths in the Markdown)."""
    from dnatlas.atlas.landmarks import MIN_N
    from dnatlas.atlas.reader import Atlas

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atlas = Atlas.open(folder)
    try:
        everything = atlas.features(dictionary, order="feature", desc=False, limit=1000,
                                    explained=True)["rows"]
        full = [atlas.feature(dictionary, r["feature"])["feature"] for r in everything]
        best = sorted(full, key=_evidence)[:n]
        strong = [r for r in atlas.features(dictionary, order="score_unexplained",
                                            limit=n, explained=False)["rows"]
                  if (r["score_unexplained"] or 0) > 0]
        lines = []
        for title, rows in (("best-described", best), ("strong but unexplained", strong)):
            lines += [f"#### {len(rows)} {title} features of `{dictionary}`", ""]
            for row in rows:
                page = atlas.feature(dictionary, row["feature"])
                stem = f"{prefix or dictionary.replace(':', '-')}-{row['feature']}"
                name = f"{dictionary} #{row['feature']}"
                lines.append(f"- **#{row['feature']}**: {page['feature']['description']}")
                images = []
                if page["motif"] is not None:
                    sequence_logo(page["motif"]["pwm"], out / f"{stem}-logo.png",
                                  title=f"{name}: motif {page['motif']['consensus']} "
                                        f"({page['motif']['n_sites']} sites)", dpi=80)
                    images.append(f"![logo of {name}]({link}{stem}-logo.png)")
                if page["landmarks"]:
                    landmark_profiles(page["landmarks"], out / f"{stem}-profile.png",
                                      title=f"{name}: landmark profiles",
                                      mean=page["feature"]["mean"], min_n=MIN_N, dpi=80,
                                      peak=page["feature"]["best_landmark"],
                                      peak_offset=page["feature"]["landmark_offset"])
                    images.append(f"![landmark profiles of {name}]({link}{stem}-profile.png)")
                if images:
                    lines += ["", "  " + " ".join(images)]
                _close()
            lines.append("")
        return "\n".join(lines)
    finally:
        atlas.close()


def _close():
    import matplotlib.pyplot as plt

    plt.close("all")
