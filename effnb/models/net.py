"""The container every effnb model is: stem -> stages -> head -> classifier.

All families share it, so the cost model, BatchNorm folding and the latency harness see
the same named parts everywhere: ``stem`` (and ``stem_pool``), ``stages`` (one
``nn.Sequential`` per stage of the paper's table), ``head`` (the last 1x1 conv) and
``classifier`` (pool -> optional hidden layer -> dropout -> linear).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from effnb._checks import check_int, check_layer_params, check_probability
from effnb.layers import LayerFactory, _create_act


class ClassifierHead(nn.Module):
    """Global average pool -> [hidden linear + act] -> dropout -> linear.

    MobileNetV3 and GhostNet have the hidden layer (1280 units); the others go straight
    from the pooled features to the logits. Params = (C*H + H) + (H*K + K) with a hidden
    layer of H units, else C*K + K, for C features and K classes.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        dropout: float = 0.0,
        hidden_features: int | None = None,
        hidden_act: str | LayerFactory | None = None,
    ) -> None:
        super().__init__()
        in_features = check_int("in_features", in_features)
        num_classes = check_int("num_classes", num_classes)
        dropout = check_probability("dropout", dropout)
        if hidden_features is not None:
            hidden_features = check_int("hidden_features", hidden_features, minimum=0)
        width = hidden_features or in_features
        if hidden_features:
            check_layer_params(
                f"the classifier's hidden layer ({in_features} -> {hidden_features})",
                in_features * hidden_features,
            )
        check_layer_params(
            f"the classifier ({width} features -> num_classes={num_classes})", width * num_classes
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.pre_logits: nn.Module
        if hidden_features:
            self.pre_logits = nn.Sequential()
            self.pre_logits.add_module("fc", nn.Linear(in_features, hidden_features))
            self.pre_logits.add_module("act", _create_act(hidden_act))
            in_features = hidden_features
        else:
            self.pre_logits = nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(self.pool(x))  # (B, C)
        x = self.pre_logits(x)
        x = self.dropout(x)
        return self.fc(x)  # (B, num_classes)


class EfficientCNN(nn.Module):
    """stem -> [stem_pool] -> stages -> head -> classifier, with an input check.

    ``total_stride`` is the product of all strides (32 for every model here), so the
    smallest input that still leaves one pixel for the head is total_stride x total_stride.
    """

    def __init__(
        self,
        stem: nn.Module,
        stages: Sequence[nn.Module],
        head: nn.Module,
        classifier: nn.Module,
        *,
        stem_pool: nn.Module | None = None,
        in_chans: int = 3,
        total_stride: int = 32,
        default_input_size: int = 224,
        name: str = "",
    ) -> None:
        super().__init__()
        in_chans = check_int("in_chans", in_chans)
        total_stride = check_int("total_stride", total_stride)
        default_input_size = check_int("default_input_size", default_input_size)
        if not isinstance(name, str):
            raise TypeError(f"name must be a string, got {name!r}")
        self.stem = stem
        self.stem_pool = stem_pool if stem_pool is not None else nn.Identity()
        self.stages = nn.Sequential(*stages)
        self.head = head
        self.classifier = classifier
        self.in_chans = in_chans
        self.total_stride = total_stride
        self.default_input_size = default_input_size
        self.name = name
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise as torchvision's MobileNets do: convs Kaiming-normal (fan_out), BatchNorm
        scale 1 and shift 0, linear layers N(0, 0.01^2), biases 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def small_input(self) -> EfficientCNN:
        """Adapt the network to small images (8x8 digits upsampled to 16-32 px, CIFAR's 32 px).

        The stem conv's stride becomes 1 and the stem max pool (ShuffleNetV2) is removed, so
        the total stride drops from 32 to 16 (ShuffleNetV2: 8). Parameters are unchanged;
        MACs at a given input grow by the square of the removed stride. Returns ``self``.
        """
        conv = getattr(self.stem, "conv", None)
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(
                f"small_input needs a stem whose .conv is an nn.Conv2d, got {type(conv).__name__}"
            )
        factor = conv.stride[0]
        conv.stride = (1, 1)
        if not isinstance(self.stem_pool, nn.Identity):
            factor *= 2
            self.stem_pool = nn.Identity()
        self.total_stride //= factor
        return self

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ValueError unless x is (B, in_chans, H, W) with H, W >= total_stride."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"{self.name or type(self).__name__} takes a torch.Tensor, got {type(x).__name__}"
            )
        if x.ndim != 4 or x.shape[1] != self.in_chans or min(x.shape[-2:]) < self.total_stride:
            raise ValueError(
                f"{self.name or type(self).__name__} expects input of shape "
                f"(batch, {self.in_chans}, H, W) with H, W >= {self.total_stride} (its total stride; "
                f"native size {self.default_input_size}x{self.default_input_size}), got {tuple(x.shape)}"
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x = self.stem_pool(self.stem(x))
        x = self.stages(x)
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))
