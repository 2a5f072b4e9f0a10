"""The model registry: limits, prices and tokenizer for each model, with the source of each fact."""

from tokenpilot._models._registry import ModelInfo, default_model_name, get_model, list_models

__all__ = ["ModelInfo", "default_model_name", "get_model", "list_models"]
