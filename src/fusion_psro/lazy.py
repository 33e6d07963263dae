"""Names a package exports but imports on first use (PyTorch, SciPy and the experiments
package stay unloaded until a command needs them).

It imports nothing but :mod:`importlib` (loaded with the interpreter): the package imports
it first thing, before the command line can answer Ctrl-C.
"""

import importlib


def lazy_getattr(package: str, names: dict):
    """A module ``__getattr__`` for ``package``: ``names[name]`` is the module that defines ``name``
    (``package`` itself: ``name`` is its submodule), imported when ``name`` is first asked for."""

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        if names[name] == package:
            return importlib.import_module(f"{package}.{name}")
        return getattr(importlib.import_module(names[name]), name)

    return __getattr__


__all__ = ["lazy_getattr"]
