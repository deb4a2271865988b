"""Amaranth-simulator tests of the DGC aggregator against ``dnnhw.golden.dgc_fixed``:
consecutive steps with random stalls on every stream, the forwarding cases, the malformed
streams, the cycle counts (II = 1 for the merge and the update pass), the reset clear pass
and the parameter checks."""

import random

import pytest
from amaranth.hdl import Module, ResetInserter, Signal, Value
from amaranth.sim import Simulator

from dnnhw.golden.dgc_fixed import aggregate, apply_update
from dnnhw.rtl.dgc_aggregator import ERRORS, DgcAggregator


SMALL = dict(workers=3, capacity=2 ** 5, value_width=12, weight_width=10)
MEDIUM = dict(workers=4, capacity=2 ** 6, value_width=16, weight_width=16)


# --- the bench ----------------------------------------------------------------------------

class _Source:
    def __init__(self, stream, rng):
        self.stream, self.rng = stream, rng
        self.queue, self.offering, self.cycles = [], False, []
        self.bits = len(Value.cast(stream.payload))


class Bench:
    """Drives every stream of ``dut`` cycle by cycle from one testbench.

    :meth:`add_step` queues a step's ``cmd`` beat, each worker's frame and the ``w_in``
    frame; :meth:`run` (a coroutine, for a testbench) offers them until every beat was
    taken and ``w_out`` has been quiet for a while. A source offers its next beat with
    probability ``valid`` in each cycle it holds none (then holds it until the transfer;
    meanwhile the payload is random), the sink is ready with probability ``ready``
    (seeded ``random.Random``s). ``check_rules`` checks ``w_out`` every cycle: ``valid``
    and the payload do not depend on ``ready`` and hold until the transfer. Records the
    cycle of every transfer (``cycles`` counts from the first cycle after reset).
    """

    def __init__(self, dut, *, seed=0, valid=1.0, ready=1.0, check_rules=False):
        self.dut, self.valid, self.ready, self.check_rules = dut, valid, ready, check_rules
        rng = random.Random(seed)
        self.rng = random.Random(rng.random())
        self.cmd = _Source(dut.cmd, random.Random(rng.random()))
        self.inputs = [_Source(port, random.Random(rng.random())) for port in dut.inputs]
        self.w_in = _Source(dut.w_in, random.Random(rng.random()))
        self.sources = [self.cmd, *self.inputs, self.w_in]
        self.out, self.out_cycles = [], []
        self.cycle = 0
        self._held = None

    def add_step(self, length, lr, frames, weights):
        """``frames``: per worker a list of ``(index, value, last)``; ``weights``: a list of
        ``(value, last)``."""
        self.cmd.queue.append({"length": length, "lr": lr})
        for source, frame in zip(self.inputs, frames, strict=True):
            source.queue += [{"index": i, "value": v, "last": last} for i, v, last in frame]
        self.w_in.queue += [{"value": v, "last": last} for v, last in weights]

    async def run(self, ctx, *, quiet=12, max_cycles=50000):
        dut, silent = self.dut, 0
        start = self.cycle
        while any(s.queue for s in self.sources) or silent < quiet:
            for s in self.sources:
                if not s.offering and s.queue and s.rng.random() < self.valid:
                    s.offering = True
                    ctx.set(s.stream.payload, s.queue[0])
                elif not s.offering and self.valid < 1:
                    ctx.set(Value.cast(s.stream.payload), s.rng.getrandbits(s.bits))
                ctx.set(s.stream.valid, s.offering)
            ready = self.rng.random() < self.ready
            ctx.set(dut.w_out.ready, ready)
            valid = ctx.get(dut.w_out.valid)
            beat = (ctx.get(dut.w_out.payload.value), ctx.get(dut.w_out.payload.last))
            if self.check_rules:
                ctx.set(dut.w_out.ready, not ready)
                assert ctx.get(dut.w_out.valid) == valid, "w_out.valid depends on ready"
                if valid:
                    assert (ctx.get(dut.w_out.payload.value),
                            ctx.get(dut.w_out.payload.last)) == beat, \
                        "w_out.payload depends on ready"
                ctx.set(dut.w_out.ready, ready)
                if self._held is not None:
                    assert valid and beat == self._held, "w_out dropped or changed a beat"
            for s in self.sources:
                if s.offering and ctx.get(s.stream.ready):
                    s.queue.pop(0)
                    s.offering = False
                    s.cycles.append(self.cycle)
            if valid and ready:
                self.out.append(beat)
                self.out_cycles.append(self.cycle)
            self._held = beat if valid and not ready else None
            silent = 0 if valid else silent + (not any(s.queue for s in self.sources))
            await ctx.tick()
            self.cycle += 1
            assert self.cycle - start < max_cycles, \
                (f"stuck: {[len(s.queue) for s in self.sources]} beats left "
                 f"(cmd, workers, w_in), {len(self.out)} out")
        for s in self.sources:
            ctx.set(s.stream.valid, 0)
        ctx.set(dut.w_out.ready, 0)


