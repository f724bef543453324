# Solutions and plausible wrong answers for notebooks/04_shufflenet_ghostnet.ipynb.
# Each block replaces the exercise cell; "wrong: <phrase>" names what the check must say.
# ruff: noqa: F811, F821

# %% 4.1 solution
def your_channel_shuffle(x, groups):
    b, c, h, w = x.shape
    x = x.reshape(b, groups, c // groups, h, w)  # (B, g, C/g, H, W)
    x = x.transpose(1, 2)  # (B, C/g, g, H, W)
    return x.reshape(b, c, h, w)  # (B, C, H, W)


# %% 4.1 wrong: other way round
def your_channel_shuffle(x, groups):
    b, c, h, w = x.shape
    x = x.reshape(b, c // groups, groups, h, w)  # (B, C/g, g, H, W)
    x = x.transpose(1, 2)  # (B, g, C/g, H, W)
    return x.reshape(b, c, h, w)


# %% 4.1 wrong: order is unchanged
def your_channel_shuffle(x, groups):
    b, c, h, w = x.shape
    x = x.reshape(b, groups, c // groups, h, w)  # (B, g, C/g, H, W)
    x = x.permute(0, 1, 2, 3, 4)  # a permute that swaps nothing
    return x.reshape(b, c, h, w)


# %% 4.1 wrong: contiguous
def your_channel_shuffle(x, groups):
    b, c, h, w = x.shape
    x = x.view(b, groups, c // groups, h, w).transpose(1, 2)  # (B, C/g, g, H, W)
    return x.view(b, c, h, w)


# %% 4.1 wrong: spatial axes
def your_channel_shuffle(x, groups):
    b, c, h, w = x.shape
    x = x.reshape(b, groups, c // groups, h, w)  # (B, g, C/g, H, W)
    return x.transpose(3, 4).reshape(b, c, w, h)


# %% 4.2 solution
class YourGhostModule(nn.Module):
    def __init__(self, in_channels, out_channels, ratio=2, relu=True):
        super().__init__()
        self.out_channels = out_channels
        m = math.ceil(out_channels / ratio)  # intrinsic maps
        act = nn.ReLU if relu else nn.Identity
        self.primary = nn.Sequential(
            nn.Conv2d(in_channels, m, 1, bias=False), nn.BatchNorm2d(m), act()
        )
        self.cheap = nn.Sequential(
            nn.Conv2d(m, (ratio - 1) * m, 3, padding=1, groups=m, bias=False),
            nn.BatchNorm2d((ratio - 1) * m),
            act(),
        )

    def forward(self, x):
        x1 = self.primary(x)  # (B, m, H, W)
        x2 = self.cheap(x1)  # (B, (ratio - 1) m, H, W)
        return torch.cat([x1, x2], dim=1)[:, : self.out_channels]  # (B, C_out, H, W)


# %% 4.2 wrong: loses a channel
class YourGhostModule(nn.Module):
    def __init__(self, in_channels, out_channels, ratio=2, relu=True):
        super().__init__()
        m = out_channels // ratio
        act = nn.ReLU if relu else nn.Identity
        self.primary = nn.Sequential(
            nn.Conv2d(in_channels, m, 1, bias=False), nn.BatchNorm2d(m), act()
        )
        self.cheap = nn.Sequential(
            nn.Conv2d(m, (ratio - 1) * m, 3, padding=1, groups=m, bias=False),
            nn.BatchNorm2d((ratio - 1) * m),
            act(),
        )

    def forward(self, x):
        x1 = self.primary(x)
        return torch.cat([x1, self.cheap(x1)], dim=1)


# %% 4.2 wrong: did not slice
class YourGhostModule(nn.Module):
    def __init__(self, in_channels, out_channels, ratio=2, relu=True):
        super().__init__()
        m = math.ceil(out_channels / ratio)
        act = nn.ReLU if relu else nn.Identity
        self.primary = nn.Sequential(
            nn.Conv2d(in_channels, m, 1, bias=False), nn.BatchNorm2d(m), act()
        )
        self.cheap = nn.Sequential(
            nn.Conv2d(m, (ratio - 1) * m, 3, padding=1, groups=m, bias=False),
            nn.BatchNorm2d((ratio - 1) * m),
            act(),
        )

    def forward(self, x):
        x1 = self.primary(x)
        return torch.cat([x1, self.cheap(x1)], dim=1)


# %% 4.2 wrong: must be linear
class YourGhostModule(nn.Module):
    def __init__(self, in_channels, out_channels, ratio=2, relu=True):
        super().__init__()
        self.out_channels = out_channels
        m = math.ceil(out_channels / ratio)
        self.primary = nn.Sequential(
            nn.Conv2d(in_channels, m, 1, bias=False), nn.BatchNorm2d(m), nn.ReLU()
        )
        self.cheap = nn.Sequential(
            nn.Conv2d(m, (ratio - 1) * m, 3, padding=1, groups=m, bias=False),
            nn.BatchNorm2d((ratio - 1) * m),
            nn.ReLU(),
        )

    def forward(self, x):
        x1 = self.primary(x)
        return torch.cat([x1, self.cheap(x1)], dim=1)[:, : self.out_channels]


# %% 4.2 wrong: must be depthwise
class YourGhostModule(nn.Module):
    def __init__(self, in_channels, out_channels, ratio=2, relu=True):
        super().__init__()
        self.out_channels = out_channels
        m = math.ceil(out_channels / ratio)
        act = nn.ReLU if relu else nn.Identity
        self.primary = nn.Sequential(
            nn.Conv2d(in_channels, m, 1, bias=False), nn.BatchNorm2d(m), act()
        )
        self.cheap = nn.Sequential(
            nn.Conv2d(m, (ratio - 1) * m, 3, padding=1, bias=False),
            nn.BatchNorm2d((ratio - 1) * m),
            act(),
        )

    def forward(self, x):
        x1 = self.primary(x)
        return torch.cat([x1, self.cheap(x1)], dim=1)[:, : self.out_channels]


# %% 4.3 solution
answer = 14 * 14 * (32 * 7 + 9 * 14)

# %% 4.3 wrong: floor instead of ceil
answer = 14 * 14 * (32 * 6 + 9 * 12)

# %% 4.3 wrong: FLOPs
answer = 2 * 14 * 14 * (32 * 7 + 9 * 14)

# %% 4.3 wrong: after the slice
answer = 14 * 14 * (32 * 7 + 9 * 13)
