"""Meta-SAE pipeline: train a meta-SAE on an SAE's decoder rows, next to a random control.

``train_meta_sae(sae, out, ...)`` reads the base SAE, selects its latents (all, a list of
ids, or those a concept-evaluation CSV matched), trains the same meta-SAE twice with the
ordinary SAE trainer -- on the unit-normalised decoder rows and on a random dictionary of
the same shape (:func:`dnatlas.sae.meta.random_dictionary`), same seeds and same batch
indices -- and writes, under ``out``:

    meta_sae/            SAELens folder of the meta-SAE (+ metrics.csv, checkpoint.pt);
                         cfg.json metadata ``dnatlas_meta_sae`` names the base SAE and the
                         SHA-256 of its weights
    random_dictionary/   the same meta-SAE trained on the random dictionary
    metrics.json         FVE, MSE and L0 of both, side by side, and the settings
    children.csv         meta_latent, child, weight, child_concept, child_f1
    hierarchy.json       nodes (meta-latents, base latents, with labels) and weighted edges

A child of meta-latent j is a base latent whose decoder row the meta-SAE encodes with a
non-zero code on j; its weight is that code.

    from dnatlas.pipelines.meta_sae import train_meta_sae
    result = train_meta_sae("default", "runs/meta", preset="saebench")
    result.metrics["decoder"]["fve"], result.metrics["random"]["fve"]
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dnatlas.errors import InputError
from dnatlas.files import atomic_write, file_digest, open_text, write_json

META_DIR, RANDOM_DIR = "meta_sae", "random_dictionary"
OUTPUTS = (META_DIR, RANDOM_DIR, "metrics.json", "children.csv", "hierarchy.json")
CHILD_COLUMNS = ("meta_latent", "child", "weight", "child_concept", "child_f1")


@dataclass
class ConceptFilter:
    """Which rows of a concept-evaluation CSV match a latent.

    A latent matches when, among the rows of ``dictionary`` on ``split``, its best
    ``column`` value is above ``threshold`` (default: per-element F1 > 0.5 on test, as
    InterPLM and Decode-gLM count identified concepts).

    Attributes:
        path: the CSV (columns ``concept``, ``feature``, ``split`` and ``column``; optional
            ``dictionary``, ``labels``, ``strand`` as ``dnatlas concepts eval`` writes).
        dictionary: the ``dictionary`` value of the base SAE; None picks the only SAE
            (``sae:NAME``, preferring the base SAE's folder name) and ignores neurons and
            random-init controls.
        labels: rows of these labels (``real``, not the ``shuffled`` control).
        strand: rows of this strand; None: ``both`` when present, else the only one.
    """

    path: str | Path
    dictionary: str | None = None
    split: str = "test"
    column: str = "f1_per_element"
    threshold: float = 0.5
    labels: str = "real"
    strand: str | None = None


@dataclass
class MetaSAESettings:
    """Overrides of a preset (:data:`dnatlas.sae.meta.META_PRESETS`); None keeps its value.

    Attributes:
        preset: ``saebench`` or ``decode-glm``.
        width: meta-latents; k: active meta-latents per row (batchtopk); l0: L0
            coefficient (jumprelu).
        steps, batch_size, lr, seed: optimisation.
        train_on: ``all`` latents or only those ``matched`` by the concept CSV.
    """

    preset: str = "saebench"
    width: int | None = None
    k: int | None = None
    l0: float | None = None
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int | None = None
    train_on: str | None = None


@dataclass
class MetaSAEResult:
    """What :func:`train_meta_sae` wrote and measured.

    Attributes:
        metrics: ``{"decoder": {...}, "random": {...}}`` each with ``fve``, ``mse``, ``l0``
            (plus ``fve_batch_topk``/``mse_batch_topk`` for BatchTopK: the batch-level
            selection SAEBench evaluates with), the run's ``settings`` and ``warnings``
            (e.g. as many meta-latents as rows).
        latents: base latent id of each training row.
        children: per meta-latent, ``(base latent, weight)`` by weight descending.
    """

    out: Path
    metrics: dict
    latents: list[int]
    children: list[list[tuple[int, float]]]
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def decoder(self) -> dict[str, float]:
        """The meta-SAE's measures (``fve``, ``mse``, ``l0``...) on the decoder rows."""
        return self.metrics["decoder"]

    @property
    def random(self) -> dict[str, float]:
        """The same measures of the meta-SAE trained on the random dictionary."""
        return self.metrics["random"]

    @property
    def warnings(self) -> list[str]:
        """Reasons a number should not be trusted (e.g. as many meta-latents as rows)."""
        return self.metrics["warnings"]


# ---- inputs -------------------------------------------------------------------------------


def parse_latent_ids(spec: str, d_sae: int | None = None) -> list[int]:
    """Latent ids from ``"1,5,9"`` or from a file of ids (commas or whitespace, ``#``
    comments); duplicates dropped, order kept.

    Raises:
        InputError: a token that is not an integer, or an id outside [0, d_sae).
    """
    text, path = str(spec), None
    if Path(text).is_file():
        path = Path(text)
        with open_text(path) as fh:
            lines = [line.split("#", 1)[0] for line in fh]
    else:
        lines = [text]
    ids: list[int] = []
    for number, line in enumerate(lines, 1):
        for token in line.replace(",", " ").split():
            try:
                value = int(token)
            except ValueError:
                raise InputError(f"latent id {token!r} is not an integer", path=path,
                                 line=number if path else None) from None
            if value < 0 or (d_sae is not None and value >= d_sae):
                top = f" (the SAE has latents 0 to {d_sae - 1})" if d_sae else ""
                raise InputError(f"latent id {value} is out of range{top}", path=path,
                                 line=number if path else None)
            ids.append(value)
    if not ids:
        raise InputError("no latent ids given", path=path)
    return list(dict.fromkeys(ids))


def _pick_dictionary(names: set[str], wanted: str | None, base_name: str, path) -> str | None:
    if wanted is not None:
        if wanted not in names:
            raise InputError(f"no rows of dictionary {wanted!r}; it has "
                             f"{', '.join(sorted(names))}", path=path)
        return wanted
    if f"sae:{base_name}" in names:
        return f"sae:{base_name}"
    candidates = sorted(n for n in names if not n.startswith(("neurons", "random-init")))
    if len(candidates) != 1:
        raise InputError(f"the concept table holds dictionaries {', '.join(sorted(names))}; "
                         "choose one with dictionary", path=path, setting="dictionary")
    return candidates[0]


def read_concepts(flt: ConceptFilter, d_sae: int, base_name: str = ""
                  ) -> dict[int, tuple[str, float]]:
    """Best concept per latent: ``{feature: (concept, value)}`` with the highest
    ``flt.column`` on ``flt.split`` among the rows of the base SAE's dictionary.

    Raises:
        InputError: a missing column, a non-numeric value, a feature outside [0, d_sae).
    """
    from dnatlas.outputs import check_finished

    path = Path(flt.path)
    check_finished(path, "concept table's folder")
    with open_text(path, newline="") as fh:
        reader = csv.DictReader(fh)
        columns = set(reader.fieldnames or ())
        missing = [c for c in ("concept", "feature", "split", flt.column) if c not in columns]
        if missing:
            raise InputError(f"the concept table has no column {missing[0]!r}", path=path)
        rows = [(n, r) for n, r in enumerate(reader, 2) if r["split"] == flt.split]
    if not rows:
        raise InputError(f"the concept table has no rows of split {flt.split!r}", path=path)
    if "labels" in columns:
        rows = [(n, r) for n, r in rows if r["labels"] == flt.labels]
    if "strand" in columns and rows:
        strands = {r["strand"] for _, r in rows}
        strand = flt.strand or ("both" if "both" in strands or len(strands) != 1 else strands.pop())
        rows = [(n, r) for n, r in rows if r["strand"] == strand]
    if "dictionary" in columns and rows:
        chosen = _pick_dictionary({r["dictionary"] for _, r in rows}, flt.dictionary,
                                  base_name, path)
        rows = [(n, r) for n, r in rows if r["dictionary"] == chosen]
    if not rows:
        raise InputError(f"the concept table has no rows of split {flt.split!r}, labels "
                         f"{flt.labels!r}, strand {flt.strand or 'both'!r}", path=path)
    best: dict[int, tuple[str, float]] = {}
    for line, row in rows:
        try:
            feature, value = int(row["feature"]), float(row[flt.column])
        except (TypeError, ValueError):
            raise InputError(f"feature {row['feature']!r} or {flt.column} {row[flt.column]!r} "
                             "is not a number", path=path, line=line) from None
        if not 0 <= feature < d_sae:
            raise InputError(f"feature {feature} is out of range: the SAE has {d_sae} latents "
                             "(a table of another dictionary?)", path=path, line=line)
        if feature not in best or value > best[feature][1]:
            best[feature] = (row["concept"], value)
    return best


# ---- the run ------------------------------------------------------------------------------


def _resolve(sae) -> Path:
    from dnatlas.sae import saelens_format

    resolve = getattr(saelens_format, "resolve_sae_path", Path)  # "default", bundled names
    folder = Path(resolve(sae))
    if not folder.exists():
        raise InputError("no such SAE folder", path=folder)
    from dnatlas.outputs import check_finished

    check_finished(folder, "SAE folder")
    return folder


def _open_out(out: Path, force: bool):
    """The locked output folder (:func:`dnatlas.outputs.output_folder`): refused when it
    holds anything unless ``force``, which replaces this command's outputs (removed before
    the run starts) and leaves other files."""
    from dnatlas.outputs import output_folder

    return output_folder(out, "sae meta", own=lambda name: name in OUTPUTS, force=force,
                         earlier=lambda name: True)


def _configs(settings: MetaSAESettings, n_rows: int, d_in: int, device: str):
    from dnatlas.sae.meta import derived_seed, meta_preset, meta_width, steps_for
    from dnatlas.sae.registry import make_config, saved_record
    from dnatlas.sae.training_config import SAETrainingConfig

    preset = meta_preset(settings.preset)
    sae_kw = dict(preset.sae)
    for name, value in (("k", settings.k), ("l0_coefficient", settings.l0)):
        if value is not None:
            sae_kw[name] = value
    width = settings.width or meta_width(preset, n_rows, sae_kw.get("k"))
    train = SAETrainingConfig(**{**preset.train, "device": device})
    for name in ("batch_size", "lr"):
        if getattr(settings, name) is not None:
            setattr(train, name, getattr(settings, name))
    train.steps = settings.steps or steps_for(preset, n_rows, train.batch_size) or train.steps
    for name in ("width", "steps", "batch_size", "lr"):  # k: the architecture's config
        value = getattr(settings, name)
        if value is not None and not value > 0:
            raise InputError(f"{name} must be positive, got {value}", setting=name)
    seed = preset.seed if settings.seed is None else settings.seed
    try:
        cfg = make_config(preset.arch, d_in, int(width), seed=derived_seed(seed, "init"),
                          hook_name="sae_decoder", **sae_kw)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return preset, cfg, train, seed, {**saved_record(cfg), **sae_kw}


def train_meta_sae(sae: str | Path, out: str | Path, settings: MetaSAESettings | None = None,
                   latents: str | list[int] | None = None, concepts: ConceptFilter | None = None,
                   device: str | None = None, force: bool = False) -> MetaSAEResult:
    """Train a meta-SAE on ``sae``'s decoder and the same one on a random dictionary.

    Args:
        sae: the base SAE folder (or ``default``, a bundled SAE's name).
        out: output folder (see the module docstring); refused when not empty unless
            ``force``, which replaces this command's outputs and leaves other files.
        settings: preset and overrides (:class:`MetaSAESettings`).
        latents: ids (a list, ``"1,5,9"`` or a file of ids) to train on; default all, or
            the matched ones when the preset (or ``settings.train_on``) says ``matched``.
        concepts: a concept table that labels children and selects matched latents.
        device: where to train (default cpu).
    """


    from dnatlas.devices import resolve_device
    from dnatlas.sae.meta import (
        decoder_rows,
        meta_preset,
    )
    from dnatlas.sae.saelens_format import load_sae

    settings = settings or MetaSAESettings()
    device = str(resolve_device(device))
    folder = _resolve(sae)
    base = load_sae(folder)
    labels = read_concepts(concepts, base.d_sae, folder.name) if concepts else {}
    train_on = settings.train_on or meta_preset(settings.preset).train_on
    if train_on not in ("all", "matched"):
        raise InputError(f"train_on must be all or matched, got {train_on!r}")
    if latents is not None:
        ids = latents if isinstance(latents, list) else parse_latent_ids(latents, base.d_sae)
    elif train_on == "matched":
        if concepts is None:
            raise InputError(f"the {settings.preset} preset trains on the latents that matched "
                             "a concept: give concepts CSV or latents",
                             setting=("concepts", "latents"))
        ids = sorted(f for f, (_, v) in labels.items() if v > concepts.threshold)
        if not ids:
            raise InputError(f"no latent has {concepts.column} > {concepts.threshold} on "
                             f"{concepts.split}", path=concepts.path)
    else:
        ids = list(range(base.d_sae))
    rows = decoder_rows(base, ids)
    if len(ids) < 2:
        raise InputError(f"a meta-SAE needs at least 2 latents, got {len(ids)}")
    preset, cfg, train, seed, fields = _configs(settings, len(ids), base.d_in, device)
    with _open_out(Path(out), force) as dest:  # locked until the completion marker
        result = _train(dest.path, folder, base, rows, ids, labels, concepts, preset, cfg,
                        fields, train, seed, settings, device)
        dest.complete(OUTPUTS)
        return result


def _train(out: Path, folder: Path, base, rows, ids, labels, concepts, preset, cfg, fields,
           train, seed, settings, device) -> MetaSAEResult:
    """The meta-SAEs of :func:`train_meta_sae` trained and written into ``out``; ``fields``:
    the config's saved record with the settings given (reported in ``settings``)."""
    import copy

    import torch

    from dnatlas.sae.meta import (
        decoder_batches,
        decoder_variance_explained,
        meta_children,
        meta_codes,
        random_dictionary,
    )
    from dnatlas.sae.saelens_format import WEIGHTS_FILENAME, load_sae
    from dnatlas.sae.trainer import SAESpec, SAETrainer

    control = random_dictionary(*rows.shape, seed=seed)
    source = {"base_sae": str(folder), "base_sae_sha256": file_digest(folder / WEIGHTS_FILENAME),
              "base_hook_name": base.cfg.hook_name, "base_model_name": base.cfg.model_name,
              "preset": settings.preset, "latents": ids, "replacement": preset.replacement}
    print(f"training {cfg.arch} meta-SAEs ({cfg.d_in} -> {cfg.d_sae}) on {len(ids)} decoder "
          f"rows of {folder} and on a random dictionary, {train.steps} steps of "
          f"{min(train.batch_size, len(ids)) if not preset.replacement else train.batch_size} "
          f"rows on {device}", file=sys.stderr)
    metrics: dict = {}
    children: list = []
    for name, key, data in (("decoder", META_DIR, rows), ("random", RANDOM_DIR, control)):
        what = (f"decoder of {folder} (sha256 {source['base_sae_sha256'][:16]})"
                if name == "decoder" else "a random dictionary (Gaussian rows, unit norm)")
        spec = SAESpec(None, "sae_decoder", copy.deepcopy(cfg))
        spec.config.model_name = f"meta-SAE on the {what}"
        trainer = SAETrainer([spec], copy.deepcopy(train), out / key, metadata={
            "dnatlas_meta_sae": {**source, "trained_on": name, "description": what}})
        trainer.fit(decoder_batches({"sae_decoder": data}, train.batch_size, seed=seed,
                                    replacement=preset.replacement, steps=train.steps))
        meta = load_sae(out / key, device=device)
        codes = meta_codes(meta, data)
        metrics[name] = decoder_variance_explained(meta, data, codes)
        if hasattr(meta, "encode_batch"):  # batch-level selection in training (batchtopk)
            with torch.no_grad():
                batch = decoder_variance_explained(meta, data, meta.encode_batch(
                    data.to(device)).cpu())
            metrics[name].update({f"{k}_batch_topk": v for k, v in batch.items()})
        if name == "decoder":
            children = meta_children(codes, ids)
    metrics["warnings"] = [] if cfg.d_sae < len(ids) else [
        f"{cfg.d_sae} meta-latents for {len(ids)} rows: a meta-SAE this wide can give every "
        "row a latent of its own, so its FVE says little about shared structure; give "
        f"--width below {len(ids)}"]
    metrics["settings"] = {**source, "latents": len(ids), "arch": cfg.arch, "width": cfg.d_sae,
                           "k": fields["k"], "l0_coefficient": fields["l0_coefficient"],
                           "seed": seed,
                           "steps": train.steps, "batch_size": train.batch_size, "lr": train.lr}
    paths = {"meta_sae": out / META_DIR, "random_sae": out / RANDOM_DIR,
             "metrics": out / "metrics.json", "children": out / "children.csv",
             "hierarchy": out / "hierarchy.json"}
    write_json(paths["metrics"], {**metrics, "latent_ids": ids})
    matched = concepts.threshold if concepts else None
    write_children(paths["children"], children, labels)
    write_json(paths["hierarchy"], hierarchy(children, ids, labels, matched, source))
    return MetaSAEResult(out, metrics, ids, children, paths)


# ---- outputs ------------------------------------------------------------------------------


def write_children(path: Path, children, labels: dict[int, tuple[str, float]]) -> None:
    """children.csv: one row per (meta-latent, child), by meta-latent then weight."""
    with atomic_write(path, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CHILD_COLUMNS)
        for j, kids in enumerate(children):
            for child, weight in kids:
                concept, f1 = labels.get(child, ("", None))
                writer.writerow([j, child, f"{weight:.6g}", concept,
                                 "" if f1 is None else f"{f1:.6g}"])


def hierarchy(children, ids: list[int], labels: dict[int, tuple[str, float]],
              threshold: float | None, source: dict) -> dict:
    """The explorer's graph: ``nodes`` (``m<j>`` meta-latents with children, ``f<i>`` base
    latents; each with ``label``) and ``edges`` (meta -> child, ``weight`` = code)."""
    def matched(i: int) -> bool:
        return i in labels and threshold is not None and labels[i][1] > threshold

    nodes, edges = [], []
    for j, kids in enumerate(children):
        if not kids:
            continue
        tally = Counter(labels[c][0] for c, _ in kids if matched(c))
        named = ", ".join(f"{name} x{n}" if n > 1 else name for name, n in tally.most_common(3))
        label = f"meta {j}: {named}" if named else f"meta {j} ({len(kids)} children)"
        nodes.append({"id": f"m{j}", "kind": "meta", "index": j, "label": label,
                      "n_children": len(kids)})
        edges += [{"source": f"m{j}", "target": f"f{c}", "weight": w} for c, w in kids]
    for i in ids:
        concept, f1 = labels.get(i, (None, None))
        label = f"latent {i}: {concept} ({f1:.2f})" if matched(i) else f"latent {i}"
        nodes.append({"id": f"f{i}", "kind": "latent", "index": i, "label": label,
                      "concept": concept, "f1": f1, "matched": matched(i)})
    return {"format": "dnatlas-meta-sae-hierarchy", "version": 1,
            "base_sae": source["base_sae"], "base_sae_sha256": source["base_sae_sha256"],
            "nodes": nodes, "edges": edges}
