"""Registries: every pluggable component of a PSRO run, by name, with what it can do.

Six kinds of component plug into the loop, each kept in one :class:`Registry`:

=================  ==================  ===============================================
registry           register with       a component is
=================  ==================  ===============================================
``ORACLES``        ``register_oracle``  an :class:`~fusion_psro.oracles.base.Oracle` subclass
``VARIANTS``       ``register_variant`` a :class:`~fusion_psro.psro.variants.Variant` subclass
``INITS``          ``register_init``    an :class:`~fusion_psro.psro.initialization.Initialization`
``META_SOLVERS``   ``register_meta_solver``  a function ``M -> MetaSolution``
``DIVERSITY_TERMS`` ``register_diversity_term`` a :class:`~fusion_psro.oracles.diversity.DiversityMeasure`
``GAME_KINDS``     ``register_game_kind`` a :class:`~fusion_psro.psro.spaces.PolicySpace` subclass
=================  ==================  ===============================================

Each component declares its capabilities as attributes (an oracle's ``trains_parameters``
and ``game_kinds``, a variant's ``diversity`` term, ...); settings are validated by asking
them, and every list of accepted names (errors, command-line choices) comes from here.

A registry fills itself on first use: it imports the package that registers the built-in
components (a built-in whose module is heavy, such as the PyTorch oracles, is registered
*deferred*, by module path: :meth:`Registry.register_deferred`; its module is imported the
first time the component itself is asked for, so a run of the exact oracle never imports
PyTorch), then loads the installed entry points of its group (``fusion_psro.oracles``,
``fusion_psro.variants``, ...). An entry point names either a module whose import registers
its components, or an object, registered under the entry point's name. Code outside the
package registers directly::

    import fusion_psro

    @fusion_psro.register_oracle("my-oracle")
    class MyOracle(fusion_psro.oracles.Oracle):
        ...

and the command line imports such a module with ``fusion-psro --plugin my_module.py run
...`` (:func:`load_plugin`); sweeps hand the modules that define their components to every
worker (:func:`plugin_sources`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import logging
import sys
import threading
import types
from pathlib import Path
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any, Generic, TypeVar

from fusion_psro.errors import ConfigError, UnknownComponentError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class _Deferred:
    """A component not imported yet: ``module`` registers it (or defines it as ``attribute``) when imported."""

    module: str
    attribute: str


class Registry(Generic[T]):
    """Name -> component for one kind of component; see the module docstring.

    Parameters
    ----------
    kind:
        What a component is called in messages (``"oracle"``, ``"meta-solver"``).
    builtins:
        Module whose import registers the built-in components.
    group:
        Entry-point group of components installed by other packages.
    """

    def __init__(self, kind: str, *, builtins: str, group: str) -> None:
        self.kind = kind
        self.builtins = builtins
        self.group = group
        self._components: dict[str, T] = {}
        self._loaded = False
        self._loading = threading.RLock()

    def register(self, name: str, component: T | None = None, *, replace: bool = False) -> Any:
        """Register ``component`` as ``name``; without ``component``, a decorator that does.

        Registering another component under a taken name is a :class:`ConfigError` unless
        ``replace`` is set; registering the same one again changes nothing. A class
        component (or an instance of a class with a ``name`` attribute) gets its ``name`` set.
        """
        if not isinstance(name, str) or not name or name != name.strip():
            raise ConfigError(f"a {self.kind} name must be a non-empty string without surrounding spaces, got {name!r}")
        self._ensure_loaded()  # built-ins first, so a clash with one is reported here
        if component is None:
            def decorator(target: T) -> T:
                self.register(name, target, replace=replace)
                return target
            return decorator
        existing = self._components.get(name)
        if isinstance(existing, _Deferred) and getattr(component, "__module__", None) == existing.module:
            existing = None  # the deferred module registering its component
        if existing is not None and existing is not component and not replace:
            raise ConfigError(
                f"{self.kind} {name!r} is already registered ({_describe(existing)}); "
                "pass replace=True to replace it"
            )
        if isinstance(component, type) or hasattr(type(component), "name"):
            component.name = name  # type: ignore[attr-defined]
        self._components[name] = component
        return component

    def register_deferred(self, name: str, module: str, attribute: str) -> None:
        """Register ``name`` as ``module.attribute`` without importing ``module`` yet.

        The module is imported the first time the component is needed (:meth:`get`,
        :meth:`items`, or :meth:`names` with a condition); its own ``register`` call, or
        else the attribute, takes the place. Until then the name is listed like any other.
        """
        self._ensure_loaded()
        if name in self._components:
            raise ConfigError(f"{self.kind} {name!r} is already registered ({_describe(self._components[name])})")
        self._components[name] = _Deferred(module, attribute)  # type: ignore[assignment]

    def _resolved(self, name: str) -> T:
        component = self._components[name]
        if not isinstance(component, _Deferred):
            return component
        module = importlib.import_module(component.module)  # normally registers the component
        if isinstance(self._components.get(name), _Deferred):
            self.register(name, getattr(module, component.attribute), replace=True)
        return self._components[name]

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests and interactive sessions that register throw-away components)."""
        self._components.pop(name, None)

    def get(self, name: str) -> T:
        """The component registered as ``name``; :class:`UnknownComponentError` lists the accepted names."""
        self._ensure_loaded()
        try:
            known = name in self._components
        except TypeError:  # an unhashable name
            known = False
        if not known:
            raise UnknownComponentError(f"unknown {self.kind} {name!r}; accepted: {self.accepted()}")
        return self._resolved(name)

    def names(self, where: Callable[[T], bool] | None = None) -> tuple[str, ...]:
        """Registered names in registration order; with ``where``, those whose component satisfies it
        (which imports the deferred ones)."""
        self._ensure_loaded()
        if where is None:
            return tuple(self._components)
        return tuple(name for name in list(self._components) if where(self._resolved(name)))

    def accepted(self, where: Callable[[T], bool] | None = None) -> str:
        """``"a, b, c"``: the names for an error message (``"none"`` when there are none)."""
        return ", ".join(self.names(where)) or "none"

    def items(self) -> Iterator[tuple[str, T]]:
        self._ensure_loaded()
        return iter([(name, self._resolved(name)) for name in list(self._components)])

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._components

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._components) if self._loaded else 'not loaded'})"

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._loading:
            if self._loaded:
                return
            self._loaded = True  # set first: the built-in module registers through this registry
            try:
                importlib.import_module(self.builtins)
            except BaseException:
                self._loaded = False
                raise
            for entry_point in metadata.entry_points(group=self.group):
                self._load_entry_point(entry_point)

    def _load_entry_point(self, entry_point: metadata.EntryPoint) -> None:
        try:
            loaded = entry_point.load()
        except Exception as exc:  # a broken plug-in must not take the built-ins down with it
            log.warning("ignoring %s entry point %r (%s): %s", self.kind, entry_point.name, entry_point.value, exc)
            return
        if not isinstance(loaded, types.ModuleType):
            self.register(entry_point.name, loaded, replace=True)


