"""The simulated user's code stays on its side: no module of the questioner, the reconstruction s or the retriever
reaches (imports, directly or through other modules, at module level or inside a function) the answerer or the
memory writer. Read from the source with `ast`, so a lazy import inside a function counts too."""
import ast
from pathlib import Path

import pytest

import ideal

ROOT = Path(ideal.__file__).parent
SYSTEM_SIDE = ["ideal.dialog.questioner", "ideal.dialog.knowledge", "ideal.dialog.summary", "ideal.dialog.reading",
               "ideal.dialog.round", "ideal.dialog.router", "ideal.dialog.aspects", "ideal.retrieval.gallery"]
USER_SIDE = {"ideal.dialog.answerer", "ideal.scenes.memory"}


def module_file(name: str) -> Path:
    path = ROOT.parent.joinpath(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imports_of(name: str) -> set[str]:
    """The ideal.* modules `name` imports anywhere in its source (relative imports resolved)."""
    path = module_file(name)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("ideal")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            if not base.startswith("ideal"):
                continue
            for a in node.names:  # "from . import relations" names a module; "from .x import f" a member of x
                sub = f"{base}.{a.name}"
                out.add(sub if module_file(sub).is_file() else base)
    return {m for m in out if module_file(m).is_file()}


def reachable(name: str) -> dict[str, str]:
    """Every module reachable from `name`, each with the module that imports it."""
    seen, todo = {name: ""}, [name]
    while todo:
        m = todo.pop()
        for dep in imports_of(m):
            if dep not in seen:
                seen[dep] = m
                todo.append(dep)
    return seen


@pytest.mark.parametrize("name", SYSTEM_SIDE)
def test_the_system_side_never_reaches_the_simulated_user(name):
    seen = reachable(name)
    for bad in USER_SIDE & set(seen):
        chain, m = [bad], bad
        while seen[m]:
            m = seen[m]
            chain.append(m)
        pytest.fail(f"{name} reaches {bad}: {' <- '.join(chain)}")


def test_the_walker_finds_what_the_answerer_imports():
    seen = reachable("ideal.dialog.answerer")
    assert {"ideal.scenes.memory", "ideal.dialog.reading", "ideal.dialog.aspects", "ideal.scenes.words"} <= set(seen)
    assert "ideal.scenes.relations" in reachable("ideal.dialog.knowledge")
    assert "ideal.scenes.memory" in reachable("ideal.scenes.dataset")  # a module that does reach it is found
