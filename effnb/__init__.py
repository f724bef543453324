"""effnb: efficient CNNs as a course that runs.

The public surface; see README.md ("How the package is organised") for the layers.
"""

from effnb.models import create_model, list_models, model_info

__all__ = ["create_model", "list_models", "model_info"]
__version__ = "0.1.0"