def _describe(component: Any) -> str:
    if isinstance(component, _Deferred):
        return f"{component.module}.{component.attribute}"
    module = getattr(component, "__module__", None)
    qualname = getattr(component, "__qualname__", None) or type(component).__qualname__
    return f"{module}.{qualname}" if module else qualname


def component_settings(what: str, settings_class: type | None, options: dict[str, Any]) -> Any:
    """The settings of a component (an instance of its frozen dataclass ``settings_class``) from
    ``options`` by name; ``what`` names the component in errors (``"psro-rn variant"``).

    Unknown names, and values the class refuses (``TypeError``/``ValueError`` in its
    ``__post_init__``), are a :class:`ConfigError` that says what is accepted.
    """
    if settings_class is None:
        if options:
            raise ConfigError(f"the {what} has no settings; got {sorted(options)}")
        return None
    import dataclasses  # noqa: PLC0415

    known = {f.name for f in dataclasses.fields(settings_class)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"unknown {what} option(s) {unknown}; accepted: {', '.join(sorted(known))}")
    try:
        return settings_class(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what}: {exc}") from None


#: Plug-in modules loaded with :func:`load_plugin`, in loading order (dotted names or file paths).
PLUGINS: list[str] = []


def load_plugin(source: str) -> types.ModuleType:
    """Import a module that registers components: a dotted module name, or a ``.py`` file.

    Loading the same source twice imports it once. A source that cannot be imported is a
    :class:`ConfigError` naming it.
    """
    is_file = source.endswith(".py")
    key = str(Path(source).resolve()) if is_file else source
    try:
        module = _import_file(Path(source), key) if is_file else importlib.import_module(source)
    except ConfigError:
        raise
    except Exception as exc:  # whatever the plug-in raised, the user needs its name and the reason
        raise ConfigError(f"cannot load plug-in {source!r}: {type(exc).__name__}: {exc}") from None
    if key not in PLUGINS:
        PLUGINS.append(key)
    return module


