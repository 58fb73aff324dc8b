"""core/ exports the engine's public surface and nothing more; this pins the list."""

import roomkeeper.core as core


def test_core_public_api_is_pinned():
    assert sorted(core.__all__) == core.__all__
    for name in core.__all__:
        assert hasattr(core, name), name
    assert len(core.__all__) == 56


def test_core_imports_no_other_layer():
    import ast
    import pathlib

    forbidden = ("roomkeeper.api", "roomkeeper.gateway", "roomkeeper.state", "roomkeeper.server",
                 "roomkeeper.transport", "asyncio", "sqlite3", "socket", "time")
    for path in pathlib.Path(core.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for n in names:
                assert not n.startswith(forbidden), f"{path.name} imports {n}"
