# Solutions and plausible wrong answers for notebooks/08_deployment.ipynb.
# Each block replaces the exercise cell; "wrong: <phrase>" names what the check must say.
# ruff: noqa: F811


# %% 8.1 solution
def nhwc_strides(n, c, h, w):
    # memory order N, H, W, C: one pixel's channels are adjacent
    return (h * w * c, 1, w * c, c)


# %% 8.1 wrong: NCHW
def nhwc_strides(n, c, h, w):
    return (c * h * w, h * w, w, 1)


# %% 8.1 wrong: logical dims (N, C, H, W)
def nhwc_strides(n, c, h, w):
    return (h * w * c, w * c, c, 1)


# %% 8.1 wrong: H and W are swapped
def nhwc_strides(n, c, h, w):
    return (h * w * c, 1, c, h * c)


# %% 8.2 solution
def roofline_point(macs, bytes_moved, seconds, peak, bandwidth):
    intensity = macs / bytes_moved  # MACs per byte
    achieved = macs / seconds  # MAC/s
    roof = min(peak, intensity * bandwidth)
    return intensity, achieved, achieved / roof


# %% 8.2 wrong: bytes per MAC
def roofline_point(macs, bytes_moved, seconds, peak, bandwidth):
    intensity = bytes_moved / macs
    achieved = macs / seconds
    return intensity, achieved, achieved / min(peak, intensity * bandwidth)


# %% 8.2 wrong: FLOPs
def roofline_point(macs, bytes_moved, seconds, peak, bandwidth):
    intensity = macs / bytes_moved
    achieved = 2 * macs / seconds
    return intensity, achieved, achieved / min(peak, intensity * bandwidth)


# %% 8.2 wrong: memory roof
def roofline_point(macs, bytes_moved, seconds, peak, bandwidth):
    intensity = macs / bytes_moved
    achieved = macs / seconds
    return intensity, achieved, achieved / peak


# %% 8.2 wrong: compute roof
def roofline_point(macs, bytes_moved, seconds, peak, bandwidth):
    intensity = macs / bytes_moved
    achieved = macs / seconds
    return intensity, achieved, achieved / (intensity * bandwidth)
