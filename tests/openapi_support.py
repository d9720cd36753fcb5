"""Zoho's OpenAPI documents, read in place, and a validator for request and response bodies against them.

The documents live outside the repository (../shared/zoho-billing-openapi/ from the project root,
zoho-billing-api.md §8) and are never copied in. Their known defects are corrected by a table of
`Deviation` rows (each with a reason) that the caller passes in, e.g. tests/sandbox/openapi_deviations.py;
the validator applies those rows and nothing else.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator, oas30_format_checker

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC_DIR = PROJECT_ROOT.parent / "shared" / "zoho-billing-openapi"
METHODS = ("get", "post", "put", "delete", "patch")


@dataclass(frozen=True, eq=False)
class Deviation:
    """One known difference between Zoho's documents and what the project expects, and why.

    kind: "policy" (name = strict_objects | require_envelope | error_envelope | ignore_request_required |
    strict_request_objects),
    "add_route" (schema = the whole body schema of an undocumented operation), "replace" / "retype" (schema
    replaces the node at `location`), "add_property" (adds property `name` with `schema` to the object at
    `location`). `location` is a dotted path into the body ("invoice.invoice_items[].price"; "" is the root).
    A schema node {"$op": "POST /payments 201", "$at": "payment"} stands for that part of another documented
    response schema.
    """

    operations: tuple[str, ...]
    kind: str
    reason: str
    location: str = ""
    name: str = ""
    schema: dict[str, Any] | None = None
    target: str = "response"

    def applies(self, operation: str, target: str) -> bool:
        return self.target == target and ("*" in self.operations or operation in self.operations)


def spec_dir() -> Path:
    return Path(os.environ.get("ZOHO_OPENAPI_DIR", DEFAULT_SPEC_DIR))


def require_spec_dir() -> Path:
    """The documents' folder; skip (or, with CI=true, fail) with a message saying how to fix it when missing."""
    folder = spec_dir()
    if folder.is_dir() and any(folder.glob("*.yml")):
        return folder
    message = (f"Zoho's OpenAPI documents were not found at {folder}. They are read in place, never copied into "
               "the repository: put the shared folder next to the project (so that ../shared/zoho-billing-openapi/"
               "*.yml exists relative to the project root) or point ZOHO_OPENAPI_DIR at a copy of it.")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _match(template: str, path: str) -> bool:
    want, got = template.strip("/").split("/"), path.strip("/").split("/")
    return len(want) == len(got) and all(w.startswith("{") or w == g for w, g in zip(want, got, strict=True))


def normalise(template: str) -> str:
    return "/".join("{}" if part.startswith("{") else part for part in template.split("/"))