def simulate(dut, body, *, reset=None):
    """Runs ``async body(ctx)`` as the testbench of ``dut`` (inside a ``ResetInserter`` on
    ``reset``, a ``Signal``, when given)."""
    top = dut
    if reset is not None:
        top = Module()
        top.submodules.dut = ResetInserter(reset)(dut)
    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(body)
    sim.run()


# --- steps: random frames and the golden's answer --------------------------------------

def _value(rng, width):
    top = 1 << (width - 1)
    return rng.choice([-top, top - 1, rng.randrange(-top, top)]) if rng.random() < 0.1 \
        else rng.randrange(-top, top)


def random_frames(rng, length, params, *, style):
    """Per worker a frame of ``(index, value, last)``: ``sorted`` distinct indices (the
    sparsifier's order), ``shuffled`` distinct ones, ``pool`` (indices from a few shared
    ones, shuffled: many duplicates across workers, and a few repeats in worker 0's
    frame, no word getting more than ``2**ceil(log2 K)`` values), ``same`` (every worker
    the same indices in the same order: the round robin sends equal indices back to back).
    """
    k_count, width = params["workers"], params["value_width"]
    pool = rng.sample(range(length), min(length, 3))
    shared = sorted(rng.sample(range(length), rng.randint(1, min(length, 6))))
    frames = []
    for k in range(k_count):
        if style == "same":
            indices = list(shared)
        elif style == "pool":
            indices = rng.sample(pool, rng.randint(1, len(pool)))
            if k == 0 and (1 << (k_count - 1).bit_length()) > k_count:
                indices += rng.sample(indices, 1)   # a repeat: at most K + 1 values a word
                rng.shuffle(indices)
        else:
            indices = rng.sample(range(length), rng.randint(1, min(length, 12)))
            if style == "sorted":
                indices.sort()
        frames.append([(i, _value(rng, width), int(j == len(indices) - 1))
                       for j, i in enumerate(indices)])
    return frames


def random_weights(rng, length, width):
    return [_value(rng, width) for _ in range(length)]


def expected(length, lr, frames, weights, params):
    """The golden's ``(new weights, error)`` for one step."""
    sparse = [([i for i, _, _ in f], [v for _, v, _ in f]) for f in frames]
    agg, error = aggregate(length, sparse, capacity=params["capacity"],
                           value_width=params["value_width"], workers=params["workers"])
    new = apply_update(weights, agg, lr_q=lr, weight_width=params["weight_width"])
    return [int(x) for x in new], error


def _lr(rng):
    return rng.choice([0, 1, 0xFFFF, 0x8000, rng.randrange(1 << 16), rng.randrange(1 << 16)])


def run_steps(params, steps, *, seed=0, valid=1.0, ready=1.0, check_rules=False):
    """Runs ``steps`` (``(length, lr, frames, weights)``, each a well-formed step) and
    checks ``w_out`` against the golden, step by step; returns the bench."""
    dut = DgcAggregator(**params)
    bench = Bench(dut, seed=seed, valid=valid, ready=ready, check_rules=check_rules)
    want, any_error = [], False
    # Stuck means no end in 20 cycles a beat (a sink ready 15 % of the time needs 7).
    budget = 5000 + 20 * sum(1 + sum(map(len, f)) + n for n, _, f, _ in steps)
    for length, lr, frames, weights in steps:
        bench.add_step(length, lr, frames, [(w, int(j == length - 1))
                                            for j, w in enumerate(weights)])
        new, error = expected(length, lr, frames, weights, params)
        want += [(w, int(j == length - 1)) for j, w in enumerate(new)]
        any_error |= error
    flags = {}

    async def body(ctx):
        await bench.run(ctx, max_cycles=budget)
        flags["error"], flags["code"] = ctx.get(dut.error), ctx.get(dut.error_code)

    simulate(dut, body)
    assert len(bench.out) == len(want)
    for j, (got, exp) in enumerate(zip(bench.out, want)):
        assert got == exp, f"w_out beat {j}: {got} != {exp}"
    assert flags["error"] == any_error
    if any_error:
        assert ERRORS[flags["code"]] == "index"
    bench.flags = flags
    return bench


