"""effnb.deploy's backends against ONNX Runtime and OpenVINO used directly on torchvision's export.

Issue 15's goal: on MobileNetV2, MobileNetV3-Large, ShuffleNetV2 x1.0 and EfficientNet-B0 at
batch 1, 224 px, 2 threads, effnb's fastest backend is within 10% of the fastest runtime
measured in the same interleaved run. Per model, ONE ``effnb.compare_latency`` run times:

* ``effnb eager``: the effnb model as built (torchvision's weights copied in);
* ``effnb torch (eager folded)``, ``effnb torch.export``: PyTorch's other paths, for the
  choice of the torch backend's default (``deploy(..., jit=None)``, and the
  ``torch.export.export(...).module()`` program of the same folded copy);
* ``effnb torch``, ``effnb onnxruntime``, ``effnb openvino``: ``effnb.deploy`` with each backend;
* ``ORT direct``, ``OpenVINO direct``: torchvision's model (same weights) exported by
  ``torch.onnx.export`` with a static 1x3x224x224 input (what a user does by hand), run by an
  ONNX Runtime session / OpenVINO compiled model configured like effnb's (same threads,
  sequential ORT execution with all graph optimisations; OpenVINO latency hint, f32).

torchvision lives only in the scratch venv, so the script runs there with effnb on the path:

    ../refvenv/bin/pip install onnx==1.23.2 onnxruntime==1.31.1 openvino==2026.4.1 onnxscript
    PYTHONPATH=. ../refvenv/bin/python benchmarks/deploy.py [--rounds 10]

(In the project venv, without torchvision, it stops with that message.) Every number and
verdict is printed from the run; nothing is written to disk (exports are in memory).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import os
import platform
import sys
import time

import torch
from torch import nn

import effnb
from effnb.bench import median_ci
from effnb.deploy import _OpenVINORunner, _OrtRunner, _quiet_exporter, deploy
from effnb.models.weights import load_reference_state_dict

MODELS = ("mobilenet_v2", "mobilenet_v3_large", "shufflenet_v2_x1_0", "efficientnet_b0")
GOAL = 1.10  # effnb's fastest backend / fastest direct runtime
EFFNB_BACKENDS = ("effnb torch", "effnb onnxruntime", "effnb openvino")
DIRECT = ("ORT direct", "OpenVINO direct")


class Direct(nn.Module):
    """A runtime session as an nn.Module, so ``compare_latency`` times it like the others."""

    def __init__(self, runner) -> None:
        super().__init__()
        object.__setattr__(self, "runner", runner)
        self.in_chans = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.runner(x)


class Exported(nn.Module):
    """``torch.export``'s program of the folded copy (its module refuses ``.eval()``)."""

    def __init__(self, deployed) -> None:
        super().__init__()
        x = torch.randn(2, 3, 224, 200).contiguous(memory_format=torch.channels_last)
        dyn = torch.export.Dim.DYNAMIC
        with torch.inference_mode():
            program = torch.export.export(
                deployed.model, (x,), dynamic_shapes=({0: dyn, 2: dyn, 3: dyn},)
            )
        object.__setattr__(self, "program", program.module())
        self.in_chans = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.program(x.contiguous(memory_format=torch.channels_last))


def torchvision_export(model: nn.Module) -> bytes:
    """torchvision's model as ONNX bytes, static 1x3x224x224 (the legacy exporter, as effnb's)."""
    import io

    buffer = io.BytesIO()
    with _quiet_exporter(), torch.no_grad():
        torch.onnx.export(
            model, (torch.randn(1, 3, 224, 224),), buffer, dynamo=False, opset_version=18
        )
    return buffer.getvalue()


