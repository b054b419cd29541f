"""An SAE is checked against the model it is used with, by one function
(``pipelines.sae_site.load_sae_for``) shared by ``sae eval``, ``concepts eval`` and ``steer``:
an SAE of another width or of a site the model lacks is refused with one line naming the
folder, before any work."""

import pytest

from dnatlas.cli import main
from dnatlas.errors import InputError
from dnatlas.models.dnatlas import DNAtlasAdapter
from dnatlas.pipelines.sae_site import load_sae_for
from dnatlas.sae import build_sae, make_config
from dnatlas.sae.saelens_format import save_sae
from tests.helpers import one_line, write_inputs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A saved tiny DNAtlas (3 blocks, d_model 64), its genome, and three SAEs: one that
    fits blocks.1.residual, one 32 wide for it, one for a block the model lacks."""
    root = tmp_path_factory.mktemp("sae-site")
    model, fasta, _ = write_inputs(root)
    for name, d_in, hook in (("fits", 64, "blocks.1.residual"), ("narrow", 32, "blocks.1.residual"),
                             ("deep", 64, "blocks.9.residual")):
        save_sae(build_sae(make_config("topk", d_in=d_in, d_sae=16, k=2, hook_name=hook)),
                 root / name)
    return model, fasta, root


def test_a_fitting_sae_loads_at_its_site_or_the_one_asked(inputs):
    model_dir, _, root = inputs
    adapter = DNAtlasAdapter.from_pretrained(model_dir)
    sae, folder, key = load_sae_for(root / "fits", adapter)
    assert (key, folder, sae.d_in) == ("blocks.1.residual", root / "fits", 64)
    assert load_sae_for(root / "fits", adapter, hook="blocks.2.residual")[2] == "blocks.2.residual"


@pytest.mark.parametrize("name, words", [
    ("narrow", ("reads 32 channels", "blocks.1.residual", "64")),
    ("deep", ("does not fit", "blocks.9.residual", "layers 0..2")),
])
def test_a_foreign_sae_is_refused_by_every_command(inputs, name, words, tmp_path, capsys):
    model_dir, fasta, root = inputs
    adapter = DNAtlasAdapter.from_pretrained(model_dir)
    with pytest.raises(InputError) as exc:
        load_sae_for(root / name, adapter)
    assert str(root / name) in str(exc.value)
    spec = f"dnatlas:{model_dir}"
    commands = [
        ["sae", "eval", "--sae", str(root / name), "--model", spec, "--data", str(fasta),
         "--window", "64", "--windows-per-batch", "2", "--batches", "1", "--device", "cpu"],
        ["concepts", "eval", "--model", spec, "--genome", str(fasta), "--no-codons",
         "--sae", str(root / name), "--out", str(tmp_path / "concepts")],
        ["steer", "--model", spec, "--genome", str(fasta), "--sae", str(root / name),
         "--edit", "3=1", "--region", "chrA:1-5", "--out", str(tmp_path / "steer")],
    ]
    for argv in commands:
        assert main(argv) == 2, argv[:2]
        one_line(capsys.readouterr().err, *words, str(root / name), alone=False)
    for out in ("concepts", "steer"):  # checked for writability (maybe created), not written
        assert not (tmp_path / out).exists() or not any((tmp_path / out).iterdir())
