"""Kinds: the processors that turn an asset's inputs into its bytes in the pack."""

from packer.kinds.base import Kind, KindContext
from packer.kinds.registry import builtin_kinds, get_kind, load_kinds

__all__ = ["Kind", "KindContext", "builtin_kinds", "get_kind", "load_kinds"]
