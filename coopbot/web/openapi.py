"""The OpenAPI 3.1 document of the shops' API, served at `/api/v1/openapi.json`.

Written here by hand, next to the routes, and held to them by tests: every
route the app serves under /api/ is a path of this document (and nothing
else is), and the answers of a whole order's life validate against the
schemas below. A shop's developer can generate a client from it.
"""

from __future__ import annotations

from typing import Any

from coopbot.states import JOB_STATES

VERSION = "1.0.0"
PROBLEM = {"$ref": "#/components/responses/Problem"}
TEXT = {"type": "string"}
NULLABLE_TEXT = {"type": ["string", "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _obj(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


SCHEMAS: dict[str, Any] = {
    "Money": _obj(["cents", "amount", "currency"], cents={"type": "integer"},
                  amount={"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2}$"}, currency=TEXT),
    "Term": _obj(["key", "label", "cents", "amount", "currency"], key=TEXT, label=TEXT, cents={"type": "integer"},
                 amount=TEXT, currency=TEXT),
    "Citation": _obj(["rule", "vote", "date"], rule=TEXT, vote=NULLABLE_TEXT,
                     date={"type": ["string", "null"], "format": "date"}),
    "Quote": {**_obj(["cents", "amount", "currency", "terms", "zones", "citations", "explanation"],
                     cents={"type": "integer"}, amount=TEXT, currency=TEXT,
                     terms={"type": "array", "items": _ref("Term")},
                     zones=_obj(["pickup", "dropoff"], pickup=NULLABLE_TEXT, dropoff=NULLABLE_TEXT),
                     citations={"type": "array", "items": _ref("Citation")},
                     explanation={"type": "string", "description": "The price as the chat prints it."})},
    "Order": _obj(
        ["code", "state", "pickup", "dropoff", "deadline", "note", "external_ref", "price", "quote", "valid_until",
         "created_at", "links"],
        code={"type": "string", "pattern": "^J-[0-9]+$"}, state={"enum": list(JOB_STATES)}, pickup=TEXT,
        dropoff=TEXT, deadline={"type": ["string", "null"], "format": "date-time"}, note=TEXT,
        external_ref=NULLABLE_TEXT, price={"oneOf": [_ref("Money"), {"type": "null"}]},
        quote={"oneOf": [_ref("Quote"), {"type": "null"}]},
        valid_until={"type": ["string", "null"], "format": "date-time"},
        created_at={"type": "string", "format": "date-time"},
        links=_obj(["self"], self=TEXT, proof=TEXT),
    ),
    "ConfirmedOrder": {"allOf": [_ref("Order"), _obj(["delivery_code"], delivery_code={
        "type": ["string", "null"], "description": "For the recipient to give the courier; shown only here."})]},
    "Step": _obj(["step", "at", "by"], step=TEXT, at={"type": "string", "format": "date-time"}, by=NULLABLE_TEXT,
                 reason=TEXT, proof=TEXT, price=_ref("Money"), before=_ref("Money")),
    "OrderWithHistory": {"allOf": [_ref("Order"), _obj(
        ["history", "proof"], history={"type": "array", "items": _ref("Step")},
        proof=_obj(["kind", "photo"], kind={"enum": ["code", "photo", None]}, photo=NULLABLE_TEXT))]},
    "OrderList": _obj(["orders", "next"], orders={"type": "array", "items": _ref("Order")}, next=NULLABLE_TEXT),
    "NewOrder": {**_obj(["dropoff"], pickup={**TEXT, "description": "Default: the address the co-op has for you."},
                        dropoff=TEXT,
                        deadline={**TEXT, "description": "ISO 8601 with an offset, or 12:30 as in the chat."},
                        note=TEXT, external_ref={**TEXT, "maxLength": 100}), "additionalProperties": False},
    "Cancel": {**_obj([], reason=TEXT), "additionalProperties": False},
    "Problem": _obj(["type", "title", "status", "detail"], type={"type": "string", "format": "uri"}, title=TEXT,
                    status={"type": "integer"}, detail=TEXT, code=TEXT, instance=TEXT),
}  # fmt: skip

CODE_PARAM = {"name": "code", "in": "path", "required": True, "schema": {"type": "string"}, "example": "J-14"}
IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"},
               "description": "Retrying with the same key returns the first answer and creates nothing new."}


def _op(summary: str, ok: str, schema: dict[str, Any], *, status: str = "200", **extra: Any) -> dict[str, Any]:
    responses = {status: _json(schema, ok)} | dict.fromkeys(("400", "401", "404", "409", "422", "429"), PROBLEM)
    return {"summary": summary, "responses": responses, "security": [{"bearer": []}], **extra}


def document() -> dict[str, Any]:
    """The whole document, as served."""
    body = {"required": True, "content": {"application/json": {"schema": _ref("NewOrder")}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "coopbot orders API", "version": VERSION,
                 "description": "Order deliveries from the co-op: a quote from its published price rules, "
                                "then a job for its couriers."},
        "paths": {
            "/api/v1/orders": {
                "post": _op("Get a quote for an order", "The quote", _ref("Order"), status="201",
                            parameters=[IDEMPOTENCY], requestBody=body),
                "get": _op("Your orders, newest first", "Your orders", _ref("OrderList"), parameters=[
                    {"name": "state", "in": "query", "schema": TEXT, "description": "States, comma-separated"},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                    {"name": "before", "in": "query", "schema": TEXT}]),
            },
            "/api/v1/orders/{code}": {
                "parameters": [CODE_PARAM],
                "get": _op("An order, its steps and its proof", "The order", _ref("OrderWithHistory")),
                "delete": _op("Cancel an order before pickup", "The cancelled order", _ref("Order"),
                              requestBody={"required": False,
                                           "content": {"application/json": {"schema": _ref("Cancel")}}}),
            },
            "/api/v1/orders/{code}/confirm": {
                "parameters": [CODE_PARAM],
                "post": _op("Confirm a quote", "The order, offered to the couriers", _ref("ConfirmedOrder"),
                            parameters=[IDEMPOTENCY]),
            },
            "/api/v1/orders/{code}/proof": {
                "parameters": [CODE_PARAM],
                "get": {**_op("The photo proving the delivery", "The photo", {}),
                        "responses": {"200": {"description": "The photo", "content": {"image/*": {}}},
                                      "401": PROBLEM, "404": PROBLEM, "429": PROBLEM}},
            },
            "/api/v1/openapi.json": {
                "get": {"summary": "This document", "security": [],
                        "responses": {"200": _json({"type": "object"}, "The OpenAPI document")}},
            },
        },
        "components": {
            "schemas": SCHEMAS,
            "responses": {"Problem": {"description": "A refusal (RFC 9457)",
                                      "content": {"application/problem+json": {"schema": _ref("Problem")}}}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "The key `coopbot customer key NAME` printed."}},
        },
    }  # fmt: skip
