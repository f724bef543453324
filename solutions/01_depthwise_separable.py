# Solutions and plausible wrong answers for notebooks/01_depthwise_separable.ipynb.
# Each block replaces the exercise cell; "wrong: <phrase>" names what the check must say.
# ruff: noqa: F811, F821

# %% 1.1 solution
answer = 64 * 25 / (25 + 64)

# %% 1.1 wrong: k^2 limit
answer = 25


# %% 1.2 solution
class MyDepthwiseSeparable(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1):
        super().__init__()
        pad = (kernel_size - 1) // 2
        self.dw = nn.Conv2d(
            in_channels, in_channels, kernel_size, stride, pad, groups=in_channels, bias=False
        )
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.pw = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        x = torch.relu(self.bn1(self.dw(x)))
        return torch.relu(self.bn2(self.pw(x)))


# %% 1.2 wrong: groups
class MyDepthwiseSeparable(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1):
        super().__init__()
        pad = (kernel_size - 1) // 2
        self.dw = nn.Conv2d(in_channels, in_channels, kernel_size, stride, pad, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.pw = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        x = torch.relu(self.bn1(self.dw(x)))
        return torch.relu(self.bn2(self.pw(x)))
