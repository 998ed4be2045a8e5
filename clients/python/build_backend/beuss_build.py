"""A PEP 517 build backend in the standard library only, for this one pure-Python package.

Why not setuptools: it must be downloaded into pip's isolated build
environment, so ``pip install ./clients/python`` fails on a machine with no
package index. This backend needs nothing: it zips ``beuss/`` with the
metadata of ``pyproject.toml`` into a ``py3-none-any`` wheel (and an sdist,
and an editable wheel for ``pip install -e``).
"""

import base64
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile
from typing import Any, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "beuss"

__all__ = [
    "build_wheel",
    "build_sdist",
    "build_editable",
    "get_requires_for_build_wheel",
    "get_requires_for_build_sdist",
    "get_requires_for_build_editable",
    "prepare_metadata_for_build_wheel",
    "prepare_metadata_for_build_editable",
]


def _project() -> Dict[str, Any]:
    """Returns the ``[project]`` table of pyproject.toml.

    ``tomllib`` exists from Python 3.11; before that, a reader for the
    subset this file uses (strings, string arrays, inline tables of strings).
    """
    with open(os.path.join(HERE, "pyproject.toml"), "rb") as f:
        raw = f.read()
    try:
        import tomllib  # type: ignore[import-not-found]

        return dict(tomllib.loads(raw.decode("utf-8"))["project"])
    except ImportError:
        pass
    text = raw.decode("utf-8")
    m = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    if not m:
        raise RuntimeError("pyproject.toml has no [project] table")
    out: Dict[str, Any] = {}
    for key, value in re.findall(r"^([A-Za-z0-9_-]+)\s*=\s*(.+?)\s*$(?=\n[A-Za-z0-9_-]+\s*=|\n*\Z)", m.group(1), re.M | re.S):
        value = value.strip()
        if value.startswith("["):
            out[key] = re.findall(r'"((?:[^"\\]|\\.)*)"', value)
        elif value.startswith("{"):
            out[key] = dict(re.findall(r'([A-Za-z0-9_-]+)\s*=\s*"((?:[^"\\]|\\.)*)"', value))
        else:
            out[key] = value.strip('"')
    return out


def _metadata() -> Tuple[str, str, bytes]:
    """Returns (name, version, METADATA file bytes) for the package."""
    p = _project()
    name, version = p["name"], p["version"]
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if "description" in p:
        lines.append(f"Summary: {p['description']}")
    if "requires-python" in p:
        lines.append(f"Requires-Python: {p['requires-python']}")
    lic = p.get("license")
    if isinstance(lic, dict) and "text" in lic:
        lines.append(f"License: {lic['text']}")
    for kw in [p.get("keywords") or []]:
        if kw:
            lines.append("Keywords: " + ",".join(kw))
    for c in p.get("classifiers") or []:
        lines.append(f"Classifier: {c}")
    for label, url in (p.get("urls") or {}).items():
        lines.append(f"Project-URL: {label}, {url}")
    body = ""
    readme = p.get("readme")
    if isinstance(readme, str):
        with open(os.path.join(HERE, readme), encoding="utf-8") as f:
            body = f.read()
        lines.append("Description-Content-Type: text/markdown")
    return name, version, ("\n".join(lines) + "\n\n" + body).encode("utf-8")


def _dist_info(name: str, version: str) -> str:
    return f"{re.sub(r'[-_.]+', '_', name)}-{version}.dist-info"


def _wheel_name(name: str, version: str) -> str:
    return f"{re.sub(r'[-_.]+', '_', name)}-{version}-py3-none-any.whl"


def _package_files() -> List[str]:
    """Returns the package's files relative to HERE, sorted (no caches)."""
    out = []
    for root, dirs, files in os.walk(os.path.join(HERE, PACKAGE)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for f in sorted(files):
            if f.endswith((".py", ".typed")):
                out.append(os.path.relpath(os.path.join(root, f), HERE))
    return out


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def _write_wheel(wheel_directory: str, files: Dict[str, bytes]) -> str:
    name, version, metadata = _metadata()
    info = _dist_info(name, version)
    files = dict(files)
    files[f"{info}/METADATA"] = metadata
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: beuss_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{info}/top_level.txt"] = (PACKAGE + "\n").encode()
    record = [_record_line(p, d) for p, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    filename = _wheel_name(name, version)
    # A fixed date keeps the wheel reproducible.
    stamp = (2020, 1, 1, 0, 0, 0)
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zi = zipfile.ZipInfo(path, stamp)
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, data)
    return filename


def get_requires_for_build_wheel(config_settings: Optional[Dict[str, Any]] = None) -> List[str]:
    """Returns no requirements: the backend is standard library only."""
    return []


get_requires_for_build_sdist = get_requires_for_build_wheel
get_requires_for_build_editable = get_requires_for_build_wheel


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Optional[Dict[str, Any]] = None) -> str:
    """Writes the .dist-info directory into metadata_directory and returns its name."""
    name, version, metadata = _metadata()
    info = _dist_info(name, version)
    os.makedirs(os.path.join(metadata_directory, info), exist_ok=True)
    with open(os.path.join(metadata_directory, info, "METADATA"), "wb") as f:
        f.write(metadata)
    with open(os.path.join(metadata_directory, info, "WHEEL"), "wb") as f:
        f.write(b"Wheel-Version: 1.0\nGenerator: beuss_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    return info


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(
    wheel_directory: str, config_settings: Optional[Dict[str, Any]] = None, metadata_directory: Optional[str] = None
) -> str:
    """Builds the wheel into wheel_directory and returns its file name."""
    files = {}
    for rel in _package_files():
        with open(os.path.join(HERE, rel), "rb") as f:
            files[rel.replace(os.sep, "/")] = f.read()
    return _write_wheel(wheel_directory, files)


def build_editable(
    wheel_directory: str, config_settings: Optional[Dict[str, Any]] = None, metadata_directory: Optional[str] = None
) -> str:
    """Builds an editable wheel (a .pth file pointing at this source tree) and returns its file name."""
    return _write_wheel(wheel_directory, {f"_{PACKAGE}_editable.pth": (HERE + "\n").encode()})


def build_sdist(sdist_directory: str, config_settings: Optional[Dict[str, Any]] = None) -> str:
    """Builds the source archive into sdist_directory and returns its file name."""
    name, version, metadata = _metadata()
    base = f"{re.sub(r'[-_.]+', '_', name)}-{version}"
    rels = ["pyproject.toml", "README.md", "build_backend/beuss_build.py"] + _package_files()
    filename = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz", format=tarfile.PAX_FORMAT) as tf:
        for rel in rels:
            tf.add(os.path.join(HERE, rel), f"{base}/{rel}", recursive=False)
        ti = tarfile.TarInfo(f"{base}/PKG-INFO")
        ti.size = len(metadata)
        ti.mtime = int(time.time())
        tf.addfile(ti, io.BytesIO(metadata))
    return filename
