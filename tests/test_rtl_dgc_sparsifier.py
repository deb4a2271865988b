"""Amaranth-simulator tests of the DGC sparsifier against ``dnnhw.golden.dgc_fixed``: steps
on heavy-tailed random gradients with and without clipping at several widths, every
``o`` beat, every ``status`` beat and the u / v memory after every step; random stalls on
every stream; II = 1 and the step's cycle count without stalls; the malformed inputs (the
sticky error, and the core still answering); the clear pass after reset; the parameter
checks; what Yosys maps the memories to on the UP5K."""

import random
from functools import partial

import numpy as np
import pytest
from amaranth.hdl import Fragment, Module, ResetInserter, Signal
from amaranth.hdl._mem import MemoryInstance
from amaranth.sim import Simulator

from dnnhw.golden import dgc_fixed as golden
from dnnhw.rtl.dgc_sparsifier import ERRORS, DgcSparsifier
from dnnhw.spec.dgc import ADAPT_ROUNDS, MAX_CLIP_SHIFT, STRIDE_BITS, key_count

from yosys_cells import yosys_cells


# --- stimulus ---------------------------------------------------------------------------

def _gradient(rng, n, grad_width):
    """Heavy-tailed integers: a normal times a random power of two, in the G-bit range."""
    half = 1 << (grad_width - 1)
    scale = 2.0 ** rng.integers(0, grad_width - 1, size=n)
    g = np.rint(rng.standard_normal(n) * scale).astype(np.int64)
    return np.clip(g, -half, half - 1)


def _plan(rng, n, grad_width, *, clip):
    """A legal command for n elements from the host's rule, with random parameters; with
    ``clip`` a limit that gives a random shift (the limit field holds any value)."""
    limit = None
    if clip:
        limit = int(rng.integers(0, 1 << (2 * grad_width - 2))) >> int(rng.integers(0, 24))
    return golden.plan_command(
        n, momentum=float(rng.choice([0.0, 0.5, 0.9, rng.random() * 0.999])),
        keep=float(rng.choice([0.5, 0.1, 0.01, rng.uniform(0.001, 0.9)])),
        sample_ratio=float(rng.choice([1.0, 0.25, 0.1, rng.uniform(0.01, 1.0)])),
        clip_limit=limit, rng=rng)


def _command_fields(command):
    return {name: int(getattr(command, name)) for name in (
        "length", "momentum", "clip", "clip_limit", "sample_start", "sample_stride",
        "target", "sample_target")}


def _frame(values, last_at=None):
    """Beats of one frame: ``last`` on beat ``last_at`` (default: the final beat)."""
    last_at = len(values) - 1 if last_at is None else last_at
    return [{"value": int(x), "last": int(k == last_at)} for k, x in enumerate(values)]


class Step:
    """One step's stimulus: the command (a ``golden.Command`` or a dict of raw fields) and
    the beats on ``i`` (every frame of the step)."""

    def __init__(self, command, beats):
        self.command = command
        self.beats = beats

    @classmethod
    def good(cls, command, gradient):
        frames = 2 if command.clip else 1
        return cls(command, _frame(gradient) * frames)

    @property
    def fields(self):
        if isinstance(self.command, golden.Command):
            return _command_fields(self.command)
        return dict(self.command)


def _expected_beats(indices, values):
    if len(indices) == 0:
        return [(0, 0, 1)]
    return [(int(i), int(v), int(k == len(indices) - 1))
            for k, (i, v) in enumerate(zip(indices, values))]


# --- the simulation ---------------------------------------------------------------------

def _memory(fragment, depth, width):
    """The MemoryData of the memory of ``depth`` words of ``width`` bits in ``fragment``."""
    found = []

    def walk(frag):
        for sub, _, _ in frag.subfragments:
            if isinstance(sub, MemoryInstance) and sub._data.depth == depth \
                    and sub._data.shape.width == width:
                found.append(sub._data)
            walk(sub)

    walk(fragment)
    assert len(found) == 1
    return found[0]


def _signed(x, bits):
    x &= (1 << bits) - 1
    return x - (1 << bits) if x >> (bits - 1) else x


def _decode_state(words, state_width):
    """(u, v) arrays from the state memory's words (u0, v0, u1, v1 from bit 0 up)."""
    u, v = [], []
    for w in words:
        for half in range(2):
            u.append(_signed(w >> (2 * half * state_width), state_width))
            v.append(_signed(w >> ((2 * half + 1) * state_width), state_width))
    return np.array(u, dtype=np.int64), np.array(v, dtype=np.int64)


