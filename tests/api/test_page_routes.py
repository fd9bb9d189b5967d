"""The search page's and /docs' files as the app serves them (the browser test drives them in Chromium)."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import make_settings
from fastapi.testclient import TestClient

from legalsearch.api.app import create_app


def test_page_and_docs_are_open_and_load_only_local_files(demo_models_dir: Path) -> None:
    with TestClient(create_app(make_settings(demo_models_dir, api_keys=["k"]))) as c:
        assert c.get("/search", params={"q": "Miete"}).status_code == 401
        page = c.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        docs = c.get("/docs")
        assert docs.status_code == 200
        for html in (page.text, docs.text):
            refs = re.findall(r'(?:src|href)="([^"]+)"', html)
            assert refs and all(r.startswith(("/", "data:")) for r in refs), refs
            for ref in refs:
                if ref.startswith("/static"):
                    assert c.get(ref).status_code == 200, ref
        assert "cdn." not in docs.text
        assert c.get("/redoc").status_code == 404
        assert c.get("/static/app.js").headers["content-type"].startswith("text/javascript")
        assert c.get("/static/../pyproject.toml").status_code == 404


def test_page_is_package_data() -> None:
    from legalsearch.api.routes.page import STATIC_DIR

    assert {p.name for p in STATIC_DIR.iterdir()} >= {"index.html", "app.js", "style.css"}
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    assert '"api/static/*"' in pyproject
