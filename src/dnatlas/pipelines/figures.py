"""The report's figure analogues, from any model (default: the bundled one), on the bundled
*E. coli* K-12 MG1655 genome and its RefSeq annotation (``dnatlas figures``).

    dnatlas figures --out docs/figures            # everything (whole-genome neuron catalog)
    dnatlas figures --out runs/figs --quick       # neuron catalog on the first 400 kb (the demo)

Figure analogues (report numbering; layers 0-based in file names):
  fig2a  tRNA cluster lysT-valT-lysW with its promoter and terminator (Gram map)
  fig2b  the CRISPR-I array downstream of cas2 (ygbF)
  fig2c  REP sites
  fig2d  the csrB noncoding RNA
  fig2e  a close view of a coding sequence (three codon-phase subspaces)
  fig2fgh  1st / 2nd / 3rd codon positions of cpoB
  fig3   offset-dependent similarity over adk (nonlinear colour scale)
  fig4a  neurons in the window around ompG
  supp1  every layer over the tRNA region (Supplementary Figures 1-2)
  neurons/  catalog (AUPRC of every neuron for every track), PR curves (Figure 4e),
            Manhattan plots (Figure 4b), top windows (Supplementary Figure 3)
  offsets.json  3-periodicity and Toeplitz scores per layer, coding vs non-coding
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from dnatlas.models import ModelAdapter, load_model


def default_layer(n_layers: int) -> int:
    """The layer at the depth of the report's 'layer 8' of 12 (0-based)."""
    return max(0, round(n_layers * 8 / 12) - 1)


def _save(fig, path: Path) -> None:
    from dnatlas.analysis.plots import save_figure

    save_figure(fig, path)
    print(f"  wrote {path}", flush=True)


def report_figures(model: str | ModelAdapter | None = None, out: str | Path = "docs/figures",
                   layer: int | None = None, work: str | Path | None = None,
                   quick: bool = False) -> Path:
    """Write every figure analogue into ``out`` (see module docstring); returns ``out``.

    Args:
        layer: 0-based layer of the single-layer figures (default: the report's 8/12 depth).
        work: scratch folder for activations (default ``out/work``).
        quick: neuron catalog on the first 400 kb only (minutes instead of ~20).
    """
    from dnatlas.analysis import figures as F
    from dnatlas.annotation.intervals import bundled_annotation_path, load_annotations
    from dnatlas.files import check_output_dir
    from dnatlas.genome.readers import read_records
    from dnatlas.genome.store_build import bundled_genome_paths

    t0 = time.perf_counter()
    out = check_output_dir(out)
    model = model if isinstance(model, ModelAdapter) else load_model(model)
    layer = default_layer(model.n_layers) if layer is None else layer
    genome = next(p for p in bundled_genome_paths() if "mg1655" in p.name)
    record = next(iter(read_records(genome)))
    seq, seqid = record.seq, record.id
    intervals = load_annotations(bundled_annotation_path())
    print(f"model {model.name}, layer {layer} (0-based), {seqid} "
          f"({len(seq):,} bp)", flush=True)

    def feature(name):
        return F.find_feature(intervals, name)

    def region(name, start, end, **kw):
        fig = F.region_gram_figure(model, seq, start, end, layer, intervals, seqid, **kw)
        _save(fig, out / f"{name}_layer{layer}.png")

    lys_t, cas2, csrb = feature("lysT"), feature("ygbF"), feature("csrB")
    region("fig2a_trna_cluster", lys_t.start - 250, feature("lysW").end + 150)
    region("fig2b_crispr", cas2.end, cas2.end + 700)
    reps = sorted((iv for iv in intervals if iv.type == "repeat_region" and iv.seqid == seqid),
                  key=lambda iv: iv.start)
    pair = min(zip(reps, reps[1:]), key=lambda p: p[1].start - p[0].end)
    region("fig2c_rep", pair[0].start - 150, pair[1].end + 150)
    region("fig2d_csrB", csrb.start - 100, csrb.end + 100)
    cpob = feature("ybgF")  # cpoB, named ybgF in this RefSeq release
    mid = (cpob.start + cpob.end) // 2
    region("fig2e_cds_close", mid - 75, mid + 75)
    _save(F.codon_phase_figure(model, seq, cpob, layer), out / f"fig2fgh_cpoB_phases_layer{layer}.png")
    _save(F.offset_similarity_figure(model, seq, feature("adk"), layer),
          out / f"fig3_adk_offsets_layer{layer}.png")
    _save(F.layer_grid_figure(model, seq, lys_t.start - 250, feature("lysW").end + 150,
                              intervals, seqid), out / "supp1_all_layers_trna_cluster.png")
    _offset_stats(model, seq, intervals, seqid, out)
    work = Path(work) if work else out / "work"
    quick_inputs = _quick_inputs(seq, seqid, intervals, work / "quick-inputs") if quick else None
    _neurons(model, layer, genome, out, work, quick_inputs)
    _neuron_window(model, seq, intervals, seqid, layer, feature("ompG"), out)
    print(f"figures done in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


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
    from dnatlas.files import atomic_write_text

    atomic_write_text(out / "offsets.json", json.dumps(rows, indent=2) + "\n")
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
    from dnatlas.annotation.intervals import bundled_annotation_path
    from dnatlas.pipelines.neurons import CatalogSettings, neuron_catalog

    fasta, gff = quick_inputs or (genome, bundled_annotation_path())
    print(f"  neuron catalog of layer {layer} on {fasta.name}", flush=True)
    neuron_catalog(model, fasta, gff, layer, out / "neurons", site="neurons",
                   acts_dir=work / "acts", settings=CatalogSettings(footnote6=True))


def _neuron_window(model, seq, intervals, seqid, layer, ompg, out: Path) -> None:
    """Figure 4a: the best start, stop and -strand neurons of the catalog around ompG."""
    from dnatlas.analysis import figures as F

    tracks = json.loads((out / "neurons" / "catalog.json").read_text())["tracks"]
    neurons = []
    for track in ("start_codon_2nd", "stop_codon_1st", "CDS", "REP", "tRNA"):
        ranking = tracks.get(track, {}).get("ranking") or []
        if ranking and ranking[0]["auprc"] is not None and ranking[0]["neuron"] not in neurons:
            neurons.append(int(ranking[0]["neuron"]))
    if not neurons:
        return
    fig = F.neuron_window(model, seq, ompg.start - 300, ompg.end + 150, neurons, layer,
                          intervals, seqid)
    _save(fig, out / f"fig4a_ompG_neurons_layer{layer}.png")
