"""Reading the OpenAPI document in tests: which routes it describes, and validating a real response
against the schema it documents (jsonschema, JSON Schema 2020-12 as OpenAPI 3.1 uses)."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_DOCUMENT_URI = "urn:series:openapi"


def described_routes(document: dict) -> set[tuple[str, str]]:
    """(METHOD, path template) of every operation the document describes."""
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item if method in METHODS}


def registered_routes(app: web.Application) -> set[tuple[str, str]]:
    """(METHOD, path template) of every route the app registers (the HEAD aiohttp adds to a GET, with the GET's
    handler, left out; a HEAD of its own, as tus has, kept), path parameters' regular expressions dropped:
    {job_id:job_[0-9a-f]{24}} -> {job_id}."""
    get_handlers = {(route.resource, route.handler) for route in app.router.routes() if route.method == "GET"}
    routes = set()
    for route in app.router.routes():
        if route.method == "*" or route.resource is None:
            continue
        if route.method == "HEAD" and (route.resource, route.handler) in get_handlers:
            continue
        routes.add((route.method, _plain(route.resource.canonical)))
    return routes


def _plain(canonical: str) -> str:
    out, depth, skipping = [], 0, False
    for char in canonical:
        if char == "{":
            depth += 1
            if depth > 1:
                continue
        elif char == "}":
            depth -= 1
            if depth >= 1:
                continue
            skipping = False
        elif char == ":" and depth == 1:
            skipping = True
            continue
        if not skipping:
            out.append(char)
    return "".join(out)


def operation_for(document: dict, method: str, path: str) -> tuple[str, dict] | None:
    """The (template, operation) describing a concrete request path, or None."""
    for template, item in document["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return template, item[method.lower()]
    return None


class ResponseValidator:
    def __init__(self, document: dict) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(_DOCUMENT_URI, resource)

    def check(self, method: str, path: str, status: int, content_type: str, body: bytes) -> str:
        """Validate one real response against its documented schema; returns the template it matched.
        Raises AssertionError naming what does not match."""
        found = operation_for(self.document, method, path.split("?")[0])
        assert found is not None, f"{method} {path} is not described"
        template, operation = found
        responses = operation["responses"]
        response = responses.get(str(status)) or responses.get("default")
        assert response is not None, f"{method} {template}: status {status} is not documented"
        response = self._resolve(response)
        media = content_type.split(";")[0].strip()
        content = response.get("content")
        if not content:
            return template
        assert media in content, f"{method} {template} {status}: {media} is not documented ({sorted(content)})"
        schema = content[media].get("schema")
        if schema is None or not (media.endswith("json")):
            return template
        instance = json.loads(body)
        validator = Draft202012Validator(_rebased(schema), registry=self.registry)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        assert not errors, f"{method} {template} {status}: " + "; ".join(
            f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors[:5])
        return template

    def _resolve(self, node: dict) -> dict:
        while "$ref" in node:
            node = self._pointer(node["$ref"])
        return node

    def _pointer(self, ref: str) -> dict:
        node: Any = self.document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        return node


def _rebased(schema: Any) -> Any:
    """`schema` with local refs (#/components/...) pointing into the whole document."""
    if isinstance(schema, dict):
        return {key: (_DOCUMENT_URI + value if key == "$ref" and value.startswith("#") else _rebased(value))
                for key, value in schema.items()}
    if isinstance(schema, list):
        return [_rebased(item) for item in schema]
    return schema


def dangling_refs(document: dict) -> list[str]:
    """Every $ref that names nothing in the document."""
    missing = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                target: Any = document
                for part in ref.removeprefix("#/").split("/"):
                    target = target.get(part) if isinstance(target, dict) else None
                if target is None:
                    missing.append(ref)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document)
    return missing
