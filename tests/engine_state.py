"""Engine state as plain data, to compare the state of a run with the state of another.

Who calls this: the Worker tests and the restart test of the live service. What it promises:
:func:`plain` maps a :class:`~detector.core.engine.ServiceState` (or anything in it) to nested
tuples, lists and dicts of its fields by name, so two states compare equal exactly when every
field does; NaN equals NaN, and object identity (which a pickle round trip changes) plays no
part.
"""

from __future__ import annotations

import math
from collections import deque
from enum import Enum

from pydantic import BaseModel


def plain(obj: object) -> object:
    if isinstance(obj, float):
        return "nan" if math.isnan(obj) else obj
    if obj is None or isinstance(obj, str | int | Enum):
        return obj
    if isinstance(obj, BaseModel):
        return plain(obj.model_dump())
    if isinstance(obj, dict):
        return {repr(plain(k)): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | deque):
        return [plain(v) for v in obj]
    if isinstance(obj, set | frozenset):
        return sorted(repr(plain(v)) for v in obj)
    fields: dict[str, object] = {}
    for cls in type(obj).__mro__:
        slots = getattr(cls, "__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if not name.startswith("__") and hasattr(obj, name):
                fields[name] = getattr(obj, name)
    fields.update(getattr(obj, "__dict__", {}))
    return type(obj).__qualname__, {k: plain(v) for k, v in sorted(fields.items())}
