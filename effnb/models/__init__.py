"""effnb.models: every model family as config tables plus one builder each."""

# isort: off
# Importing a family registers its models; the order here is the course's order.
from effnb.models import mobilenet, shufflenet, ghostnet, efficientnet  # noqa: F401

# isort: on
from effnb.models.net import ClassifierHead, EfficientCNN
from effnb.models.registry import ModelInfo, create_model, list_models, model_info, register_model

__all__ = [
    "ClassifierHead",
    "EfficientCNN",
    "ModelInfo",
    "create_model",
    "list_models",
    "model_info",
    "register_model",
]
