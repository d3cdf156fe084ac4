"""The floors in the tree are real: imports point down, and no module cycle exists."""

from __future__ import annotations

from tests.unit.floors import FLOORS, ROOT, Edge, cycles, graph, upward

# The dev gateway is a dev tool. Only these entrypoints may start it, and only lazily:
# `wandstore-agents gateway` (serve it) and the embedded defaults of the demo and `make dev`.
DEV_GATEWAY_USERS = {"entrypoints.cli.gateway", "entrypoints.devmode"}


def _show(edges: list[Edge]) -> str:
    return "\n".join(f"  {e.path.relative_to(ROOT)}:{e.line}: {e.source} imports {e.target}" for e in edges)


def test_every_floor_is_a_folder() -> None:
    for floor in (*FLOORS, "devgateway"):
        assert (ROOT / floor).is_dir(), f"{floor}/ is missing"


def test_imports_point_down_the_floors() -> None:
    _, edges = graph()
    bad = [
        e
        for e in upward(edges)
        if not (e.target.startswith("devgateway") and e.source in DEV_GATEWAY_USERS and e.lazy)
    ]
    assert not bad, f"imports that point up a floor ({' < '.join(FLOORS)}):\n{_show(bad)}"


def test_the_dev_gateway_is_reached_only_through_the_dev_entrypoints() -> None:
    _, edges = graph()
    users = {
        e.source for e in edges if e.target.startswith("devgateway") and not e.source.startswith("devgateway")
    }
    assert users <= DEV_GATEWAY_USERS, (
        f"production modules import the dev gateway: {sorted(users - DEV_GATEWAY_USERS)}"
    )


def test_no_import_cycles() -> None:
    out, _ = graph()
    found = cycles(out)
    assert not found, "import cycles:\n" + "\n".join("  " + " -> ".join(c) for c in found)


def test_the_checker_sees_an_upward_import(tmp_path: object) -> None:
    # Given an edge from the bottom floor to the top one, then the rule flags it.
    from pathlib import Path

    edge = Edge("adapters.settings", "entrypoints.cli.main", Path(ROOT / "adapters/settings.py"), 1, False)
    assert upward([edge]) == [edge]
    assert cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b"]]
