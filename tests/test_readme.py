"""The commands the docs show run scripts with flags those scripts have, and `--set` only config keys that exist.

Every `python jobs/X.py ...`, `python cluster/check.py ...` and `python -m ideal.… ...` in a fenced bash block of
DOCS (after `ray job submit ... --` too, and across `\\` continuations) is checked against the script's own
`--help`, run once per script, and each `--set a.b=value` against `ideal.config.load_config`."""
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path

import pytest

from ideal.config import load_config

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "cluster/README.md", "deployments/README.md", "docs/benchmarks.md", "docs/guide.md", "docs/llm.md",
        "docs/training.md"]
SCRIPT = re.compile(r"jobs/\w+\.py|cluster/check\.py")
SEPARATORS = {"&&", "||", ";", "|", "&", "(", ")"}


@dataclass(frozen=True)
class Call:
    """One documented run of a script: the script (a path, or `-m module`), the flags as written, --set values."""

    script: str
    flags: tuple[str, ...]
    overrides: tuple[str, ...]
    where: str = ""


def bash_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```(?:bash|sh|shell)[ \t]*\n(.*?)^```", markdown, flags=re.M | re.S)


def _flags(args: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    flags, overrides = [], []
    for j, a in enumerate(args):
        if a == "--" or not a.startswith("-") or re.fullmatch(r"-[\d.]+", a):  # a value such as --seed -1
            continue
        flag, eq, value = a.partition("=")
        flags.append(flag)
        if flag == "--set":
            overrides.append(value if eq else args[j + 1] if j + 1 < len(args) else "")
    return tuple(flags), tuple(overrides)


def script_calls(markdown: str, doc: str = "") -> list[Call]:
    """The script runs in `markdown`'s fenced bash blocks; comments and inline code are not commands."""
    calls = []
    for block in bash_blocks(markdown):
        for line in block.replace("\\\n", " ").splitlines():
            if not re.search(rf"python3?\s+(-m\s+ideal\.|{SCRIPT.pattern})", line):
                continue
            lex = shlex.shlex(line, posix=True, punctuation_chars=True)
            lex.whitespace_split = True
            try:
                tokens = list(lex)
            except ValueError as e:
                raise ValueError(f"{doc}: cannot split {line.strip()!r}: {e}") from None
            for i, tok in enumerate(tokens[:-1]):
                if tok not in ("python", "python3"):
                    continue
                if tokens[i + 1] == "-m" and i + 2 < len(tokens) and tokens[i + 2].startswith("ideal."):
                    script, rest = f"-m {tokens[i + 2]}", tokens[i + 3:]
                elif SCRIPT.fullmatch(tokens[i + 1]):
                    script, rest = tokens[i + 1], tokens[i + 2:]
                else:
                    continue
                flags, overrides = _flags(list(takewhile(lambda t: t not in SEPARATORS, rest)))
                calls.append(Call(script, flags, overrides, f"{doc}: {line.strip()}"))
    return calls


def unknown_flags(calls: list[Call], helps: dict[str, str]) -> list[str]:
    """A line per flag a doc passes to a script whose --help does not list it (exactly: no abbreviations)."""
    return [f"{c.where}\n    python {c.script} has no {flag}" for c in calls for flag in c.flags
            if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", helps[c.script])]


def bad_overrides(calls: list[Call]) -> list[str]:
    """A line per `--set` value that load_config refuses (unknown key, value of the wrong type)."""
    problems = []
    for c in calls:
        for override in c.overrides:
            try:
                load_config(None, [override])
            except ValueError as e:
                problems.append(f"{c.where}\n    --set {override}: {e}")
    return problems


@pytest.fixture(scope="module")
def calls() -> list[Call]:
    return [c for doc in DOCS if (ROOT / doc).exists() for c in script_calls((ROOT / doc).read_text(), doc)]


def _help(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *script.split(), "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def helps(calls) -> dict[str, str]:
    """Each documented script's --help, run once (they import torch and Ray: a few seconds each)."""
    scripts = sorted({c.script for c in calls})
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = dict(zip(scripts, pool.map(_help, scripts)))
    for script, run in runs.items():
        assert run.returncode == 0 and "usage:" in run.stdout, f"python {script} --help:\n{run.stderr[-2000:]}"
    return {script: run.stdout for script, run in runs.items()}


def test_the_docs_run_scripts_with_flags_they_have(calls, helps):
    assert {"jobs/eval.py", "jobs/train.py", "cluster/check.py"} <= {c.script for c in calls}
    problems = unknown_flags(calls, helps)
    assert not problems, "\n".join(problems)


def test_the_docs_set_only_config_keys_that_exist(calls):
    assert any(c.overrides for c in calls)
    problems = bad_overrides(calls)
    assert not problems, "\n".join(problems)


SAMPLE = """
Inline `python jobs/eval.py --inline` is prose, not a command.

```bash
pip install -e . && python jobs/eval.py --out x --bogus 3   # --commented is not a flag
ray job submit --address http://127.0.0.1:8265 -- python jobs/train.py --stage iat \\
    --set iat.lam=0 --set=dialog.nope=1
python -m ideal.scenes.synthetic --out d --seed -1 | tee log; python -m pytest -q --lf
```

```python
# python jobs/eval.py --in-a-python-block
```
"""
SAMPLE_HELPS = {"jobs/eval.py": "usage: eval.py [-h] [--outdir OUT] [--out OUT] [--set KEY=VALUE]",
                "jobs/train.py": "usage: train.py [-h] [--stage {base,iat}] [--set KEY=VALUE]",
                "-m ideal.scenes.synthetic": "usage: python -m ideal.scenes.synthetic [-h] --out OUT [--seed SEED]"}


def test_the_checker_finds_a_bogus_flag_and_an_unknown_key():
    calls = script_calls(SAMPLE, "SAMPLE.md")
    assert [(c.script, c.flags, c.overrides) for c in calls] == [
        ("jobs/eval.py", ("--out", "--bogus"), ()),
        ("jobs/train.py", ("--stage", "--set", "--set"), ("iat.lam=0", "dialog.nope=1")),
        ("-m ideal.scenes.synthetic", ("--out", "--seed"), ()),
    ]
    assert calls[1].where.startswith("SAMPLE.md: ray job submit")
    (flag,) = unknown_flags(calls, SAMPLE_HELPS)
    assert "python jobs/eval.py has no --bogus" in flag and "SAMPLE.md: pip install" in flag
    (key,) = bad_overrides(calls)
    assert "--set dialog.nope=1: override: unknown config key 'dialog.nope'" in key


def test_a_flag_must_be_listed_whole():
    call = Call("jobs/x.py", ("--out", "--set"), ())
    assert len(unknown_flags([call], {"jobs/x.py": "[--outdir D] [--out-dir D] [--settings S]"})) == 2
    assert not unknown_flags([call], {"jobs/x.py": "[--out OUT]\n  --set KEY=VALUE"})


def test_a_command_the_shell_could_not_split_is_an_error():
    with pytest.raises(ValueError, match="BAD.md: cannot split"):
        script_calls("```bash\npython jobs/eval.py --out 'unclosed\n```\n", "BAD.md")