class OpenAPIDocs:
    """All documents of a folder, indexed by operation, with `$ref`s resolved and deviations applied."""

    def __init__(self, folder: Path, deviations: tuple[Deviation, ...] = ()) -> None:
        self.deviations = deviations
        self.operations: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {}
        for path in sorted(folder.glob("*.yml")):
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            for template, item in (doc.get("paths") or {}).items():
                for method in METHODS:
                    if method in item:
                        self.operations[f"{method.upper()} {template}"] = (doc, item[method], path.name)
        self.policies = {d.name for d in deviations if d.kind == "policy"}

    # -- lookup ------------------------------------------------------------------------------------------
    def find(self, method: str, path: str) -> str | None:
        """The documented (or deviation-added) operation key for a concrete path or a template."""
        candidates = [key for key in self.operations if key.split(" ", 1)[0] == method.upper()]
        candidates += [op for d in self.deviations if d.kind == "add_route" for op in d.operations
                       if op.split(" ", 1)[0] == method.upper()]
        for key in sorted(set(candidates), key=lambda k: -sum(not s.startswith("{") for s in k.split("/"))):
            template = key.split(" ", 1)[1]
            if normalise(template) == normalise(path) or _match(template, path):
                return key
        return None

    def success_status(self, operation: str) -> int | None:
        if operation not in self.operations:
            return None
        statuses = [int(s) for s in self.operations[operation][1].get("responses", {}) if str(s).startswith("2")]
        return min(statuses) if statuses else None

    def documented(self, operation: str) -> bool:
        return operation in self.operations

    # -- schemas -----------------------------------------------------------------------------------------
    def _raw_response(self, operation: str) -> dict[str, Any]:
        for d in self.deviations:
            if d.kind == "add_route" and operation in d.operations:
                return self._expand(copy.deepcopy(d.schema or {}))
        doc, op, _ = self.operations[operation]
        for status, response in op.get("responses", {}).items():
            if str(status).startswith("2"):
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                return _resolve(doc, schema)
        raise LookupError(f"{operation} documents no success response")

    def _part(self, reference: str, at: str) -> dict[str, Any]:
        operation = reference.rsplit(" ", 1)[0] if reference.split(" ")[-1].isdigit() else reference
        parent, key = _locate(self._raw_response(operation), at)
        return copy.deepcopy(parent[key])

    def _expand(self, node: Any) -> Any:
        if isinstance(node, dict):
            if "$op" in node:
                return self._part(node["$op"], node.get("$at", ""))
            return {k: self._expand(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self._expand(v) for v in node]
        return node

    def response_schema(self, operation: str, status: int) -> dict[str, Any]:
        success = self._raw_response(operation)
        if status >= 400:
            if "error_envelope" not in self.policies:
                raise LookupError(f"{operation} documents no {status} response")
            props = success.get("properties", {})
            code = dict(props.get("code", {"type": "integer"}), **{"not": {"enum": [0]}})
            return {"type": "object", "required": ["code", "message"], "additionalProperties": False,
                    "properties": {"code": code, "message": props.get("message", {"type": "string"})}}
        schema = success
        for d in self.deviations:
            if d.applies(operation, "response") and d.kind in ("replace", "retype"):
                parent, key = _locate(schema, d.location)
                parent[key] = self._expand(copy.deepcopy(d.schema))
        for d in self.deviations:
            if d.applies(operation, "response") and d.kind == "add_property":
                target = _node(schema, d.location)
                target.setdefault("properties", {})[d.name] = self._expand(copy.deepcopy(d.schema))
        if "require_envelope" in self.policies:
            schema["required"] = sorted(schema.get("properties", {}))
        if "strict_objects" in self.policies:
            _close(schema)
        return schema

    def request_schema(self, operation: str) -> dict[str, Any]:
        doc, op, _ = self.operations[operation]
        schema = _resolve(doc, op["requestBody"]["content"]["application/json"]["schema"])
        for d in self.deviations:
            if d.applies(operation, "request") and d.kind in ("replace", "retype"):
                parent, key = _locate(schema, d.location)
                parent[key] = self._expand(copy.deepcopy(d.schema))
        for d in self.deviations:
            if d.applies(operation, "request") and d.kind == "add_property":
                target = _node(schema, d.location)
                target.setdefault("properties", {})[d.name] = self._expand(copy.deepcopy(d.schema))
        if "ignore_request_required" in self.policies:
            _strip_required(schema)
        if "strict_request_objects" in self.policies:
            _close(schema)
        return schema

    # -- validation --------------------------------------------------------------------------------------
    def response_errors(self, method: str, path: str, status: int, body: Any) -> list[str]:
        operation = self.find(method, path)
        if operation is None:
            return [f"{method} {path} is neither documented nor an accepted deviation"]
        validator = OAS30ReadValidator(self.response_schema(operation, status), format_checker=oas30_format_checker)
        return [f"{operation} {status} at /{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in validator.iter_errors(body)]

    def request_errors(self, method: str, path: str, body: Any) -> list[str]:
        operation = self.find(method, path)
        if operation is None or operation not in self.operations:
            return [f"{method} {path} has no documented request body"]
        validator = OAS30WriteValidator(self.request_schema(operation), format_checker=oas30_format_checker)
        return [f"{operation} request at /{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in validator.iter_errors(body)]

    def assert_response(self, method: str, path: str, status: int, body: Any) -> None:
        errors = self.response_errors(method, path, status, body)
        assert not errors, "response does not fit Zoho's OpenAPI documents:\n  " + "\n  ".join(errors)

    def assert_request(self, method: str, path: str, body: Any) -> None:
        errors = self.request_errors(method, path, body)
        assert not errors, "request does not fit Zoho's OpenAPI documents:\n  " + "\n  ".join(errors)


@cache
def load_docs(folder: str, deviations: tuple[Deviation, ...]) -> OpenAPIDocs:
    """Parse once per test session (the YAML is about 1 MB)."""
    return OpenAPIDocs(Path(folder), deviations)


def _resolve(doc: dict[str, Any], node: Any, seen: tuple[str, ...] = ()) -> Any:
    """A copy of `node` with every local `$ref` replaced by its target (cycles left as an open schema)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            if ref in seen:
                return {}
            target: Any = doc
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return _resolve(doc, target, (*seen, ref))
        return {k: _resolve(doc, v, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(doc, v, seen) for v in node]
    return node


def _node(schema: dict[str, Any], location: str) -> dict[str, Any]:
    if not location:
        return schema
    parent, key = _locate(schema, location)
    return parent[key]


def _locate(schema: dict[str, Any], location: str) -> tuple[dict[str, Any], str]:
    """(the dict holding the node at `location`, its key); "" is the schema itself."""
    holder: dict[str, Any] = {"": schema}
    key, node = "", schema
    for part in filter(None, location.split(".")):
        name, is_list = (part[:-2], True) if part.endswith("[]") else (part, False)
        holder, key = node.setdefault("properties", {}), name
        if is_list:
            holder, key = holder[name], "items"
        node = holder[key]
    return holder, key


def _close(node: Any) -> None:
    """`additionalProperties: false` on every object that lists its properties (the documents never do)."""
    if isinstance(node, dict):
        if node.get("properties") and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close(value)
    elif isinstance(node, list):
        for value in node:
            _close(value)


def _strip_required(node: Any) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("required"), list):
            node.pop("required")
        for value in node.values():
            _strip_required(value)
    elif isinstance(node, list):
        for value in node:
            _strip_required(value)
