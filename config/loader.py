"""Load and validate a configuration file, turning pydantic's errors into one clear message per
field with the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from config.schema import SentinelConfig


class ConfigError(Exception):
    """A configuration that cannot be used. ``problems`` are ``(field path, message)`` pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: invalid configuration"]
        lines += [f"  {path}: {msg}" for path, msg in problems]
        super().__init__("\n".join(lines))


def _fix_for(err: dict[str, Any]) -> str:
    kind = err["type"]
    msg = str(err["msg"])
    if kind == "extra_forbidden":
        return "unknown field; remove it or check its spelling against `check-config --explain`"
    if kind == "missing":
        return "required field is missing; add it"
    if kind.startswith("literal_error") or kind == "enum":
        return f"{msg}"
    return msg


def parse_config(data: Any, source: str = "<config>") -> SentinelConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [("<root>", "must be a mapping of settings (YAML object)")])
    try:
        return SentinelConfig.model_validate(data)
    except ValidationError as exc:
        problems = [
            (".".join(str(p) for p in e["loc"]) or "<root>", _fix_for(dict(e)))
            for e in exc.errors()
        ]
        raise ConfigError(source, problems) from None


def load_config(path: str | Path | None) -> SentinelConfig:
    """Read ``path`` (YAML); ``None`` gives the defaults."""
    if path is None:
        return SentinelConfig()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), [("<file>", f"cannot read: {exc.strerror}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(str(p), [("<yaml>", f"not valid YAML: {exc}")]) from None
    return parse_config(data, str(p))
