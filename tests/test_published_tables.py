"""effnb against each family's published width/resolution tables, and against timm's models
at every width timm has.

Two kinds of check:

1. ``tests/fixtures/reference/variants/*.json`` (recorded from timm 1.0.31 by
   ``tests/fixtures/make_reference_fixtures.py``): at each published width, effnb's model has
   the same parameter count and conv+linear MACs as timm's, to the unit, its state-dict maps
   onto timm's, and the same (synthetic) weights give the same logits.
2. The published tables (papers and the authors' release tables), row by row: effnb's count,
   rounded the way the table rounds, equals the published figure. Where a table disagrees with
   the network its authors released, the row sits in ``DISAGREES`` with the measured gap and
   how we know the table, not the network, is off. MACs here are conv+linear
   multiply-accumulates (``effnb.profile``); the tables' "FLOPs" / "MAdds" are MACs.
"""

from __future__ import annotations

import json
import math
import pathlib

import pytest
import torch

import effnb
from effnb.costs import profile
from effnb.models.weights import load_reference_state_dict, reference_key_map, synthetic_state_dict

VARIANTS = sorted(
    (pathlib.Path(__file__).parent / "fixtures" / "reference" / "variants").glob("*.json")
)


def _meta_counts(name: str, resolution: int, **kwargs) -> tuple[int, int, int]:
    """(params, params without BatchNorm's weight and bias, conv+linear MACs), on the meta device."""
    with torch.device("meta"):
        model = effnb.create_model(name, **kwargs)
    params = sum(p.numel() for p in model.parameters())
    bn = sum(
        p.numel()
        for m in model.modules()
        if isinstance(m, torch.nn.BatchNorm2d)
        for p in m.parameters()
    )
    return params, params - bn, profile(model, resolution).macs


# --- 1. timm at every width it has -------------------------------------------------------


@pytest.mark.parametrize("path", VARIANTS, ids=lambda p: p.stem)
def test_published_width_equals_timm(path):
    ref = json.loads(path.read_text())
    spec = ref["effnb"]
    model = effnb.create_model(spec["model"], **spec["kwargs"]).eval()
    assert sum(p.numel() for p in model.parameters()) == ref["params"]
    assert profile(model, ref["input_size"]).macs == ref["macs"]
    mapping = reference_key_map(model, ref["state_dict"])
    assert list(mapping) == list(ref["state_dict"])
    load_reference_state_dict(model, synthetic_state_dict(ref["state_dict"]))
    x = torch.randn(ref["logit_input"], generator=torch.Generator().manual_seed(1234))
    with torch.inference_mode():
        logits = model(x)
    expected = torch.tensor(ref["logits"])
    torch.testing.assert_close(logits[:, : expected.shape[1]], expected, rtol=1e-4, atol=1e-5)


def test_variant_fixtures_cover_the_widths_the_issue_names():
    names = {p.stem for p in VARIANTS}
    assert {
        "mobilenet_v3_large_075",
        "mobilenet_v3_small_075",
        "tf_mobilenet_v3_large_075",
    } <= names
    assert {"mobilenet_v2_035", "mobilenet_v2_050", "mobilenet_v2_075", "mobilenet_v2_140"} <= names


# --- 2. the published tables -------------------------------------------------------------

V1 = "MobileNets, arXiv 1704.04861, Tables 6 and 7"
V2_RELEASE = "MobileNetV2 release table, tensorflow/models research/slim/nets/mobilenet/README.md"
V3_PAPER = "MobileNetV3, arXiv 1905.02244, Table 3"
V3_RELEASE = "MobileNetV3 release table, tensorflow/models research/slim/nets/mobilenet/README.md"
SHUFFLE = "ShuffleNetV2, arXiv 1807.11164, Table 5"
GHOST = "GhostNet, arXiv 1911.11907, Table 7"
EFFNET = "EfficientNet, arXiv 1905.11946, Table 2"

