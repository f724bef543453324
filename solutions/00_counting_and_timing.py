# Solutions and plausible wrong answers for notebooks/00_counting_and_timing.ipynb.
# Each block replaces the exercise cell; "wrong: <phrase>" names what the check must say.
# ruff: noqa: F811, F821

# %% 0.1 solution
h_out = (57 + 2 * 2 - 5) // 2 + 1  # 29
w_out = (43 + 2 * 2 - 5) // 2 + 1  # 22
answer = 5 * 5 * (96 // 96) * 96 * h_out * w_out

# %% 0.1 wrong: FLOPs
answer = 2 * 5 * 5 * 96 * 29 * 22

# %% 0.1 wrong: ignore groups
answer = 5 * 5 * 96 * 96 * 29 * 22

# %% 0.1 wrong: output size
answer = 5 * 5 * 96 * (57 // 2) * (43 // 2)

# %% 0.1 wrong: stride
answer = 5 * 5 * 96 * 57 * 43


# %% 0.2 solution
def macs_by_kind(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    totals = {"depthwise": 0, "pointwise": 0, "conv": 0, "linear": 0}

    def count(module, inputs, out):
        if isinstance(module, nn.Linear):
            totals["linear"] += module.in_features * out.numel()
            return
        k_h, k_w = module.kernel_size
        macs = k_h * k_w * (module.in_channels // module.groups) * out.numel()
        if module.groups == module.in_channels > 1:
            totals["depthwise"] += macs
        elif (k_h, k_w) == (1, 1):
            totals["pointwise"] += macs
        else:
            totals["conv"] += macs

    handles = [
        m.register_forward_hook(count)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for handle in handles:
            handle.remove()
    return totals


# %% 0.2 wrong: ignore groups
def macs_by_kind(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    totals = {"depthwise": 0, "pointwise": 0, "conv": 0, "linear": 0}

    def count(module, inputs, out):
        if isinstance(module, nn.Linear):
            totals["linear"] += module.in_features * out.numel()
            return
        k_h, k_w = module.kernel_size
        macs = k_h * k_w * module.in_channels * out.numel()
        if module.groups == module.in_channels > 1:
            totals["depthwise"] += macs
        elif (k_h, k_w) == (1, 1):
            totals["pointwise"] += macs
        else:
            totals["conv"] += macs

    handles = [
        m.register_forward_hook(count)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    with torch.no_grad():
        model.eval()(x)
    for handle in handles:
        handle.remove()
    return totals


# %% 0.2 wrong: FLOPs
def macs_by_kind(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    totals = {"depthwise": 0, "pointwise": 0, "conv": 0, "linear": 0}

    def count(module, inputs, out):
        if isinstance(module, nn.Linear):
            totals["linear"] += 2 * module.in_features * out.numel()
            return
        k_h, k_w = module.kernel_size
        flops = 2 * k_h * k_w * (module.in_channels // module.groups) * out.numel()
        if module.groups == module.in_channels > 1:
            totals["depthwise"] += flops
        elif (k_h, k_w) == (1, 1):
            totals["pointwise"] += flops
        else:
            totals["conv"] += flops

    handles = [
        m.register_forward_hook(count)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    with torch.no_grad():
        model.eval()(x)
    for handle in handles:
        handle.remove()
    return totals


# %% 0.2 wrong: output size
def macs_by_kind(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    totals = {"depthwise": 0, "pointwise": 0, "conv": 0, "linear": 0}

    def count(module, inputs, out):
        if isinstance(module, nn.Linear):
            totals["linear"] += module.in_features * out.numel()
            return
        k_h, k_w = module.kernel_size
        _, _, h_in, w_in = inputs[0].shape
        per_position = k_h * k_w * (module.in_channels // module.groups) * module.out_channels
        macs = per_position * h_in * w_in
        if module.groups == module.in_channels > 1:
            totals["depthwise"] += macs
        elif (k_h, k_w) == (1, 1):
            totals["pointwise"] += macs
        else:
            totals["conv"] += macs

    handles = [
        m.register_forward_hook(count)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    with torch.no_grad():
        model.eval()(x)
    for handle in handles:
        handle.remove()
    return totals


# %% 0.2 wrong: depthwise means groups
def macs_by_kind(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    totals = {"depthwise": 0, "pointwise": 0, "conv": 0, "linear": 0}

    def count(module, inputs, out):
        if isinstance(module, nn.Linear):
            totals["linear"] += module.in_features * out.numel()
            return
        k_h, k_w = module.kernel_size
        macs = k_h * k_w * (module.in_channels // module.groups) * out.numel()
        if module.groups > 1:
            totals["depthwise"] += macs
        elif (k_h, k_w) == (1, 1):
            totals["pointwise"] += macs
        else:
            totals["conv"] += macs

    handles = [
        m.register_forward_hook(count)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    with torch.no_grad():
        model.eval()(x)
    for handle in handles:
        handle.remove()
    return totals


# %% 0.2 wrong: remove them
def macs_by_kind(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    totals = {"depthwise": 0, "pointwise": 0, "conv": 0, "linear": 0}

    def count(module, inputs, out):
        if isinstance(module, nn.Linear):
            totals["linear"] += module.in_features * out.numel()
            return
        k_h, k_w = module.kernel_size
        macs = k_h * k_w * (module.in_channels // module.groups) * out.numel()
        if module.groups == module.in_channels > 1:
            totals["depthwise"] += macs
        elif (k_h, k_w) == (1, 1):
            totals["pointwise"] += macs
        else:
            totals["conv"] += macs

    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            m.register_forward_hook(count)
    with torch.no_grad():
        model.eval()(x)
    return totals


# %% 0.3 solution
def time_it(fn, threads: int) -> tuple[float, float]:
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
    for _ in range(3):  # warm-up: one-off set-up is not what we measure
        fn()
    m = timer.blocked_autorange(min_run_time=0.2)
    return m.median * 1e3, m.iqr * 1e3


# %% 0.3 wrong: warm up
def time_it(fn, threads: int) -> tuple[float, float]:
    torch.set_num_threads(threads)
    start = time.time()
    fn()
    return (time.time() - start) * 1e3, 0.0


# %% 0.3 wrong: threads
def time_it(fn, threads: int) -> tuple[float, float]:
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn})
    for _ in range(3):
        fn()
    m = timer.blocked_autorange(min_run_time=0.2)
    return m.median * 1e3, m.iqr * 1e3


# %% 0.3 wrong: seconds
def time_it(fn, threads: int) -> tuple[float, float]:
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
    for _ in range(3):
        fn()
    m = timer.blocked_autorange(min_run_time=0.2)
    return m.median, m.iqr


# %% 0.3 wrong: one sample
def time_it(fn, threads: int) -> tuple[float, float]:
    torch.set_num_threads(threads)
    fn()  # warm-up
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3, 0.0
