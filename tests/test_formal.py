"""The formal properties: every core's quick ones pass at its proof configurations (the
deep ones in the slow tier), and the machinery catches what it claims to catch: a broken
stream rule, a duplicated beat, an unreachable cover."""

import json
from pathlib import Path

import pytest
from amaranth.hdl import Assert, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from dnnhw.catalog import CORES
from dnnhw.cli import main
from dnnhw.formal.harness import FormalHarness
from dnnhw.formal.properties import Property, cover, output_holds, stays_within, track
from dnnhw.formal.run import _verdict as parse_verdict, check

from passthrough_core import RegisterSlice


def _cases(deep):
    """Quick properties at every proof configuration of a row, deep ones at its first
    (the slow tier's budget: a deep BMC takes minutes)."""
    cases = []
    for core in CORES:
        configs = core.proof_configs[:1] if deep else core.proof_configs
        for params in configs:
            for prop in core.properties(params):
                if prop.deep == deep:
                    label = ",".join(f"{k}={v}" for k, v in params.items()) or "defaults"
                    cases.append(pytest.param(core, params, prop.name,
                                              id=f"{core.name}[{label}]-{prop.name}"))
    return cases


def _verdict(core, params, name, tmp_path):
    prop = next(p for p in core.properties(params) if p.name == name)
    return check(lambda: core.build(params), prop, tmp_path / name)


def _explain(core, params, verdict):
    return (f"{core.name} {params}: {verdict.name} {verdict.status} at step "
            f"{verdict.step}; log {verdict.log}, trace {verdict.trace}")


@pytest.mark.parametrize("core, params, name", _cases(deep=False))
def test_quick_property(core, params, name, tmp_path):
    verdict = _verdict(core, params, name, tmp_path)
    assert verdict.passed, _explain(core, params, verdict)


@pytest.mark.slow
@pytest.mark.parametrize("core, params, name", _cases(deep=True))
def test_deep_property(core, params, name, tmp_path):
    verdict = _verdict(core, params, name, tmp_path)
    assert verdict.passed, _explain(core, params, verdict)


def test_every_core_has_properties_on_every_output_stream():
    for core in CORES:
        for params in core.proof_configs:
            names = {p.name for p in core.properties(params)}
            component = core.build(params)
            for name, member in component.signature.members.items():
                if member.is_signature and member.flow == wiring.Flow.Out \
                        and isinstance(member.signature, stream.Signature):
                    assert f"{name}-holds" in names, (core.name, name)


# --- the machinery catches what it claims to ---------------------------------------------

class DroppingSlice(RegisterSlice):
    """Withdraws a beat the consumer stalls on: breaks the stream rule."""

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid)
        with m.If(self.o.valid):
            m.d.sync += self.o.valid.eq(0)
        with m.Elif(self.i.valid):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(self.i.payload)]
        return m


