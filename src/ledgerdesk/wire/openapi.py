"""The OpenAPI document, generated from the action registry at start-up."""

from __future__ import annotations

import json
from typing import Any

from pydantic.json_schema import models_json_schema

from ledgerdesk import __version__
from ledgerdesk.errors import (
    AddressForbidden,
    AuthenticationFailed,
    CategoryForbidden,
    DatabaseUnavailable,
    IdempotencyConflict,
    InternalError,
    InvalidBody,
    InvalidParameters,
    LedgerdeskError,
    PayloadTooLarge,
    RateLimited,
    ServerBusy,
    UnknownAction,
    UnsupportedMediaType,
)
from ledgerdesk.wire.registry import Action, ActionRegistry

# Errors any action can answer, whatever it does.
COMMON_ERRORS: tuple[type[LedgerdeskError], ...] = (
    InvalidBody,
    InvalidParameters,
    UnsupportedMediaType,
    AuthenticationFailed,
    CategoryForbidden,
    DatabaseUnavailable,
    AddressForbidden,
    PayloadTooLarge,
    RateLimited,
    InternalError,
    ServerBusy,
    DatabaseUnavailable,
)

_REF = "#/components/schemas/{model}"

_CREDENTIAL_PROPERTIES: dict[str, Any] = {
    "userId": {
        "type": "integer",
        "description": "Your user id (a numeric or K-prefixed string is accepted too). "
        "May be sent as HTTP Basic auth instead.",
    },
    "apiKey": {"type": "string", "minLength": 20, "maxLength": 20},
}


def _header(description: str, kind: str = "integer") -> dict[str, Any]:
    return {"description": description, "schema": {"type": kind}}


_COMMON_HEADERS = {
    "X-Request-Id": _header("Tags the server's log lines for this request", "string"),
    "RateLimit-Limit": _header("Requests allowed per window for this key (or address)"),
    "RateLimit-Remaining": _header("Requests left in the current window"),
    "RateLimit-Reset": _header("Seconds until the window ends"),
}
_RETRY_AFTER = {"Retry-After": _header("Seconds to wait before retrying")}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "1-255 printable ASCII characters: the same request with the same key "
    "within 24 hours answers the first answer and changes nothing; the same key with "
    "another request is a 409 (3003).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
_SUCCESS_ENVELOPE = {
    "type": "object",
    "required": ["status", "msg", "data"],
    "properties": {
        "status": {"const": "Success"},
        "msg": {"const": "OK"},
        "data": {"type": "object", "additionalProperties": True},
    },
}

