#!/usr/bin/env python3
# Run from the repository root:
#   ~/.cache/nudge/venv/bin/pip install python-liquid==2.3.6 && ~/.cache/nudge/venv/bin/python crates/nudge-messages/tests/liquid/generate.py
"""Regenerate the Liquid conformance corpus (cases.json) from cases.src.json.

How to run (from the repository root):

    ~/.cache/nudge/venv/bin/pip install python-liquid==2.3.6 && ~/.cache/nudge/venv/bin/python crates/nudge-messages/tests/liquid/generate.py

(Create the virtualenv first with `python3 -m venv ~/.cache/nudge/venv` if it
does not exist.)

Every `expected` value in cases.json is the output of the reference Liquid
implementation, python-liquid, rendering the case's `template` with the case's
`data` as the render context. Never edit cases.json by hand: edit
cases.src.json and rerun this script.

The environment is python-liquid's default `liquid.Environment()`: standard
tags and filters, the default (lax) `Undefined`, so a missing variable renders
as an empty string. The script fails (non-zero exit) if any template fails to
parse or render, if a case is malformed, or if the installed python-liquid is
not the pinned version.
"""

import json
import sys
from pathlib import Path

import liquid
from liquid import Environment
from liquid.undefined import Undefined

# Keep in step with README.md and the header above.
PINNED_VERSION = "2.3.6"

HERE = Path(__file__).resolve().parent
SRC = HERE / "cases.src.json"
OUT = HERE / "cases.json"

REQUIRED_KEYS = ("name", "template", "data")


def main() -> int:
    version = liquid.__version__
    print(f"python-liquid {version}")
    if version != PINNED_VERSION:
        print(
            f"error: python-liquid {PINNED_VERSION} is pinned, found {version}; "
            f"run: ~/.cache/nudge/venv/bin/pip install python-liquid=={PINNED_VERSION}",
            file=sys.stderr,
        )
        return 1

    env = Environment()
    # The corpus assumes the lax default: missing variables render empty.
    assert env.undefined is Undefined, env.undefined

    cases = json.loads(SRC.read_text(encoding="utf-8"))
    if not isinstance(cases, list) or not cases:
        print(f"error: {SRC} must hold a non-empty JSON array", file=sys.stderr)
        return 1

    seen = set()
    failures = []
    out = []
    for index, case in enumerate(cases):
        label = case.get("name", f"#{index}") if isinstance(case, dict) else f"#{index}"
        if not isinstance(case, dict) or set(case) != set(REQUIRED_KEYS):
            failures.append(f"{label}: expected exactly the keys {REQUIRED_KEYS}")
            continue
        name, template, data = case["name"], case["template"], case["data"]
        if not isinstance(name, str) or not isinstance(template, str) or not isinstance(data, dict):
            failures.append(f"{label}: name/template must be strings and data an object")
            continue
        if name in seen:
            failures.append(f"{name}: duplicate case name")
            continue
        seen.add(name)
        try:
            expected = env.from_string(template).render(**data)
        except Exception as err:  # noqa: BLE001 - any failure must stop generation
            failures.append(f"{name}: {type(err).__name__}: {err}")
            continue
        out.append({"name": name, "template": template, "data": data, "expected": expected})

    if failures:
        print(f"error: {len(failures)} case(s) failed:", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        return 1

    OUT.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(out)} cases to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
