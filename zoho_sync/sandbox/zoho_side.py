"""What a Zoho-side action is: a change Zoho makes by itself, or a person makes in Zoho's web app.

Each resource module defines its own (`ACTIONS = (Action(...), ...)`) and its `Resource` row lists them
(`actions=`); actions.py serves them as ZohoSandbox methods and admin.py as POST /__sandbox__/<name> hooks.
An action's function takes the store, then the method's arguments; it runs under the store lock, changes the
records as Zoho would (stamping their modified times and emitting Zoho's events) and returns the record as the
API's GET shows it. Refusals raise ApiError (not found, not allowed) or ValueError (a bad argument).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any


@dataclass(frozen=True)
class Action:
    """One Zoho-side action: its public `name`, the key the admin hook answers its result under, its function."""

    name: str
    answer: str
    function: Callable[..., dict[str, Any]]

    def bind(self, store: Any) -> Callable[..., dict[str, Any]]:
        """The action as a method: the function's own arguments (store left out), run under the store lock."""

        def run(*args: Any, **kwargs: Any) -> dict[str, Any]:
            with store.lock:
                return self.function(store, *args, **kwargs)

        run.__name__ = run.__qualname__ = self.name
        run.__doc__ = self.function.__doc__
        run.__signature__ = self.signature()  # type: ignore[attr-defined]
        return run

    def signature(self) -> inspect.Signature:
        parameters = list(inspect.signature(self.function).parameters.values())[1:]  # without the store
        return inspect.Signature(parameters)

    def usage(self) -> str:
        """`name {arg, optional?} -> answer`, as the admin prefix lists it."""
        names = [p.name + ("?" if p.default is not inspect.Parameter.empty else "")
                 for p in self.signature().parameters.values()]
        return f"{self.name} {{{', '.join(names)}}} -> {self.answer}"


def amount_argument(amount: Any) -> Decimal:
    """A positive amount (number, or a numeric string) to cents."""
    if isinstance(amount, bool):
        raise ValueError(f"invalid amount {amount!r}")
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
    except InvalidOperation as exc:
        raise ValueError(f"invalid amount {amount!r}") from exc
    if value <= 0:
        raise ValueError(f"the amount must be positive, not {amount!r}")
    return value
