"""The report's figure analogues, from any model (default: the bundled one), on the bundled
*E. coli* K-12 MG1655 genome and its RefSeq annotation (``dnatlas figures``).

    dnatlas figures --out docs/figures            # everything (whole-genome neuron catalog)
    dnatlas figures --out runs/figs --quick       # neuron catalog on the first 400 kb (the demo)

Figure analogues (report numbering; file names carry the layer key, e.g. ``blocks.2``,
which captions call "layer 2 (blocks.2.neurons)": layers are 0-based everywhere), each
window checked against the features its caption names (``ValueError`` if it misses one);
``captions.md`` in ``out`` gives every caption with its region (1-based, closed):
  fig2a  the tRNA operon lysT-valT-lysW-valZ-lysY-lysZ-lysQ with both flanking intergenic
         regions (upstream: the promoter's; downstream: the terminator's; RefSeq annotates
         neither, so they are not drawn)
  fig2b  the CRISPR-I array between iap and ygbF (cas2): RefSeq has no CRISPR feature, so
         the array is located by its neighbours and checked by its direct repeats
  fig2c  REP sites (the closest pair of RefSeq repeat_regions)
  fig2d  the csrB noncoding RNA
  fig2e  a close view of a coding sequence (three codon-phase subspaces)
  fig2fgh  1st / 2nd / 3rd codon positions of cpoB (ybgF)
  fig3   offset-dependent similarity over adk (nonlinear colour scale)
  fig4a  the best start, stop, CDS, REP and tRNA neurons in the window around ompG
  supp1  every layer over the tRNA operon (Supplementary Figures 1-2)
  neurons/  catalog (AUPRC of every neuron for every track), PR curves with chance and
            exact-codon-match lines (Figure 4e), Manhattan plots (Figure 4b), top windows
            (Supplementary Figure 3)
  offsets.json  3-periodicity and Toeplitz scores per layer, coding vs non-coding
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from dnatlas.models import ModelAdapter, resolve_model


def default_layer(n_layers: int) -> int:
    """The layer at the depth of the report's 'layer 8' of 12 (0-based)."""
    return max(0, round(n_layers * 8 / 12) - 1)


def _save(fig, path: Path) -> None:
    from dnatlas.analysis.plots import save_figure

    save_figure(fig, path)
    print(f"  wrote {path}", flush=True)


def is_figures_output(name: str) -> bool:
    """Whether a name in the output folder is one ``dnatlas figures`` writes."""
    return name.startswith(("fig", "supp")) or name in {
        "neurons", "neurons_all_layers", "offsets.json", "captions.md", "work"}


def report_figures(model: str | ModelAdapter | None = None, out: str | Path = "docs/figures",
                   layer: int | None = None, work: str | Path | None = None,
                   quick: bool = False, force: bool = False) -> Path:
    """:func:`_report_figures` (arguments as it takes them) holding the figure folder's
    lock (:mod:`dnatlas.outputs`): a second run into ``out`` fails at once."""
    from dnatlas.files import check_output_dir
    from dnatlas.outputs import lock_folder

    check_output_dir(out, "figure folder", own=is_figures_output, force=force)
    with lock_folder(out, "figure folder"):
        return _report_figures(model, out, layer, work, quick, force)


