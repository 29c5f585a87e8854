"""Declared where they are written, registered by the bot that runs them.

A module says what it offers (a command, a sweep, a renderer) with a decorator
that only marks the function with its spec. The bot collects the marked
functions once, at start, into registries of its own (`Registry`). Nothing
global fills up as modules are imported, so a test that adds a command adds it
to its own bot, and no test sees what another one added.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Generic, Protocol, TypeVar

Fn = TypeVar("Fn", bound=Callable[..., Any])


class Spec(Protocol):
    """What a registry needs of a declaration: the name it is found by."""

    @property
    def name(self) -> str: ...


S = TypeVar("S", bound=Spec)


@dataclass(frozen=True)
class Named(Generic[Fn]):
    """A declaration that is only a name for its function (a sweep, a renderer)."""

    name: str
    fn: Fn


class Mark(Generic[S]):
    """One kind of declaration: the attribute its decorator leaves on a function."""

    def __init__(self, kind: str, spec_type: type[S]) -> None:
        self.kind = kind
        self._attribute = f"__coopbot_{kind}__"
        self._spec_type = spec_type

    def put(self, fn: Fn, spec: S) -> Fn:
        setattr(fn, self._attribute, spec)
        return fn

    def of(self, fn: object) -> S | None:
        spec = getattr(fn, self._attribute, None)
        return spec if isinstance(spec, self._spec_type) else None

    def declared_in(self, package: ModuleType) -> list[Callable[..., Any]]:
        """The marked functions of every module in `package`, sub-packages included.

        In module order, then in the order a module defines them. A function is
        taken only from the module that defines it: one imported elsewhere is
        not declared twice.
        """
        modules = [package] + [
            importlib.import_module(info.name)
            for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}.")
        ]
        return [
            value
            for module in modules
            for value in list(vars(module).values())
            if self.of(value) is not None and getattr(value, "__module__", None) == module.__name__
        ]


class Registry(Generic[S]):
    """Declarations by name, in the order they were added; each name is taken once,
    since a second one would silently shadow the first."""

    def __init__(self, mark: Mark[S], functions: Iterable[Callable[..., Any]] = ()) -> None:
        self._mark = mark
        self._specs: dict[str, S] = {}
        #: Every name a declaration answers to, its aliases included.
        self._names: dict[str, S] = {}
        for fn in functions:
            self.add(fn)

    def names_of(self, spec: S) -> tuple[str, ...]:
        """The names `spec` is found by; a kind with aliases adds them."""
        return (spec.name,)

    def add(self, fn: Callable[..., Any]) -> S:
        """Register a function its decorator marked; refuse a name already taken."""
        spec = self._mark.of(fn)
        if spec is None:
            raise TypeError(f"{fn!r} is not declared as a {self._mark.kind}")
        names = self.names_of(spec)
        taken = [name for number, name in enumerate(names) if name in self._names or name in names[:number]]
        if taken:
            raise ValueError(f"{self._mark.kind} {taken[0]!r} declared twice")
        self._specs[spec.name] = spec
        self._names.update(dict.fromkeys(names, spec))
        return spec

    def lookup(self, name: str) -> S | None:
        """The declaration answering to `name`, by its name or an alias."""
        return self._names.get(name)

    def names(self) -> list[str]:
        return list(self._specs)

    def __iter__(self) -> Iterator[S]:
        return iter(list(self._specs.values()))

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs
