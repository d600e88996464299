"""Read-only JSON: the store hands out resources that callers cannot change by accident."""

from __future__ import annotations

from sys import intern
from typing import Any, NoReturn


class FrozenDict(dict[str, Any]):
    """A dict that refuses every change; still a dict, so ``json.dumps`` writes it as an object."""

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("knowledge resources are read-only; use thaw() for a mutable copy")

    __setitem__ = __delitem__ = _refuse
    clear = pop = popitem = setdefault = update = __ior__ = _refuse

    def __hash__(self) -> int:  # type: ignore[override]  # dict declares __hash__ = None
        return id(self)


_SCALARS = frozenset({str, int, float, bool, type(None)})  # JSON leaves: kept as they are, without a call
_SHORT = 100  # strings up to this length are interned by freeze


def freeze(value: Any) -> Any:
    """Return a deep read-only copy: dicts become FrozenDicts and lists tuples.

    Keys and short strings are interned: every parsed file has its own copies of ``system``, ``code``,
    ``http://unitsofmeasure.org``..., and the knowledge of thousands of drugs then holds one of each."""
    if isinstance(value, dict):
        return FrozenDict({intern(key) if type(key) is str else key: _freeze_item(item)
                           for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple([_freeze_item(item) for item in value])
    if type(value) is str and len(value) <= _SHORT:
        return intern(value)
    return value


def _freeze_item(item: Any) -> Any:
    if type(item) is str:
        return intern(item) if len(item) <= _SHORT else item
    return item if type(item) in _SCALARS else freeze(item)


def thaw(value: Any) -> Any:
    """Return a deep mutable copy (plain dicts and lists) of frozen JSON."""
    if isinstance(value, dict):
        return {key: item if type(item) in _SCALARS else thaw(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [item if type(item) in _SCALARS else thaw(item) for item in value]
    return value
