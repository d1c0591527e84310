"""Control flow by what happened, not by AssertionError: rig's own errors are RigErrors with names."""

import ast
from pathlib import Path

import rig
from rig.errors import ConsoleTimeout, HandoverRefused, PowerCutDuringUpload, RigError

RIG = Path(rig.__file__).parent


def test_no_production_code_catches_or_raises_assertion_error():
    found = []
    for path in sorted(RIG.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                types = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
                names = [t.id for t in types if isinstance(t, ast.Name)]
            elif isinstance(node, ast.Raise) and node.exc is not None:
                exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                names = [exc.id] if isinstance(exc, ast.Name) else []
            if "AssertionError" in names:
                found.append(f"{path.relative_to(RIG.parent)}:{node.lineno}")
    assert found == []


def test_the_named_errors_are_rig_errors_that_print_as_one_line():
    assert all(issubclass(cls, RigError) for cls in (ConsoleTimeout, PowerCutDuringUpload, HandoverRefused))
    cut = PowerCutDuringUpload(4096)
    assert cut.offset == 4096 and str(cut) == "power cut at upload offset 4096"
