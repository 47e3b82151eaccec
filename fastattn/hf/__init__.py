"""Hugging Face transformers integration: fastattn.patch / fastattn.unpatch and the `fastattn`
attention implementation. transformers is imported only when a model is patched."""

from .patching import patch, unpatch

__all__ = ["patch", "unpatch"]
