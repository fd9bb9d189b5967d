"""GET / (the search page) and the offline API documentation (/docs): static files from the package.

Both stay open without an API key: they hold no data. The page asks the JSON API itself and sends the key a
user typed into it (kept in the tab's sessionStorage) as ``X-API-Key``.

Swagger UI loads its script and styles from files that ``fastapi-offline`` ships, so /docs renders on a machine
without internet access; FastAPI's own page would fetch them from a CDN. There is no /redoc: ReDoc's bundle
always loads its footer logo from cdn.redoc.ly, and /docs describes the same OpenAPI document.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

#: the page's HTML, CSS and JavaScript (package data)
STATIC_DIR = Path(str(files("legalsearch.api") / "static"))
STATIC_URL = "/static"
DOCS_ASSETS_URL = "/static-docs"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def search_page() -> FileResponse:
    """The search page; its state (query, filters, open document) lives in the query string."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


def _docs_assets_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def install_pages(app: FastAPI) -> None:
    """Add the search page, its static files and the offline /docs to ``app``.

    ``app`` must be made with ``docs_url=None, redoc_url=None``, so that FastAPI's CDN pages are not there too.
    """
    app.include_router(router)
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=_docs_assets_dir()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{oauth2_url}",
            swagger_js_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
            # the default validator badge would ask validator.swagger.io about the spec
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(oauth2_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
