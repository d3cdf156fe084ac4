"""Versioned prompt files (`prompts/<agent>/<version>.md`): loaded, validated, rendered.

A file is YAML front matter, then a Jinja2 body split into `[system]` and `[user]`
sections. Every file is checked at load: an undeclared variable or an unknown output
model fails loudly, naming the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from adapters.errors import ConfigError, InvalidInput
from agents.jsontext import dumps_indent1

_SECTION = re.compile(r"^\[(system|user)\]\s*$", re.MULTILINE)
_VERSION = re.compile(r"^v\d+[a-z0-9-]*$")
_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=False,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _data_json(value: Any) -> str:
    """JSON for a fenced data block: '<', '>' and '&' escaped so data can't close the fence."""
    text = dumps_indent1(value)  # json.dumps(value, ensure_ascii=False, indent=1), faster
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_ENV.filters["data_json"] = _data_json


class PromptError(ConfigError):
    """A prompt file is malformed; the message names the file."""


class FrontMatter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str
    model: str = Field(pattern=r"^(openai|anthropic)/[\w.:-]+$")
    output: str
    inputs: list[str]
    temperature: float = Field(default=0.3, ge=0, le=2)
    max_tokens: int = Field(default=1024, gt=0, le=32000)
    gateway_cache_ttl: int | None = Field(default=None, ge=60)
    input_token_budget: int = Field(default=4000, gt=0)
    labels: list[str] = Field(default_factory=list)
    # The provider's budget for `model` (requests / tokens per minute) when MODEL_LIMITS names none.
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    # Served instead when `model` is down or rate-limited past what the call can wait; on the other
    # provider, so one provider's outage does not take both.
    fallback_model: str | None = Field(default=None, pattern=r"^(openai|anthropic)/[\w.:-]+$")

    @model_validator(mode="after")
    def _fallback_elsewhere(self) -> FrontMatter:
        if self.fallback_model and self.fallback_model.split("/")[0] == self.model.split("/")[0]:
            raise ValueError(
                f"fallback_model {self.fallback_model!r} must be on another provider than {self.model!r}"
            )
        return self


@dataclass(frozen=True)
class Prompt:
    """One prompt version, ready to render."""

    agent: str
    version: str
    path: Path
    meta: FrontMatter
    output_model: type[BaseModel]
    source: str
    _system: jinja2.Template = field(repr=False)
    _user: jinja2.Template = field(repr=False)

    @property
    def ref(self) -> str:
        return f"{self.agent}@{self.version}"

    def render(self, variables: dict[str, Any]) -> list[dict[str, str]]:
        """The exact messages sent to the model."""
        missing = [name for name in self.meta.inputs if name not in variables]
        if missing:
            raise InvalidInput(f"prompt {self.ref} needs input(s) {', '.join(missing)}")
        try:
            return [
                {"role": "system", "content": self._system.render(**variables).strip()},
                {"role": "user", "content": self._user.render(**variables).strip()},
            ]
        except jinja2.UndefinedError as exc:
            raise InvalidInput(f"prompt {self.ref} could not be rendered: {exc.message}") from None


def parse_prompt_file(path: Path, output_models: dict[str, type[BaseModel]]) -> Prompt:
    """Load and validate one prompt file; any problem raises `PromptError` naming it."""
    agent, version = path.parent.name, path.stem
    where = str(path)
    if not _VERSION.match(version):
        raise PromptError(f"{where}: version file names must look like v1.md, v2.md (got {path.name})")
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        raise PromptError(f"{where}: missing YAML front matter (start the file with '---')")
    try:
        _, head, body = text.split("---\n", 2)
        raw = yaml.safe_load(head) or {}
    except (ValueError, yaml.YAMLError) as exc:
        raise PromptError(f"{where}: unreadable front matter: {exc}") from None
    try:
        meta = FrontMatter.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise PromptError(f"{where}: invalid front matter: {details}") from None
    model = output_models.get(meta.output)
    if model is None:
        raise PromptError(
            f"{where}: unknown output model {meta.output!r} (known: {', '.join(sorted(output_models))})"
        )
    parts = _SECTION.split(body)
    sections = dict(zip(parts[1::2], parts[2::2], strict=False))
    if set(sections) != {"system", "user"}:
        raise PromptError(f"{where}: the body needs a [system] and a [user] section")
    templates = {}
    for name, source in sections.items():
        try:
            ast = _ENV.parse(source)
        except jinja2.TemplateSyntaxError as exc:
            raise PromptError(f"{where}: [{name}] line {exc.lineno}: {exc.message}") from None
        undeclared = jinja2.meta.find_undeclared_variables(ast) - set(meta.inputs)
        if undeclared:
            raise PromptError(
                f"{where}: [{name}] uses undefined variable(s) {', '.join(sorted(undeclared))}; "
                f"declared inputs are {', '.join(meta.inputs) or 'none'}"
            )
        templates[name] = _ENV.from_string(source)
    return Prompt(agent, version, path, meta, model, text, templates["system"], templates["user"])


def _version_key(version: str) -> tuple[int, str]:
    digits = re.match(r"v(\d+)", version)
    return (int(digits.group(1)) if digits else 0, version)


class PromptRegistry:
    """Every prompt version under one folder, validated at start-up."""

    def __init__(self, root: Path, output_models: dict[str, type[BaseModel]]) -> None:
        self.root = root
        self._prompts: dict[str, dict[str, Prompt]] = {}
        # The files are read once; what is derived from them is computed once (every call asks).
        self._defaults: dict[tuple[str, str], str] = {}
        if not root.is_dir():
            raise PromptError(f"{root}: prompts folder not found (set PROMPTS_DIR)")
        for path in sorted(root.glob("*/v*.md")):
            prompt = parse_prompt_file(path, output_models)
            self._prompts.setdefault(prompt.agent, {})[prompt.version] = prompt

    def agents(self) -> list[str]:
        return sorted(self._prompts)

    def versions(self, agent: str) -> list[str]:
        return sorted(self._agent(agent), key=_version_key)

    def _agent(self, agent: str) -> dict[str, Prompt]:
        try:
            return self._prompts[agent]
        except KeyError:
            raise InvalidInput(f"unknown agent {agent!r} (known: {', '.join(self.agents())})") from None

    def default_version(self, agent: str, label: str = "production") -> str:
        """The version the files themselves mark with `label`, else the newest."""
        found = self._defaults.get((agent, label))
        if found is None:
            versions = self.versions(agent)
            marked = [v for v in versions if label in self._agent(agent)[v].meta.labels]
            found = self._defaults[(agent, label)] = (marked or versions)[-1]
        return found

    def get(self, agent: str, version: str | None = None) -> Prompt:
        prompts = self._agent(agent)
        version = version or self.default_version(agent)
        try:
            return prompts[version]
        except KeyError:
            raise InvalidInput(
                f"unknown version {version!r} of {agent} (known: {', '.join(self.versions(agent))})"
            ) from None
