"""The layout stays as ARCHITECTURE.md draws it: imports go down the layers only, no
module imports another that imports it back, the web never reaches into the protocol,
and the SDK needs nothing of the server."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import ledgerdesk

ROOT = Path(ledgerdesk.__file__).parent

# Lower numbers are lower layers. A module may import its own layer and those below.
LAYERS: dict[str, int] = {
    "ledgerdesk.config": 0,
    "ledgerdesk.errors": 0,
    "ledgerdesk.clock": 0,
    "ledgerdesk.service_levels": 0,
    "ledgerdesk.process": 0,
    "ledgerdesk.logs": 0,
    "ledgerdesk.metrics": 0,
    "ledgerdesk.db": 1,
    "ledgerdesk.http": 1,
    "ledgerdesk.attachments": 1,
    "ledgerdesk.accounts": 2,
    "ledgerdesk.tickets": 2,
    "ledgerdesk.invoices": 2,
    "ledgerdesk.audit": 2,
    "ledgerdesk.events": 2,
    "ledgerdesk.idempotency": 2,
    "ledgerdesk.webhooks": 2,
    "ledgerdesk.webhooks.relay": 3,
    "ledgerdesk.consumers": 3,
    "ledgerdesk.live": 3,
    "ledgerdesk.health": 3,
    "ledgerdesk.monitoring": 3,
    "ledgerdesk.backup": 3,
    "ledgerdesk.mail": 2,
    "ledgerdesk.mail.relay": 3,
    "ledgerdesk.mail.receiving": 3,
    "ledgerdesk.mail.lmtp": 3,
    "ledgerdesk.mail.imap": 3,
    "ledgerdesk.retention": 3,
    "ledgerdesk.runtime": 3,
    "ledgerdesk.execution": 3,
    "ledgerdesk.wire": 4,
    "ledgerdesk.web": 4,
    "ledgerdesk.app": 5,
    "ledgerdesk.serving": 6,
    "ledgerdesk.cli": 7,
    "ledgerdesk.__main__": 7,
}
# A domain's protocol adapters: its wire shapes and its actions belong to the protocol.
PROTOCOL_ROLES = ("actions", "schemas")


def module_names() -> list[str]:
    names = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if "migrations" in parts:
            continue  # Alembic's scripts, run by the migration tool only
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


@cache
def imports_of(module: str) -> frozenset[str]:
    """The ledgerdesk modules ``module`` imports, anywhere in it (lazy imports count),
    except under ``if TYPE_CHECKING:``."""
    path = ROOT.parent / Path(*module.split("."))
    source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    tree = ast.parse(source.read_text())
    found: set[str] = set()
    known = set(module_names())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != module)
    return frozenset(found)


def layer_of(module: str) -> int:
    if module.rpartition(".")[2] in PROTOCOL_ROLES and module.count(".") == 2:
        return LAYERS["ledgerdesk.wire"]
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return LAYERS[prefix]
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def is_protocol(module: str) -> bool:
    return module.startswith("ledgerdesk.wire") or (
        module.count(".") == 2 and module.rpartition(".")[2] in PROTOCOL_ROLES
    )


def server_modules() -> list[str]:
    return [
        m for m in module_names() if m != "ledgerdesk" and not m.startswith("ledgerdesk.client")
    ]


def test_every_module_is_in_a_layer() -> None:
    for module in server_modules():
        layer_of(module)


def test_imports_go_down_the_layers() -> None:
    upward = [
        f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})"
        for module in server_modules()
        for target in imports_of(module)
        if not target.startswith("ledgerdesk.client")
        and target != "ledgerdesk"
        and layer_of(target) > layer_of(module)
    ]
    assert upward == []


def test_no_module_imports_itself_back() -> None:
    graph = {m: imports_of(m) for m in module_names()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            # A package and its own modules are one place (``__init__`` re-exports).
            if target.startswith(module + ".") or module.startswith(target + "."):
                continue
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module)
    assert cycles == []


def test_the_web_never_imports_the_protocol() -> None:
    reaching = [
        f"{module} imports {target}"
        for module in module_names()
        if module.startswith("ledgerdesk.web")
        for target in imports_of(module)
        if is_protocol(target)
    ]
    assert reaching == []


def test_the_protocol_never_imports_the_web_or_the_cli() -> None:
    reaching = [
        f"{module} imports {target}"
        for module in module_names()
        if is_protocol(module)
        for target in imports_of(module)
        if target.startswith(("ledgerdesk.web", "ledgerdesk.cli"))
    ]
    assert reaching == []


def test_the_sdk_needs_nothing_of_the_server() -> None:
    reaching = [
        f"{module} imports {target}"
        for module in module_names()
        if module.startswith("ledgerdesk.client")
        for target in imports_of(module)
        if not target.startswith("ledgerdesk.client")
    ]
    assert reaching == []


def test_the_protocol_endpoint_holds_only_the_protocol() -> None:
    """wire/dispatch.py was the house's switchboard (762 lines); it keeps the HTTP side
    of the protocol only: where work runs is ``execution``, the work in the
    transaction ``wire.perform``."""
    lines = (ROOT / "wire" / "dispatch.py").read_text().count("\n")
    assert lines < 300
    assert "ledgerdesk.db.loop_reads" not in imports_of("ledgerdesk.wire.dispatch")
    assert "ledgerdesk.db.prepared" not in imports_of("ledgerdesk.wire.dispatch")