def random_steps(rng, params, count, styles=("sorted", "shuffled", "pool", "same")):
    steps = []
    for s in range(count):
        length = rng.choice([1, 2, params["capacity"], rng.randint(1, params["capacity"])])
        style = styles[s % len(styles)]
        steps.append((length, _lr(rng), random_frames(rng, length, params, style=style),
                      random_weights(rng, length, params["weight_width"])))
    return steps


# --- golden comparisons -----------------------------------------------------------------

@pytest.mark.parametrize("params", [SMALL, MEDIUM], ids=["small", "medium"])
@pytest.mark.parametrize("valid,ready", [(1.0, 1.0), (0.5, 0.6), (0.85, 0.3)])
def test_consecutive_steps_match_golden_under_stalls(params, valid, ready):
    # run_steps asserts every w_out beat against the golden and the error flags.
    rng = random.Random(f"{sorted(params.items())}{valid}{ready}")
    steps = random_steps(rng, params, 12)
    run_steps(params, steps, seed=rng.randrange(1 << 30), valid=valid, ready=ready,
              check_rules=True)


def test_back_to_back_equal_indices_forward():
    # Every worker sends the same indices: the round robin takes the K beats of an index
    # in K consecutive cycles, each reading the word its predecessor writes.
    params = dict(workers=4, capacity=16, value_width=12, weight_width=16)
    rng = random.Random(3)
    same = [[(i, rng.randrange(-2048, 2048), int(i == 15)) for i in range(16)]
            for _ in range(4)]
    one = [[(5, rng.randrange(-2048, 2048), 1)] for _ in range(4)]
    # The final sparse beat writes word 0 in the cycle the update pass reads it.
    last_zero = [[(9, 100, 0), (0, -7, 1)], [(0, 3, 1)], [(0, 11, 0), (9, 1, 1)], [(0, 5, 1)]]
    steps = [(16, 0xFFFF, same, random_weights(rng, 16, 16)),
             (16, 0x4000, one, random_weights(rng, 16, 16)),
             (12, 0x8000, last_zero, random_weights(rng, 12, 16)),
             (10, 0xFFFF, last_zero, [0] * 10)]
    run_steps(params, steps)      # asserts every w_out beat against the golden


def test_by_hand():
    # Two workers, n = 4, lr = 1/2: agg = [0, 6, 0, -3]; w = [10, 10, -10, -10];
    # w - round(agg / 2) = [10, 7, -10, -9] (-1.5 rounds half up to -1). Then a step with
    # one beat (0, 0, last) a worker: nothing to add, the weights pass unchanged, but
    # clamped to the symmetric range (-128 -> -127).
    params = dict(workers=2, capacity=16, value_width=12, weight_width=8)
    dut = DgcAggregator(**params)
    bench = Bench(dut)
    bench.add_step(4, 0x8000, [[(1, 4, 0), (3, -3, 1)], [(1, 2, 1)]],
                   [(10, 0), (10, 0), (-10, 0), (-10, 1)])
    bench.add_step(2, 0xFFFF, [[(0, 0, 1)], [(0, 0, 1)]], [(-128, 0), (127, 1)])
    simulate(dut, bench.run)
    assert bench.out == [(10, 0), (7, 0), (-10, 0), (-9, 1), (-127, 0), (127, 1)]


def test_empty_frames_add_nothing():
    # run_steps asserts every w_out beat against the golden and the error flags.
    params = SMALL
    rng = random.Random(5)
    empty = [[(0, 0, 1)] for _ in range(params["workers"])]
    mixed = [[(0, 0, 1)], [(3, 700, 0), (0, -1, 1)], [(0, 0, 1)]]
    steps = [(1, 0xFFFF, empty, [17]),
             (8, 0x9000, mixed, random_weights(rng, 8, params["weight_width"])),
             (32, 0x3000, empty, random_weights(rng, 32, params["weight_width"]))]
    run_steps(params, steps, valid=0.7, ready=0.7, seed=5)


def test_single_worker():
    # run_steps asserts every w_out beat against the golden and the error flags.
    params = dict(workers=1, capacity=16, value_width=13, weight_width=12)
    rng = random.Random(11)
    run_steps(params, random_steps(rng, params, 5, styles=("sorted", "shuffled")),
              valid=0.7, ready=0.8, seed=11)


