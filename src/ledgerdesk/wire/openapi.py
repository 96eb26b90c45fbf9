"""The OpenAPI document, generated from the action registry at start-up."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from ledgerdesk import __version__
from ledgerdesk.errors import (
    AddressForbidden,
    AuthenticationFailed,
    CategoryForbidden,
    InternalError,
    InvalidBody,
    InvalidParameters,
    LedgerdeskError,
    PayloadTooLarge,
    RateLimited,
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
    AddressForbidden,
    PayloadTooLarge,
    RateLimited,
    InternalError,
)

_REF = "#/components/schemas/{model}"

_CREDENTIALS = {
    "type": "object",
    "properties": {
        "userId": {
            "oneOf": [{"type": "integer"}, {"type": "string", "pattern": "^[Kk]?[0-9]+$"}],
            "description": "Your user id (also accepted as a numeric or K-prefixed string). "
            "May be sent as HTTP Basic auth instead.",
        },
        "apiKey": {"type": "string", "minLength": 20, "maxLength": 20},
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
    actions = list(registry)
    models = [(a.params, "validation") for a in actions] + [
        (a.result, "serialization") for a in actions
    ]
    refs, defs = models_json_schema(models, ref_template=_REF)  # type: ignore[arg-type]
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    schemas["Credentials"] = _CREDENTIALS
    schemas["ErrorEnvelope"] = _ERROR_ENVELOPE

    paths: dict[str, Any] = {}
    for action in actions:
        params_ref = refs[(action.params, "validation")]
        result_ref = refs[(action.result, "serialization")]
        request_schema = {"allOf": [{"$ref": _REF.format(model="Credentials")}, params_ref]}
        paths[f"/api/rest/v2/{category}/{action.name}"] = {
            "post": {
                "operationId": action.name,
                "summary": action.summary,
                "description": action.description or action.summary,
                "tags": [category],
                "security": [{}, {"basic": []}],
                "requestBody": {
                    "required": True,
                    "content": _request_content(action, request_schema),
                },
                "responses": _responses(action, result_ref),
            }
        }
    paths[f"/api/rest/v2/{category}"] = {
        "post": {
            "operationId": "categoryEndpoint",
            "summary": "Any action, named by the `action` field of the body",
            "description": "The same body as the action's alias route, plus `action`.",
            "tags": [category],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "allOf": [
                                {"$ref": _REF.format(model="Credentials")},
                                {
                                    "type": "object",
                                    "required": ["action"],
                                    "properties": {
                                        "action": {"type": "string", "enum": registry.names()}
                                    },
                                    "additionalProperties": True,
                                },
                            ]
                        }
                    }
                },
            },
            "responses": _error_responses(COMMON_ERRORS)
            | {"200": {"description": "The action's success envelope"}},
        }
    }
    paths["/healthz"] = {
        "get": {
            "operationId": "health",
            "summary": "200 when the database answers",
            "responses": {"200": {"description": "healthy"}, "503": {"description": "unhealthy"}},
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


def _request_content(action: Action[Any, Any], schema: dict[str, Any]) -> dict[str, Any]:
    content = {
        "application/json": {"schema": schema},
        "application/x-www-form-urlencoded": {"schema": schema},
    }
    if action.accepts_files:
        content["multipart/form-data"] = {
            "schema": {
                "allOf": [
                    schema,
                    {
                        "type": "object",
                        "properties": {
                            "attachments[]": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                                "maxItems": 10,
                            }
                        },
                    },
                ]
            }
        }
    return content


def _responses(action: Action[Any, Any], result_ref: dict[str, Any]) -> dict[str, Any]:
    success = {
        "description": "Success",
        "content": {
            "application/json": {
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
        },
    }
    if action.returns_file:
        success["description"] = "The file itself, or the JSON envelope when asked for base64"
        success["content"]["application/octet-stream"] = {  # type: ignore[index]
            "schema": {"type": "string", "format": "binary"}
        }
    return {"200": success} | _error_responses(COMMON_ERRORS + action.errors)


def _error_responses(errors: tuple[type[LedgerdeskError], ...]) -> dict[str, Any]:
    by_status: dict[int, list[type[LedgerdeskError]]] = {}
    for error in errors:
        by_status.setdefault(error.http_status, []).append(error)
    return {
        str(status): {
            "description": "; ".join(
                f"{e.error_code}: {e.default_message}"
                for e in sorted(group, key=lambda e: e.error_code)
            ),
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model="ErrorEnvelope")}}
            },
        }
        for status, group in sorted(by_status.items())
    }