# (source, model, kwargs, resolution, published params in M, published MACs in M)
ROWS = [
    (V1, "mobilenet_v1", {"width_mult": 1.0}, 224, 4.2, 569),
    (V1, "mobilenet_v1", {"width_mult": 0.75}, 224, 2.6, 325),
    (V1, "mobilenet_v1", {"width_mult": 0.5}, 224, 1.3, 149),
    (V1, "mobilenet_v1", {"width_mult": 0.25}, 224, 0.5, 41),
    (V1, "mobilenet_v1", {"width_mult": 1.0}, 192, 4.2, 418),
    (V1, "mobilenet_v1", {"width_mult": 1.0}, 160, 4.2, 290),
    (V1, "mobilenet_v1", {"width_mult": 1.0}, 128, 4.2, 186),
    *[
        (V2_RELEASE, "mobilenet_v2", {"width_mult": w}, r, p, m)
        for w, p, macs in (
            (1.4, 6.06, (582,)),
            (1.3, 5.34, (509,)),
            (1.0, 3.47, (300, 221, 154, 99, 56)),
            (0.75, 2.61, (209, 153, 107, 69, 39)),
            (0.5, 1.95, (97, 71, 50, 32, 18)),
            (0.35, 1.66, (59, 43, 30, 20, 11)),
        )
        for r, m in zip((224, 192, 160, 128, 96), macs, strict=False)
    ],
    (V3_PAPER, "mobilenet_v3_large", {"width_mult": 1.0}, 224, 5.4, 219),
    (V3_PAPER, "mobilenet_v3_large", {"width_mult": 0.75}, 224, 4.0, 155),
    (V3_PAPER, "mobilenet_v3_small", {"width_mult": 1.0}, 224, 2.5, 56),
    (V3_PAPER, "mobilenet_v3_small", {"width_mult": 0.75}, 224, 2.0, 44),
    (V3_RELEASE, "mobilenet_v3_large", {"width_mult": 1.0}, 224, 5.4, 217),
    (V3_RELEASE, "mobilenet_v3_large", {"width_mult": 0.75}, 224, 4.0, 155),
    (V3_RELEASE, "mobilenet_v3_small", {"width_mult": 1.0}, 224, 2.9, 66),
    (V3_RELEASE, "mobilenet_v3_small", {"width_mult": 0.75}, 224, 2.4, 44),
    (V3_RELEASE, "mobilenet_v3_large_minimal", {}, 224, 3.9, 209),
    (V3_RELEASE, "mobilenet_v3_small_minimal", {}, 224, 2.0, 65),
    (SHUFFLE, "shufflenet_v2_x0_5", {}, 224, 1.4, 41),
    (SHUFFLE, "shufflenet_v2_x1_0", {}, 224, 2.3, 146),
    (SHUFFLE, "shufflenet_v2_x1_5", {}, 224, 3.5, 299),
    (SHUFFLE, "shufflenet_v2_x2_0", {}, 224, 7.4, 591),
    (GHOST, "ghostnet", {"width_mult": 0.5}, 224, 2.6, 42),
    (GHOST, "ghostnet", {"width_mult": 1.0}, 224, 5.2, 141),
    (GHOST, "ghostnet", {"width_mult": 1.3}, 224, 7.3, 226),
    *[
        (EFFNET, f"efficientnet_b{i}", {}, r, p, m)
        for i, (r, p, m) in enumerate(
            (
                (224, 5.3, 390),
                (240, 7.8, 700),
                (260, 9.2, 1000),
                (300, 12, 1800),
                (380, 19, 4200),
                (456, 30, 9900),
                (528, 43, 19000),
                (600, 66, 37000),
            )
        )
    ],
]

# How the tables round. Some round, some truncate: the MobileNetV2 release table lists 300.8M
# MACs as 300 and 153.9M as 153 (every one of its rows is the floor), MobileNets lists 290.7M as
# 290 and MobileNetV3 5.48M params as 5.4; so a count that rounds *or* truncates to the published
# digits agrees. The MobileNetV2 release table counts parameters without BatchNorm's weight and
# bias (3,470,760 of the 3,504,872 at width 1.0 is its "3.47"); EfficientNet's columns have two
# significant figures.
PARAMS_WITHOUT_BN = {V2_RELEASE}

