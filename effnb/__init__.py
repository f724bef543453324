"""effnb: efficient CNNs as a course that runs.

The public surface; see README.md ("How the package is organised") for the layers.
"""

from effnb.bench import compare_latency, measure_latency
from effnb.costs import profile
from effnb.deploy import available_backends, deploy  # effnb.deploy is the function
from effnb.models import create_model, list_models, model_info

__all__ = [
    "available_backends",
    "compare_latency",
    "create_model",
    "deploy",
    "list_models",
    "measure_latency",
    "model_info",
    "profile",
]
__version__ = "0.1.0"