class DuplicatingSlice(RegisterSlice):
    """Sends beat 3 twice: keeps the stream rule, breaks the count."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        sent = Signal(4)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += sent.eq(sent + 1)
            with m.If(sent == 3):
                m.d.comb += self.i.ready.eq(0)
                m.d.sync += self.o.valid.eq(1)
        return m


def _slice_round_trip(harness):
    i, o = harness.inputs["i"], harness.outputs["o"]
    k, seen, recorded, beats_in = track(harness, harness.transfer(i), i.payload, "beat_in")
    beats_out = harness.counter("beats_out", harness.transfer(o), width=7)
    stays_within(harness, beats_out, beats_in, "a beat out that never went in")
    with harness.m.If(harness.transfer(o) & (beats_out == k)):
        harness.m.d.comb += Assert(seen & (o.payload == recorded), "k-th beat differs")


_HOLDS = Property("o-holds", "o holds", "prove", 3, lambda h: output_holds(h, "o"))
_TRIP = Property("round-trip", "k-th out is k-th in", "bmc", 12, _slice_round_trip)


def test_a_correct_slice_passes_both(tmp_path):
    for prop in (_HOLDS, _TRIP):
        verdict = check(lambda: RegisterSlice(width=8), prop, tmp_path / prop.name)
        assert verdict.passed, verdict
        assert verdict.status == {"prove": "proved", "bmc": "holds"}[prop.kind]


def test_the_stream_rule_catches_a_withdrawn_beat(tmp_path):
    verdict = check(lambda: DroppingSlice(width=8), _HOLDS, tmp_path)
    assert verdict.status == "failed" and not verdict.passed
    assert verdict.step is not None
    assert verdict.trace.endswith("engine_0/trace.vcd") and Path(verdict.trace).is_file()


# The summary of a prove run whose base case failed, as SymbiYosys prints it when the
# induction task was killed before it wrote a trace (seen on a loaded CI machine), and
# when it was not.
_BASECASE_ONLY = """\
SBY [check] summary: engine_0 (smtbmc boolector) returned FAIL for basecase
SBY [check] summary: counterexample trace [basecase]: check/engine_0/trace.vcd
SBY [check] summary:   failed assertion top.check_24 at properties.py:81 step 2
SBY [check] DONE (FAIL, rc=2)
"""
_BOTH = _BASECASE_ONLY.replace("SBY [check] DONE", """\
SBY [check] summary: counterexample trace [induction]: check/engine_0/trace_induct.vcd
SBY [check] summary:   failed assertion top.check_24 at properties.py:81
SBY [check] DONE""")
_UNPROVED = """\
SBY [check] summary: engine_0 (smtbmc boolector) returned pass for basecase
SBY [check] summary: engine_0 (smtbmc boolector) returned FAIL for induction
SBY [check] summary: counterexample trace [induction]: check/engine_0/trace_induct.vcd
SBY [check] DONE (UNKNOWN, rc=4)
"""


@pytest.mark.parametrize("output, status, trace, step", [
    (_BASECASE_ONLY, "failed", "trace.vcd", 2),
    (_BOTH, "failed", "trace.vcd", 2),
    (_UNPROVED, "unproved", "trace_induct.vcd", None),
])
def test_the_verdict_names_the_trace_that_explains_it(output, status, trace, step):
    verdict = parse_verdict(_HOLDS, output, 1.0, Path("/d"), Path("/d/check.log"))
    assert (verdict.status, verdict.step) == (status, step)
    assert verdict.trace == f"/d/check/engine_0/{trace}"


def test_tracking_catches_a_duplicated_beat(tmp_path):
    assert check(lambda: DuplicatingSlice(width=8), _HOLDS, tmp_path / "holds").passed
    verdict = check(lambda: DuplicatingSlice(width=8), _TRIP, tmp_path / "trip")
    assert verdict.status == "failed", verdict


def test_an_unreachable_cover_fails(tmp_path):
    prop = Property("never", "o offers and does not", "cover", 5,
                    lambda h: cover(h, h.outputs["o"].valid & ~h.outputs["o"].valid, "x"))
    verdict = check(lambda: RegisterSlice(width=8), prop, tmp_path)
    assert verdict.status == "failed"


def test_a_reachable_cover_gives_its_step_and_trace(tmp_path):
    prop = Property("out", "a beat out", "cover", 5,
                    lambda h: cover(h, h.transfer(h.outputs["o"]), "out"))
    verdict = check(lambda: RegisterSlice(width=8), prop, tmp_path)
    assert verdict.status == "covered" and verdict.step == 1 and verdict.trace


def test_a_property_that_is_not_inductive_is_unproved(tmp_path):
    # True from reset (nothing comes out without going in) but not 2-inductive: a state
    # with more out than in is unreachable, and k-induction does not know it.
    def more_in(harness):
        beats_in = harness.counter("beats_in", harness.transfer(harness.inputs["i"]))
        beats_out = harness.counter("beats_out", harness.transfer(harness.outputs["o"]))
        harness.m.d.comb += Assert(beats_out <= beats_in)
    prop = Property("count", "out <= in", "prove", 2, more_in)
    verdict = check(lambda: RegisterSlice(width=8), prop, tmp_path)
    assert verdict.status == "unproved"


# --- errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "simulate"}, "Property kind must be one of prove, bmc, cover, got 'simulate'"),
    ({"depth": 0}, "Property depth must be an integer in 1..1000, got 0"),
    ({"depth": True}, "Property depth must be an integer in 1..1000, got True"),
])
def test_property_checks_its_fields(kwargs, message):
    fields = {"name": "p", "claim": "c", "kind": "bmc", "depth": 4, "add": None, **kwargs}
    with pytest.raises(ValueError, match=message):
        Property(**fields)


@pytest.mark.parametrize("name", ["i", "nope"])
def test_constant_inputs_must_be_plain_input_ports(name):
    with pytest.raises(ValueError, match=f"constant_inputs names '{name}', which is not a "
                                         f"plain input port of RegisterSlice \\(those are: "
                                         f"none\\)"):
        FormalHarness(RegisterSlice(width=8), constant_inputs=(name,))


class Configured(wiring.Component):
    """A plain input next to a stream: the harness drives it freely or holds it."""

    def __init__(self):
        super().__init__({"mode": In(2), "o": Out(stream.Signature(2))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(self.mode)]
        return m


def test_constant_inputs_hold_for_the_whole_trace(tmp_path):
    prop = Property("o-holds", "o holds", "prove", 2, lambda h: output_holds(h, "o"))
    assert check(Configured, prop, tmp_path / "free").status == "failed"
    held = Property("o-holds", "o holds", "prove", 2, lambda h: output_holds(h, "o"),
                    constant_inputs=("mode",))
    assert check(Configured, held, tmp_path / "held").status == "proved"


def test_cli_prove_prints_the_verdicts(tmp_path, capsys):
    out_json = tmp_path / "v.json"
    assert main(["prove", "zvc-decompress", "-p", "lanes=4", "-p", "width=8",
                 "--only", "error-sticky", "--build-dir", str(tmp_path),
                 "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "| error-sticky | prove | 2 | proved |" in out
    assert "1 of 1 properties passed" in out
    record, = json.loads(out_json.read_text())
    assert record["status"] == "proved" and record["name"] == "error-sticky"


@pytest.mark.parametrize("argv, message", [
    (["--only", "nope"], "core 'zvc-decompress' has no property nope; its properties are: "
                         "o-holds, frames, never-hangs, error-sticky, covers"),
    (["--solver", "yices"], "--solver must be one of boolector, z3, got 'yices'"),
    (["--jobs", "0"], "--jobs must be at least 1, got 0"),
    (["-p", "lanes=5"], "parameter 'lanes' must be one of 4, 8, 16, 32, got 5"),
])
def test_cli_prove_errors(argv, message, tmp_path, capsys):
    assert main(["prove", "zvc-decompress", "--build-dir", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_constant_cover_of_zero_is_not_silently_dropped(tmp_path):
    prop = Property("zero", "never", "cover", 3,
                    lambda h: cover(h, Const(0), "constant zero"))
    assert check(lambda: RegisterSlice(width=8), prop, tmp_path).status == "failed"


def test_the_fft_flush_bound_is_tight(tmp_path, monkeypatch):
    # One cycle less than latency - n + 1 and frames-leave finds the trace that needs it:
    # the bound it proves is the core's, not a slack one that any design would meet.
    import dnnhw.formal.fft as fft_proofs
    from dnnhw.rtl.fft import StreamingFFT

    def fft():
        return StreamingFFT(n=8, width=8, twiddle_width=8)

    exact = fft_proofs.flush_cycles(fft())
    assert exact == fft().latency - 8 + 1 == 13
    monkeypatch.setattr(fft_proofs, "flush_cycles", lambda core: exact - 1)
    prop = next(p for p in fft_proofs.fft_properties(fft()) if p.name == "frames-leave")
    verdict = check(fft, prop, tmp_path)
    assert verdict.status == "failed" and verdict.trace is not None