# Rows where the table disagrees with the network its authors released: (source, model,
# kwargs, resolution) -> why, and how we know. The test asserts the gap stays what it is.
DISAGREES: dict[tuple, tuple[str, float]] = {
    (V3_PAPER, "mobilenet_v3_small", (("width_mult", 0.75),), 224): (
        "Table 3 gives 44M MAdds for V3-Small 0.75; timm's port of the released 0.75 checkpoint "
        "(tf_mobilenetv3_small_075) has 43.4M conv+linear MACs, as effnb does",
        0.015,
    ),
    (V3_PAPER, "mobilenet_v3_large", (("width_mult", 1.0),), 224): (
        "Table 3 says 219M MAdds; the release table gives 217M for the same checkpoint, and timm's "
        "port of it (tf_mobilenetv3_large_100) has 216.6M conv+linear MACs, as effnb does",
        0.012,
    ),
    (V3_RELEASE, "mobilenet_v3_small", (("width_mult", 1.0),), 224): (
        "the release table lists 66M MACs and 2.9M params, but the checkpoint it links, ported by "
        "timm as tf_mobilenetv3_small_100, has 2,542,856 params and 56.5M MACs, which is also what "
        "the paper's Table 3 says (2.5M, 56M)",
        0.15,
    ),
    (V3_RELEASE, "mobilenet_v3_small", (("width_mult", 0.75),), 224): (
        "2.4M params in the release table; timm's port of the 0.75 checkpoint "
        "(tf_mobilenetv3_small_075) has 2,041,872, as the paper's Table 3 (2.0M) says",
        0.15,
    ),
    (V3_RELEASE, "mobilenet_v3_small_minimal", (), 224): (
        "65M MACs in the release table; timm's port of the checkpoint "
        "(tf_mobilenetv3_small_minimal_100) has 52.3M, and the table's Small rows sit about 10M "
        "above the network throughout (66M for the 56.5M Small)",
        0.20,
    ),
    (SHUFFLE, "shufflenet_v2_x0_5", (), 224): (
        "Table 5's FLOPs sit 0.8-1.3% above the conv+linear MACs of torchvision's ShuffleNetV2 at "
        "every width (effnb equals torchvision to the unit; the parameter counts agree with the "
        "table); the paper does not say what else it counted",
        0.015,
    ),
    (SHUFFLE, "shufflenet_v2_x1_0", (), 224): ("as for x0.5", 0.015),
    (SHUFFLE, "shufflenet_v2_x1_5", (), 224): ("as for x0.5", 0.015),
    (SHUFFLE, "shufflenet_v2_x2_0", (), 224): ("as for x0.5", 0.015),
    (GHOST, "ghostnet", (("width_mult", 1.3),), 224): (
        "Table 7 gives 7.3M params and 226M FLOPs for GhostNet 1.3x; the authors' code at width 1.3 "
        "(timm's ghostnet_130 builds it, and effnb equals it to the unit) has 7,358,820 params and "
        "227.0M MACs, while the 0.5x and 1.0x rows agree",
        0.01,
    ),
    (EFFNET, "efficientnet_b1", (), 240): (
        "0.70B FLOPS in Table 2; torchvision's efficientnet_b1, which loads the released weights "
        "and equals effnb to the unit, has 0.687B conv+linear MACs at 240 px",
        0.02,
    ),
    (EFFNET, "efficientnet_b2", (), 260): (
        "9.2M params in Table 2: effnb and torchvision have 9,109,994 (9.1M); counting BatchNorm's "
        "running mean and variance as parameters gives 9.18M, which is the 9.2M (Keras reports "
        "its EfficientNetB2 that way), but B1 counted that way would read 7.9M, not the 7.8M listed",
        0.02,
    ),
    (EFFNET, "efficientnet_b4", (), 380): (
        "4.2B FLOPS in Table 2 against 4.39B conv+linear MACs in the released network at 380 px "
        "(torchvision's efficientnet_b4, equal to effnb to the unit)",
        0.05,
    ),
    (EFFNET, "efficientnet_b5", (), 456): (
        "9.9B FLOPS against 10.27B MACs at 456 px (torchvision's efficientnet_b5)",
        0.04,
    ),
    (EFFNET, "efficientnet_b7", (), 600): (
        "37B FLOPS against 37.7B MACs at 600 px (torchvision's efficientnet_b7): two significant "
        "figures would round it to 38B",
        0.025,
    ),
}


def _key(source, model, kwargs, resolution):
    return (source, model, tuple(sorted(kwargs.items())), resolution)