_ERROR_ENVELOPE = {
    "type": "object",
    "required": ["status", "msg", "data"],
    "properties": {
        "status": {"const": "Error"},
        "msg": {"type": "string"},
        "data": {
            "type": "object",
            "properties": {
                "errorCode": {"type": "integer"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "property": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        },
    },
}


def build_openapi(registry: ActionRegistry, category: str) -> dict[str, Any]:
    """The document, shaped for code generators: every request body a flat object (no
    ``allOf`` to lose fields in), bounds as JSON Schema keywords, every status and the
    protocol's headers declared, and downloads declared as the file they are."""
    actions = list(registry)
    models = [(a.params, "validation") for a in actions] + [
        (a.result, "serialization") for a in actions
    ]
    refs, defs = models_json_schema(models, ref_template=_REF)  # type: ignore[arg-type]
    schemas: dict[str, Any] = _json_schema_bounds(dict(defs.get("$defs", {})))
    schemas["ErrorEnvelope"] = _ERROR_ENVELOPE
    schemas["SuccessEnvelope"] = _SUCCESS_ENVELOPE

    paths: dict[str, Any] = {}
    for action in actions:
        params_name = refs[(action.params, "validation")]["$ref"].rsplit("/", 1)[1]
        result_ref = refs[(action.result, "serialization")]
        request_name = f"{action.name[0].upper()}{action.name[1:]}Request"
        schemas[request_name] = _flat_request(schemas[params_name])
        operation: dict[str, Any] = {
            "operationId": action.name,
            "summary": action.summary,
            "description": action.description or action.summary,
            "tags": [category],
            "security": [{}, {"basic": []}],
            "requestBody": {
                "required": True,
                "content": _request_content(action, schemas[request_name], request_name),
            },
            "responses": _responses(action, result_ref),
        }
        if action.idempotent:
            operation["parameters"] = [_IDEMPOTENCY_KEY]
        paths[f"/api/rest/v2/{category}/{action.name}"] = {"post": operation}
    paths[f"/api/rest/v2/{category}"] = {
        "post": {
            "operationId": "categoryEndpoint",
            "summary": "Any action, named by the `action` field of the body",
            "description": "The same body as the action's alias route, plus `action`.",
            "tags": [category],
            "security": [{}, {"basic": []}],
            "parameters": [_IDEMPOTENCY_KEY],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["action"],
                            "properties": {
                                **_CREDENTIAL_PROPERTIES,
                                "action": {"type": "string", "enum": registry.names()},
                            },
                            "additionalProperties": True,
                        }
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "The action's success envelope (see its alias route)",
                    "headers": _COMMON_HEADERS,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": _REF.format(model="SuccessEnvelope")}
                        }
                    },
                }
            }
            | _error_responses((*COMMON_ERRORS, UnknownAction, IdempotencyConflict)),
        }
    }
    health = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"const": "ok"}},
    }
    ready = {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "status": {"enum": ["ready", "unready"]},
            "checks": {
                "type": "object",
                "description": "What each check found, in a few words: process "
                '("serving" or "stopping"), database ("ok" or "unavailable (...)"), '
                'migration (the revision, or "at X, this version needs Y"), redis ("ok", '
                '"not used", "unavailable (...)"), attachments ("writable", "in the '
                'database", "not writable (...)")',
                "additionalProperties": {"type": "string"},
            },
            "problem": {"type": "string", "description": "the checks took too long"},
        },
    }
    paths["/healthz"] = {
        "get": {
            "operationId": "health",
            "summary": "Whether the server process answers",
            "description": "For liveness probes: no credentials, no rate limit, nothing "
            "else asked (a database that is down does not make the process unhealthy).",
            "tags": ["operations"],
            "responses": {
                "200": {
                    "description": "The process answers",
                    "content": {"application/json": {"schema": health}},
                },
            },
        }
    }
    paths["/readyz"] = {
        "get": {
            "operationId": "ready",
            "summary": "Whether to send this server requests",
            "description": "For load balancers: its database answers and is at the "
            "schema this version needs, Redis answers when set, the attachment store "
            "takes files, and the server is not stopping (told to stop, it says so here "
            "first, for LEDGERDESK_SHUTDOWN_DRAIN seconds, while it still serves). The "
            "checks get 3 seconds in all.",
            "tags": ["operations"],
            "responses": {
                "200": {
                    "description": "Ready",
                    "content": {"application/json": {"schema": ready}},
                },
                "503": {
                    "description": "Not ready: the checks say why (Retry-After says when "
                    "to ask again)",
                    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                    "content": {"application/json": {"schema": ready}},
                },
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ledgerdesk",
            "version": __version__,
            "description": "Invoices and support tickets over the i3D.net API v2 "
            f"`{category}` protocol.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
        },
    }


_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


def _json_schema_bounds(schema: Any) -> Any:
    """pydantic writes bounds it cannot check natively as ``ge``/``le``; JSON Schema
    (and every generator) knows them as ``minimum``/``maximum``."""
    if isinstance(schema, dict):
        return {_BOUNDS.get(k, k): _json_schema_bounds(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_json_schema_bounds(v) for v in schema]
    return schema


def _flat_request(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            **_CREDENTIAL_PROPERTIES,
            **{k: _optional(v) for k, v in params.get("properties", {}).items()},
        },
        "required": list(params.get("required", [])),
        "description": "Credentials may come as HTTP Basic auth instead of userId/apiKey. "
        "The same fields may be sent as application/x-www-form-urlencoded.",
    }


def _optional(prop: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema with its default told in words: generators such as
    openapi-typescript make every property with a ``default`` required."""
    if "default" not in prop:
        return prop
    rest = {k: v for k, v in prop.items() if k != "default"}
    told = f"Default: {json.dumps(prop['default'])}."
    rest["description"] = f"{rest['description']} {told}" if "description" in rest else told
    return rest


def _request_content(action: Action[Any, Any], schema: dict[str, Any], name: str) -> dict[str, Any]:
    # Form bodies (application/x-www-form-urlencoded, the same fields) are accepted too
    # but not listed: generators turn several media types for one body into a union
    # that some of them (openapi-python-client) then cannot even import.
    content: dict[str, Any] = {"application/json": {"schema": {"$ref": _REF.format(model=name)}}}
    if action.accepts_files:
        fields = {k: v for k, v in schema["properties"].items() if k != "attachments"}
        content["multipart/form-data"] = {
            "schema": {
                "type": "object",
                "properties": {
                    **fields,
                    "attachments[]": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "maxItems": 10,
                    },
                },
                "required": schema["required"],
            }
        }
    return content


def _responses(action: Action[Any, Any], result_ref: dict[str, Any]) -> dict[str, Any]:
    envelope = {
        "schema": {
            "type": "object",
            "required": ["status", "msg", "data"],
            "properties": {
                "status": {"const": "Success"},
                "msg": {"const": "OK"},
                "data": result_ref,
            },
        }
    }
    success: dict[str, Any] = {
        "description": "Success",
        "headers": _COMMON_HEADERS,
        "content": {"application/json": envelope},
    }
    if action.returns_file:
        # Served with the attachment's own stored type: any media type at all.
        # Served with the attachment's own stored Content-Type: declared as binary
        # (generators know application/octet-stream; they skip */* and, given JSON as
        # well, pick JSON and choke on the file). The base64 envelope is JSON bytes then.
        success["description"] = (
            'The file itself, with its stored Content-Type ("encoding": "raw", the '
            'default); with "encoding": "base64", the JSON envelope: '
            '{"status": "Success", "msg": "OK", "data": {"tickets": {"attachmentId", '
            '"name", "contentType", "size", "content"}}}'
        )
        success["content"] = {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {
                "schema": {
                    "description": 'With "encoding": "base64" (the default in i3d mode)',
                    "type": "object",
                    "required": ["status", "msg", "data"],
                    "properties": {
                        "status": {"const": "Success"},
                        "msg": {"const": "OK"},
                        "data": {"$ref": _REF.format(model=action.result.__name__)},
                    },
                }
            },
        }
    return {"200": success} | _error_responses(COMMON_ERRORS + action.errors)


def _error_responses(errors: tuple[type[LedgerdeskError], ...]) -> dict[str, Any]:
    by_status: dict[int, list[type[LedgerdeskError]]] = {}
    for error in dict.fromkeys(errors):  # an action may name a common error again
        by_status.setdefault(error.http_status, []).append(error)
    return {
        str(status): {
            "description": "; ".join(
                f"{e.error_code}: {e.default_message}"
                for e in sorted(group, key=lambda e: e.error_code)
            ),
            "headers": _COMMON_HEADERS | (_RETRY_AFTER if status in (429, 503) else {}),
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model="ErrorEnvelope")}}
            },
        }
        for status, group in sorted(by_status.items())
    }
