"""The protocol's reference page (``/docs``), rendered on the server from the OpenAPI
document itself, so the page and ``/openapi.json`` cannot differ.

Served from this package, with no script at all: it renders whatever OpenAPI version
the document is (a bundled Swagger UI 4 could not read OpenAPI 3.1 and showed "Unable
to render this definition"). Each action shows its parameters with their types and
limits, the fields of its answer (nested ones indented), its errors, and an example.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

API_PATH = "/api/rest/v2/administration"


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool
    notes: str
    depth: int = 0


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    path: str
    summary: str
    description: str
    params: list[Field]
    answer: list[Field]
    answer_note: str
    errors: list[tuple[str, str]]
    example: str
    tag: str = "administration"


@dataclass
class Reference:
    title: str
    version: str
    description: str
    operations: list[Operation] = field(default_factory=list)


class _Schemas:
    def __init__(self, document: dict[str, Any]) -> None:
        self.components: dict[str, Any] = document.get("components", {}).get("schemas", {})

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[1]]
        return schema

    def describe(self, schema: dict[str, Any]) -> str:
        """A schema's type as a reader says it: ``integer``, ``string (DD-MM-YYYY)``,
        ``list of AttachmentIn``, ``"Success"``."""
        if "$ref" in schema:
            return str(schema["$ref"]).rsplit("/", 1)[1]
        if "const" in schema:
            return json.dumps(schema["const"])
        if "enum" in schema:
            return " or ".join(json.dumps(value) for value in schema["enum"])
        if "anyOf" in schema:
            kinds = [self.describe(s) for s in schema["anyOf"] if s.get("type") != "null"]
            return " or ".join(kinds)
        kind = schema.get("type", "any")
        if kind == "array":
            return f"list of {self.describe(schema.get('items', {}))}"
        if "format" in schema:
            return f"{kind} ({schema['format']})"
        return str(kind)

    def fields(
        self, schema: dict[str, Any], depth: int = 0, seen: frozenset[str] = frozenset()
    ) -> list[Field]:
        schema = self.resolve(schema)
        required = set(schema.get("required", ()))
        found: list[Field] = []
        for name, prop in schema.get("properties", {}).items():
            found.append(Field(name, self.describe(prop), name in required, _notes(prop), depth))
            nested = prop.get("items", prop) if prop.get("type") == "array" else prop
            ref = nested.get("$ref") if isinstance(nested, dict) else None
            if ref and ref not in seen and depth < 3:
                found += self.fields(nested, depth + 1, seen | {ref})
        return found


def _notes(schema: dict[str, Any]) -> str:
    notes = [schema["description"]] if schema.get("description") else []
    for key, said in (
        ("minLength", "at least {} characters"),
        ("maxLength", "at most {} characters"),
        ("minimum", "from {}"),
        ("maximum", "to {}"),
        ("maxItems", "at most {} items"),
        ("pattern", "matching {}"),
    ):
        if key in schema and not (key == "maximum" and schema[key] >= 2**62):
            notes.append(said.format(schema[key]))
    if "default" in schema and schema["default"] is not None:
        notes.append(f"default {json.dumps(schema['default'])}")
    for inner in schema.get("anyOf", ()):
        if "pattern" in inner:
            notes.append(f"matching {inner['pattern']}")
    return "; ".join(notes)


def build_reference(document: dict[str, Any]) -> Reference:
    schemas = _Schemas(document)
    info = document.get("info", {})
    reference = Reference(
        info.get("title", ""), info.get("version", ""), info.get("description", "")
    )
    for path, methods in document.get("paths", {}).items():
        for method, operation in methods.items():
            reference.operations.append(_operation(schemas, path, method, operation))
    return reference


def _operation(schemas: _Schemas, path: str, method: str, operation: dict[str, Any]) -> Operation:
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    params = schemas.fields(body["schema"]) if body else []
    success = operation.get("responses", {}).get("200", {})
    answer: list[Field] = []
    note = success.get("description", "")
    for media, content in success.get("content", {}).items():
        schema = schemas.resolve(content.get("schema", {}))
        data = schema.get("properties", {}).get("data")
        if media == "application/json":
            answer = schemas.fields(data) if data is not None else schemas.fields(schema)
    errors = [
        (status, response.get("description", ""))
        for status, response in operation.get("responses", {}).items()
        if status != "200"
    ]
    name = operation.get("operationId", path)
    example = _example(path, method, name, params)
    return Operation(
        name=name,
        method=method.upper(),
        path=path,
        summary=operation.get("summary", ""),
        description=operation.get("description", ""),
        params=params,
        answer=answer,
        answer_note=note,
        errors=errors,
        example=example,
        tag=(operation.get("tags") or ["administration"])[0],
    )


def _example(path: str, method: str, name: str, params: list[Field]) -> str:
    if method != "post":
        return f"curl http://127.0.0.1:8080{path}"
    body: dict[str, Any] = {"userId": 1, "apiKey": "<your 20-character key>"}
    if path == API_PATH:
        body["action"] = "getTicketOverview"
    for param in params:
        if param.depth or not param.required or param.name in body:
            continue
        body[param.name] = 1 if param.type == "integer" else "..."
    return (
        f"curl -s http://127.0.0.1:8080{path} -H 'Content-Type: application/json' \\\n"
        f"  -d '{json.dumps(body)}'"
    )


_TEMPLATES = Environment(
    loader=PackageLoader("ledgerdesk.wire", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def reference_page(document: dict[str, Any]) -> str:
    """The HTML of ``/docs`` for this OpenAPI document."""
    return _TEMPLATES.get_template("reference.html").render(reference=build_reference(document))
