"""The board top (dnnhw.boards.top), the board build and `dnnhw board`."""

import json
import os
import re

import pytest
from amaranth.hdl import Value

from dnnhw.boards import BOARDS, BoardBuildError, BoardTop, build
from dnnhw.catalog import ParameterError
from dnnhw.cli import main
from dnnhw.host.protocol import parse_ident


ZVC = ("zvc-compress", {"lanes": 8, "width": 8})
FFT = ("fft", {"n": 16})             # n = 16: the FFT that fits the UP5K's 8 DSPs
# The Diffy tile that fits the iCEBreaker beside the bridge and its two input queues (two
# windows fill 96 % of the logic cells and fail to place).
DIFFY = ("diffy-tile", {"lanes": 4, "filters": 2, "windows": 1, "width": 8,
                        "max_products": 576})

# The UART pins of each board (amaranth-boards), as its constraint file spells them.
UART_PINS = {
    "icebreaker": ("set_io uart_0__rx__io 6", "set_io uart_0__tx__io 9"),
    "ulx3s": ('LOCATE COMP "uart_0__rx__io" SITE "M1"',
              'LOCATE COMP "uart_0__tx__io" SITE "L4"'),
}
CONSTRAINTS = {"icebreaker": "top.pcf", "ulx3s": "top.lpf"}


@pytest.fixture
def builtin_yosys(monkeypatch):
    # The build plan's debug Verilog needs a Yosys; amaranth's own is the one here.
    monkeypatch.setenv("AMARANTH_USE_YOSYS", "builtin")


@pytest.mark.parametrize("board", sorted(BOARDS))
@pytest.mark.parametrize("core, params", [ZVC, FFT], ids=["zvc-compress", "fft"])
def test_top_elaborates_on_the_uart_pins(builtin_yosys, core, params, board):
    top = BoardTop(core, params, board=board, git="abc1234")
    plan = top.platform().prepare(top, name="top")
    constraints = plan.files[CONSTRAINTS[board]]
    for line in UART_PINS[board]:
        assert line in constraints
    leds = set(re.findall(r"led_(\d+)__io", constraints))
    assert leds == {str(i) for i in range(len(top.board.leds))}


def test_elaborating_for_the_wrong_board_is_refused():
    top = BoardTop(*ZVC, board="icebreaker", git="abc1234")
    with pytest.raises(TypeError, match="ICEBreakerPlatform"):
        top.elaborate(BoardTop(*ZVC, board="ulx3s", git="abc1234").platform())


@pytest.mark.parametrize("board, clock, divisor", [("icebreaker", 12_000_000, 104),
                                                   ("ulx3s", 25_000_000, 217)])
def test_ident_names_the_build(board, clock, divisor):
    top = BoardTop(*ZVC, board=board, baud=115200, max_payload=128, git="abc1234")
    assert top.divisor == divisor
    assert top.bridge.divisor == divisor
    assert top.ident == (f"dnnhw=1;core=zvc-compress;module=dnnhw_zvc_compress_lanes8_width8;"
                         f"git=abc1234;clock={clock};baud=115200;max_payload=128")
    assert top.bridge.ident == top.ident.encode()
    ident = parse_ident(top.ident.encode())
    assert ident["module"] == top.sidecar["module"] == top.module


def test_ident_takes_the_git_hash_of_the_checkout():
    git = BoardTop(*ZVC, board="icebreaker").git
    assert git == "unknown" or re.fullmatch(r"[0-9a-f]{4,40}", git)


def test_streams_follow_the_sidecar():
    zvc = BoardTop(*ZVC, board="icebreaker", git="abc1234")
    assert (zvc.sinks, zvc.sources) == (("i",), ("o",))
    # 8 lanes x 8 bits and a last flag in; the same, a mask and its count out.
    assert zvc.bridge.sinks == (zvc.sidecar["streams"]["i"]["width"],) == (65,)
    assert zvc.bridge.sources == (zvc.sidecar["streams"]["o"]["width"],) == (69,)
    assert [len(s.payload) for s in zvc.bridge.to_core] == [
        len(Value.cast(zvc.component.i.payload))]
    assert [len(s.payload) for s in zvc.bridge.from_core] == [
        len(Value.cast(zvc.component.o.payload))]
    assert zvc.core_error_signals == ()

    fft = BoardTop(*FFT, board="icebreaker", git="abc1234")
    assert (fft.sinks, fft.sources) == (("input",), ("output",))
    assert fft.bridge.sinks == fft.bridge.sources == (32,)
    assert fft.core_error_signals == ("overflow",)


def test_unknown_board_names_the_legal_ones():
    with pytest.raises(ParameterError, match="known boards: icebreaker, ulx3s"):
        BoardTop(*ZVC, board="arty")


