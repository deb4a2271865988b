"""Benchmarks on real data. Each module of this package that defines ``BENCHMARK`` (a
:class:`Benchmark`) is one: ``dnnhw bench NAME`` comes from :func:`benchmarks`, and a
catalog row names its core's benchmark (``Core.benchmark``). Adding a benchmark is adding
a module.

Each entry's ``main(argv)`` parses its own options (``dnnhw bench NAME --help``). A
benchmark may also bring top-level commands of its own (``Benchmark.commands``, such as
``dnnhw ratios``): the CLI adds them from here, naming no benchmark itself.
"""

import argparse
import functools
import importlib
import json
import pkgutil
from dataclasses import dataclass


__all__ = ["Benchmark", "Command", "benchmarks", "commands", "get_benchmark",
           "comma_list", "write_study", "show_study"]


@dataclass(frozen=True)
class Command:
    """A top-level ``dnnhw NAME ...`` command. Members: ``name``, ``main``
    (``module:function`` taking the rest of the command line, returning an exit code),
    ``help``."""
    name: str
    main: str
    help: str


@dataclass(frozen=True)
class Benchmark:
    """Members: ``name`` (``dnnhw bench NAME``), ``main`` (``module:function`` taking the
    argument list, returning an exit code), ``summary``, ``commands`` (a tuple of
    :class:`Command`)."""
    name: str
    main: str
    summary: str
    commands: tuple = ()


@functools.lru_cache(maxsize=None)
def benchmarks():
    """Every registered benchmark, by name, in module order."""
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        bench = getattr(module, "BENCHMARK", None)
        if bench is not None:
            if bench.name in found:
                raise ValueError(f"two benchmarks are called {bench.name!r}")
            found[bench.name] = bench
    return found


def commands():
    """Every benchmark's top-level commands, by name."""
    found = {}
    for bench in benchmarks().values():
        for command in bench.commands:
            if command.name in found:
                raise ValueError(f"two benchmarks define the command {command.name!r}")
            found[command.name] = command
    return found


def get_benchmark(name):
    """The benchmark called ``name``, or a :class:`~dnnhw.catalog.ParameterError` naming
    the known ones."""
    from ..catalog import ParameterError
    known = benchmarks()
    if name not in known:
        raise ParameterError(f"unknown benchmark '{name}'; known: {', '.join(known)}")
    return known[name]


def comma_list(cast, what, *, name=None):
    """An ``argparse`` type: comma-separated values, each read by ``cast`` (``int``,
    ``float``), at least one. ``what`` names them in the errors ("integers"); ``name``
    (an option) prefixes them."""
    lead = f"{name} must be" if name else "expected"

    def parse(text):
        try:
            values = [cast(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{lead} comma-separated {what}, got {text!r}") from None
        if not values:
            raise argparse.ArgumentTypeError(f"{lead} at least one of the {what}, got "
                                             f"{text!r}")
        return values
    return parse


def write_study(results, out_dir, name, *, figures, render):
    """A study's files in ``out_dir``: ``NAME_<plot>.png`` for each of ``figures(results)``
    that draws something (their names go into ``results["plots"]``), ``NAME.json`` and
    ``NAME.md`` (``render(results)``, which it returns)."""
    from pathlib import Path
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results["plots"] = {plot: f"{name}_{plot}.png" for plot, figure in figures(results).items()
                        if figure(out_dir / f"{name}_{plot}.png")}
    (out_dir / f"{name}.json").write_text(json.dumps(results, indent=1) + "\n")
    text = render(results)
    (out_dir / f"{name}.md").write_text(text + "\n")
    return text


def show_study(results, out_dir, name, *, figures, render):
    """A bench command's ending: the study's markdown printed, and with ``out_dir`` (not
    None) its files written there first (:func:`write_study`)."""
    print()
    if out_dir is None:
        print(render(results))
        return
    print(write_study(results, out_dir, name, figures=figures, render=render))
    print(f"\nwrote {out_dir}/{name}.json, {name}.md and the plots")