def _import_file(path: Path, key: str) -> types.ModuleType:
    if not path.is_file():
        raise ConfigError(f"plug-in file {path} does not exist")
    name = f"fusion_psro_plugin_{path.stem}_{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def plugin_sources(components: list[Any]) -> list[str]:
    """What another process must :func:`load_plugin` to know ``components`` too.

    The loaded plug-ins, then the files of components defined outside fusion-psro (for
    instance in the script or test that registered them), in order, without repeats.
    """
    sources = list(PLUGINS)
    for component in components:
        owner = component if isinstance(component, (type, types.FunctionType)) else type(component)
        module = sys.modules.get(getattr(owner, "__module__", "") or "")
        if module is None or module.__name__.split(".")[0] == "fusion_psro" or module.__name__.startswith(
                "fusion_psro_plugin_"):
            continue
        where = getattr(module, "__file__", None)
        source = str(Path(where).resolve()) if where else module.__name__
        if source not in sources:
            sources.append(source)
    return sources


ORACLES: Registry = Registry("oracle", builtins="fusion_psro.oracles", group="fusion_psro.oracles")
VARIANTS: Registry = Registry("variant", builtins="fusion_psro.psro.variants", group="fusion_psro.variants")
INITS: Registry = Registry("init", builtins="fusion_psro.psro.initialization", group="fusion_psro.inits")
META_SOLVERS: Registry = Registry("meta-solver", builtins="fusion_psro.meta.solvers", group="fusion_psro.meta_solvers")
DIVERSITY_TERMS: Registry = Registry(
    "diversity term", builtins="fusion_psro.oracles.diversity", group="fusion_psro.diversity_terms"
)
GAME_KINDS: Registry = Registry("game kind", builtins="fusion_psro.psro.kinds", group="fusion_psro.game_kinds")


def register_oracle(name: str, oracle: Any = None, *, replace: bool = False) -> Any:
    """Register an :class:`~fusion_psro.oracles.base.Oracle` subclass (decorator without ``oracle``)."""
    return ORACLES.register(name, oracle, replace=replace)


def register_variant(name: str, variant: Any = None, *, replace: bool = False) -> Any:
    """Register a :class:`~fusion_psro.psro.variants.Variant` subclass (decorator without ``variant``)."""
    return VARIANTS.register(name, variant, replace=replace)


def register_init(name: str, init: Any = None, *, replace: bool = False) -> Any:
    """Register an :class:`~fusion_psro.psro.initialization.Initialization` instance (decorator without
    ``init``; a decorated class is registered as an instance made with no arguments)."""
    if init is None:
        def decorator(target: Any) -> Any:
            register_init(name, target, replace=replace)
            return target
        return decorator
    return INITS.register(name, init() if isinstance(init, type) else init, replace=replace)


def register_meta_solver(name: str, solver: Any = None, *, replace: bool = False) -> Any:
    """Register a meta-solver ``solver(M) -> MetaSolution`` (decorator without ``solver``)."""
    return META_SOLVERS.register(name, solver, replace=replace)


def register_diversity_term(name: str, term: Any = None, *, replace: bool = False) -> Any:
    """Register a :class:`~fusion_psro.oracles.diversity.DiversityMeasure` (decorator without ``term``)."""
    return DIVERSITY_TERMS.register(name, term, replace=replace)


def register_game_kind(name: str, space: Any = None, *, replace: bool = False) -> Any:
    """Register a :class:`~fusion_psro.psro.spaces.PolicySpace` subclass (decorator without ``space``)."""
    return GAME_KINDS.register(name, space, replace=replace)


__all__ = [
    "DIVERSITY_TERMS", "GAME_KINDS", "INITS", "META_SOLVERS", "ORACLES", "PLUGINS", "VARIANTS", "Registry",
    "component_settings", "load_plugin", "plugin_sources",
    "register_diversity_term", "register_game_kind", "register_init", "register_meta_solver",
    "register_oracle", "register_variant",
]
