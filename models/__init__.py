"""Reference models for trnbench: pure PyTorch, no device code, no imports from ``bench``.

``llama`` holds the dense decoder, ``registry`` the named configurations and ``flops``
the analytic parameter and training-FLOP counts.
"""

from models.flops import (
    FORMULA,
    count_module_params,
    flops_per_token,
    matmul_param_count,
    param_count,
)
from models.llama import Llama, LlamaConfig
from models.registry import ModelSpec, UnknownModelError, build, get, names

__all__ = [
    "FORMULA",
    "Llama",
    "LlamaConfig",
    "ModelSpec",
    "UnknownModelError",
    "build",
    "count_module_params",
    "flops_per_token",
    "get",
    "matmul_param_count",
    "names",
    "param_count",
]
