"""Helpers shared by several test files (test files do not import from each other).

* :class:`ToyRCModel`, :class:`ToyAdapter`, :func:`tiny_model`, :func:`write_inputs`: models
  and inputs for extraction, Gram maps, neurons and figures (from test_extract).
* :data:`INTERVALS`, :func:`save_png`: annotation tracks and figure saving (from test_plots).
* :func:`write_genbank`, :data:`BAD_FASTA`, :func:`all_bad_cases`, :data:`BAD_NAMES`: bad
  sequence files for the readers and ``dnatlas data`` (from test_readers).
"""

import gzip
from types import SimpleNamespace

import numpy as np
import torch
from Bio import SeqIO
from Bio.Seq import Seq
from Bio.SeqRecord import SeqRecord

from dnatlas.annotation.intervals import Interval
from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig
from dnatlas.models import ModelAdapter
from dnatlas.models.protocol import module_state

# ----------------------------------------------------------------------------- models


class ToyRCModel(torch.nn.Module):
    """A tiny RC-equivariant dilated CNN with the DNAtlas activation interface.

    Weights are symmetrised so that the activations on the reverse complement are
    ``act[..., perm].flip(1)`` (perm pairs channel i with i + C/2), with zero padding at
    the ends, like RCPS. A second model besides DNAtlas: extraction works for any model.
    """

    def __init__(self, d=8, c=12, dilations=(1, 4, 2), kernel=5, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.d, self.c, self.kernel, self.dilations = d, c, kernel, dilations
        self.p_in = torch.tensor([3, 2, 1, 0])
        self.p_d = torch.cat([torch.arange(d // 2, d), torch.arange(d // 2)])
        self.p_c = torch.cat([torch.arange(c // 2, c), torch.arange(c // 2)])
        self.embed = torch.nn.Parameter(self._sym(torch.randn(d, 4, 1, generator=g), self.p_d, self.p_in))
        self.convs = torch.nn.ParameterList(
            [self._sym(torch.randn(c, d, kernel, generator=g) / d, self.p_c, self.p_d) for _ in dilations])
        self.outs = torch.nn.ParameterList(
            [self._sym(torch.randn(d, c, 1, generator=g) / c, self.p_d, self.p_c) for _ in dilations])
        self.config = SimpleNamespace(n_layers=len(dilations))

    @staticmethod
    def _sym(w, p_out, p_in):
        return (w + w[p_out][:, p_in].flip(-1)) / 2

    @property
    def receptive_field(self):
        return sum((self.kernel - 1) // 2 * d for d in self.dilations)

    def rc_channel_permutation(self, site):
        return self.p_d if site.split(".")[-1] in ("residual", "embed") else self.p_c

    def forward(self, tokens, output_activations=()):
        x = torch.nn.functional.one_hot(tokens.clamp(max=4), 5)[..., :4].float().transpose(1, 2)
        h = torch.nn.functional.conv1d(x, self.embed)
        acts = {}
        for i, (w, wo, dil) in enumerate(zip(self.convs, self.outs, self.dilations)):
            pre = torch.nn.functional.conv1d(h, w, dilation=dil, padding=dil * (self.kernel - 1) // 2)
            y = torch.relu(pre - 0.1)
            z = y / (y.square().mean(1, keepdim=True).sqrt() + 1e-6)
            h = h + torch.nn.functional.conv1d(z, wo)
            for site, v in (("pre_act", pre), ("neurons", y), ("post_act", z), ("residual", h)):
                acts[f"blocks.{i}.{site}"] = v.transpose(1, 2)
        wanted = {k: acts[k] for k in output_activations}
        return SimpleNamespace(logits=None, activations=wanted)


class ToyAdapter(ModelAdapter):
    """The toy model through the model protocol (any model can implement it)."""

    kind, sites = "toy", ("neurons", "pre_act", "post_act", "residual")

    def __init__(self, model, name="toy"):
        self.model, self.name, self.n_layers = model.eval(), name, model.config.n_layers
        self.receptive_field = model.receptive_field

    device = property(lambda self: torch.device("cpu"))

    def to(self, device):
        return self

    def d(self, key):
        return self.model.d if key.endswith(("residual", "embed")) else self.model.c

    def rc_permutation(self, key):
        return self.model.rc_channel_permutation(key).numpy()

    def activations(self, tokens, keys, intervene=None):
        return self.model(tokens.long(), output_activations=keys).activations

    def nucleotide_log_probs(self, tokens, intervene=None):
        raise NotImplementedError

    def mlm_loss(self, tokens, intervene=None, seed=0):
        raise NotImplementedError

    def random_init(self, seed=0):
        return ToyAdapter(ToyRCModel(seed=seed))

    def state_for_fingerprint(self):
        return module_state(self.model, "toy")


def tiny_model():
    """A random tiny DNAtlas (3 blocks, R = 84 nt)."""
    torch.manual_seed(0)
    return DNAtlas(DNAtlasConfig.preset("tiny", n_layers=3, dilations=(1, 4, 16)))


GFF = """##gff-version 3
chrA\tt\tCDS\t201\t1100\t.\t+\t0\tID=c1;gene=geneA
chrA\tt\tCDS\t1301\t2000\t.\t-\t0\tID=c2;gene=geneB
chrA\tt\ttRNA\t2101\t2176\t.\t+\t.\tID=t1;gene=tRNA-Ile
chrA\tt\trepeat_region\t2201\t2240\t.\t+\t.\tID=r1;Note=REP1 element
chrB\tt\tCDS\t101\t400\t.\t+\t0\tID=c3;gene=geneC
"""


def write_inputs(directory):
    """A saved tiny model, a 2-record FASTA (chrA 2500 nt, chrB 800 nt) and a GFF3."""
    directory.mkdir(parents=True, exist_ok=True)
    tiny_model().save_pretrained(directory / "model")
    rng = np.random.default_rng(7)
    with open(directory / "genome.fa", "w") as fh:
        for name, length in (("chrA", 2500), ("chrB", 800)):
            fh.write(f">{name}\n" + "".join(rng.choice(list("ACGT"), length)) + "\n")
    (directory / "ann.gff3").write_text(GFF)
    return directory / "model", directory / "genome.fa", directory / "ann.gff3"


# ----------------------------------------------------------------------------- figures


INTERVALS = [
    Interval("chr", 100, 400, 1, "CDS", "geneA", {"gene": "geneA"}),
    Interval("chr", 100, 400, 1, "gene", "geneA", {}),
    Interval("chr", 450, 530, -1, "tRNA", "tRNA-Ile", {}),
    Interval("chr", 540, 580, 1, "repeat_region", "", {"Note": "REP12 element"}),
    Interval("chr", 590, 620, 1, "terminator", "", {}),
    Interval("chr", 620, 700, 0, "repeat_region", "", {"rpt_family": "CRISPR"}),
    Interval("other", 0, 800, 1, "CDS", "elsewhere", {}),
]


def save_png(fig, tmp_path, name):
    """Save ``fig`` as a PNG under ``tmp_path`` and check that it is not empty."""
    from dnatlas.analysis import plots  # matplotlib: the analysis extra

    path = plots.save_figure(fig, tmp_path / name, dpi=60)
    assert path.stat().st_size > 1000
    return path


# ----------------------------------------------------------------------------- bad sequence files


def write_genbank(path, pairs, gz=False):
    records = [SeqRecord(Seq(seq), id=f"{rid}.1", name=rid, description=f"{rid} description",
                         annotations={"molecule_type": "DNA"}) for rid, seq in pairs]
    opener = gzip.open if gz else open
    with opener(path, "wt") as fh:
        SeqIO.write(records, fh, "genbank")
    return path


BAD_FASTA = {
    # name: (content, record, line, words in the message)
    "invalid_char": (b">r1 d\nACGT\nACXT\n", "r1", 3, ["'X'", "column 3"]),
    "invalid_dash": (b">r1\nAC\n>r2\nAC-T\n", "r2", 4, ["'-'", "column 3"]),
    "non_ascii": (b">r1\nAC\xc3\xa9T\n", "r1", 2, ["0xc3", "column 3"]),
    "empty_record": (b">r1\nACGT\n>r2\n\n>r3\nACGT\n", "r2", 3, ["no sequence"]),
    "empty_last_record": (b">r1\nACGT\n>r2\n", "r2", 3, ["no sequence"]),
    "no_id": (b">r1\nACGT\n> \nACGT\n", None, 3, ["no record ID"]),
    "before_header": (b"\nACGT\n>r1\nACGT\n", None, 2, ["before the first"]),
    "duplicate_id": (b">r1\nACGT\n>r2\nAC\n>r1 again\nGG\n", "r1", 5, ["duplicate", "line 1)"]),
    "empty_file": (b"", None, None, ["empty"]),
    "blank_file": (b"\n \n", None, None, ["empty"]),
    "nul_bytes": (b">r1\nACGT\nAC\x00\x00GT\n", "r1", 3, ["binary"]),
    "binary_junk": (bytes(range(256)) * 4, None, 1, ["binary"]),
    "not_fasta": (b"hello world\n>r1\nACGT\n", None, 1, ["not a FASTA or GenBank"]),
    # without its 8-byte trailer: all five lines decompress, then the data stops at line 6
    "truncated_gzip": (gzip.compress(b">r1\nACGT\n>r2\nAAAA\nCCCC\n")[:-8], "r2", 6,
                       ["truncated"]),
}


def bad_genbank_cases(tmp_path):
    good = write_genbank(tmp_path / "good.gbk", [("rec1", "ACGT" * 30), ("rec2", "GGCC" * 20)])
    text = good.read_text()
    no_origin = text.split("ORIGIN")[0] + "//\n"
    return {
        "gb_no_origin": (no_origin.encode(), "rec1", 1, ["no sequence", "ORIGIN"]),
        "gb_invalid_char": (text.replace("       61 ggccggccgg", "       61 ggccgjccgg").encode(),
                            "rec2.1", 25, ["'j'", "column 16"]),
        "gb_duplicate": (text.replace("rec2", "rec1").encode(), "rec1.1", 14, ["duplicate"]),
        "gb_truncated": (text[:text.rindex("ORIGIN")].encode(), "rec2", 14, ["truncated"]),
        "gb_truncated_in_sequence": (text[:text.rindex("       61 ") + 15].encode(), "rec2.1", 14,
                                     ["truncated"]),
    }


def all_bad_cases(tmp_path):
    cases = dict(BAD_FASTA)
    cases.update(bad_genbank_cases(tmp_path))
    return cases


BAD_NAMES = [*BAD_FASTA, "gb_no_origin", "gb_invalid_char", "gb_duplicate", "gb_truncated",
             "gb_truncated_in_sequence"]


def one_line(err: str, *words: str, alone: bool = True) -> str:
    """The single ``dnatlas: error: ...`` line of ``err`` (asserting there is exactly one,
    with no traceback, containing ``words``); ``alone``: nothing else was printed."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("dnatlas: error: ")]
    assert len(errors) == 1 and (not alone or len(lines) == 1), err
    for word in words:
        assert word in errors[0], (word, errors[0])
    return errors[0]