def build(name: str, threads: int) -> tuple[dict[str, nn.Module], dict[str, float]]:
    """The labelled models of one run, and build times (s); all checked against eager."""
    import onnxruntime
    import openvino
    import torchvision

    modules = {"onnxruntime": onnxruntime, "openvino": openvino}
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)(weights=None).eval()
    ours = effnb.create_model(name).eval()
    load_reference_state_dict(ours, reference.state_dict())
    x = torch.randn(1, 3, 224, 224)
    models: dict[str, nn.Module] = {"effnb eager": ours}
    seconds: dict[str, float] = {}
    for label, kwargs in (
        ("effnb torch (eager folded)", {"jit": None}),
        ("effnb torch", {}),
        ("effnb onnxruntime", {"backend": "onnxruntime"}),
        ("effnb openvino", {"backend": "openvino"}),
    ):
        start = time.perf_counter()
        models[label] = deploy(ours, threads=threads, example_input=x, **kwargs)
        seconds[label] = time.perf_counter() - start
    start = time.perf_counter()
    models["effnb torch.export"] = Exported(models["effnb torch (eager folded)"])
    seconds["effnb torch.export"] = time.perf_counter() - start
    start = time.perf_counter()
    blob = torchvision_export(reference)
    models["ORT direct"] = Direct(_OrtRunner(blob, threads, modules))
    models["OpenVINO direct"] = Direct(_OpenVINORunner(blob, threads, modules))
    seconds["torchvision export + sessions"] = time.perf_counter() - start
    with torch.inference_mode():
        expected = reference(x)
        scale = expected.abs().max().item()
        for label, model in models.items():
            diff = (model(x) - expected).abs().max().item()
            if diff > 1e-4 * scale:
                raise SystemExit(f"{name}: {label} differs from torchvision by {diff:.3g}")
    return models, seconds


def report(name: str, run, threads: int) -> bool:
    """Print the table and the goal's verdict; True when the goal is met."""
    print(
        f"\n## {name} (batch 1, 224 px, {threads} threads, {len(run.rounds['effnb eager'])} rounds)"
    )
    print(f"{'label':28s} {'median ms':>10s} {'95% CI of the median':>22s}")
    for label, times in run.rounds.items():
        lo, med, hi = median_ci(times)
        ci = f"{lo:.2f}-{hi:.2f}" if math.isfinite(lo) else "too few rounds"
        print(f"{label:28s} {med:10.2f} {ci:>22s}")
    best_ours = min(EFFNB_BACKENDS, key=lambda k: run.records[k].median_ms)
    best_direct = min(DIRECT, key=lambda k: run.records[k].median_ms)
    lo, ratio, hi = run.ratio_ci(best_ours, best_direct)
    met = ratio <= GOAL
    resolved = math.isfinite(hi) and (hi <= GOAL if met else lo > GOAL)
    print(run.verdict(best_ours, best_direct, tolerance=GOAL - 1))
    print(
        f"goal: {best_ours} / {best_direct} = {ratio:.2f} (95% CI {lo:.2f}-{hi:.2f}) "
        f"{'<=' if met else '>'} {GOAL:.2f}: {'PASS' if met else 'FAIL'}"
        f"{'' if resolved else ' (not resolved by this run)'}"
    )
    print(run.verdict("effnb torch", "effnb torch (eager folded)"))
    print(run.verdict("effnb torch", "effnb torch.export"))
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--min-run-time", type=float, default=0.2)
    args = parser.parse_args(argv)
    try:
        import torchvision  # noqa: F401
    except ImportError:
        print("torchvision is not installed here: run this in the scratch venv (see the docstring)")
        return 2
    versions = {
        p: importlib.metadata.version(p)
        for p in ("torch", "torchvision", "onnx", "onnxruntime", "openvino")
    }
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f} (1 min); "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
    )
    torch.set_num_threads(args.threads)
    results = {}
    for name in args.models.split(","):
        models, seconds = build(name, args.threads)
        print(f"\n{name}: build seconds " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))
        run = effnb.compare_latency(
            models,
            224,
            threads=args.threads,
            rounds=args.rounds,
            min_run_time=args.min_run_time,
        )
        results[name] = report(name, run, args.threads)
    print(f"\nload {os.getloadavg()[0]:.1f} (1 min) at the end")
    print("goal met on " + ", ".join(f"{k}: {'yes' if v else 'no'}" for k, v in results.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
