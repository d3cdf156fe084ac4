"""Eval cases: `prompts/<agent>/cases.jsonl`, one JSON object per line.

```
{"id": "stanley-iceflow-20oz", "store": "stanley1913", "input": {...}, "options": {},
 "assert": [{"type": "schema_valid"}, {"type": "length", "field": "title", "max": 70}]}
```

`input` is what the agent's input builder takes (a Shopify product for product_copy, the
prompt's variables for the others); `options` go to the builder (product_copy:
`brand_voice`, `locale`); `store` and `shopper_id` go into the call's context.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.errors import InvalidInput
from agents.evals.assertions import Assertion
from agents.shopify import describe_errors
from domain.keys import ID_RE, STORE_RE


class Case(BaseModel):
    """One input and what every version's output must satisfy."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
    store: str = Field(default="eval", pattern=STORE_RE.pattern)
    shopper_id: str | None = Field(default=None, pattern=ID_RE.pattern)
    input: Any
    options: dict[str, Any] = Field(default_factory=dict)
    assertions: list[Assertion] = Field(alias="assert", min_length=1)


def cases_path(prompts_dir: Path, agent: str) -> Path:
    return prompts_dir / agent / "cases.jsonl"


def load_cases(path: Path) -> list[Case]:
    """Every case in a JSONL file; a bad line raises `InvalidInput` naming the file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no cases file (write one JSON case per line)") from None
    cases: list[Case] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            case = Case.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        except ValidationError as exc:
            raise InvalidInput(f"{where}: invalid case: {describe_errors(exc)}") from None
        if case.id in seen:
            raise InvalidInput(f"{where}: case id {case.id!r} is used twice")
        seen.add(case.id)
        cases.append(case)
    if not cases:
        raise InvalidInput(f"{path}: no cases in the file")
    return cases
