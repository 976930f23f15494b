"""The edge that loads templates: a sandboxed Jinja2 environment over the shipped templates
folder and, optionally, the seller's own overrides. Passed into render()."""

from __future__ import annotations

from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

SHIPPED = Path(__file__).resolve().parent.parent / "templates"


def environment(override: Path | None = None) -> SandboxedEnvironment:
    paths = [str(override)] if override else []
    paths.append(str(shipped_templates()))
    return SandboxedEnvironment(
        loader=FileSystemLoader(paths, encoding="utf-8"),
        undefined=StrictUndefined,
        autoescape=False,  # plain-text mail; nothing here is HTML
        keep_trailing_newline=True,
    )


def shipped_templates() -> Path:
    if SHIPPED.is_dir():
        return SHIPPED
    installed = Path(__file__).resolve().parent / "templates"  # wheel layout
    return installed
