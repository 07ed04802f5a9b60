"""Typed settings from TOML and the environment: declared once, checked by pydantic.

A setting is a field of a frozen stdlib dataclass, declared with `setting(default, doc,
env=...)`: its default, its documentation and its environment variable travel with the
field, so the environment table and `config/default.toml` are derived from the classes
(wherever they are defined, `dataclasses.make_dataclass` included) and never kept by hand.

TOML is JSON-shaped, so a tree is validated as strict JSON: an integer is not a bool nor a
string, a float takes an integer, a list becomes a tuple, a table a dataclass, an unknown
key is refused. An environment value is a string, converted leniently ("5", "true", lists
comma-separated) to its field's type first. Errors name the dotted key and never echo a
value: a value may be a secret.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import textwrap
import tomllib
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails, to_json, to_jsonable_python

from service.errors import ConfigError

T = TypeVar("T")
Field = dataclasses.Field[Any]

# Keys the metadata of a setting's field holds; "description" is also read by pydantic.
DOC, ENV = "description", "env"

_TOML_WORDS = {
    "dataclass_type": "must be a table",
    "dict_type": "expected a table",
    "tuple_type": "expected a list",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected a string",
}
_UNKNOWN = {"unexpected_keyword_argument", "extra_forbidden"}


def setting(default: Any, doc: str = "", *, env: str | None = None, secret: bool = False) -> Any:
    """A settings field: its default, what it is for, its environment variable; a secret
    is kept out of reprs. In `env`, "{table}" stands for the name of the field's table, in
    capitals: one class then serves several tables."""
    metadata = {DOC: doc, ENV: env} if env else {DOC: doc}
    return dataclasses.field(default=default, repr=not secret, metadata=metadata)


def environment(root: type, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment variable -> dotted key, from the fields' `env` (and `extra`'s, for
    fields declared without one)."""
    return {name: dotted for dotted, _, _, name in _leaves(root, extra=extra) if name}


def build(root: type[T], tree: Mapping[str, Any], removed: Mapping[str, str]) -> T:
    """Validate a nested mapping (as read from TOML) into `root`."""
    data = to_jsonable_python(tree, inf_nan_mode="constants")
    _drop_empty_removed(data, removed)
    adapter = _strict(typing.cast(type, root))
    try:
        built = adapter.validate_json(to_json([data], inf_nan_mode="constants"))[0]
    except ValidationError as exc:
        raise _config_error(exc.errors(include_input=False)[0], removed) from None
    assert isinstance(built, root)
    return built