def _report_figures(model: str | ModelAdapter | None = None, out: str | Path = "docs/figures",
                    layer: int | None = None, work: str | Path | None = None,
                    quick: bool = False, force: bool = False) -> Path:
    """Write every figure analogue into ``out`` (see module docstring); returns ``out``.

    Args:
        layer: 0-based layer of the single-layer figures (default: the report's 8/12 depth).
        work: scratch folder for activations (default ``out/work``).
        quick: neuron catalog on the first 400 kb only (minutes instead of ~20).
    """
    from dnatlas import bundled
    from dnatlas.analysis import figures as F
    from dnatlas.annotation.intervals import Interval, load_annotations
    from dnatlas.files import atomic_write_text, check_output_dir
    from dnatlas.genome.readers import read_records
    from dnatlas.genome.regions import format_region

    t0 = time.perf_counter()
    out = check_output_dir(out, "figure folder", own=is_figures_output, force=force)
    model = resolve_model(model)
    layer = default_layer(model.n_layers) if layer is None else layer
    genome = bundled.genome_path("ecoli_k12_mg1655")
    record = next(iter(read_records(genome)))
    seq, seqid = record.seq, record.id
    intervals = load_annotations(bundled.DEFAULT_ANNOTATION)  # RefSeq + TransTermHP/pilercr
    print(f"model {model.name}, layer {layer} (0-based), {seqid} "
          f"({len(seq):,} bp)", flush=True)
    captions: list[str] = []

    def feature(name):
        return F.find_feature(intervals, name)

    def region(name, window, title, targets, contain=False, more="", extra=()):
        F.check_window(*window, targets, name, contain, seqid)
        fig = F.region_gram_figure(model, seq, *window, layer, [*intervals, *extra], seqid,
                                   caption=title)
        path = out / f"{name}_blocks.{layer}.png"
        _save(fig, path)
        captions.append(f"- `{path.name}` ({format_region(seqid, *window)}): {title}"
                        f"{'. ' + more if more else ''}.")

    trnas = [feature(n) for n in ("lysT", "valT", "lysW", "valZ", "lysY", "lysZ", "lysQ")]
    cpob, nada = feature("ybgF"), feature("nadA")  # cpoB is named ybgF in this RefSeq release
    operon = F.between(cpob, nada, pad=50)
    up, down = trnas[0].start - cpob.end, nada.start - trnas[-1].end
    region("fig2a_trna_cluster", operon,
           "tRNA operon lysT-lysQ (7 tRNAs) with both flanking intergenic regions", trnas, True,
           f"The intergenic regions, cpoB-lysT ({up} nt, upstream) and lysQ-nadA ({down} nt, "
           "downstream), are where the operon's promoter and terminator are expected; RefSeq "
           "annotates neither, so the track cannot mark them"),
    iap, cas2 = feature("iap"), feature("ygbF")
    crispr, how = _crispr_array(intervals, seqid, seq, iap, cas2)
    region("fig2b_crispr", F.between(iap, cas2, pad=100),
           "CRISPR-I array between iap and ygbF (cas2)", [crispr, iap, cas2], more=how,
           extra=[] if crispr[0] == "CRISPR array" else [Interval(
               seqid, crispr[1], crispr[2], 0, "repeat_region", "CRISPR-I",
               {"rpt_family": "CRISPR"})])
    reps = sorted((iv for iv in intervals if iv.type == "repeat_region" and iv.seqid == seqid),
                  key=lambda iv: iv.start)
    pair = min(zip(reps, reps[1:]), key=lambda p: p[1].start - p[0].end)
    rep_targets = [(f"REP {format_region(seqid, iv.start, iv.end)}", iv.start, iv.end)
                   for iv in pair]
    region("fig2c_rep", (pair[0].start - 150, pair[1].end + 150),
           "the closest pair of REP sites (RefSeq repeat_regions)", rep_targets, contain=True)
    csrb = feature("csrB")
    region("fig2d_csrB", F.flank(csrb, 100, 100), "csrB noncoding RNA with 100 nt each side",
           [csrb], contain=True)
    mid = (cpob.start + cpob.end) // 2
    region("fig2e_cds_close", (mid - 75, mid + 75),
           "close view of 150 nt in the middle of cpoB (ybgF)", [cpob])
    _save(F.codon_phase_figure(model, seq, cpob, layer, seqid=seqid, gene="cpoB (ybgF)"),
          out / f"fig2fgh_cpoB_phases_blocks.{layer}.png")
    captions.append(f"- `fig2fgh_cpoB_phases_blocks.{layer}.png` "
                    f"({format_region(seqid, cpob.start, cpob.end)}): similarities of the 1st, "
                    "2nd and 3rd nucleotide of every codon of cpoB (ybgF).")
    adk = feature("adk")
    _save(F.offset_similarity_figure(model, seq, adk, layer, intervals=intervals, seqid=seqid),
          out / f"fig3_adk_offsets_blocks.{layer}.png")
    captions.append(f"- `fig3_adk_offsets_blocks.{layer}.png` "
                    f"({format_region(seqid, adk.start, adk.end)}): offset-dependent "
                    "similarity over adk, raw and mean-centred (positive part), power colour "
                    "scale (gamma 0.5).")
    _save(F.layer_grid_figure(model, seq, *operon, intervals, seqid,
                              caption="tRNA operon lysT-lysQ, every layer"),
          out / "supp1_all_layers_trna_cluster.png")
    captions.append(f"- `supp1_all_layers_trna_cluster.png` ({format_region(seqid, *operon)}):"
                    " the fig2a window in every layer.")
    _offset_stats(model, seq, intervals, seqid, out)
    work = Path(work) if work else out / "work"
    quick_inputs = _quick_inputs(seq, seqid, intervals, work / "quick-inputs") if quick else None
    _neurons(model, layer, genome, out, work, quick_inputs)
    ompg = feature("ompG")
    window = F.flank(ompg, upstream=300, downstream=150)
    F.check_window(*window, [ompg], "fig4a", True, seqid)
    if _neuron_window(model, seq, intervals, seqid, layer, window, out):
        captions.append(f"- `fig4a_ompG_neurons_blocks.{layer}.png` "
                        f"({format_region(seqid, *window)}): the best neuron of the start "
                        "codon, stop codon, CDS, REP and tRNA tracks around ompG (300 nt "
                        "upstream, 150 nt downstream); + strand up, − strand (RC partner) down.")
    atomic_write_text(out / "captions.md", "# Figure captions (written by `dnatlas figures`)\n\n"
                      f"Model {model.name}, single-layer figures at layer {layer} "
                      f"(blocks.{layer}; layers 0-based, as --layer counts them); regions "
                      "1-based, closed.\n\n"
                      + "\n".join(captions) + "\n")
    print(f"figures done in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def _crispr_array(intervals, seqid, seq, left, right, k: int = 24):
    """The CRISPR array between two genes, as ``(name, start, end)``, and how it was found:
    an annotated CRISPR feature if there is one, else the span of the most repeated
    ``k``-mer of the gap (raises ``ValueError`` unless it occurs at least 3 times)."""
    from collections import defaultdict

    from dnatlas.analysis.figures import between
    from dnatlas.annotation.tracks import is_crispr
    from dnatlas.genome.alphabet import decode

    lo, hi = between(left, right)
    for iv in intervals:
        if iv.seqid == seqid and is_crispr(iv) and iv.start < hi and lo < iv.end:
            return ("CRISPR array", iv.start, iv.end), "the array is annotated"
    text = decode(seq[lo:hi])
    where = defaultdict(list)
    for i in range(len(text) - k + 1):
        where[text[i:i + k]].append(i)
    hits = max(where.values(), key=len)
    if len(hits) < 3:
        raise ValueError(f"no CRISPR array between the genes: no {k}-mer repeats 3 times")
    start, end = lo + hits[0], lo + hits[-1] + k
    return ("CRISPR-I repeats", start, end), (
        "RefSeq has no CRISPR feature, so the array is located by its neighbours ("
        f"its track box is drawn from the repeats); {len(hits)} copies of a {k}-nt direct "
        f"repeat lie at {start + 1:,}-{end:,}")


def _offset_stats(model, seq, intervals, seqid, out: Path) -> None:
    """3-periodicity and Toeplitz score per layer over 40 kb, coding vs non-coding."""
    from dnatlas.analysis.extract import extract_activations
    from dnatlas.analysis.gram import gram_matrix
    from dnatlas.analysis.offsets import offset_profile, periodicity3, toeplitz_score
    from dnatlas.annotation.tracks import label_tracks

    start, end = 1_350_000, 1_390_000  # around ompG
    cds = label_tracks(intervals, seqid, len(seq), tracks=["CDS"]).any_strand("CDS")[start:end]
    names = model.select_keys("all", "neurons")
    acts = extract_activations(model, seq, names, "neurons", start=start, end=end, progress=False)
    rows = {}
    for name in names:
        # Gram matrices of 2 kb tiles (offsets up to 60 nt), averaged over tiles
        stats = {"coding": [], "noncoding": [], "toeplitz": []}
        for s in range(0, end - start - 2000 + 1, 2000):
            gram = gram_matrix(acts[name][s:s + 2000])
            mask = cds[s:s + 2000]
            stats["toeplitz"].append(toeplitz_score(gram, max_offset=60))
            for key, m in (("coding", mask), ("noncoding", ~mask)):
                if m.sum() > 200:
                    stats[key].append(periodicity3(offset_profile(gram, max_offset=60, mask=m)))
        rows[name] = {k: float(np.nanmean(v)) if v else None for k, v in stats.items()}
    from dnatlas.files import write_json

    write_json(out / "offsets.json", rows)
    print("  3-periodicity (coding / non-coding) and Toeplitz score per layer:")
    for name, r in rows.items():
        print(f"    {name:<18} {r['coding']:+.4f} / {r['noncoding']:+.4f}   toeplitz {r['toeplitz']:.3f}")


def _quick_inputs(seq, seqid, intervals, directory: Path, length: int = 400_000):
    """The first ``length`` bp and the features inside them, as FASTA and GFF3 files."""
    from dnatlas.annotation.gff3 import write_gff3
    from dnatlas.genome.alphabet import decode

    directory.mkdir(parents=True, exist_ok=True)
    fasta, gff = directory / "genome.fa", directory / "annotation.gff3"
    fasta.write_text(f">{seqid}\n{decode(seq[:length])}\n")
    write_gff3(gff, [iv for iv in intervals if iv.seqid == seqid and iv.end <= length],
               {seqid: length})
    return fasta, gff


def _neurons(model: ModelAdapter, layer: int, genome: Path, out: Path, work: Path,
             quick_inputs=None) -> None:
    """The neuron catalog with the report's footnote-6 codon labels."""
    from dnatlas import bundled
    from dnatlas.pipelines.neurons import CatalogSettings, neuron_catalog

    fasta, gff = quick_inputs or (genome, bundled.DEFAULT_ANNOTATION)
    print(f"  neuron catalog of layer {layer} on {fasta.name}", flush=True)
    neuron_catalog(model, fasta, gff, layer, out / "neurons", site="neurons",
                   acts_dir=work / "acts", settings=CatalogSettings(footnote6=True))


def _neuron_window(model, seq, intervals, seqid, layer, window, out: Path) -> bool:
    """Figure 4a: the best start, stop, CDS, REP and tRNA neurons of the catalog in
    ``window``; False when the catalog has none."""
    from dnatlas.analysis import figures as F

    tracks = json.loads((out / "neurons" / "catalog.json").read_text())["tracks"]
    labels: dict[int, str] = {}
    for track in ("start_codon_2nd", "stop_codon_1st", "CDS", "REP", "tRNA"):
        ranking = tracks.get(track, {}).get("ranking") or []
        if ranking and ranking[0]["auprc"] is not None:
            best = ranking[0]
            labels.setdefault(int(best["neuron"]), f"{track} (AUPRC {best['auprc']:.3f})")
    if not labels:
        return False
    fig = F.neuron_window(model, seq, *window, list(labels), layer, intervals, seqid, labels)
    _save(fig, out / f"fig4a_ompG_neurons_blocks.{layer}.png")
    return True