def test_bad_parameters_are_named():
    with pytest.raises(ParameterError, match="has no parameter 'taps'"):
        BoardTop("zvc-compress", {"taps": 3}, board="icebreaker")
    # 12 MHz / 4 Mbaud: 3 cycles a bit is 0 % off, but 5 Mbaud is 2.4 cycles, 20 % off.
    with pytest.raises(ParameterError, match="baud 5000000 is 20.0 % off"):
        BoardTop(*ZVC, board="icebreaker", baud=5_000_000, git="abc1234")
    with pytest.raises(ParameterError, match="baud 100 needs a divisor of 12000000 / 100"):
        BoardTop(*ZVC, board="icebreaker", baud=100, git="abc1234")
    with pytest.raises(ParameterError, match="max_payload must be an integer in 16..4096"):
        BoardTop(*ZVC, board="icebreaker", max_payload=8, git="abc1234")


def test_cli_refuses_an_unknown_board(capsys):
    assert main(["board", "build", "zvc-compress", "--board", "arty"]) == 2
    assert "choose from 'icebreaker', 'ulx3s'" in capsys.readouterr().err


@pytest.mark.parametrize("board, tools", [("icebreaker", ("iceprog", "openFPGALoader")),
                                          ("ulx3s", ("openFPGALoader",))])
def test_program_without_a_tool_says_what_to_install(tmp_path, monkeypatch, capsys,
                                                     board, tools):
    monkeypatch.setenv("PATH", str(tmp_path))
    bitstream = tmp_path / "top.bin"
    bitstream.write_bytes(b"\0")
    assert main(["board", "program", str(bitstream), "--board", board]) == 2
    err = capsys.readouterr().err
    for tool in tools:
        assert tool in err
    assert "apt-get install" in err


def _check_build(record, out_dir, *, board, clock_mhz):
    files = record["files"]
    assert os.path.getsize(files["bitstream"]) > 1000
    assert files["bitstream"].endswith(BOARDS[board].bitstream)
    assert json.loads((out_dir / "board.json").read_text()) == record
    assert json.loads(open(files["sidecar"]).read())["module"] == record["module"]
    used = record["utilization"]
    cells = used["logic_cells"]
    assert 0 < cells["used"] <= cells["available"]
    assert used["lut"] > 0 and used["ff"] > 0
    assert used["bram"] >= 2          # the bridge's two frame buffers at least
    timing = record["timing"]
    assert timing["board_clock_mhz"] == clock_mhz
    assert timing["margin_mhz"] == pytest.approx(timing["fmax_mhz"] - clock_mhz, abs=0.01)
    assert timing["margin_mhz"] > 0


def test_build_icebreaker_zvc(tmp_path):
    record = build(*ZVC, board="icebreaker", out_dir=tmp_path, git="abc1234")
    _check_build(record, tmp_path, board="icebreaker", clock_mhz=12)
    assert record["utilization"]["logic_cells"]["bel"] == "ICESTORM_LC"


def test_build_icebreaker_diffy(tmp_path):
    """The second core CI builds for the iCEBreaker: a Diffy tile with two input streams,
    each behind a queue of one host turn, at the board clock."""
    record = build(*DIFFY, board="icebreaker", out_dir=tmp_path, git="abc1234")
    _check_build(record, tmp_path, board="icebreaker", clock_mhz=12)
    assert record["utilization"]["bram"] >= 4      # the bridge's two, a queue each


def test_several_input_streams_get_a_queue_of_one_turn_each():
    top = BoardTop(*DIFFY, board="icebreaker", max_payload=256, git="abc1234")
    assert top.sinks == ("a", "w")
    # The widest beat (a: 4 x 8 activations, 4 x 8 previous, a raw bit and last = 66 bits)
    # is 9 bytes; a 256-byte frame holds 28 of them after the stream number.
    assert top.sidecar["streams"]["a"]["width"] == 66
    assert top.sink_queue_depth == 28
    assert BoardTop(*ZVC, board="icebreaker", git="abc1234").sink_queue_depth == 0


def test_a_core_that_does_not_fit_is_refused_with_the_numbers(tmp_path):
    # The FFT's n = 32 needs 12 SB_MAC16s; the UP5K has 8. Refused once nextpnr has packed.
    with pytest.raises(BoardBuildError, match=r"needs ICESTORM_DSP 12 of 8 \(150 %\)") as error:
        build("fft", {"n": 32}, board="icebreaker", out_dir=tmp_path, git="abc1234")
    assert error.value.overused == {"ICESTORM_DSP": (12, 8)}
    assert not (tmp_path / "board.json").exists()


@pytest.mark.slow
def test_build_ulx3s_zvc(tmp_path, capsys):
    assert main(["board", "build", "zvc-compress", "-p", "lanes=8", "-p", "width=8",
                 "--board", "ulx3s", "-o", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    record = json.loads((tmp_path / "board.json").read_text())
    _check_build(record, tmp_path, board="ulx3s", clock_mhz=25)
    assert "TRELLIS_COMB" in printed and record["files"]["bitstream"] in printed
