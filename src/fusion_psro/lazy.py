"""Names a package exports but imports on first use (PyTorch, SciPy and the experiments
package stay unloaded until a command needs them)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``names[name]`` is the module that defines ``name``
    (``package`` itself: ``name`` is its submodule), imported when ``name`` is first asked for."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        if names[name] == package:
            return importlib.import_module(f"{package}.{name}")
        return getattr(importlib.import_module(names[name]), name)

    return __getattr__


__all__ = ["lazy_getattr"]
