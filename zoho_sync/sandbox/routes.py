"""Routing for the API under /billing/v1: templates like /plans/{plan_code}, 404 code 5 and 405 code 37.

The route table is data: the conformance tests read it to check every route against Zoho's OpenAPI
documents (zoho-billing-api.md §8), so each route carries its documented success status.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from zoho_sync.client import codes
from zoho_sync.sandbox.errors import ApiError


@dataclass
class Call:
    """One API request as a handler sees it: the path below the API prefix, first query values, JSON body."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    params: dict[str, str] = field(default_factory=dict)


Reply = tuple[int, dict[str, Any]]
Handler = Callable[[Any, Call], Reply]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Handler
    status: int
    segments: tuple[str, ...]

    def bind(self, parts: list[str]) -> dict[str, str] | None:
        if len(parts) != len(self.segments):
            return None
        params = {}
        for pattern, part in zip(self.segments, parts, strict=True):
            if pattern.startswith("{"):
                params[pattern[1:-1]] = part
            elif pattern != part:
                return None
        return params

    @property
    def literal_count(self) -> int:
        return sum(1 for s in self.segments if not s.startswith("{"))


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler, status: int = 200) -> None:
        segments = tuple(s for s in template.split("/") if s)
        self.routes.append(Route(method.upper(), template, handler, status, segments))
        # Most literal segments first, so /customers/reference/{id} would win over /customers/{id}/x.
        self.routes.sort(key=lambda r: -r.literal_count)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        parts = [p for p in path.split("/") if p]
        path_known = False
        for route in self.routes:
            params = route.bind(parts)
            if params is None:
                continue
            path_known = True
            if route.method == method:
                return route, params
        if path_known:
            raise ApiError(codes.METHOD_NOT_ALLOWED)
        raise ApiError(codes.INVALID_URL)


# §1.1: the current prefix and the two legacy ones route the same way.
API_PREFIXES = ("/billing/v1", "/subscriptions/v1", "/api/v1")


def split_prefix(path: str) -> str | None:
    """The path below an API prefix ("/customers"), or None when `path` is not under one."""
    for prefix in API_PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            return path[len(prefix):] or "/"
    return None
