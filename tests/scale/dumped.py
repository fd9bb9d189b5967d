"""The dump's /search requests (tests/fixtures/dump), as keyword arguments of ``ranking.search``."""

from __future__ import annotations

import gzip
import json
import urllib.parse
from pathlib import Path
from typing import Any

DUMP = Path(__file__).resolve().parents[1] / "fixtures" / "dump" / "demo.jsonl.gz"


def dumped_searches() -> list[dict[str, Any]]:
    """The dump's hybrid /search requests with list filters (law, type, court) or none, as keyword arguments."""
    out = []
    with gzip.open(DUMP, "rt", encoding="utf-8") as fh:
        for line in fh:
            request = json.loads(line).get("request")
            if not request or request["kind"] not in ("search_plain", "search_paged", "search_filtered"):
                continue
            params = urllib.parse.parse_qsl(urllib.parse.urlsplit(request["path"]).query)
            keys = {k for k, _ in params}
            if keys - {"q", "k", "offset", "law", "type", "court"}:
                continue
            filters: dict[str, list[str]] = {}
            call: dict[str, Any] = {}
            for key, value in params:
                if key in ("law", "type", "court"):
                    filters.setdefault(key, []).append(value)
                elif key == "q":
                    call["query"] = value
                else:
                    call[key] = int(value)
            out.append({**call, "filters": filters or None})
    return out