# --- malformed input ------------------------------------------------------------------------

def test_out_of_range_index_sets_error_and_writes_nothing():
    params = SMALL
    rng = random.Random(7)
    frames = [[(2, 50, 0), (9, 100, 0), (20, 7, 1)],    # n = 10: index 20 is out
              [(12, -5, 0), (9, 1, 1)],                 # 12 too
              [(9, 3, 1)]]
    weights = random_weights(rng, 10, params["weight_width"])
    new, error = expected(10, 0xFFFF, frames, weights, params)
    assert error
    # The next step reads words 10..31: zero, as nothing was written there.
    follow = random_steps(rng, params, 1, styles=("sorted",))
    follow[0] = (32,) + follow[0][1:3] + (random_weights(rng, 32, params["weight_width"]),)
    bench = run_steps(params, [(10, 0xFFFF, frames, weights)] + follow, valid=0.8,
                      ready=0.8, seed=7)
    assert ERRORS[bench.flags["code"]] == "index"


def _misplaced_last(params, weights_in, *, seed):
    """A step whose ``w_in`` frame is ``weights_in`` (``(value, last)``), then two good
    steps (the second of full length: the sum must be all zero again); returns the bench,
    the first step's expected weights and the error flags."""
    rng = random.Random(seed)
    n = 12
    frames = random_frames(rng, n, params, style="shuffled")
    weights = [v for v, _ in weights_in][:n] + [0] * max(0, n - len(weights_in))
    new, _ = expected(n, 0x7000, frames, weights, params)
    follow = [(n, _lr(rng), random_frames(rng, n, params, style="pool"),
               random_weights(rng, n, params["weight_width"])),
              (params["capacity"], _lr(rng),
               random_frames(rng, params["capacity"], params, style="sorted"),
               random_weights(rng, params["capacity"], params["weight_width"]))]
    dut = DgcAggregator(**params)
    bench = Bench(dut, seed=seed, valid=0.8, ready=0.7, check_rules=True)
    bench.add_step(n, 0x7000, frames, weights_in)
    want_follow = []
    for length, lr, f, w in follow:
        bench.add_step(length, lr, f, [(x, int(j == length - 1)) for j, x in enumerate(w)])
        got, error = expected(length, lr, f, w, params)
        assert not error
        want_follow += [(x, int(j == length - 1)) for j, x in enumerate(got)]
    flags = {}

    async def body(ctx):
        await bench.run(ctx)
        flags["error"], flags["code"] = ctx.get(dut.error), ctx.get(dut.error_code)

    simulate(dut, body)
    return bench, new, want_follow, flags


def test_early_last_on_w_in_ends_the_pass_and_clears_the_rest():
    params = SMALL
    rng = random.Random(8)
    weights_in = [(rng.randrange(-512, 512), int(j == 4)) for j in range(5)]  # n = 12
    bench, new, want_follow, flags = _misplaced_last(params, weights_in, seed=8)
    assert bench.out[:5] == [(w, int(j == 4)) for j, w in enumerate(new[:5])]
    assert bench.out[5:] == want_follow
    assert flags["error"] and ERRORS[flags["code"]] == "length"


def test_missing_last_on_w_in_ends_the_pass_at_n():
    params = SMALL
    rng = random.Random(9)
    weights_in = [(rng.randrange(-512, 512), 0) for _ in range(12)]   # no last at all
    bench, new, want_follow, flags = _misplaced_last(params, weights_in, seed=9)
    assert bench.out[:12] == [(w, int(j == 11)) for j, w in enumerate(new)]
    assert bench.out[12:] == want_follow
    assert flags["error"] and ERRORS[flags["code"]] == "length"


@pytest.mark.parametrize("length", [0, 2 ** 5 + 1, 2 ** 6 - 1])
def test_bad_command_length_runs_at_capacity(length):
    # A length outside 1 .. capacity sets `length` and the step runs with n = capacity.
    params = SMALL
    rng = random.Random(length)
    n = params["capacity"]
    frames = random_frames(rng, n, params, style="sorted")
    weights = random_weights(rng, n, params["weight_width"])
    new, _ = expected(n, 0x5555, frames, weights, params)
    dut = DgcAggregator(**params)
    bench = Bench(dut)
    bench.add_step(length, 0x5555, frames,
                   [(w, int(j == n - 1)) for j, w in enumerate(weights)])
    flags = {}

    async def body(ctx):
        await bench.run(ctx)
        flags["code"] = ctx.get(dut.error_code)

    simulate(dut, body)
    assert bench.out == [(w, int(j == n - 1)) for j, w in enumerate(new)]
    assert ERRORS[flags["code"]] == "length"


