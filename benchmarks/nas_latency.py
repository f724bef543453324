"""How well does the NAS latency table predict whole networks on this machine? (issue 4)

Each trial draws fresh random architectures from ``effnb.nas.SearchSpace``, measures the
block table and all of those networks in one interleaved run (``build_latency_table(...,
networks=...)``, no cache), fits the predictor's scale and overhead on the calibration networks
and validates it on the held-out ones. Reported per trial: share of held-out networks within
+-10% (plain block sum and calibrated), Spearman's rho, mean |error|, the same share and rho for
a MACs-only baseline (a line through MACs and measured ms, fitted on the same calibration
networks; notebook 06 compares the two), the measurement's own
repeatability (even vs odd rounds, speed-normalised and raw), how far the machine's speed moved
during the run, and the wall time.

The bar: nn-Meter (Zhang et al., MobiSys 2021) predicts 99.0% of models within +-10% on a mobile CPU.

    .venv/bin/python benchmarks/nas_latency.py --trials 3 --held-out 100
    .venv/bin/python benchmarks/nas_latency.py --input-size 32 --json results.json
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import numpy as np
import torch

from effnb.costs import profile
from effnb.nas import LatencyPredictor, SearchSpace, build_latency_table, repeatability, validate
from effnb.nas.latency import cpu_model, spearman, within_share

NN_METER_BAR = 0.99  # share within +-10% (Zhang et al., MobiSys 2021)


def trial(
    space: SearchSpace,
    input_size: int,
    seed: int,
    calibration: int,
    held_out: int,
    rounds: int,
    threads: int,
    tables: str | None = None,
) -> dict:
    """One table + networks run; returns the numbers the closing note quotes."""
    rng = np.random.default_rng(seed)
    archs: list = []
    while len(archs) < calibration + held_out:  # distinct architectures
        a = space.sample(rng)
        if a not in archs:
            archs.append(a)
    cal, held = archs[:calibration], archs[calibration:]
    t0 = time.perf_counter()
    table = build_latency_table(
        space, input_size, networks=archs, rounds=rounds, threads=threads, seed=seed,
        use_cache=False,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    if tables:
        table.save(pathlib.Path(tables) / f"table-{input_size}px-seed{seed}.json")
    raw = LatencyPredictor(space, table, input_size)
    fitted = raw.fit(cal, table.network_ms(cal))
    measured = table.network_ms(held)
    rep_raw, rep_cal = validate(raw, held, measured), validate(fitted, held, measured)
    macs = {a: profile(space.build(a), input_size=input_size).macs for a in archs}
    slope, intercept = np.polyfit([macs[a] for a in cal], table.network_ms(cal), 1)
    macs_pred = np.array([slope * macs[a] + intercept for a in held])
    norm_rounds = table.network_rounds(held)
    speed = np.array(table.meta["round_speed"])
    return {
        "seed": seed,
        "input_size": input_size,
        "held_out": len(held),
        "calibration": len(cal),
        "rounds": rounds,
        "within10_block_sum": rep_raw.within_10,
        "within10_calibrated": rep_cal.within_10,
        "within5_calibrated": within_share(rep_cal.predicted_ms, measured, 0.05),
        "spearman_calibrated": rep_cal.spearman_rho,
        "mape_calibrated": rep_cal.mean_abs_pct_error,
        "within10_macs": within_share(macs_pred, measured),
        "spearman_macs": spearman(macs_pred, measured),
        "scale": fitted.scale,
        "overhead_ms": fitted.overhead_ms,
        "repeatability_normalised": repeatability(norm_rounds),
        "repeatability_raw_ms": repeatability(norm_rounds * speed[:, None]),
        "speed_min": float(speed.min()),
        "speed_max": float(speed.max()),
        "network_ms_range": (float(measured.min()), float(measured.max())),
        "seconds": seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input-size", type=int, default=12)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--calibration", type=int, default=10)
    ap.add_argument("--held-out", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--tables", help="also save each trial's LatencyTable (JSON) in this folder")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    space = SearchSpace()
    print(f"torch {torch.__version__} | CPU: {cpu_model()} | {args.threads} thread(s), batch 1")
    print(
        f"{'seed':>4s} {'n':>4s} {'sum<=10%':>8s} {'cal<=10%':>8s} {'cal<=5%':>7s} {'rho':>6s} "
        f"{'MAPE':>6s} {'MACs10%':>7s} {'MACsrho':>7s} {'repeat':>6s} {'raw rep':>7s} "
        f"{'speed':>11s} {'net ms':>11s} {'s':>5s}"
    )
    rows = []
    for seed in range(1, args.trials + 1):
        r = trial(
            space, args.input_size, 100 + seed, args.calibration, args.held_out, args.rounds,
            args.threads, args.tables,
        )  # fmt: skip
        rows.append(r)
        lo, hi = r["network_ms_range"]
        print(
            f"{r['seed']:>4d} {r['held_out']:>4d} {100 * r['within10_block_sum']:>7.0f}% "
            f"{100 * r['within10_calibrated']:>7.0f}% {100 * r['within5_calibrated']:>6.0f}% "
            f"{r['spearman_calibrated']:>6.3f} {r['mape_calibrated']:>5.1f}% "
            f"{100 * r['within10_macs']:>6.0f}% {r['spearman_macs']:>7.3f} "
            f"{100 * r['repeatability_normalised']:>5.0f}% {100 * r['repeatability_raw_ms']:>6.0f}% "
            f"{r['speed_min']:>5.2f}-{r['speed_max']:<5.2f} {lo:>5.2f}-{hi:<5.2f} {r['seconds']:>5.0f}",
            flush=True,
        )
    total = sum(r["held_out"] for r in rows)
    hits = sum(round(r["within10_calibrated"] * r["held_out"]) for r in rows)
    print(
        f"calibrated predictor: {hits}/{total} held-out networks within +-10% "
        f"({100 * hits / total:.1f}%); bar (nn-Meter): {100 * NN_METER_BAR:.0f}%"
    )
    print(
        "sum<=10%: plain block sum; cal: scale * sum + overhead fitted on the calibration "
        "networks; MACs: a line through MACs fitted on the same networks; repeat: even vs odd "
        "rounds, speed-normalised; raw rep: the same in raw ms; "
        "speed: slowest/fastest round relative to the run's typical speed"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu": cpu_model(), "torch": torch.__version__, "trials": rows}, f, indent=1)


if __name__ == "__main__":
    main()
