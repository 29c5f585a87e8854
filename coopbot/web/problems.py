"""Refusals of the shops' API as RFC 9457 problem details (`application/problem+json`).

A shop's developer reads these while wiring their software to the co-op,
often from a log, so each refusal carries a sentence saying what was wrong
and what to send instead: the very sentence the chat would say (the
catalogue key of our `CoopError`s, through `coopbot.i18n.t`), in English
unless the request's `Accept-Language` asks for French. This module is the
one place where an exception becomes an HTTP status and a problem:

| exception      | status | type (`urn:coopbot:problem:…`) |
| UsageError     | 422    | invalid-request                |
| NotFound       | 404    | not-found                      |
| Conflict       | 409    | conflict                       |
| NotAllowed     | 403    | forbidden                      |
| ApiProblem     | its own (400 bad JSON, 401 no key, 415, 429 …) |

`type` is a URN rather than a web address: it identifies the kind of
problem for a program to branch on, and promises no page. `code` (an
extension member) is the catalogue key, finer than the type, stable across
languages.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from coopbot.errors import Conflict, CoopError, NotAllowed, NotFound, UsageError
from coopbot.i18n import t

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:coopbot:problem:"
API_PREFIX = "/api/"
#: status → (type's last part, title's catalogue key)
KINDS: dict[int, tuple[str, str]] = {
    400: ("bad-request", "api.title.bad_request"),
    401: ("unauthorized", "api.title.unauthorized"),
    403: ("forbidden", "api.title.forbidden"),
    404: ("not-found", "api.title.not_found"),
    405: ("method-not-allowed", "api.title.method_not_allowed"),
    409: ("conflict", "api.title.conflict"),
    415: ("unsupported-media-type", "api.title.unsupported"),
    422: ("invalid-request", "api.title.invalid"),
    429: ("rate-limited", "api.title.too_many"),
    500: ("internal", "api.title.internal"),
}
STATUS_OF: tuple[tuple[type[CoopError], int], ...] = (
    (UsageError, 422),
    (NotFound, 404),
    (Conflict, 409),
    (NotAllowed, 403),
)


class ApiProblem(CoopError):
    """A refusal only the web door makes (no key, bad JSON, too many requests), with its status."""

    def __init__(self, status: int, key: str, /, *, headers: Mapping[str, str] | None = None, **params: Any) -> None:
        super().__init__(key, **params)
        self.status = status
        self.headers = dict(headers or {})


def status_of(err: CoopError) -> int:
    if isinstance(err, ApiProblem):
        return err.status
    return next((status for kind, status in STATUS_OF if isinstance(err, kind)), 400)


def language(request: web.Request) -> str:
    """French when the request prefers it, else English: a developer's tools mostly send `en`."""
    wanted = request.headers.get("Accept-Language", "")
    first = wanted.split(",")[0].strip().lower()
    return "fr" if first.startswith("fr") else "en"


def problem(status: int, detail: str, lang: str, *, code: str | None = None, instance: str | None = None,
            headers: Mapping[str, str] | None = None) -> web.Response:  # fmt: skip
    """One problem+json answer."""
    kind, title = KINDS.get(status, KINDS[400])
    body: dict[str, Any] = {"type": TYPE_PREFIX + kind, "title": t(lang, title), "status": status, "detail": detail}
    if code is not None:
        body["code"] = code
    if instance is not None:
        body["instance"] = instance
    return web.Response(status=status, text=json.dumps(body, ensure_ascii=False), content_type=MEDIA_TYPE,
                        charset="utf-8", headers=headers)  # fmt: skip


def from_error(request: web.Request, err: CoopError) -> web.Response:
    """Our exception as the shop reads it: its status, and its sentence from the catalogue."""
    lang = language(request)
    headers = err.headers if isinstance(err, ApiProblem) else None
    return problem(status_of(err), t(lang, err.key, **err.params), lang, code=err.key, instance=request.path,
                   headers=headers)  # fmt: skip


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def api_problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under /api/, every refusal is a problem: ours, aiohttp's (no such route, wrong method,
    body too large) and a bug's (500, logged, saying nothing of the code). Elsewhere, untouched."""
    if not request.path.startswith(API_PREFIX):
        return await handler(request)
    try:
        return await handler(request)
    except CoopError as err:
        return from_error(request, err)
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        return from_error(request, ApiProblem(405, "api.bad_method", headers={"Allow": allowed},
                                              method=request.method, path=request.path, allowed=allowed))  # fmt: skip
    except web.HTTPNotFound:
        return from_error(request, ApiProblem(404, "api.no_route", path=request.path))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        lang = language(request)
        return problem(exc.status, exc.reason, lang, instance=request.path)
    except Exception:
        log.exception("the API failed on %s %s", request.method, request.path)
        return from_error(request, ApiProblem(500, "api.internal"))
