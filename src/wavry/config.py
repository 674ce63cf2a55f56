"""One configuration approach for every command (docs/cli.md, docs/configuration.md).

Each command has a typed settings model (a subclass of :class:`CommandSettings`) whose fields are
filled, each layer overriding the one before, from:

1. the table ``[<section>]`` of ``$XDG_CONFIG_HOME/wavry/config.toml``;
2. environment variables ``WAVRY_<SECTION>_<FIELD>`` (upper case);
3. the command's flags (passed to :func:`load` as keyword arguments; ``None`` = not given).

A bad value in any layer raises :class:`ConfigError` with one line that names the layer.

:func:`update_section` writes one table back (the desktop app's settings), keeping every other
table, comment and key order as it was.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

__all__ = [
    "CONFIG_FILE_NAME",
    "CommandSettings",
    "ConfigError",
    "config_file",
    "load",
    "read_section",
    "update_section",
]

CONFIG_FILE_NAME = "config.toml"


class ConfigError(Exception):
    """A configuration value is wrong; the message names where it came from."""


def config_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "wavry" / CONFIG_FILE_NAME


def read_config_file(path: Path | None = None) -> dict[str, Any]:
    """The whole config file as a dict ({} when it does not exist)."""
    path = path or config_file()
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:  # found by tests/fuzz (config target)
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None


class _TomlSection(PydanticBaseSettingsSource):
    """The ``[section]`` table of the config file."""

    def __init__(self, settings_cls: type[BaseSettings], section: str, path: Path | None) -> None:
        super().__init__(settings_cls)
        self.section = section
        self.path = path or config_file()
        table = read_config_file(self.path).get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{self.path}: [{section}] must be a table")
        unknown = sorted(set(table) - set(settings_cls.model_fields))
        if unknown:
            raise ConfigError(
                f"{self.path}: [{section}] has unknown setting(s): {', '.join(unknown)}"
            )
        self.table: dict[str, Any] = table

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.table.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.table)


class CommandSettings(BaseSettings):
    """Base for a command's settings; subclasses set ``section``."""

    section: ClassVar[str] = ""
    _config_path: ClassVar[Path | None] = None

    model_config = SettingsConfigDict(extra="forbid", validate_default=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        section = cls.section
        env = EnvSettingsSource(settings_cls, env_prefix=f"WAVRY_{section.upper()}_")
        toml = _TomlSection(settings_cls, section, cls._config_path)
        assert isinstance(init_settings, InitSettingsSource)
        return (init_settings, env, toml)


S = TypeVar("S", bound=CommandSettings)


def _where(cls: type[CommandSettings], name: str, flags: dict[str, Any]) -> str:
    if name in flags:
        return f"--{name.replace('_', '-')}"
    env = f"WAVRY_{cls.section.upper()}_{name.upper()}"
    if env in os.environ:
        return env
    return f"{cls._config_path or config_file()} [{cls.section}] {name}"


def load(cls: type[S], config_path: Path | None = None, **flags: Any) -> S:
    """Settings of ``cls`` from file, environment and the given flags (None = not given)."""
    given = {k: v for k, v in flags.items() if v is not None}
    cls._config_path = config_path
    try:
        return cls(**given)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        if not err.get("loc"):  # a rule between several settings
            raise ConfigError(f"[{cls.section}] {msg}") from None
        name = str(err["loc"][0])
        raise ConfigError(f"{_where(cls, name, given)}: {msg}") from None
    finally:
        cls._config_path = None


def read_section(cls: type[CommandSettings], path: Path | None = None) -> dict[str, Any]:
    """The ``[section]`` table of the file as written (no environment, no defaults)."""
    path = path or config_file()
    table = read_config_file(path).get(cls.section, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{cls.section}] must be a table")
    return dict(table)


def update_section(
    cls: type[CommandSettings], values: dict[str, Any], path: Path | None = None
) -> dict[str, Any]:
    """Set the given keys of ``[cls.section]`` (None removes a key, so the default applies),
    keeping the rest of the file — other tables, comments, order — as it was. The new table is
    validated against ``cls`` first: a bad value raises ConfigError and the file is unchanged.
    Returns the table as written."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    from wavry.atomicfile import atomic_write

    path = path or config_file()
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        doc = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    table = doc.get(cls.section)
    if table is None:
        table = tomlkit.table()
        doc[cls.section] = table
    elif not isinstance(table, dict):
        raise ConfigError(f"{path}: [{cls.section}] must be a table")
    for key, value in values.items():
        if value is None:
            table.pop(key, None)
        else:
            table[key] = str(value) if isinstance(value, Path) else value
    plain = doc.unwrap().get(cls.section, {})
    try:
        cls.model_validate(plain)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = f"[{cls.section}] {err['loc'][0]}" if err.get("loc") else f"[{cls.section}]"
        raise ConfigError(f"{where}: {str(err['msg']).removeprefix('Value error, ')}") from None
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    try:
        atomic_write(path, tomlkit.dumps(doc).encode("utf-8"), mode)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from None
    return dict(plain)
