"""effnb.nas.scale.dask_executor: a search on a 2-worker LocalCluster (loopback only) returns
what the in-process search returns, and nothing is left running afterwards.

Bounded in time: every cluster and client call has an explicit ``timeout=``, and a watchdog
kills this test's child processes and exits if the whole test outlives ``LIMIT_S``.
"""

from __future__ import annotations

import faulthandler
import os
import threading
import time

import psutil
import pytest
import torch

from effnb.nas import (
    DigitsEvaluator,
    LatencyPredictor,
    LatencyTable,
    SearchSpace,
    StageSkeleton,
    search,
)
from effnb.nas.scale import TorchThreads, dask_executor

pytestmark = pytest.mark.slow
LIMIT_S = 400.0  # the whole test, cluster start and 2 x 6 tiny trainings, on a busy CI box
TIMEOUT_S = 60.0  # each cluster / client call

# A tiny space: 2 stages, 8 px digits; 2 x 2 x 1 x 2 per stage = 64 architectures.
SPACE = SearchSpace(
    kernels=(3, 5),
    expansions=(1, 3),
    se_ratios=(0.0,),
    layers=(1, 2),
    skeleton=(StageSkeleton(8, 1), StageSkeleton(16, 2)),
    stem_channels=8,
    head_channels=32,
)
SIZE = 8


def _predictor() -> LatencyPredictor:
    """A picklable latency function with asymmetric, made-up entries (no timing in tests)."""
    entries = {f"stem@{SIZE}": 0.05, f"head@{SIZE}": 0.07}
    for i, spec in enumerate(SPACE.all_block_specs(SIZE)):
        entries[spec.key] = 0.1 + 0.013 * i + 0.002 * spec.kernel * spec.hidden_channels / 8
    return LatencyPredictor(SPACE, LatencyTable(entries), SIZE, scale=1.1, overhead_ms=0.02)


@pytest.fixture
def watchdog():
    """Kill this process's children and exit if the test runs past LIMIT_S (a hang fails)."""

    def fire() -> None:
        faulthandler.dump_traceback(all_threads=True)
        for child in psutil.Process().children(recursive=True):
            child.kill()
        os._exit(1)

    timer = threading.Timer(LIMIT_S, fire)
    timer.daemon = True
    timer.start()
    yield
    timer.cancel()


def _children() -> set[int]:
    """This process's descendants, except multiprocessing's resource tracker (one per
    interpreter, started by the first spawn and kept until the interpreter exits)."""
    out = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if not any("resource_tracker" in part for part in p.cmdline()):
                out.add(p.pid)
        except psutil.NoSuchProcess:
            pass
    return out


def test_search_on_a_local_cluster_equals_the_in_process_search(watchdog):
    evaluator = DigitsEvaluator(
        SPACE, image_size=SIZE, epochs=1, batch_size=64, lr=0.1, seed=3, use_cache=False
    )
    latency = _predictor()
    kwargs = {
        "strategy": "evolution",
        "budget": 6,
        "seed": 5,
        "population_size": 4,
        "sample_size": 2,
        "parallel": 2,
    }
    target = latency(SPACE.baselines()["mobilenet_v2_like"])
    before = _children()
    t0 = time.perf_counter()
    with dask_executor(n_workers=2, timeout=TIMEOUT_S) as executor:
        workers = {executor.submit(os.getpid).result(timeout=TIMEOUT_S) for _ in range(8)}
        threads = executor.submit(torch.get_num_threads).result(timeout=TIMEOUT_S)
        distributed = search(SPACE, evaluator, latency, target, executor=executor, **kwargs)
        inside = _children() - before
    assert time.perf_counter() - t0 < LIMIT_S
    assert os.getpid() not in workers and len(inside) >= 2  # evaluations ran in other processes
    assert threads == 1  # TorchThreads(1) ran in the workers
    local = search(SPACE, evaluator, latency, target, **kwargs)
    got = [
        (c.index, c.arch, c.code, c.accuracy, c.latency_ms, c.reward)
        for c in distributed.candidates
    ]
    want = [(c.index, c.arch, c.code, c.accuracy, c.latency_ms, c.reward) for c in local.candidates]
    assert got == want
    assert len(got) == 6 and len({c[2] for c in got}) >= 3  # a real search, not one arch
    assert not any(c.cached for c in distributed.candidates)  # trained on the workers
    # nothing left: every process the cluster started is gone once the context has closed
    deadline = time.monotonic() + 30
    while _children() - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not (_children() - before), f"leftover processes {_children() - before}"


def test_torch_threads_plugin_sets_the_count_and_checks_it():
    old = torch.get_num_threads()
    try:
        TorchThreads(1).setup(worker=None)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(old)
    with pytest.raises(ValueError, match="threads"):
        TorchThreads(0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"address": 8786}, TypeError, "address must be a scheduler address"),
        ({"n_workers": 0}, ValueError, "n_workers"),
        ({"timeout": 0}, ValueError, "timeout"),
    ],
)
def test_dask_executor_rejects_bad_arguments_before_starting_anything(kwargs, error, match):
    before = _children()
    with pytest.raises(error, match=match), dask_executor(**kwargs):
        pass
    assert not (_children() - before)
