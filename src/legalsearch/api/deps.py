"""FastAPI dependencies: settings, the model (taken once per request), API keys, input size checks.

These and the route handlers are ``async def``: each is quick, CPU-bound work, and FastAPI would run plain
``def`` ones on a thread pool, a thread hop per dependency that cost more than the work itself and gains nothing
while the GIL serialises them. A worker thus answers one request at a time; ``--workers`` gives parallelism.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute

from legalsearch.api.errors import ForbiddenError, PayloadTooLargeError, UnauthorizedError
from legalsearch.api.state import ModelHolder
from legalsearch.config import ServiceSettings
from legalsearch.engine import Model


async def get_settings(request: Request) -> ServiceSettings:
    """The app's settings."""
    return app_settings(request)


async def get_holder(request: Request) -> ModelHolder:
    """The app's model holder."""
    holder: ModelHolder = request.app.state.holder
    return holder


async def get_model(request: Request) -> Model:
    """The served model, read once: the whole request uses this reference even if a swap happens meanwhile."""
    # not through get_holder: every nested dependency costs a solve per request
    return served_model(request)


def served_model(request: Request) -> Model:
    """The served model for a hot route that takes ``request`` instead of ``ModelDep``.

    FastAPI solves every dependency anew per request (tens of microseconds each); /recommend and /search read
    model and settings off the request themselves, which is the same single read of the holder.
    """
    holder: ModelHolder = request.app.state.holder
    return holder.require()


def app_settings(request: Request) -> ServiceSettings:
    """The app's settings, for a hot route that takes ``request`` instead of ``SettingsDep``."""
    settings: ServiceSettings = request.app.state.settings
    return settings


#: the name of the API-key scheme in the OpenAPI description
API_KEY_SCHEME = "APIKeyHeader"
API_KEY_HEADER = "X-API-Key"
ADMIN_KEYS_SETTING = "LEGALSEARCH_ADMIN_KEYS"


def _matches(key: str, keys: list[str]) -> bool:
    # compare against every key in constant time, so timing tells nothing about near misses
    return any(secrets.compare_digest(key.encode(), k.encode()) for k in keys)


def check_api_key(request: Request) -> None:
    """401 unless no search keys are configured or X-API-Key holds a search key or an admin key."""
    settings: ServiceSettings = request.app.state.settings
    if not settings.api_keys:
        return
    key = request.headers.get(API_KEY_HEADER)
    if not key:
        raise UnauthorizedError(f"missing {API_KEY_HEADER} header")
    if not (_matches(key, settings.api_keys) or _matches(key, settings.admin_keys)):
        raise UnauthorizedError("invalid API key")


def check_admin_key(request: Request) -> None:
    """Admin routes: open only while no key of either kind is configured; else X-API-Key must be an admin key
    (401 when missing or unknown, 403 for a search key or when no admin key is configured)."""
    settings: ServiceSettings = request.app.state.settings
    if not settings.admin_keys and not settings.api_keys:
        return
    key = request.headers.get(API_KEY_HEADER)
    if not settings.admin_keys:
        raise ForbiddenError(f"admin routes need an admin key, and none is configured ({ADMIN_KEYS_SETTING})")
    if not key:
        raise UnauthorizedError(f"missing {API_KEY_HEADER} header (an admin key)")
    if _matches(key, settings.admin_keys):
        return
    if _matches(key, settings.api_keys):
        raise ForbiddenError(f"this API key may search but not use admin routes ({ADMIN_KEYS_SETTING})")
    raise UnauthorizedError("invalid API key")


def has_admin_key(request: Request) -> bool:
    """Whether the request carries a configured admin key (never true while none is configured)."""
    settings: ServiceSettings = request.app.state.settings
    key = request.headers.get(API_KEY_HEADER)
    return bool(key and settings.admin_keys and _matches(key, settings.admin_keys))


class ProtectedRoute(APIRoute):
    """A route that checks the API key before anything else, and says so in the OpenAPI description.

    The check runs in the route's handler rather than as a FastAPI dependency: FastAPI solves dependencies anew
    on every request, and the key dependency (with its security sub-dependency) was a third of the framework's
    time per /recommend. ``api_key_scheme`` puts the scheme into the description.
    """

    #: the key check this kind of route runs first
    check: Callable[[Request], None] = staticmethod(check_api_key)

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        extra = dict(kwargs.pop("openapi_extra", None) or {})
        extra.setdefault("security", [{API_KEY_SCHEME: []}])
        super().__init__(path, endpoint, openapi_extra=extra, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, behind the key check."""
        handler = super().get_route_handler()
        check = self.check

        async def checked(request: Request) -> Response:
            check(request)
            return await handler(request)

        return checked


class AdminRoute(ProtectedRoute):
    """A route under /admin: it needs an admin key (LEGALSEARCH_ADMIN_KEYS); search keys get 403."""

    check = staticmethod(check_admin_key)


def api_key_scheme() -> dict[str, Any]:
    """The OpenAPI security scheme of ``X-API-Key`` (components.securitySchemes)."""
    return {
        "type": "apiKey",
        "description": "Required when the service is configured with API keys: a search key "
        "(LEGALSEARCH_API_KEYS) or an admin key (LEGALSEARCH_ADMIN_KEYS) for the search routes, an admin key for "
        "/admin/* (open only while no key of either kind is configured).",
        "in": "header",
        "name": API_KEY_HEADER,
    }


def check_text_length(settings: ServiceSettings, name: str, *texts: str) -> None:
    """413 when the texts together exceed ``max_text_chars``."""
    size = sum(len(t) for t in texts)
    if size > settings.max_text_chars:
        raise PayloadTooLargeError(
            f"{name} is too long: {size} characters, the limit is {settings.max_text_chars}"
        )


ModelDep = Annotated[Model, Depends(get_model)]
SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
