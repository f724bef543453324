# Solutions and plausible wrong answers for notebooks/01_depthwise_separable.ipynb.
# Each block replaces the exercise cell; "wrong: <phrase>" names what the check must say.
# ruff: noqa: F811, F821

# %% 1.1 solution
answer = 64 * 25 / (25 + 64)

# %% 1.1 wrong: k^2 limit
answer = 25

# %% 1.1 wrong: pointwise conv's C_in C_out weights are missing
answer = 64


# %% 1.2 solution
class SeparableDM(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, depth_multiplier=1):
        super().__init__()
        mid = in_channels * depth_multiplier
        pad = (kernel_size - 1) // 2
        self.dw = nn.Conv2d(
            in_channels, mid, kernel_size, stride, pad, groups=in_channels, bias=False
        )
        self.bn_dw = nn.BatchNorm2d(mid)
        self.pw = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.bn_pw = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        x = torch.relu(self.bn_dw(self.dw(x)))  # (B, m C_in, H/s, W/s)
        return torch.relu(self.bn_pw(self.pw(x)))  # (B, C_out, H/s, W/s)


# %% 1.2 wrong: groups
class SeparableDM(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, depth_multiplier=1):
        super().__init__()
        mid = in_channels * depth_multiplier
        pad = (kernel_size - 1) // 2
        self.dw = nn.Conv2d(in_channels, mid, kernel_size, stride, pad, bias=False)
        self.bn_dw = nn.BatchNorm2d(mid)
        self.pw = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.bn_pw = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        x = torch.relu(self.bn_dw(self.dw(x)))
        return torch.relu(self.bn_pw(self.pw(x)))


# %% 1.2 wrong: as if the depth multiplier were 1
class SeparableDM(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, depth_multiplier=1):
        super().__init__()
        pad = (kernel_size - 1) // 2
        self.dw = nn.Conv2d(
            in_channels, in_channels, kernel_size, stride, pad, groups=in_channels, bias=False
        )
        self.bn_dw = nn.BatchNorm2d(in_channels)
        self.pw = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn_pw = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        x = torch.relu(self.bn_dw(self.dw(x)))
        return torch.relu(self.bn_pw(self.pw(x)))


# %% 1.2 wrong: the stride belongs to the depthwise
class SeparableDM(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, depth_multiplier=1):
        super().__init__()
        mid = in_channels * depth_multiplier
        pad = (kernel_size - 1) // 2
        self.dw = nn.Conv2d(in_channels, mid, kernel_size, 1, pad, groups=in_channels, bias=False)
        self.bn_dw = nn.BatchNorm2d(mid)
        self.pw = nn.Conv2d(mid, out_channels, 1, stride, bias=False)
        self.bn_pw = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        x = torch.relu(self.bn_dw(self.dw(x)))
        return torch.relu(self.bn_pw(self.pw(x)))


# %% 1.3 solution
def mobilenet_v1_macs(alpha, resolution):
    width = lambda c: make_divisible(c * alpha, 8)  # noqa: E731
    size = (resolution + 2 - 3) // 2 + 1  # the 3x3 stride-2 stem, padding 1
    c_in = width(STEM_CHANNELS)
    macs = 3 * 3 * 3 * c_in * size * size
    for c_out, stride in V1_BLOCKS:
        size = (size + 2 - 3) // stride + 1  # the block's depthwise conv sets its output size
        macs += (3 * 3 * c_in + c_in * width(c_out)) * size * size
        c_in = width(c_out)
    return macs + c_in * 1000  # the classifier, after global average pooling


# %% 1.3 wrong: FLOPs
def mobilenet_v1_macs(alpha, resolution):
    width = lambda c: make_divisible(c * alpha, 8)  # noqa: E731
    size = (resolution + 2 - 3) // 2 + 1
    c_in = width(STEM_CHANNELS)
    flops = 2 * 3 * 3 * 3 * c_in * size * size
    for c_out, stride in V1_BLOCKS:
        size = (size + 2 - 3) // stride + 1
        flops += 2 * (3 * 3 * c_in + c_in * width(c_out)) * size * size
        c_in = width(c_out)
    return flops + 2 * c_in * 1000


# %% 1.3 wrong: floor division
def mobilenet_v1_macs(alpha, resolution):
    width = lambda c: make_divisible(c * alpha, 8)  # noqa: E731
    size = resolution // 2
    c_in = width(STEM_CHANNELS)
    macs = 3 * 3 * 3 * c_in * size * size
    for c_out, stride in V1_BLOCKS:
        size = size // stride
        macs += (3 * 3 * c_in + c_in * width(c_out)) * size * size
        c_in = width(c_out)
    return macs + c_in * 1000


# %% 1.3 wrong: classifier
def mobilenet_v1_macs(alpha, resolution):
    width = lambda c: make_divisible(c * alpha, 8)  # noqa: E731
    size = (resolution + 2 - 3) // 2 + 1
    c_in = width(STEM_CHANNELS)
    macs = 3 * 3 * 3 * c_in * size * size
    for c_out, stride in V1_BLOCKS:
        size = (size + 2 - 3) // stride + 1
        macs += (3 * 3 * c_in + c_in * width(c_out)) * size * size
        c_in = width(c_out)
    return macs