def from_environment(
    root: type, environ: Mapping[str, str], extra: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The tree of the settings given in `environ`, each converted to its field's type."""
    tree: dict[str, Any] = {}
    for dotted, _, hint, name in _leaves(root, extra=extra):
        if name and name in environ:
            value = _from_env(hint, environ[name], f"{dotted} (from ${name})")
            set_dotted(tree, dotted, value)
    return tree


def read_toml(path: Path, key: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(key, f"file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(key, f"{path} is not valid TOML: {exc}") from None


def merge(into: dict[str, Any], layer: Mapping[str, Any]) -> None:
    """Merge `layer` into `into`, table by table; a layer's value replaces a whole list."""
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


def set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value


def render_toml(root: type, header: str, extra: Mapping[str, str] | None = None) -> str:
    """Every key of `root` with its default, documentation and environment variable."""
    named = {dotted: name for name, dotted in (extra or {}).items()}
    lines = [_comment(header, width=88), ""]
    lines += _render_table(root, "", "", named)
    return "\n".join(lines).rstrip() + "\n"


@functools.cache
def _strict(root: type) -> TypeAdapter[Any]:
    # A stdlib dataclass takes no config of its own: a one-tuple around it carries it.
    return TypeAdapter(tuple[root], config=ConfigDict(strict=True, extra="forbid"))  # type: ignore[valid-type]


@functools.cache
def _lax(hint: Any) -> TypeAdapter[Any]:
    return TypeAdapter(hint)


def _from_env(hint: Any, raw: str, key: str) -> Any:
    value: Any = raw
    if typing.get_origin(hint) is tuple:
        value = [part.strip() for part in raw.split(",") if part.strip()]
    try:
        return _lax(hint).validate_python(value)
    except ValidationError as exc:
        raise ConfigError(key, _problem(exc.errors(include_input=False)[0])) from None


def _config_error(error: ErrorDetails, removed: Mapping[str, str]) -> ConfigError:
    """The key from the error's location, the problem from its type: never its input."""
    loc = error["loc"][1:]  # past the one-tuple
    key = ".".join(str(part) for part in loc if isinstance(part, str)) or "<root>"
    if error["type"] in _UNKNOWN:
        return ConfigError(key, removed.get(key, "unknown setting"))
    problem = _problem(error)
    items = [part for part in loc if isinstance(part, int)]
    return ConfigError(key, f"item {items[-1] + 1}: {problem}" if items else problem)


def _problem(error: ErrorDetails) -> str:
    """What is wrong, in TOML's words; pydantic's message never holds the input."""
    return _TOML_WORDS.get(error["type"], error["msg"])


def _drop_empty_removed(data: Any, removed: Mapping[str, str]) -> None:
    """Remove the removed keys left empty: those are let pass."""
    for dotted in removed:
        *parents, leaf = dotted.split(".")
        node = data
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf in node and not node[leaf]:
            del node[leaf]


def _leaves(
    cls: type, table: str = "", extra: Mapping[str, str] | None = None
) -> Iterator[tuple[str, Field, Any, str | None]]:
    """(dotted key, field, type, environment variable) of every setting not a table;
    `extra` names the variable of a key whose field names none (variable -> key)."""
    named = {dotted: name for name, dotted in (extra or {}).items()}
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        dotted = f"{table}.{field.name}" if table else field.name
        if _is_table(hint):
            yield from _leaves(hint, dotted, extra)
        else:
            yield dotted, field, hint, _env(field, table) or named.get(dotted)


def _env(field: Field, table: str) -> str | None:
    name = field.metadata.get(ENV)
    return name.format(table=table.rpartition(".")[2].upper()) if name else None


def _is_table(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _render_table(
    cls: type, dotted: str, doc: str, named: Mapping[str, str] | None = None
) -> list[str]:
    named = named or {}
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    keys = [f for f in fields if not _is_table(hints[f.name])]
    header = [f"[{dotted}]"] if keys and dotted else []
    lines = header + ([_comment(doc)] if doc else [])
    for f in keys:
        env_name = _env(f, dotted) or named.get(f"{dotted}.{f.name}" if dotted else f.name)
        lines += _render_key(f, env_name)
    lines.append("")
    for f in fields:
        if _is_table(hints[f.name]):
            sub = f"{dotted}.{f.name}" if dotted else f.name
            lines += _render_table(hints[f.name], sub, f.metadata.get(DOC, ""), named)
    return lines


def _render_key(field: Field, env_name: str | None) -> list[str]:
    default = field.default
    if default is dataclasses.MISSING and field.default_factory is not dataclasses.MISSING:
        default = field.default_factory()
    assignment = f"{field.name} = {_toml_value(default)}"
    env = f"${env_name}" if env_name else ""
    doc = field.metadata.get(DOC, "")
    inline = f"{env}: {doc}" if env and doc else env or doc
    padded = assignment.ljust(32) if len(assignment) < 32 else f"{assignment}  "
    if not inline:
        return [assignment]
    if len(padded) + 2 + len(inline) <= 120:
        return [f"{padded} # {inline}"]
    return [_comment(doc), f"{padded} # {env}" if env else assignment]


def _comment(text: str, width: int = 88) -> str:
    paragraphs = text.split("\n\n")
    wrapped = [textwrap.wrap(p, width - 2, break_on_hyphens=False) for p in paragraphs]
    return "\n#\n".join("\n".join(f"# {line}" for line in lines) for lines in wrapped)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for a default of type {type(value).__name__}")