class Run:
    """What a simulation saw: the transfers on each stream with their cycles, the state
    after each status beat, the error outputs, ``cmd.ready`` per cycle."""

    def __init__(self):
        self.cmd, self.i, self.o, self.status, self.states = [], [], [], [], []
        self.error_code = None
        self.cmd_ready = []

    def o_steps(self):
        """``o`` beats, a list a step (split after each ``last``)."""
        steps, current = [], []
        for _, beat in self.o:
            current.append(beat)
            if beat[2]:
                steps.append(current)
                current = []
        assert not current, "o beats after the last step's last"
        return steps


def _simulate(dut, steps, *, statuses, seed=0, cmd_idle=0.0, i_idle=0.0, o_stall=0.0,
              status_stall=0.0, check_rules=True, reset_at=None, quiet=40,
              max_cycles=200000):
    """Run ``steps`` through ``dut`` until ``statuses`` status beats have come and the
    streams have been quiet for ``quiet`` cycles; the sources wait a cycle with
    probability ``*_idle`` before each beat, the sinks stall with ``*_stall``.

    ``reset_at`` (a cycle) pulses a reset (ResetInserter) there and drops the run's
    pending stimulus (the sources start over on the steps after it: ``steps`` is then a
    pair, before and after). Checks the stream rules on ``o`` and ``status`` every cycle
    (``valid`` and the payload hold until the transfer; ``valid`` does not depend on
    ``ready``) and that the run ends before ``max_cycles``."""
    rst = Signal()
    top = Module()
    top.submodules.dut = ResetInserter(rst)(dut)
    fragment = Fragment.get(top, None)
    state = _memory(fragment, dut.capacity // 2, dut.word_width)
    rng = random.Random(seed)
    rngs = {name: random.Random(rng.random()) for name in ("cmd", "i", "o", "status", "x")}
    run = Run()
    before, after = (steps, []) if reset_at is None else steps
    epoch = [0]                          # bumped by the reset: the sources restart
    done = [False]

    def beats_of(which):
        chosen = before if epoch[0] == 0 else after
        if which == "cmd":
            return [s.fields for s in chosen]
        return [b for s in chosen for b in s.beats]

    async def source(ctx, name, stream, idle, log):
        cycle, k, offering, my_epoch = 0, 0, False, 0
        bits = len(stream.payload.as_value())
        while True:
            if my_epoch != epoch[0]:
                my_epoch, k, offering = epoch[0], 0, False
            items = beats_of(name)
            if not offering and k < len(items) and rngs[name].random() >= idle:
                offering = True
                ctx.set(stream.payload, items[k])
            if not offering:             # the core must not look at it
                ctx.set(stream.payload.as_value(), rngs["x"].getrandbits(bits))
            ctx.set(stream.valid, offering)
            _, _, ready = await ctx.tick().sample(stream.ready)
            if offering and ready and my_epoch == epoch[0]:
                log.append((cycle, items[k]))
                k += 1
                offering = False
            cycle += 1

    async def sink(ctx, stream, stall, log, convert, snapshot):
        cycle, held = 0, None
        while True:
            ready = rngs["o" if snapshot is None else "status"].random() >= stall
            ctx.set(stream.ready, ready)
            if check_rules:
                await ctx.delay(1e-9)
                seen = (ctx.get(stream.valid), convert(ctx.get(stream.payload)))
                ctx.set(stream.ready, not ready)
                await ctx.delay(1e-9)
                assert (ctx.get(stream.valid), convert(ctx.get(stream.payload))) == seen, \
                    "valid or payload depends on ready"
                ctx.set(stream.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
            payload = convert(payload)
            if check_rules and held is not None:
                assert valid and payload == held, "a beat changed or left before its transfer"
            held = None
            if valid and ready:
                log.append((cycle, payload))
                if snapshot is not None:
                    snapshot(ctx)
            elif valid:
                held = payload
            cycle += 1

    def snapshot(ctx):
        run.states.append(_decode_state([ctx.get(state[j]) for j in range(state.depth)],
                                        dut.state_width))

    async def bench(ctx):
        silent = 0
        for cycle in range(max_cycles):
            if reset_at is not None and cycle == reset_at:
                ctx.set(rst, 1)
                epoch[0] = 1
            elif cycle == (reset_at or 0) + 1:
                ctx.set(rst, 0)
            _, _, ready = await ctx.tick().sample(dut.cmd.ready)
            run.cmd_ready.append(ready)
            sent = len([c for c in run.cmd if c[0] > (reset_at or -1)])
            pending = sent < len(after if reset_at is not None else before)
            busy = ctx.get(dut.o.valid) or ctx.get(dut.status.valid)
            if len(run.status) >= statuses and not pending and not busy:
                silent += 1
                if silent >= quiet:
                    break
            else:
                silent = 0
        else:
            raise AssertionError(f"still running after {max_cycles} cycles: "
                                 f"{len(run.cmd)} commands, {len(run.i)} beats in, "
                                 f"{len(run.o)} out, {len(run.status)} statuses")
        run.error_code = ERRORS[ctx.get(dut.error_code)]
        assert ctx.get(dut.error) == (run.error_code != "none")
        done[0] = True

    o_convert = lambda p: (int(p.index), int(p.value), int(p.last))
    s_convert = lambda p: golden.Status(int(p.selected), int(p.threshold), int(p.rounds),
                                        int(p.shift))
    sim = Simulator(fragment)
    sim.add_clock(1e-6)
    sim.add_testbench(partial(source, name="cmd", stream=dut.cmd, idle=cmd_idle,
                              log=run.cmd), background=True)
    sim.add_testbench(partial(source, name="i", stream=dut.i, idle=i_idle, log=run.i),
                      background=True)
    sim.add_testbench(partial(sink, stream=dut.o, stall=o_stall, log=run.o,
                              convert=o_convert, snapshot=None), background=True)
    sim.add_testbench(partial(sink, stream=dut.status, stall=status_stall, log=run.status,
                              convert=s_convert, snapshot=snapshot), background=True)
    sim.add_testbench(bench)
    sim.run()
    assert done[0]
    return run


def _random_steps(rng, count, dut, *, clip):
    """``count`` good steps of random lengths (a few at full capacity), with the golden's
    outputs and state after each."""
    model = golden.SparsifierState(capacity=dut.capacity, grad_width=dut.grad_width,
                                   state_width=dut.state_width)
    steps, expected = [], []
    for k in range(count):
        n = dut.capacity if k % 3 == 1 else int(rng.integers(1, dut.capacity + 1))
        g = _gradient(rng, n, dut.grad_width)
        command = _plan(rng, n, dut.grad_width, clip=clip if clip != "mixed" else k % 2 == 0)
        indices, values, status = model.step(command, g)
        steps.append(Step.good(command, g))
        expected.append((_expected_beats(indices, values), status, model.u.copy(),
                         model.v.copy()))
    return steps, expected


def _check(run, expected):
    outputs = run.o_steps()
    assert len(outputs) == len(expected) == len(run.status) == len(run.states)
    for k, (beats, status, u, v) in enumerate(expected):
        assert outputs[k] == beats, f"step {k}: o"
        assert run.status[k][1] == status, f"step {k}: status"
        assert np.array_equal(run.states[k][0], u), f"step {k}: u"
        assert np.array_equal(run.states[k][1], v), f"step {k}: v"


# --- steps against the golden -------------------------------------------------------------

@pytest.mark.parametrize("capacity, grad_width, state_width, clip", [
    (16, 8, 12, False),
    (64, 12, 16, True),
    (32, 16, 12, "mixed"),
    (128, 16, 24, "mixed"),
    (64, 10, 32, True),
])
def test_steps_match_golden_without_stalls(capacity, grad_width, state_width, clip):
    dut = DgcSparsifier(capacity=capacity, grad_width=grad_width, state_width=state_width)
    rng = np.random.default_rng(capacity * 1000 + grad_width * 40 + state_width)
    steps, expected = _random_steps(rng, 6, dut, clip=clip)
    run = _simulate(dut, steps, statuses=len(steps), check_rules=False)
    _check(run, expected)
    assert run.error_code == "none"


@pytest.mark.parametrize("capacity, grad_width, state_width, seed", [
    (16, 8, 16, 1),
    (64, 16, 16, 2),
    (32, 12, 20, 3),
])
def test_steps_match_golden_under_random_stalls(capacity, grad_width, state_width, seed):
    dut = DgcSparsifier(capacity=capacity, grad_width=grad_width, state_width=state_width)
    rng = np.random.default_rng(seed)
    steps, expected = _random_steps(rng, 5, dut, clip="mixed")
    run = _simulate(dut, steps, statuses=len(steps), seed=seed, cmd_idle=0.5, i_idle=0.4,
                    o_stall=0.5, status_stall=0.6)
    _check(run, expected)
    assert run.error_code == "none"


def test_heavy_backpressure_and_dense_selection():
    # keep near 1: almost every element is sent, o stalls most of the time.
    dut = DgcSparsifier(capacity=32, grad_width=8, state_width=12)
    rng = np.random.default_rng(5)
    model = golden.SparsifierState(capacity=32, grad_width=8, state_width=12)
    steps, expected = [], []
    for _ in range(3):
        g = _gradient(rng, 32, 8)
        command = golden.plan_command(32, momentum=0.5, keep=0.95, sample_ratio=1.0,
                                      rng=rng)
        indices, values, status = model.step(command, g)
        steps.append(Step.good(command, g))
        expected.append((_expected_beats(indices, values), status, model.u.copy(),
                         model.v.copy()))
    run = _simulate(dut, steps, statuses=3, seed=9, o_stall=0.8, i_idle=0.2)
    # _check asserts every o and status beat and the u/v state against the golden.
    _check(run, expected)


def test_equal_keys_back_to_back_and_nothing_selected():
    """A constant gradient gives every element the same key (the histogram's forwarding
    on every element); a zero gradient on a zero state selects nothing (one (0, 0, last)
    beat)."""
    dut = DgcSparsifier(capacity=16, grad_width=8, state_width=12)
    model = golden.SparsifierState(capacity=16, grad_width=8, state_width=12)
    rng = np.random.default_rng(0)
    steps, expected = [], []
    for g, keep in ((np.zeros(16, dtype=np.int64), 0.5), (np.full(16, 37), 0.3),
                    (np.full(13, -5), 0.9), (np.zeros(16, dtype=np.int64), 0.2)):
        command = golden.plan_command(len(g), momentum=0.75, keep=keep, sample_ratio=0.5,
                                      rng=rng)
        indices, values, status = model.step(command, g)
        steps.append(Step.good(command, g))
        expected.append((_expected_beats(indices, values), status, model.u.copy(),
                         model.v.copy()))
    assert expected[0][0] == [(0, 0, 1)] and expected[0][1].selected == 0
    run = _simulate(dut, steps, statuses=len(steps))
    _check(run, expected)


def test_rounds_move_both_ways_and_stop_at_every_limit():
    """Targets far from the sampled start: the feedback moves up and down, runs out of
    rounds, stops at the top key and at key 1, as the golden does."""
    dut = DgcSparsifier(capacity=64, grad_width=16, state_width=16)
    model = _fresh(dut)
    rng = np.random.default_rng(11)
    steps, expected = [], []
    small = np.where(rng.random(64) < 0.5, 0, rng.integers(-3, 4, size=64))
    # the sample (1, 5, 9, ...) at 2**13, the rest at the top key: up from key 53 to 60
    top = np.where(np.arange(64) % 4 == 1, 1 << 13, (1 << 15) - 1)
    # small values, sample target 1, target n: down from the sample's top key to key 1
    cases = [(64, 1, small), (1, 1, top), (1, 1, None), (64, 1, None), (1, 16, None),
             (40, 16, None), (3, 2, None)]
    for target, sample_target, g in cases:
        g = _gradient(rng, 64, 16) if g is None else g
        command = golden.Command(length=64, momentum=0, clip=0, clip_limit=0,
                                 sample_start=1, sample_stride=4, target=target,
                                 sample_target=sample_target)
        indices, values, status = model.step(command, g)
        steps.append(Step.good(command, g))
        expected.append((_expected_beats(indices, values), status, model.u.copy(),
                         model.v.copy()))
    statuses = [e[1] for e in expected]
    assert ADAPT_ROUNDS in {st.rounds for st in statuses}
    assert statuses[0].threshold == 1 and statuses[0].rounds > 0
    assert statuses[1].threshold == dut.key_count - 1 and statuses[1].rounds > 0
    run = _simulate(dut, steps, statuses=len(steps))
    _check(run, expected)


def _magnitude(key, state_width):
    """The smallest magnitude with histogram key ``key`` (by the golden's key)."""
    magnitudes = np.arange(1 << (state_width - 1))
    return int(magnitudes[golden.key(magnitudes, state_width) == key][0])


@pytest.mark.parametrize("case", ["down", "up"])
def test_feedback_bounds_are_strict(case):
    """Counts exactly on a bound stop the feedback: 10 c = 8 k going down, 10 c = 13 k
    going up."""
    dut = DgcSparsifier(capacity=64, grad_width=16, state_width=16)
    g = np.zeros(64, dtype=np.int64)
    if case == "down":      # b0 = 40 (c = 1), c(39) = 4 = 8 * 5 / 10: stop at 39
        groups, target, sample_target, threshold = ((40, 1), (39, 3), (30, 10)), 5, 1, 39
    else:                   # b0 = 20 (c = 35), c(21) = 13 = 13 * 10 / 10: stop at 21
        groups, target, sample_target, threshold = ((20, 22), (25, 11), (28, 2)), 10, 35, 21
    at = 0
    for key, count in groups:
        g[at:at + count] = _magnitude(key, 16) * np.where(np.arange(count) % 2, -1, 1)
        at += count
    command = golden.Command(length=64, momentum=0, clip=0, clip_limit=0, sample_start=0,
                             sample_stride=1, target=target, sample_target=sample_target)
    model = _fresh(dut)
    indices, values, status = model.step(command, g)
    assert status.threshold == threshold and status.rounds == 1
    run = _simulate(dut, [Step.good(command, g)], statuses=1)
    _check(run, [(_expected_beats(indices, values), status, model.u, model.v)])


# --- II and cycles ----------------------------------------------------------------------

@pytest.mark.parametrize("clip", [False, True])
def test_one_element_a_cycle_and_step_cycles(clip):
    dut = DgcSparsifier(capacity=64, grad_width=12, state_width=16)
    model = golden.SparsifierState(capacity=64, grad_width=12, state_width=16)
    rng = np.random.default_rng(3 + clip)
    steps, expected, lengths = [], [], (64, 37, 1, 50)
    for n in lengths:
        g = _gradient(rng, n, 12)
        command = _plan(rng, n, 12, clip=clip)
        indices, values, status = model.step(command, g)
        steps.append(Step.good(command, g))
        expected.append((_expected_beats(indices, values), status, model.u.copy(),
                         model.v.copy(), indices))
    run = _simulate(dut, steps, statuses=len(steps), check_rules=False)
    _check(run, [e[:4] for e in expected])
    cmd_cycles = [c for c, _ in run.cmd]
    i_cycles = [c for c, _ in run.i]
    o_steps, o_cycles = run.o_steps(), [c for c, _ in run.o]
    beat, out = 0, 0
    for k, n in enumerate(lengths):
        status = expected[k][1]
        # the cycles from this command to the next (the sources never wait)
        if k + 1 < len(lengths):
            assert cmd_cycles[k + 1] - cmd_cycles[k] == \
                dut.step_cycles(n, clip=clip, shift=status.shift, rounds=status.rounds)
        # norm and update frames: one beat taken every cycle
        for frame in range(1 + clip):
            taken = i_cycles[beat:beat + n]
            assert taken == list(range(taken[0], taken[0] + n)), "a frame not at II = 1"
            beat += n
        # emit: element j leaves when the next selected one (or the end, n) is reached,
        # so the beats' spacing is the selected indices' (II = 1 through the pass)
        indices = list(expected[k][4])
        cycles = o_cycles[out:out + len(o_steps[k])]
        out += len(o_steps[k])
        if len(indices) >= 1:
            marks = indices[1:] + [n]
            assert [c - cycles[0] for c in cycles] == [j - marks[0] for j in marks]
        # the emit pass starts key_count + rounds + 8 cycles after the update frame's
        # last beat and its last beat leaves 2 cycles after its final element
        assert cycles[-1] - taken[-1] == dut.key_count + status.rounds + 8 + n + 1


# --- malformed input ------------------------------------------------------------------------

def _fresh(dut):
    return golden.SparsifierState(capacity=dut.capacity, grad_width=dut.grad_width,
                                  state_width=dut.state_width)


def _good_step(model, rng, dut, n=None, clip=False):
    n = n or dut.capacity
    g = _gradient(rng, n, dut.grad_width)
    command = _plan(rng, n, dut.grad_width, clip=clip)
    indices, values, status = model.step(command, g)
    return Step.good(command, g), (_expected_beats(indices, values), status,
                                   model.u.copy(), model.v.copy())


def test_early_last_runs_the_step_on_the_elements_received():
    dut = DgcSparsifier(capacity=32, grad_width=12, state_width=16)
    model = _fresh(dut)
    rng = np.random.default_rng(21)
    first, first_expected = _good_step(model, rng, dut)
    # n = 32 announced, last on element 19: as a step of length 20 with the same fields
    g = _gradient(rng, 32, 12)
    command = golden.Command(length=32, momentum=30000, clip=0, clip_limit=0,
                             sample_start=1, sample_stride=3, target=5, sample_target=2)
    short = golden.Command(**{**_command_fields(command), "length": 20})
    indices, values, status = model.step(short, g[:20])
    early = Step(command, _frame(g[:20]))
    early_expected = (_expected_beats(indices, values), status, model.u.copy(),
                      model.v.copy())
    after, after_expected = _good_step(model, rng, dut, n=29)
    run = _simulate(dut, [first, early, after], statuses=3, seed=4, i_idle=0.3,
                    o_stall=0.3)
    _check(run, [first_expected, early_expected, after_expected])
    assert run.error_code == "length"


def test_missing_last_ends_the_frame_at_n():
    dut = DgcSparsifier(capacity=16, grad_width=8, state_width=16)
    model = _fresh(dut)
    rng = np.random.default_rng(22)
    steps, expected = [], []
    for clip in (False, True, False):
        step, exp = _good_step(model, rng, dut, n=13, clip=clip)
        steps.append(step)
        expected.append(exp)
    # no last at all on the first step's frame, nor on the second's norm frame: each ends
    # at beat 13 by the count and the next beat starts the next frame
    steps[0].beats = [dict(b, last=0) for b in steps[0].beats]
    steps[1].beats = [dict(b, last=0) if k < 13 else b for k, b in enumerate(steps[1].beats)]
    run = _simulate(dut, steps, statuses=3, seed=6, i_idle=0.2, status_stall=0.3)
    _check(run, expected)
    assert run.error_code == "length"


def test_early_last_in_the_norm_frame_sums_what_came():
    """A norm frame cut at 10 of 32 beats: the shift is the 10 beats' (golden clip_shift),
    the update frame then runs whole; the golden's step with a limit giving that shift on
    the whole gradient is the expected step, and the next step follows from it."""
    dut = DgcSparsifier(capacity=32, grad_width=16, state_width=16)
    rng = np.random.default_rng(23)
    g = _gradient(rng, 32, 16)
    sumsq = sum(int(x) ** 2 for x in g)
    limit = sumsq >> 9
    shift = golden.clip_shift(g[:10], limit)
    assert 0 < shift < golden.clip_shift(g, limit)
    fields = dict(length=32, momentum=20000, clip=1, sample_start=0, sample_stride=1,
                  target=4, sample_target=4)
    equivalent = -(-sumsq // 4 ** shift)         # the whole gradient's limit for `shift`
    assert golden.clip_shift(g, equivalent) == shift
    model = _fresh(dut)
    indices, values, status = model.step(golden.Command(clip_limit=equivalent, **fields), g)
    expected = [(_expected_beats(indices, values), status, model.u.copy(), model.v.copy())]
    cut = Step(golden.Command(clip_limit=limit, **fields), _frame(g[:10]) + _frame(g))
    after, after_expected = _good_step(model, rng, dut, clip=True)
    run = _simulate(dut, [cut, after], statuses=2, seed=1, i_idle=0.2)
    _check(run, expected + [after_expected])
    assert run.status[0][1].shift == shift
    assert run.error_code == "length"


BAD_COMMANDS = {
    "length 0": {"length": 0},
    "length above capacity": {"length": 17},
    "length field maximum": {"length": 31},
    "stride 0": {"sample_stride": 0},
    "start at stride": {"sample_start": 3, "sample_stride": 3},
    "start past length": {"sample_start": 12, "sample_stride": 40},
    "target 0": {"target": 0},
    "target above length": {"target": 13},
    "sample target 0": {"sample_target": 0},
    "sample target above the sample": {"sample_target": 5},   # sample 1, 4, 7, 10: 4
    "sample target far above": {"sample_target": 16},
}


@pytest.mark.parametrize("bad", sorted(BAD_COMMANDS))
@pytest.mark.parametrize("clip", [0, 1])
def test_bad_command_is_skipped(bad, clip):
    dut = DgcSparsifier(capacity=16, grad_width=8, state_width=12)
    base = {"length": 12, "momentum": 40000, "clip": clip, "clip_limit": 1000,
            "sample_start": 1, "sample_stride": 3, "target": 3, "sample_target": 2}
    fields = {**base, **BAD_COMMANDS[bad]}
    with pytest.raises(ValueError):      # the golden's rule rejects it too
        golden.Command(**fields).check(capacity=16, grad_width=8)
    golden.Command(**base).check(capacity=16, grad_width=8)
    model = _fresh(dut)
    rng = np.random.default_rng(len(bad) + clip)
    first, first_expected = _good_step(model, rng, dut, n=16)
    # the bad step's frames: n = length clamped to 1 .. 16, each with its last
    n = min(max(fields["length"], 1), 16)
    dropped = Step(fields, _frame(_gradient(rng, n, 8)) * (1 + clip))
    after, after_expected = _good_step(model, rng, dut, n=11, clip=bool(clip))
    run = _simulate(dut, [first, dropped, after], statuses=2, seed=clip, i_idle=0.2)
    _check(run, [first_expected, after_expected])   # nothing out for the skipped step
    assert run.error_code == "command"


def test_the_first_error_is_kept():
    dut = DgcSparsifier(capacity=16, grad_width=8, state_width=12)
    model = _fresh(dut)
    rng = np.random.default_rng(31)
    bad = Step({"length": 0, "momentum": 0, "clip": 0, "clip_limit": 0, "sample_start": 0,
                "sample_stride": 1, "target": 1, "sample_target": 1},
               _frame([1]))
    good, expected = _good_step(model, rng, dut, n=16)
    good.beats = [dict(b, last=0) for b in good.beats]    # a length error after it
    run = _simulate(dut, [bad, good], statuses=1)
    _check(run, [expected])
    assert run.error_code == "command"


# --- reset --------------------------------------------------------------------------------

def test_clear_pass_after_reset():
    """``cmd`` is not ready for clear_cycles cycles after reset; a reset in mid-step
    leaves a zero state, clean histograms and no error, and the next steps match a fresh
    golden."""
    dut = DgcSparsifier(capacity=256, grad_width=8, state_width=12)
    assert dut.clear_cycles == 128
    rng = np.random.default_rng(41)
    model = _fresh(dut)
    first, _ = _good_step(model, rng, dut, n=256)
    second, _ = _good_step(model, rng, dut, n=256)
    second.beats = [dict(b, last=0) for b in second.beats]   # an error to be cleared
    model = _fresh(dut)
    steps, expected = [], []
    for clip in (False, True):
        step, exp = _good_step(model, rng, dut, n=200, clip=clip)
        steps.append(step)
        expected.append(exp)
    # The reset comes during the second step's update pass (after the first's step, the
    # clear pass and the second's command and check).
    reset_at = dut.clear_cycles + dut.step_cycles(256) + 1 + STRIDE_BITS + 1 + 100
    run = _simulate(dut, ([first, second], steps), statuses=3, reset_at=reset_at)
    assert run.cmd_ready[:dut.clear_cycles] == [0] * dut.clear_cycles
    assert run.cmd_ready[dut.clear_cycles] == 1
    after = run.cmd_ready[reset_at + 1:]
    assert after[:dut.clear_cycles] == [0] * dut.clear_cycles and after[dut.clear_cycles]
    # one status before the reset, two after it
    assert len(run.status) == 3 and run.status[0][0] < reset_at < run.status[1][0]
    outputs = run.o_steps()[1:]
    for k, (beats, status, u, v) in enumerate(expected):
        assert outputs[k] == beats
        assert run.status[k + 1][1] == status
        assert np.array_equal(run.states[k + 1][0], u)
        assert np.array_equal(run.states[k + 1][1], v)
    assert run.error_code == "none"


# --- parameters ---------------------------------------------------------------------------

def test_parameters_and_members():
    dut = DgcSparsifier(capacity=2 ** 10, grad_width=12, state_width=20, spram=True)
    assert (dut.capacity, dut.grad_width, dut.state_width, dut.spram) == \
        (1024, 12, 20, True)
    assert dut.capacity_bits == 10
    assert dut.key_count == key_count(20) == 77
    assert dut.limit_width == 34 and dut.sum_width == 33 and dut.word_width == 80
    assert dut.clear_cycles == 512
    assert dut.step_cycles(100) == 200 + 77 + 28
    assert dut.step_cycles(100, clip=True, shift=3, rounds=7) == 200 + 77 + 28 + 7 + 105
    widths = {
        "cmd": (11, 16, 1, 34, STRIDE_BITS, STRIDE_BITS, 11, 11),
        "o": (10, 20, 1),
        "status": (11, 7, 4, 4),
    }
    for name, expected in widths.items():
        payload = getattr(dut, name).payload
        assert tuple(len(payload[f]) for f, _ in payload.shape()) == expected, name
    assert len(dut.i.payload.value) == 12 and dut.i.payload.value.shape().signed
    assert len(dut.error_code) == 2
    assert ERRORS == ("none", "command", "length")
    assert (1 << 4) - 1 >= ADAPT_ROUNDS and (1 << 4) - 1 >= MAX_CLIP_SHIFT


@pytest.mark.parametrize("kwargs, error, message", [
    ({"capacity": 48}, ValueError, r"capacity must be a power of two in 2\*\*4\.\.2\*\*20"),
    ({"capacity": 8}, ValueError, r"capacity must be a power of two"),
    ({"capacity": 2 ** 21}, ValueError, r"capacity must be a power of two"),
    ({"capacity": 0}, ValueError, r"capacity must be a power of two"),
    ({"capacity": 16.0}, TypeError, r"capacity must be an integer"),
    ({"capacity": True}, TypeError, r"capacity must be an integer"),
    ({"grad_width": 7}, ValueError, r"grad_width must be in 8\.\.16, got 7"),
    ({"grad_width": 17}, ValueError, r"grad_width must be in 8\.\.16, got 17"),
    ({"grad_width": "8"}, TypeError, r"grad_width must be an integer"),
    ({"state_width": 11}, ValueError, r"state_width must be in 12\.\.32, got 11"),
    ({"state_width": 33}, ValueError, r"state_width must be in 12\.\.32, got 33"),
    ({"state_width": None}, TypeError, r"state_width must be an integer"),
    ({"spram": 1}, TypeError, r"spram must be a bool"),
    ({"spram": "yes"}, TypeError, r"spram must be a bool"),
])
def test_parameter_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        DgcSparsifier(**kwargs)


@pytest.mark.parametrize("args, kwargs, error, message", [
    ((0,), {}, ValueError, r"length must be in 1\.\.64, got 0"),
    ((65,), {}, ValueError, r"length must be in 1\.\.64, got 65"),
    ((3,), {"clip": 1}, TypeError, r"clip must be a bool"),
    ((3,), {"clip": True, "shift": 16}, ValueError, r"shift must be in 0\.\.15"),
    ((3,), {"rounds": 11}, ValueError, r"rounds must be in 0\.\.10"),
])
def test_step_cycles_argument_errors(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        DgcSparsifier(capacity=64).step_cycles(*args, **kwargs)


# --- longer sweeps --------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("state_width", [12, 14, 17, 24, 31, 32])
@pytest.mark.parametrize("grad_width", [8, 13, 16])
def test_sweep_widths_under_stalls(grad_width, state_width):
    # _check asserts every o and status beat and the u/v state against the golden.
    dut = DgcSparsifier(capacity=128, grad_width=grad_width, state_width=state_width)
    rng = np.random.default_rng(grad_width * 100 + state_width)
    steps, expected = _random_steps(rng, 8, dut, clip="mixed")
    run = _simulate(dut, steps, statuses=len(steps), seed=state_width, cmd_idle=0.3,
                    i_idle=0.3, o_stall=0.4, status_stall=0.4)
    _check(run, expected)


@pytest.mark.slow
def test_capacity_256_many_steps():
    # _check asserts every o and status beat and the u/v state against the golden.
    dut = DgcSparsifier(capacity=256, grad_width=16, state_width=16)
    rng = np.random.default_rng(256)
    steps, expected = _random_steps(rng, 12, dut, clip="mixed")
    run = _simulate(dut, steps, statuses=len(steps), seed=7, i_idle=0.1, o_stall=0.2)
    _check(run, expected)


# --- the memories' mapping ----------------------------------------------------------------

def test_up5k_maps_the_state_to_spram_and_the_histograms_to_ebr(tmp_path):
    """2**15 elements of 16-bit u and v fill the UP5K's four SPRAMs (single port, no
    init), the histograms take two EBRs, and the core stays under half the LUTs."""
    dut = DgcSparsifier(capacity=2 ** 15, grad_width=16, state_width=16, spram=True)
    cells = yosys_cells(tmp_path, dut, "synth_ice40 -device u -dsp")
    assert cells.get("SB_SPRAM256KA") == 4
    assert cells.get("SB_RAM40_4K") == 2
    assert cells.get("SB_LUT4", 0) < 2640
