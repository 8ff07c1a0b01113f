"""The implementation registry and the one way to build a model: `build_layer`."""

from bench.impls.registry import REGISTRY, ImplSpec, get_spec

__all__ = ["REGISTRY", "ImplSpec", "get_spec"]
