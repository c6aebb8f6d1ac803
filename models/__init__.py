"""Reference models for trnbench: pure PyTorch, no device code, no imports from ``bench``.

``configs`` holds the model shapes (torch-free), ``llama`` and ``moe`` the decoders,
``registry`` the named configurations and ``flops`` the analytic parameter and training-FLOP
counts. The names below load on first use, so that importing ``models.registry`` or
``models.flops`` does not import torch (``trnbench models``, ``project`` start fast).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FORMULA": "models.flops", "count_module_params": "models.flops",
    "flops_per_token": "models.flops", "matmul_param_count": "models.flops",
    "param_count": "models.flops", "Llama": "models.llama", "LlamaConfig": "models.configs",
    "ModelSpec": "models.registry", "UnknownModelError": "models.registry",
    "build": "models.registry", "get": "models.registry", "names": "models.registry",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
