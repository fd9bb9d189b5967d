"""Helpers shared by the API tests: second and damaged model versions in a models folder (servers: ``servers``)."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

from legalsearch.model import CURRENT_NAME, MANIFEST_NAME, _point_current


def copy_version(models_dir: Path, new_version: str) -> Path:
    """Copy the current model to a new version folder (manifest.json is not hashed, so it stays valid)."""
    src = (models_dir / CURRENT_NAME).resolve()
    dst = models_dir / new_version
    shutil.copytree(src, dst)
    manifest = json.loads((dst / MANIFEST_NAME).read_text(encoding="utf-8"))
    manifest["version"] = new_version
    writable(dst / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return dst


def writable(path: Path) -> Path:
    """Undo the read-only mode committed model files have (root writes anyway; other users could not)."""
    path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return path


def damage(model_dir: Path, file: str = "docvectors.npy") -> None:
    """Flip one byte near the end of a file (same size, different hash)."""
    path = writable(model_dir / file)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))


def point_current(models_dir: Path, version: str) -> None:
    """Move ``current`` (current.json and the symlink) without verifying (set_current would refuse a damaged
    model); the record pins the manifest as it is now."""
    _point_current(models_dir, version)
