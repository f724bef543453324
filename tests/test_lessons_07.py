"""Notebook 07's plotting and widget glue (effnb.lessons.zoo), its exercise checks, and the
appendix in docs/ (reference counts that must equal the registry's). No timings asserted."""

from __future__ import annotations

import itertools
import pathlib
import re

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.text import Annotation  # noqa: E402

from effnb import list_models, model_info  # noqa: E402
from effnb.exercises import check  # noqa: E402
from effnb.exercises.solutions import parse  # noqa: E402
from effnb.lessons import zoo  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
ZOO = [n for n in list_models() if n != "efficientnet"]

# --- the appendix ---------------------------------------------------------------------------


def _reference_table() -> dict[str, tuple[int, int, int]]:
    """effnb name -> (input px, params, conv+linear MACs) from docs/reference.md, table A.1."""
    rows = {}
    for line in (DOCS / "reference.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and re.fullmatch(r"[a-z0-9_]+", cells[0]) and cells[2].isdigit():
            px, params, macs = (int(c.replace(",", "")) for c in cells[2:5])
            rows[cells[0]] = (px, params, macs)
    return rows


def test_reference_table_equals_the_registry():
    table = _reference_table()
    with_counts = {n for n in ZOO if model_info(n).reference_params is not None}
    assert with_counts == set(table), (
        f"in the registry, not in docs/reference.md: {sorted(with_counts - set(table))}; "
        f"in docs/reference.md, not in the registry: {sorted(set(table) - with_counts)}"
    )
    for name, (px, params, macs) in table.items():
        info = model_info(name)
        assert (px, params, macs) == (info.input_size, info.reference_params, info.reference_macs)


def test_reference_table_parser_reads_known_rows():
    table = _reference_table()
    assert table["mobilenet_v2"] == (224, 3_504_872, 300_774_272)
    assert table["efficientnet_b7"] == (600, 66_347_960, 37_745_884_192)
    assert "resnet50" not in table  # its row names no effnb model


@pytest.mark.parametrize("doc", ["reference.md", "errata.md"])
def test_appendix_is_self_contained(doc):
    text = (DOCS / doc).read_text()
    assert not re.search(r"seed|/work", text, re.IGNORECASE)
    assert "REFERENCE.md" not in text and "SEED_ERRATA" not in text


def test_errata_rows_name_what_tutorial_reference_cause_notebook():
    rows = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in (DOCS / "errata.md").read_text().splitlines()
        if line.startswith("| ") and not line.startswith("| what")
    ]
    assert len(rows) >= 25
    notebooks = {p.name[:2] for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    for row in rows:
        assert len(row) == 5 and all(row), row
        assert set(re.findall(r"\d\d", row[4])) <= notebooks and row[4], row


# --- plots and widget -------------------------------------------------------------------------


def test_short_names():
    assert zoo.short_name("mobilenet_v3_large_minimal") == "MNv3-L min"
    assert zoo.short_name("mobilenet_v1") == "MNv1"
    assert zoo.short_name("shufflenet_v2_x1_5") == "SNv2 1.5"
    assert zoo.short_name("efficientnet_b3") == "B3"
    assert zoo.short_name("resnet50") == "ResNet-50"
    assert zoo.short_name("something_else") == "something_else"


def test_colors_by_family_and_gray_outside_the_registry():
    assert zoo._color("ghostnet") == "tab:green"
    assert zoo._color("efficientnet_b4") == "tab:red"
    assert zoo._color("resnet50") == "tab:gray"


def _labels(fig) -> list[Annotation]:
    return [t for t in fig.axes[0].texts if isinstance(t, Annotation)]


def _no_overlaps(fig) -> bool:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in _labels(fig)]
    return not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))


MACS = {n: model_info(n).reference_macs for n in ZOO}
# A crowded cluster on purpose: three models within 5% in MACs and 10% in time.
EAGER = {"mobilenet_v2": 140.0, "shufflenet_v2_x1_5": 129.0, "mobilenet_v3_large": 112.0}
EAGER |= {"mobilenet_v3_large_minimal": 106.0, "shufflenet_v2_x1_0": 98.0, "ghostnet": 137.0}
DEPLOYED = {name: 0.6 * ms for name, ms in EAGER.items()}


def test_latency_plot_labels_every_model_without_overlap():
    fig = zoo.plot_latency_vs_macs(MACS, EAGER, DEPLOYED, "cpu, 1 thread")
    labels = sorted(t.get_text() for t in _labels(fig))
    assert labels == sorted(zoo.short_name(n) for n in EAGER)
    assert _no_overlaps(fig)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[-2:] == ["eager (filled)", "deployed (ring)"] and len(legend) == 6
    assert "cpu, 1 thread" in fig.axes[0].get_ylabel()
    plt.close(fig)


def test_accuracy_plot_labels_every_model_without_overlap():
    top1 = {n: model_info(n).top1 for n in ZOO}
    fig = zoo.plot_accuracy_vs_macs(MACS, top1)
    assert len(_labels(fig)) == len(ZOO)
    assert _no_overlaps(fig)
    offsets = fig.axes[0].collections[0].get_offsets()
    assert offsets[0][1] == top1[ZOO[0]]
    plt.close(fig)


def test_zoo_view_counts_at_the_chosen_resolution():
    params = {n: model_info(n).reference_params for n in ZOO}
    t1, f1 = zoo.zoo_view(160, "mobilenet_v2", MACS, params)
    t2, f2 = zoo.zoo_view(224, "mobilenet_v2", MACS, params, {"mobilenet_v2": 10.0})
    t3, f3 = zoo.zoo_view(320, "efficientnet_b7", MACS, params)
    for fig in (f1, f2, f3):
        plt.close(fig)
    assert "3,504,872 params, 154.1M MACs = 0.51x its MACs at 224 px" in t1
    assert "300.8M MACs = 1.00x" in t2 and "latency estimate 10.0 ms" in t2
    assert "at 600 px" in t3 and "latency" not in t3
    with pytest.raises(ValueError, match="registered name"):
        zoo.zoo_view(224, "resnet50", MACS, params)


def test_meta_model_has_no_storage():
    model = zoo.meta_model("mobilenet_v3_small")
    assert next(model.parameters()).device == torch.device("meta")
    assert zoo.meta_model("mobilenet_v3_small") is model  # cached


# --- exercise checks (fast, outside the notebook) ---------------------------------------------


def _answers():
    return parse(ROOT / "solutions" / "07_model_zoo.py")


def _run(source: str):
    import thop
    from torch import nn

    from effnb import create_model, profile

    ns = {"torch": torch, "nn": nn, "thop": thop, "create_model": create_model, "profile": profile}
    exec(source, ns)
    return ns.get("fold", ns.get("answer"))


@pytest.mark.parametrize("ex_id", ["7.1", "7.2"])
def test_solutions_pass_and_wrong_answers_name_their_mistake(ex_id, capsys):
    answers = _answers()[ex_id]
    check(ex_id, _run(answers.solution))
    assert f"Exercise {ex_id}: correct" in capsys.readouterr().out
    for phrase, source in answers.wrong:
        with pytest.raises(AssertionError) as info:
            check(ex_id, _run(source))
        assert phrase.lower() in str(info.value).lower(), (phrase, str(info.value))
    check(ex_id, ...)
    assert f"Exercise {ex_id}: not attempted yet" in capsys.readouterr().out


def test_fold_check_rejects_a_conv_without_bias():
    def fold(conv, bn):
        return conv  # unchanged: no scaling, no bias

    with pytest.raises(AssertionError, match="not scaled"):
        check("7.1", fold)
