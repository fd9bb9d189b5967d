"""legalsearch: search and recommendation for German legal content."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("legalsearch")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
