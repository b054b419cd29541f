"""extract, neurons and sae train under torchrun: 2 gloo processes give what 1 process gives.

Each multi-process test spawns 2 ranks (``torch.multiprocessing.spawn``, the environment
torchrun would set, a free MASTER_PORT) that call the pipeline functions, then runs the
same job in this process and compares: activation folders byte for byte, catalogs file
for file, SAEs step for step within float tolerance.
"""

import json
import os
import socket

import numpy as np
import pytest
import torch

from dnatlas import distributed
from dnatlas.architectures.hyenadna import HyenaConfig
from tests.helpers import write_inputs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# ----------------------------------------------------------------------------- harness


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, job, args) -> None:
    """One spawned rank: torchrun's environment, then ``job(*args)`` (whose pipelines
    initialise the process group themselves, as under torchrun)."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    job(*args)


def _spawn(job, *args, world: int = 2) -> None:
    torch.multiprocessing.spawn(_rank_main, args=(world, _free_port(), job, args),
                                nprocs=world, join=True)


def _files(folder):
    """``{relative path: bytes}`` of every file under ``folder``."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _hyena_folder(path):
    """A random-init HyenaDNA (causal, 1024 nt, no RC equivariance): only config.json."""
    path.mkdir(parents=True)
    cfg = HyenaConfig(d_model=8, n_layer=1, d_inner=16, max_seq_len=1024, emb_dim=5,
                      filter_order=8)
    (path / "config.json").write_text(json.dumps(cfg.to_dict()))
    return f"hyenadna:{path}:random-init"