def _decimals(value: float) -> int:
    text = repr(float(value)).rstrip("0").rstrip(".")
    return len(text.split(".")[1]) if "." in text else 0


def _agrees(ours: float, published: float, rule: str) -> bool:
    """Does our count, in the published unit, read as the published figure?"""
    if rule == "sig2":  # two significant figures (EfficientNet's FLOPS column, in M here)
        return float(f"{ours:.2g}") == published or float(f"{ours:.2g}") == float(
            f"{published:.2g}"
        )
    d = _decimals(published)  # rounded or truncated to the published digits: both read as agreement
    truncated = math.floor(ours * 10**d + 1e-9) / 10**d
    return abs(ours - published) <= 0.5 * 10**-d + 1e-9 or math.isclose(truncated, published)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r[1]}-{r[2]}-{r[3]}-{r[0].split(',')[0]}")
def test_published_row(row):
    source, model, kwargs, resolution, pub_params, pub_macs = row
    params, params_no_bn, macs = _meta_counts(model, resolution, **kwargs)
    p = (params_no_bn if source in PARAMS_WITHOUT_BN else params) / 1e6
    m = macs / 1e6
    mac_rule = "sig2" if source == EFFNET else "round"
    param_rule = "sig2" if source == EFFNET and pub_params >= 10 else "round"
    bad = {
        what: abs(ours - pub) / pub
        for what, ours, pub, rule in (
            ("params", p, pub_params, param_rule),
            ("MACs", m, pub_macs, mac_rule),
        )
        if not _agrees(ours, pub, rule)
    }
    key = _key(source, model, kwargs, resolution)
    if key in DISAGREES:
        why, bound = DISAGREES[key]
        assert bad, f"{key} now agrees with the table; drop it from DISAGREES ({why})"
        gap = max(bad.values())
        assert gap <= bound, f"{key}: {bad} exceeds the documented {bound:.1%}: {why}"
    else:
        assert not bad, (
            f"{model} {kwargs} at {resolution} px: ours {p:.3f}M params, {m:.1f}M MACs; "
            f"{source} says {pub_params}M, {pub_macs}M"
        )


def test_efficientnet_b2_count_with_running_statistics_is_the_published_9_2m():
    with torch.device("meta"):
        model = effnb.create_model("efficientnet_b2")
    params = sum(p.numel() for p in model.parameters())
    running = sum(
        m.running_mean.numel() + m.running_var.numel()
        for m in model.modules()
        if isinstance(m, torch.nn.BatchNorm2d)
    )
    assert round((params + running) / 1e6, 1) == 9.2 and round(params / 1e6, 1) == 9.1


def test_every_disagreement_names_a_row():
    keys = {_key(*r[:4]) for r in ROWS}
    assert set(DISAGREES) <= keys


def test_torchvision_width_rule_is_not_the_papers_v3():
    """torchvision's V3 width_mult also scales the 1280-unit layer and the expansions from the
    unscaled table: at 0.75 that gives 3.38M / 140.0M for Large (the paper's 4.0M / 155M is
    what effnb builds). Recomputed here from the table so the erratum stays checked."""
    from effnb.layers import make_divisible
    from effnb.models.mobilenet import MOBILENET_V3_LARGE_TABLE

    w = 0.75
    c = lambda v: make_divisible(v * w, 8)  # noqa: E731
    in_ch, params = c(16), 3 * 9 * c(16) + 2 * c(16)
    for row in MOBILENET_V3_LARGE_TABLE:
        hidden, out = c(row.exp), c(row.out)
        if hidden != in_ch:
            params += in_ch * hidden + 2 * hidden
        params += row.kernel**2 * hidden + 2 * hidden
        if row.se:
            sq = make_divisible(hidden // 4, 8)
            params += hidden * sq + sq + sq * hidden + hidden
        params += hidden * out + 2 * out
        in_ch = out
    head, last = 6 * in_ch, c(1280)
    params += in_ch * head + 2 * head + head * last + last + last * 1000 + 1000
    assert round(params / 1e6, 2) == 3.38
    ours = sum(
        p.numel() for p in effnb.create_model("mobilenet_v3_large", width_mult=w).parameters()
    )
    assert round(ours / 1e6, 2) == 3.99
