"""One configuration approach for every command (docs/cli.md, docs/configuration.md).

Each command has a typed settings model (a subclass of :class:`CommandSettings`) whose fields are
filled, each layer overriding the one before, from:

1. the table ``[<section>]`` of ``$XDG_CONFIG_HOME/wavry/config.toml``;
2. environment variables ``WAVRY_<SECTION>_<FIELD>`` (upper case);
3. the command's flags (passed to :func:`load` as keyword arguments; ``None`` = not given).

A bad value in any layer raises :class:`ConfigError` with one line that names the layer.
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

__all__ = ["CONFIG_FILE_NAME", "CommandSettings", "ConfigError", "config_file", "load"]

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
