"""The scoreboard and its comparators (dnnhw.sim.scoreboard), without a simulator: the
exact comparator, the tolerance / SQNR comparator against figures computed by hand, and the
one mismatch report (index, where the item came from, got and expected)."""

import math

import pytest

from dnnhw.sim.scoreboard import Exact, MismatchError, Scoreboard, Tolerance


def test_exact_scoreboard_passes_and_counts():
    board = Scoreboard([1, 2, 3], label="run")
    for item in (1, 2, 3):
        assert board.check(item, cycle=10)
    board.finish()
    assert board.done and board.received == 3


def test_first_wrong_item_fails_with_one_report():
    board = Scoreboard([0x10, 0x20, 0x30], label="stall run", noun="word",
                       render=lambda v: f"{v:#x}",
                       context=lambda k, got: (f"frame 0, input {k}", [f"  note     {k}"]))
    board.check(0x10, cycle=4)
    with pytest.raises(MismatchError) as info:
        board.check(0x21, cycle=5)
    text = str(info.value)
    assert text.splitlines() == ["stall run, cycle 5: output word 1 differs (frame 0, input 1)",
                                 "  got      0x21", "  expected 0x20", "  note     1"]


def test_extra_and_missing_items():
    board = Scoreboard([1], label="r")
    board.check(1)
    with pytest.raises(MismatchError, match=r"r, cycle 9: extra output beat 1 after the "
                                            r"expected 1: 7"):
        board.check(7, cycle=9)
    short = Scoreboard([1, 2], label="r")
    short.check(1)
    with pytest.raises(MismatchError, match="r: 1 output beats, expected 2"):
        short.finish()


def test_collecting_mode_keeps_going_and_finish_still_fails():
    board = Scoreboard([1, 2, 3], label="r", fail_fast=False)
    assert board.check(1) and not board.check(5) and board.check(3)
    assert [k for k, _ in board.mismatches] == [1]
    with pytest.raises(MismatchError, match="output beat 1 differs"):
        board.finish()


def test_exact_compares_structures():
    assert Exact().compare({"data": [1, 2], "last": 1}, {"data": [1, 2], "last": 1}) is None
    assert Exact().compare([1, 2], [1, 3]) == "differs"


def test_tolerance_elementwise():
    tol = Tolerance(atol=0.5, rtol=0.01)
    assert tol.compare([1.0, 100.0], [1.4, 101.0]) is None      # 0.4 <= 0.5; 1.0 <= 1.51
    reason = tol.compare([1.0, 100.0], [1.0, 102.0])             # 2.0 > 0.5 + 1.02
    assert reason.startswith("element 1: 100 vs 102")
    assert tol.compare([1.0], [1.0, 2.0]) == "1 numbers, expected 2"
    assert Tolerance(atol=0).compare(3, 3) is None


def test_tolerance_sqnr_by_hand():
    # Expected (3, 4) and (0, 5), got (3, 5) and (0, 5): signal 9 + 16 + 25 = 50,
    # noise 1, SQNR = 10 log10(50) = 16.99 dB.
    tol = Tolerance(atol=1.0, min_sqnr_db=20)
    board = Scoreboard([(3, 4), (0, 5)], comparator=tol, label="fft")
    board.check((3, 5))
    board.check((0, 5))
    assert tol.sqnr_db == pytest.approx(10 * math.log10(50))
    with pytest.raises(MismatchError, match=r"fft: SQNR 16.99 dB over 2 items is below 20 dB"):
        board.finish()
    loose = Tolerance(atol=1.0, min_sqnr_db=15)
    for got, exp in (((3, 5), (3, 4)), ((0, 5), (0, 5))):
        assert loose.compare(got, exp) is None
    assert loose.finish() is None
    summary = loose.summary()
    assert summary["max_abs_error"] == 1.0 and summary["items"] == 2
    assert summary["sqnr_db"] == pytest.approx(16.9897, abs=1e-3)


def test_tolerance_decodes_items():
    # Items as a core would give them: signed 8-bit fixed point with 4 fraction bits in a
    # dict field; complex reference values count as two numbers.
    def decode(item):
        return [((v ^ 0x80) - 0x80) / 16 for v in item["re_im"]]
    tol = Tolerance(atol=1 / 16, decode=decode)
    got = {"re_im": [0x18, 0xF0]}                  # 1.5, -1.0
    assert tol.compare(got, {"re_im": [0x18, 0xF1]}) is None
    ref = Tolerance(atol=0.1)
    assert ref.compare([1.5, -1.0], [complex(1.5, -1.05)]) is None
    assert ref.compare([1.5, -1.0], [complex(1.5, -1.2)]).startswith("element 1")


def test_bad_tolerances_name_the_argument():
    with pytest.raises(ValueError, match="atol must be a number >= 0"):
        Tolerance(atol=-1)
    with pytest.raises(ValueError, match="rtol must be a number >= 0"):
        Tolerance(rtol="x")
