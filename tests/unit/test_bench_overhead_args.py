"""The overhead benchmark refuses a run it could not judge, before it starts anything."""

from __future__ import annotations

import pytest

from bench import overhead


@pytest.mark.parametrize("argv", [["--rounds", "0"], ["--count", "0"], ["--rounds", "-1"]])
def test_overhead_refuses_no_rounds_or_no_jobs_naming_the_option(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a run with no rounds (no median to judge) or no jobs
    # When it is asked for
    with pytest.raises(SystemExit) as exited:
        overhead.main(argv)
    # Then it exits 2 with a message naming both options and the value given
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--rounds and --count must be at least 1" in err
    assert f"{argv[0]} {argv[1]}" in err
