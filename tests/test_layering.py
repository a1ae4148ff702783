"""The walls between the package's rooms, read from its import statements (those inside functions too):

- no import cycle;
- only the command-line wing (`noisy_student_tf/cli/`, and `python -m noisy_student_tf`) knows about flags, and
  nothing outside it imports it;
- the lower floors (`models/`, `data/`, `training/`, `offline/`) import no job, no Python-API module and no
  command line;
- the jobs, the driver, tests, benchmarks and experiments talk to the library in configs, never in flag strings
  parsed back into absl `FlagValues`.
"""

import ast
import glob
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "noisy_student_tf"
WING = f"{PACKAGE}.cli"
LOWER_FLOORS = ("models", "data", "training", "offline")
# Tests whose subject is a command line (its flags, their parsing and their adapter).
ADAPTER_TESTS = {"tests/test_cli.py", "tests/test_flags.py", "tests/test_flag_reference.py",
                 "tests/test_proc_svhn.py", "tests/test_prepro_images.py", "tests/test_pipeline.py",
                 "tests/test_layering.py", "tests/flag_helper.py", "tests/ram_programs.py", "tests/ram_main_job.py",
                 "tests/test_beam_pipeline.py"}


def python_files(*patterns):
    for pattern in patterns:
        for path in sorted(glob.glob(os.path.join(ROOT, pattern), recursive=True)):
            yield os.path.relpath(path, ROOT)


def parse(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return ast.parse(f.read(), path)


def module_name(path):
    parts = path[:-len(".py")].split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def in_wing(module):
    return module == WING or module.startswith(WING + ".") or module == f"{PACKAGE}.__main__"


def package_imports():
    """{module: the package's modules it imports}; `from a import b` counts as importing `a.b` when that is a
    module, else `a`. A submodule's import of its own package (run first by Python anyway) is left out."""
    modules = {module_name(p): p for p in python_files(f"{PACKAGE}/**/*.py")}
    graph = {}
    for module, path in modules.items():
        package = module if path.endswith("__init__.py") else module.rsplit(".", 1)[0]
        targets = set()
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for name in names:
                while name not in modules and "." in name:
                    name = name.rsplit(".", 1)[0]
                if name in modules and name != module and not module.startswith(name + "."):
                    targets.add(name)
        graph[module] = targets
    return graph


def cycles(graph):
    """The strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return groups


def test_the_package_has_no_import_cycle():
    graph = package_imports()
    assert len(graph) > 40 and f"{PACKAGE}.jobs.train" in graph[f"{PACKAGE}.api"] | graph[f"{PACKAGE}.jobs.iterate"]
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_nothing_outside_the_command_line_wing_imports_it():
    graph = package_imports()
    assert f"{WING}.flags" in graph[WING] and f"{WING}.runner" in graph[WING]
    importers = sorted(f"{m} -> {t}" for m, targets in graph.items() for t in targets
                       if in_wing(t) and not in_wing(m))
    assert importers == []


def test_the_lower_floors_import_no_job_api_or_command_line():
    graph = package_imports()
    upper = (f"{PACKAGE}.jobs", f"{PACKAGE}.api", WING)
    upward = sorted(f"{m} -> {t}" for m, targets in graph.items() for t in targets
                    if (m.split(".") + [""])[1] in LOWER_FLOORS and any(t == u or t.startswith(u + ".") for u in upper))
    assert upward == []


def test_the_import_graph_holds_imports_made_inside_functions():
    """The cycles this file was written against went through imports inside functions."""
    source = parse(f"{PACKAGE}/offline/beam_pipeline.py")
    inner = [n.module for f in ast.walk(source) if isinstance(f, ast.FunctionDef) for n in ast.walk(f)
             if isinstance(n, ast.ImportFrom)]
    assert f"{PACKAGE}.models.restore" in inner
    assert f"{PACKAGE}.models.restore" in package_imports()[f"{PACKAGE}.offline.beam_pipeline"]


def names_used(path):
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Attribute):
            yield node.attr
        elif isinstance(node, ast.Name):
            yield node.id


def wing_files():
    return {p for p in python_files(f"{PACKAGE}/**/*.py") if in_wing(module_name(p))}


def test_nothing_outside_the_adapters_builds_flag_values():
    offenders = [path for path in python_files(f"{PACKAGE}/**/*.py", "tests/**/*.py", "bench/*.py",
                                               "experiments/*.py")
                 if path not in wing_files() | ADAPTER_TESTS and "FlagValues" in set(names_used(path))]
    assert offenders == []


def test_only_the_command_line_wing_reads_flags():
    offenders = []
    for path in python_files(f"{PACKAGE}/**/*.py"):
        if path in wing_files():
            continue
        if {"FLAGS", "flag_values_dict"} & set(names_used(path)):
            offenders.append(path)
        for node in ast.walk(parse(path)):
            names = [a.name for a in node.names] if isinstance(node, (ast.Import, ast.ImportFrom)) else []
            module = getattr(node, "module", None) or ""
            if module == "absl.flags" or "absl.flags" in names or (module == "absl" and "flags" in names):
                offenders.append(path)
    assert wing_files() and offenders == []
