"""Mutation testing of the core modules with mutmut (issue 27); not part of ``make test``.

Usage::

    .venv/bin/python -m tests.mutation [--tree PATH] [--children N] [--diffs] [MODULE ...]
    .venv/bin/python -m tests.mutation executor --only glancesync/executor/steps.py

MODULE is one of :data:`MODULES` (all of them when none is given). For each
module, a scratch copy of the tree (``glancesync/``, ``tests/``, ``docs/``,
``conf/``) is made under ``build/mutation/MODULE/``, mutmut (pinned in
mutation-requirements.txt) mutates that module's files and runs the unit tests
listed for it against each mutant. The summary per module (mutants, killed,
survived, kill rate) is printed and written to ``build/mutation/report.md``
with the name of every mutant that survived (``--diffs``: its diff too);
``cd build/mutation/MODULE && ../../../.venv/bin/mutmut show NAME`` shows one.

``--tree PATH`` mutates another checkout (``git worktree add /tmp/before
main``: the kill rate before a change). Timeouts count as killed (a mutant
that makes the tests hang is caught); mutants no test reaches count as
survivors. Exit status 0; 1 when the tests of a module fail on the code as it is
(mutmut.log in its folder says why); 2 for a bad module name.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = Path(sys.executable).parent / "mutmut"

#: module -> (files mutated, unit tests run against them).
MODULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "condition": (("glancesync/condition.py",),
                  ("tests/unit/test_condition.py", "tests/unit/test_condition_operators.py",
                   "tests/unit/test_condition_survivors.py")),
    "safenames": (("glancesync/safenames.py",),
                  ("tests/unit/test_safenames.py", "tests/unit/test_hostile_paths.py")),
    "redaction": (("glancesync/redaction.py",),
                  ("tests/unit/test_redaction.py", "tests/unit/test_redaction_streams.py",
                   "tests/unit/test_redaction_outputs.py")),
    # Not lock/base.py: mutmut's trampolines add members to its Protocol class,
    # which no lock has then (isinstance fails before any mutant is tried).
    "lock": (("glancesync/lock/files.py",),
             ("tests/unit/test_lock.py", "tests/unit/test_lock_protocol.py",
              "tests/unit/test_lock_survivors.py")),
    "executor": (("glancesync/executor/*",),
                 ("tests/unit/executor", "tests/unit/test_executor_faults.py",
                  "tests/unit/test_serverside.py", "tests/unit/test_engine_local.py")),
    # Not test_engine_local.py: it takes about 12 s a run (local regions, a
    # whole sync) against 1 s for the plan's own tests, which were made to
    # reach the few plan lines only it reached (issue 27, branch mut-plan).
    "plan": (("glancesync/plan/*",),
             ("tests/unit/plan", "tests/unit/test_plan.py")),
    "integrity": (("glancesync/integrity.py",),
                  ("tests/unit/test_transfer.py", "tests/unit/executor",
                   # they read files through open_regular_file and FileData
                   "tests/unit/test_hostile_paths.py", "tests/unit/test_glance_adapter.py",
                   "tests/unit/test_localstore.py", "tests/unit/test_integrity_survivors.py")),
    "transfer": (("glancesync/transfer.py",),
                 ("tests/unit/test_transfer.py", "tests/unit/test_readback.py",
                  # they use the cache and its converted copies directly
                  "tests/unit/test_convert.py", "tests/unit/test_hostile_images.py",
                  "tests/unit/test_transfer_survivors.py")),
    "selection": (("glancesync/selection.py",),
                  ("tests/unit/test_selection.py", "tests/unit/test_selection_survivors.py",
                   "tests/unit/test_plan.py")),
    "localstore": (("glancesync/backends/local/*",),
                   ("tests/unit/test_localstore.py", "tests/unit/test_local_adapter.py",
                    # they call the store (hostile ids, read-only) and LocalTarget directly
                    "tests/unit/test_hostile_paths.py", "tests/unit/test_readonly_region.py",
                    "tests/unit/test_keystone.py", "tests/unit/test_local_target.py",
                    "tests/unit/test_contract.py", "tests/unit/test_localstore_survivors.py",
                    "tests/unit/test_local_adapter_survivors.py")),
}

#: Tests left out of a module's runs: they read the module's source text, which
#: holds every mutant at once in mutmut's copy.
DESELECTED: dict[str, tuple[str, ...]] = {
    "executor": ("tests/unit/executor/test_actions.py::"
                 "test_every_verb_the_executor_uses_is_declared",),
}

_COPIED = ("glancesync", "tests", "docs", "conf", "pytest.ini")
_STATUS = re.compile(r"^\s*(\S+): (.+)$")


def _setup_cfg(files: tuple[str, ...], tests: tuple[str, ...],
               deselected: tuple[str, ...] = ()) -> str:
    extra = "".join(f"\n    --deselect\n    {test}" for test in deselected)
    lines = ["[mutmut]", "source_paths=glancesync/", "only_mutate=" + "\n    ".join(files),
             "pytest_add_cli_args_test_selection=" + "\n    ".join(tests),
             "pytest_add_cli_args=-p\n    no:cacheprovider\n    -q" + extra,
             "also_copy=docs/\n    conf/\n    pytest.ini"]
    return "\n".join(lines) + "\n"


def prepare(module: str, tree: Path, work: Path, only: tuple[str, ...] = ()) -> Path:
    """A fresh scratch copy of ``tree`` for ``module``, with its mutmut settings
    (``only``: these of its files, instead of all)."""
    folder = work / module
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    for name in _COPIED:
        source = tree / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, folder / name)
    files, tests = MODULES[module]
    files = only or files
    present = tuple(test for test in tests if (folder / test).exists())
    (folder / "setup.cfg").write_text(_setup_cfg(files, present, DESELECTED.get(module, ())))
    return folder


class MutationError(Exception):
    """mutmut could not test the mutants (the tests fail without any mutant)."""


def run(module: str, folder: Path, children: int) -> dict[str, str]:
    """Run mutmut in ``folder``; every mutant's name -> its status.

    :raises MutationError: the tests did not pass on the unmutated code.
    """
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("OS_", "GLANCESYNC_"))}
    with open(folder / "mutmut.log", "w") as log:
        subprocess.run([str(MUTMUT), "run", "--max-children", str(children)], cwd=folder,
                       stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
    if "failed to collect stats" in (folder / "mutmut.log").read_text(errors="replace"):
        raise MutationError(f"{module}: the tests fail on the code as it is; see"
                            f" {folder / 'mutmut.log'}")
    listing = subprocess.run([str(MUTMUT), "results", "--all", "true"], cwd=folder,
                             capture_output=True, text=True, env=env, check=False).stdout
    return {match[1]: match[2] for match in map(_STATUS.match, listing.splitlines()) if match}


def summary(statuses: dict[str, str]) -> dict[str, float]:
    """Counts and the kill rate (killed and timed out over all mutants), in %."""
    killed = sum(status in ("killed", "timeout") for status in statuses.values())
    total = len(statuses)
    return {"mutants": total, "killed": killed, "survived": total - killed,
            "kill_rate": round(100.0 * killed / total, 1) if total else 0.0}


def show(folder: Path, name: str) -> str:
    return subprocess.run([str(MUTMUT), "show", name], cwd=folder, capture_output=True,
                          text=True, check=False).stdout


def report(results: dict[str, dict[str, str]], work: Path, diffs: bool) -> str:
    """The Markdown report: a table per module, then the survivors."""
    lines = ["| module | mutants | killed | survived | kill rate |",
             "| --- | --- | --- | --- | --- |"]
    for module, statuses in results.items():
        s = summary(statuses)
        lines.append(f"| {module} | {s['mutants']} | {s['killed']} | {s['survived']} |"
                     f" {s['kill_rate']} % |")
    for module, statuses in results.items():
        survivors = sorted(name for name, status in statuses.items()
                           if status not in ("killed", "timeout"))
        lines += ["", f"## {module}: {len(survivors)} survivors", ""]
        for name in survivors:
            lines.append(f"- `{name}` ({statuses[name]})")
            if diffs:
                lines += ["", "```diff", show(work / module, name).strip(), "```", ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__
                                     .split("\n\n")[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help=f"modules to mutate (default: all): {', '.join(MODULES)}")
    parser.add_argument("--tree", type=Path, default=ROOT,
                        help="the checkout to mutate (default: this one)")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "mutation",
                        help="scratch folder (default: build/mutation)")
    parser.add_argument("--children", type=int, default=2,
                        help="mutants tested at once (default: 2)")
    parser.add_argument("--diffs", action="store_true", help="the diff of every survivor")
    parser.add_argument("--only", nargs="+", default=(), metavar="FILE",
                        help="mutate only these files of the module (one module)")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        print(f"unknown module {', '.join(unknown)}; the modules are {', '.join(MODULES)}",
              file=sys.stderr)
        return 2
    if args.only and len(args.modules) != 1:
        print("--only needs exactly one module", file=sys.stderr)
        return 2
    if not MUTMUT.exists():
        print(f"mutmut is not installed: {Path(sys.executable).parent / 'pip'} install -r"
              " mutation-requirements.txt (or: make mutation)", file=sys.stderr)
        return 2
    results: dict[str, dict[str, str]] = {}
    status = 0
    for module in args.modules or list(MODULES):
        folder = prepare(module, args.tree.resolve(), args.work, tuple(args.only))
        try:
            results[module] = run(module, folder, args.children)
        except MutationError as error:
            print(error, file=sys.stderr, flush=True)
            status = 1
            continue
        print(f"{module}: {json.dumps(summary(results[module]))}", flush=True)
    text = report(results, args.work, args.diffs)
    (args.work / "report.md").write_text(text)
    (args.work / "report.json").write_text(json.dumps(
        {module: {"summary": summary(s), "statuses": s} for module, s in results.items()},
        indent=1, sort_keys=True))
    print(text.split("\n\n")[0])
    return status


if __name__ == "__main__":
    sys.exit(main())