def test_first_error_is_kept():
    params = SMALL
    dut = DgcAggregator(**params)
    bench = Bench(dut)
    bench.add_step(4, 1, [[(7, 1, 1)], [(0, 1, 1)], [(1, 1, 1)]],
                   [(0, 0), (0, 0), (0, 0), (0, 0)])              # index, then length
    codes = []

    async def body(ctx):
        await bench.run(ctx)
        codes.append((ctx.get(dut.error), ctx.get(dut.error_code)))

    simulate(dut, body)
    assert len(bench.out) == 4
    assert codes == [(1, ERRORS.index("index"))]


# --- cycles ----------------------------------------------------------------------------------

def test_ii_one_and_cycle_counts():
    params = MEDIUM
    rng = random.Random(12)
    steps = random_steps(rng, params, 5)
    bench = run_steps(params, steps)
    dut = DgcAggregator(**params)
    cap = params["capacity"]
    assert bench.cmd.cycles[0] == dut.clear_cycles == cap      # the reset clear pass
    merged = sorted(c for s in bench.inputs for c in s.cycles)
    m_at = w_at = 0
    for s, (length, lr, frames, weights) in enumerate(steps):
        beats = sum(len(f) for f in frames)
        cmd = bench.cmd.cycles[s]
        merge = merged[m_at:m_at + beats]
        m_at += beats
        # Merge: one beat a cycle from the cycle after the command.
        assert merge == list(range(cmd + 1, cmd + 1 + beats)), s
        # Update: one weight a cycle from the cycle after the final sparse beat.
        w_in = bench.w_in.cycles[w_at:w_at + length]
        w_out = bench.out_cycles[w_at:w_at + length]
        w_at += length
        assert w_in == list(range(merge[-1] + 1, merge[-1] + 1 + length)), s
        assert w_out == [c + DgcAggregator.UPDATE_LATENCY for c in w_in], s
        if s + 1 < len(steps):
            assert bench.cmd.cycles[s + 1] - cmd == dut.step_cycles(beats, length), s


def test_round_robin_order():
    # Every worker always offers a beat: each grant goes to the next worker after the
    # previous grant (cyclically, across steps too) whose frame has not ended.
    params = dict(workers=5, capacity=32, value_width=12, weight_width=12)
    rng = random.Random(14)
    steps = random_steps(rng, params, 4, styles=("shuffled",))
    bench = run_steps(params, steps)
    grants = sorted((c, k) for k, s in enumerate(bench.inputs) for c in s.cycles)
    frames = [[list(f) for f in frames] for _, _, frames, _ in steps]
    previous, order = -1, []
    for step in frames:
        left = [len(f) for f in step]
        while any(left):
            k = next((previous + d) % 5 for d in range(1, 6) if left[(previous + d) % 5])
            order.append(k)
            left[k] -= 1
            previous = k
    assert [k for _, k in grants] == order


def test_reset_clear_pass():
    # A step merged but not applied leaves words of the sum non-zero; a reset then clears
    # every word (capacity cycles, cmd not ready) and the next step sees zeros.
    params = dict(workers=2, capacity=16, value_width=12, weight_width=12)
    dut = DgcAggregator(**params)
    reset = Signal()
    rng = random.Random(13)
    frames = random_frames(rng, 16, params, style="sorted")
    weights = random_weights(rng, 16, params["weight_width"])
    new, _ = expected(16, 0xFFFF, frames, weights, params)
    bench = Bench(dut)
    bench.add_step(16, 0xFFFF, frames, [(w, int(j == 15)) for j, w in enumerate(weights)])
    seen = {}

    async def wait_ready(ctx):
        cycles = 0
        while not ctx.get(dut.cmd.ready):
            assert not any(ctx.get(p.ready) for p in dut.inputs)
            assert not ctx.get(dut.w_in.ready)
            await ctx.tick()
            cycles += 1
            assert cycles < 100
        return cycles

    async def body(ctx):
        seen["first"] = await wait_ready(ctx)
        ctx.set(dut.cmd.payload, {"length": 16, "lr": 0xFFFF})
        ctx.set(dut.cmd.valid, 1)
        await ctx.tick()
        ctx.set(dut.cmd.valid, 0)
        port = dut.inputs[0]
        ctx.set(port.valid, 1)
        for i in range(16):
            ctx.set(port.payload, {"index": i, "value": 1000 + i, "last": 0})
            assert ctx.get(port.ready)
            await ctx.tick()
        ctx.set(port.valid, 0)
        await ctx.tick().repeat(2)
        ctx.set(reset, 1)
        await ctx.tick()
        ctx.set(reset, 0)
        seen["again"] = await wait_ready(ctx)
        await bench.run(ctx)

    simulate(dut, body, reset=reset)
    assert seen == {"first": 16, "again": 16}
    assert bench.out == [(w, int(j == 15)) for j, w in enumerate(new)]


