"""Ctrl-C that cannot be lost on the way.

An interrupt that lands while an extension module initializes reaches Python as that module's
``ImportError`` (pybind11 modules re-raise it so), and a library that imports the module
optionally (``try: import x / except ImportError``) then swallows it: the command would go on
to the end and exit 0. The command line's handler remembers every Ctrl-C, and long-running
loops call :func:`check` to raise it again where it was swallowed. Standard library only.
"""

from __future__ import annotations

import signal
import threading

_pending = False


def _on_sigint(signum, frame):
    global _pending
    _pending = True
    raise KeyboardInterrupt


def install():
    """Install the remembering SIGINT handler (main thread only); returns the handler it replaced,
    or None where none was replaced."""
    global _pending
    _pending = False
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, _on_sigint)


def restore(previous) -> None:
    """Put back the handler :func:`install` replaced."""
    global _pending
    _pending = False
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, previous)


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a Ctrl-C arrived since :func:`install` and was swallowed."""
    if _pending:
        raise KeyboardInterrupt
