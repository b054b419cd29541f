"""``concepts eval`` under torchrun: 2 gloo processes write what 1 process writes."""

import pytest

from tests.test_concepts_pipeline import MotifAdapter, _settings, genome  # noqa: F401
from tests.test_distributed_pipelines import _files, _spawn

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _evaluate(root, out):
    from dnatlas.pipelines.concepts import evaluate_concepts

    evaluate_concepts(MotifAdapter(), root / "g.fa", None, out, neurons=["blocks.0.residual"],
                      random_init=True, settings=_settings(root))


def test_two_processes_write_the_same_evaluation_as_one(genome, tmp_path):  # noqa: F811
    root, *_ = genome
    _spawn(_evaluate, root, tmp_path / "two")
    _evaluate(root, tmp_path / "one")
    one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert sorted(one) == sorted(two)
    for name in ("best.csv", "concepts.csv", "summary.json", "table.txt"):
        assert one[name] == two[name], name