# --- parameters ----------------------------------------------------------------------------

@pytest.mark.parametrize("name, value, error, message", [
    ("workers", 0, ValueError, "workers must be in 1..16"),
    ("workers", 17, ValueError, "workers must be in 1..16"),
    ("workers", 2.0, TypeError, "workers must be an integer"),
    ("workers", True, TypeError, "workers must be an integer"),
    ("capacity", 2 ** 3, ValueError, r"capacity must be a power of two in 2\*\*4..2\*\*20"),
    ("capacity", 2 ** 21, ValueError, r"capacity must be a power of two in 2\*\*4..2\*\*20"),
    ("capacity", 100, ValueError, r"capacity must be a power of two"),
    ("capacity", 0, ValueError, r"capacity must be a power of two"),
    ("capacity", -16, ValueError, r"capacity must be a power of two"),
    ("capacity", "16", TypeError, "capacity must be an integer"),
    ("value_width", 11, ValueError, "value_width must be in 12..32"),
    ("value_width", 33, ValueError, "value_width must be in 12..32"),
    ("value_width", None, TypeError, "value_width must be an integer"),
    ("weight_width", 7, ValueError, "weight_width must be in 8..32"),
    ("weight_width", 33, ValueError, "weight_width must be in 8..32"),
    ("weight_width", 16.0, TypeError, "weight_width must be an integer"),
])
def test_bad_parameters_are_named(name, value, error, message):
    with pytest.raises(error, match=message):
        DgcAggregator(**{**MEDIUM, name: value})


def test_derived_values_and_ports():
    agg = DgcAggregator(workers=3, capacity=2 ** 10, value_width=20, weight_width=24)
    assert (agg.workers, agg.capacity, agg.value_width, agg.weight_width) == (3, 1024, 20, 24)
    assert agg.capacity_bits == 10 and agg.acc_width == 22
    assert DgcAggregator(workers=1, capacity=16).acc_width == 16
    assert DgcAggregator(workers=16, capacity=16, value_width=32).acc_width == 36
    assert len(agg.inputs) == 3
    assert len(agg.inputs[0].payload.index) == 10 and len(agg.inputs[0].payload.value) == 20
    assert len(agg.cmd.payload.length) == 11 and len(agg.cmd.payload.lr) == 16
    assert len(agg.w_in.payload.value) == len(agg.w_out.payload.value) == 24
    assert ERRORS == ("none", "index", "length")
    with pytest.raises(TypeError):
        DgcAggregator(3)


# --- wide and long ---------------------------------------------------------------------------

def test_sixteen_workers_at_full_width():
    # acc_width 36, a 36 x 17-bit product, W = 32: the widest datapath.
    params = dict(workers=16, capacity=2 ** 6, value_width=32, weight_width=32)
    rng = random.Random(15)
    # run_steps asserts every w_out beat against the golden and the error flags.
    run_steps(params, random_steps(rng, params, 6), seed=15, valid=0.7, ready=0.6,
              check_rules=True)


@pytest.mark.slow
@pytest.mark.parametrize("params", [
    dict(workers=16, capacity=2 ** 7, value_width=32, weight_width=32),
    dict(workers=5, capacity=2 ** 10, value_width=24, weight_width=16),
    dict(workers=8, capacity=2 ** 4, value_width=12, weight_width=8),
    dict(workers=2, capacity=2 ** 9, value_width=20, weight_width=28),
], ids=["k16-32b", "k5-24b", "k8-tiny", "k2-long"])
@pytest.mark.parametrize("valid,ready", [(1.0, 1.0), (0.6, 0.5), (0.9, 0.15)])
def test_sweep(params, valid, ready):
    # run_steps asserts every w_out beat against the golden and the error flags.
    rng = random.Random(f"{sorted(params.items())}{valid}{ready}")
    run_steps(params, random_steps(rng, params, 24), seed=rng.randrange(1 << 30),
              valid=valid, ready=ready, check_rules=True)
