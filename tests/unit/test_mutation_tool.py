"""tests/mutation.py, the mutation testing command: its parts that need no mutmut run."""
from __future__ import annotations

from pathlib import Path

from tests import mutation

ROOT = Path(__file__).resolve().parents[2]


def test_every_module_names_files_and_tests_that_exist():
    for module, (files, tests) in mutation.MODULES.items():
        for pattern in files:
            assert list(ROOT.glob(pattern)), (module, pattern)
        for test in tests:
            assert (ROOT / test).exists(), (module, test)


def test_timeouts_are_killed_and_unreached_mutants_survive():
    summary = mutation.summary({"a": "killed", "b": "timeout", "c": "survived",
                                "d": "no tests"})
    assert summary == {"mutants": 4, "killed": 2, "survived": 2, "kill_rate": 50.0}
    assert mutation.summary({})["kill_rate"] == 0.0


def test_the_settings_mutate_only_the_module_and_run_its_tests():
    text = mutation._setup_cfg(("glancesync/condition.py",), ("tests/unit/test_a.py",
                                                             "tests/unit/test_b.py"))
    assert "only_mutate=glancesync/condition.py\n" in text
    assert "pytest_add_cli_args_test_selection=tests/unit/test_a.py\n    tests/unit/test_b.py" \
        in text


def test_a_bad_module_or_option_is_exit_status_2(capsys):
    assert mutation.main(["nosuch"]) == 2
    assert "unknown module nosuch" in capsys.readouterr().err
    assert mutation.main(["--only", "x.py", "condition", "lock"]) == 2


def test_the_report_lists_the_survivors(tmp_path):
    text = mutation.report({"condition": {"m1": "killed", "m2": "survived"}}, tmp_path,
                           diffs=False)
    assert "| condition | 2 | 1 | 1 | 50.0 % |" in text
    assert "## condition: 1 survivors" in text and "- `m2` (survived)" in text
