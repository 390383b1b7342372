"""The package's layers: no import circles in src/stefaland_hf, and no module importing from a layer above its own.

Every ``import`` and ``from ... import`` of every module counts, at module level and inside functions, relative and
absolute (``importlib`` calls by name are not followed). Modules of one layer may import each other, without circles.
The same graph gives the remote code a pushed model carries.
"""

import ast
from pathlib import Path

import pytest

from stefaland_hf.hub.push import REMOTE_CODE_FILES

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "stefaland_hf"

# Bottom to top: (layer, modules and subpackages relative to stefaland_hf, why it sits here). "" is the package itself.
LAYERS = (
    ("foundations", ("variables", "zoo", "presets", "version"),
     "read by every layer, reading nothing of ours: the variable vocabulary, zoo folders, preset files, the version"),
    ("data", ("data",), "builders, windows, splits and normalization speak the variable vocabulary; no model needed"),
    ("scoring", ("metrics", "evaluate_metric", "evaluation"),
     "metrics on arrays, and whole-period prediction over data windows of a model it is handed"),
    ("physics", ("differentiable_hbv",),
     "the differentiable HBV the HBV heads run, and its parameter table the config checks: torch only (remote code)"),
    ("configuration", ("configuration_stefaland",), "StefaLandConfig; remote code, exported with the model"),
    ("checkpoint binding", ("checkpoint_binding",),
     "what saved weights are bound to, and the load checks: the models' base class inherits them (remote code)"),
    ("output distributions", ("output_distributions",),
     "the math of the distributional heads (CMAL likelihood and quantiles, pinball loss): torch only (remote code)"),
    ("model", ("modeling_stefaland",), "embeddings, encoder, heads, outputs (remote code: it needs no data or training)"),
    ("model add-ons", ("masking", "peft_adapters"),
     "built on the config and the model, not on data: the pretraining mask collator, the resConn PEFT method"),
    ("hub", ("hub", "convert_original"),
     "models in and out: names, cards, pushes, the authors' checkpoint; training ends in a card, so below training"),
    ("training", ("training",), "pretraining and finetuning runs, where model, data, scoring and cards meet"),
    ("experiments", ("experiments",), "demo, benchmark, comparisons, prediction: whole runs made of training runs"),
    ("api", ("", "pipeline"), "``import stefaland_hf``: the public names, the Auto-class and pipeline registrations, over everything"),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str) -> set[str]:
    """The package's modules that module ``name`` imports anywhere in its code."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # ``from package import module`` imports the module; ``from module import name`` the module
            targets.update(f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source for alias in node.names)
    found = set()
    for target in targets:
        while target not in MODULES and "." in target:  # stefaland_hf.x.NAME -> stefaland_hf.x
            target = target.rpartition(".")[0]
        if target in MODULES and target != name:
            found.add(target)
    return found


GRAPH = {name: imported_modules(name) for name in MODULES}


def layer_of(name: str) -> int:
    relative = name.partition(".")[2]
    matches = [
        (len(entry), index)
        for index, (_, entries, _) in enumerate(LAYERS)
        for entry in entries
        if relative == entry or (entry and relative.startswith(entry + "."))
    ]
    if not matches:
        pytest.fail(f"{name} is in no layer: add it to LAYERS in {Path(__file__).name}")
    return max(matches)[1]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_package():
    assert {"stefaland_hf", "stefaland_hf.modeling_stefaland", "stefaland_hf.training.finetune"} <= set(MODULES)
    assert "stefaland_hf.configuration_stefaland" in GRAPH["stefaland_hf.modeling_stefaland"]  # relative, module level
    assert "stefaland_hf.presets" in GRAPH["stefaland_hf.training.arguments"]  # relative, inside a function


def test_no_import_cycles():
    found = cycles(GRAPH)
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(cycle) for cycle in found)


def test_no_module_imports_from_a_higher_layer():
    upward = [
        f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for name, targets in sorted(GRAPH.items())
        for target in sorted(targets)
        if layer_of(target) > layer_of(name)
    ]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_the_pushed_remote_code_is_what_the_model_file_imports():
    """``push_model`` adds :data:`REMOTE_CODE_FILES` to a folder that lacks them: the model file and, recursively,
    what it imports (what ``save_pretrained`` copies)."""
    needed, todo = set(), ["stefaland_hf.modeling_stefaland"]
    while todo:
        name = todo.pop()
        needed.add(name)
        todo += sorted(GRAPH[name] - needed)
    assert sorted(f"{name.rpartition('.')[2]}.py" for name in needed) == sorted(REMOTE_CODE_FILES)