def _two_rank_jobs(models, fasta, gff, out):
    """What the fast tests compare, all in one spawn (each spawn costs seconds of imports)."""
    _extract_all(models, fasta, gff, out / "extract")
    _train_two_ranks(models["model"], fasta, out / "sae")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Tiny DNAtlas and HyenaDNA specs, the FASTA and GFF3 of tests.helpers.write_inputs."""
    tmp = tmp_path_factory.mktemp("inputs")
    model, fasta, gff = write_inputs(tmp)
    return {"model": str(model), "hyena": _hyena_folder(tmp / "hyena")}, fasta, gff


@pytest.fixture(scope="module")
def two_ranks(inputs, tmp_path_factory):
    """The outputs of 2 gloo ranks (``_two_rank_jobs``)."""
    out = tmp_path_factory.mktemp("two_ranks")
    _spawn(_two_rank_jobs, *inputs, out)
    return out


# ----------------------------------------------------------------------------- shard


def test_shard_is_contiguous_balanced_and_covers_every_item_once():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 1000, 97)
    items = [range(0, n) for n in lengths]
    for world in (1, 2, 3, 8):
        parts = [distributed.shard(items, r, world) for r in range(world)]
        assert [x for part in parts for x in part] == items  # in order, once each
        owners = distributed.shard_owners(lengths, world)
        assert np.all(np.diff(owners) >= 0)
        loads = np.array([sum(len(x) for x in part) for part in parts])
        assert np.abs(loads - lengths.sum() / world).max() <= lengths.max()
    # a weight function, and more ranks than items: the extra ranks get nothing
    assert distributed.shard(["a", "bb", "ccc"], 1, 2, weights=len) == ["ccc"]
    assert [distributed.shard(2, r, 4) for r in range(4)] == [[0], [], [1], []]
    assert distributed.shard([3, 1, 2]) == [3, 1, 2]  # one process: everything


def test_one_process_collectives_are_identities():
    a = np.arange(6.0).reshape(2, 3)
    assert distributed.all_reduce_array(a) is a
    assert distributed.all_gather_object({"x": 1}) == [{"x": 1}]
    assert distributed.on_main(lambda x: x + 1, 1) == 2
    assert distributed.world_size() == 1 and distributed.is_main()


# ----------------------------------------------------------------------------- extract


EXTRACT_JOBS = {  # name: (model, strand, layout, chunk, batch)
    "dnatlas": ("model", "both", "CL", 300, 2),   # − strand from the RC permutation
    "hyena": ("hyena", "both", "LC", 250, 2),     # − strand from a reverse-complement pass
    "hyena_paired": ("hyena", "paired", "CL", 350, 1),
}


def _extract_all(models, fasta, gff, out):
    from dnatlas.pipelines.extract import extract_genome

    for name, (model, strand, layout, chunk, batch) in EXTRACT_JOBS.items():
        extract_genome(models[model], fasta, out / name, layers="all", strand=strand,
                       layout=layout, chunk_size=chunk, batch_size=batch)
    _scores(out, fasta, gff)


def _scores(out, fasta, gff):
    """Every neuron's AP and top windows, the ranks sharing the neurons (RC pairs and, for
    HyenaDNA, + and − copies), saved by rank 0."""
    from dnatlas.analysis.activation_files import open_activations
    from dnatlas.analysis.neurons import GenomeLabels
    from dnatlas.annotation.intervals import load_annotations
    from dnatlas.annotation.tracks import label_tracks
    from dnatlas.genome.readers import read_records
    from dnatlas.pipelines.neurons import _scan_shared

    records, intervals = list(read_records(fasta)), load_annotations(gff)
    labels = GenomeLabels.from_tracks({r.id: label_tracks(intervals, r.id, len(r)) for r in records},
                                      ["CDS", "tRNA"])
    for name in ("dnatlas", "hyena_paired"):
        acts = open_activations(out / name)
        layer = acts.layers[-1]
        arrays = [acts.load(layer, "+" if name == "dnatlas" else "paired", seqid=r.id)
                  for r in records]
        auprc, windows = _scan_shared(arrays, labels, acts.rc_permutation(layer),
                                      arrays[0].shape[0], seqs=[r.seq for r in records],
                                      top_k=2, half_window=5)
        if distributed.is_main():
            np.save(out / f"{name}_auprc.npy", auprc)
            (out / f"{name}_windows.txt").write_text(repr(windows))


def test_two_processes_extract_the_same_bytes_and_neuron_scores_as_one(inputs, two_ranks,
                                                                        tmp_path):
    _extract_all(*inputs, tmp_path)  # one process: extract_to_dir, scan_neurons
    for name in EXTRACT_JOBS:
        one, two = _files(tmp_path / name), _files(two_ranks / "extract" / name)
        assert one.keys() == two.keys() and "meta.json" in one
        assert len(one) >= 3, one.keys()
        for file in one:
            assert one[file] == two[file], (name, file)
    for name in ("dnatlas", "hyena_paired"):
        for file in (f"{name}_auprc.npy", f"{name}_windows.txt"):
            assert (tmp_path / file).read_bytes() == (two_ranks / "extract" / file).read_bytes()


# ----------------------------------------------------------------------------- neurons


def _catalog(model, fasta, gff, out):
    from dnatlas.pipelines.neurons import CatalogSettings, neuron_catalog

    neuron_catalog(model, fasta, gff, layers="0,2", out=out,
                   settings=CatalogSettings(windows=3, chunk_size=700, manhattan=[],
                                            tracks=["CDS", "tRNA"]))


@pytest.mark.slow
def test_two_processes_write_the_same_neuron_catalog_as_one(tmp_path):
    model, fasta, gff = write_inputs(tmp_path / "in")
    _spawn(_catalog, str(model), fasta, gff, tmp_path / "two")
    _catalog(str(model), fasta, gff, tmp_path / "one")
    one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert one.keys() == two.keys()
    tables = [f for f in one if f.endswith((".csv", ".json", ".npz", ".npy"))]
    assert {"layers.csv", "blocks.0.neurons/catalog.csv", "blocks.2.neurons/top_windows.json",
            "acts/meta.json"} <= set(tables)
    for file in tables:
        assert one[file] == two[file], file


# ----------------------------------------------------------------------------- sae train


def _train(model, fasta, out, streams=None, arch="topk", resume=False, steps=6):
    """6 steps of 96 rows on 2 layers; the learning rate is constant (no warm-up in 6 steps),
    so 4 steps resumed to 6 equal 6 steps."""
    from dnatlas.pipelines.sae import SAEHyperparameters, WindowSettings, train_sae

    hyper = SAEHyperparameters(arch=arch, k=4, expansion=2, steps=steps, batch_size=96,
                               lr=1e-2, checkpoint_every=4)
    windows = WindowSettings(fasta, window=64, windows_per_batch=2, seed=3, streams=streams)
    return train_sae(model, windows, "0,2", out, hyper, buffer_rows=384, device="cpu",
                     resume=resume)


def _train_two_ranks(model, fasta, out):
    from dnatlas.errors import InputError

    try:  # refused before any step: its top-k runs over the whole batch
        _train(model, fasta, out / "batchtopk", arch="batchtopk")
    except InputError as exc:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"refused.{distributed.rank()}").write_text(str(exc))
    _train(model, fasta, out / "sae")
    _train(model, fasta, out / "resumed", steps=4)  # then resumed, each rank from its stream
    _train(model, fasta, out / "resumed", resume=True)


def test_two_ranks_of_half_batches_train_the_sae_one_process_trains(inputs, two_ranks,
                                                                      tmp_path):
    from dnatlas.errors import InputError
    from dnatlas.sae.saelens_format import load_sae

    model, fasta = inputs[0]["model"], inputs[1]
    two = two_ranks / "sae"
    assert all("batchtopk" in (two / f"refused.{r}").read_text() for r in (0, 1))
    _train(model, fasta, tmp_path / "one", streams=2)  # the same 2 streams in 1 process
    _train(model, fasta, tmp_path / "plain")           # 1 stream: other batches
    for layer in ("blocks.0.residual", "blocks.2.residual"):
        one = load_sae(tmp_path / "one" / layer)
        for ranks in (load_sae(two / "sae" / layer), load_sae(two / "resumed" / layer)):
            for name, value in one.state_dict().items():
                torch.testing.assert_close(ranks.state_dict()[name], value, rtol=1e-4,
                                           atol=1e-5)
        assert not torch.allclose(load_sae(tmp_path / "plain" / layer).W_dec, one.W_dec,
                                  atol=1e-3)
        rows = [np.genfromtxt(d / layer / "metrics.csv", delimiter=",", names=True)
                for d in (tmp_path / "one", two / "sae")]
        for column in ("loss", "mse", "l0", "fvu", "dead_fraction"):
            np.testing.assert_allclose(rows[1][column], rows[0][column], rtol=1e-4)
        cfg = json.loads((two / "sae" / layer / "cfg.json").read_text())
        assert cfg["metadata"]["dnatlas_data"]["streams"] == 2
    with pytest.raises(InputError, match="2 process"):  # it holds 2 ranks' stream states
        _train(model, fasta, two / "sae", streams=2, resume=True)
