"""The DGC testbench: one cocotb module for ``dgc-sparsify`` and ``dgc-aggregate``, keyed on
the sidecar's ``core``, both fed from a real training run (:mod:`dnnhw.sim.dgc_data`: the
digits CNN trained with the hardware's integer rule; the ``tensor`` knob names which
tensor's steps). Built on :class:`dnnhw.sim.bench.StreamBench`.

Tests and what they record in ``results.json``:

``steps``
    Sparsifier: ``steps`` steps of worker 0, replayed from reset (the RTL's state starts
    at zero, like the golden's), every ``o`` beat and every ``status`` beat checked
    against the golden's (``dgc_fixed.SparsifierState``, as recorded), once stall-free
    and once with random stalls on every stream (``idle``, ``backpressure``); records
    the counts selected per step (hardware and golden), the golden's statuses, the
    gradient beats per cycle within each frame (II = 1 is one), the cycles from each
    step's command to its status and from one command to the next (the tests hold those
    to ``DgcSparsifier.step_cycles``).

    Aggregator: for each of the steps, the K workers' sparse frames (as their
    sparsifiers sent them) and the tensor's weights in ``weight_width``-bit fixed point;
    every ``w_out`` beat checked against ``dgc_fixed.apply_update`` of
    ``dgc_fixed.aggregate``, the weights chained from step to step as a host would; the
    same two runs; sparse beats and weights per cycle.

    With ``stall_free`` false, the stalled run alone (the soak's: ``dnnhw sim dgc-sparsify
    --soak``, ``dnnhw sim dgc-aggregate --soak``).

Every output beat is compared as it arrives; after the expected beats no further beat may
come out, and every input beat must have been taken.
"""

import cocotb

from dnnhw.golden import dgc_fixed

from .bench import StreamBench
from .dgc_data import record_training, weights_fixed
from .streams import PayloadFormat
from .tb import record


__all__ = ["DEFAULTS", "DgcBench"]

DEFAULTS = {
    "steps": 6,               # training steps replayed
    "tensor": "conv2.w",      # the CNN tensor whose gradients stream
    "workers": 4,             # simulated data-parallel workers of the training run
    "idle": 0.3,              # source idle probability per beat (stalled run)
    "backpressure": 0.3,      # sink not-ready probability per cycle (stalled run)
    "weight_width": 16,       # aggregator: bits of a weight (from the sidecar when given)
    "learning_rate": 0.05,    # aggregator: the SGD step (folded with the two scales)
    "stall_free": True,       # False: the stalled run alone (the soak's)
}

_KINDS = ("dgc-sparsify", "dgc-aggregate")


def _unsigned(value, width):
    return int(value) & ((1 << width) - 1)


class DgcBench(StreamBench):
    """A DGC DUT, its parameters and the recorded training steps."""

    def __init__(self, dut):
        super().__init__(dut, DEFAULTS)
        self.core = self.sidecar.get("core")
        if self.core not in _KINDS:
            raise ValueError(f"the DGC testbench runs {', '.join(_KINDS)}; the sidecar's "
                             f"core is {self.core!r}")
        self.params = self.sidecar["params"]
        cfg = self.cfg
        state_width = int(self.params.get("state_width", self.params.get("value_width")))
        self.recorded = record_training(
            steps=int(cfg["steps"]), tensor=cfg["tensor"], workers=int(cfg["workers"]),
            seed=self.seed, grad_width=int(self.params.get("grad_width", 16)),
            state_width=state_width)
        capacity = int(self.params["capacity"])
        n = len(self.recorded.weights)
        if n > capacity:
            raise ValueError(f"tensor {cfg['tensor']!r} has {n} elements, more than the "
                             f"build's capacity {capacity}")
        self.formats = {name: PayloadFormat(entry)
                        for name, entry in self.sidecar["streams"].items()}

    def _pack(self, stream, fields):
        fmt = self.formats[stream]
        return fmt.pack({name: _unsigned(v, fmt.fields[name][1]) for name, v in fields.items()})

    # ---- the sparsifier ------------------------------------------------------------------
    def sparsifier_traffic(self):
        """(inputs, expected o, expected status, the golden's statuses as
        ``[selected, threshold, rounds, shift]`` per step)."""
        rec = self.recorded
        cmds, grads, out, status, selected = [], [], [], [], []
        for command, gradient, (indices, values, st) in zip(
                rec.commands[0], rec.gradients[0], rec.sent[0]):
            cmds.append(self._pack("cmd", {
                name: getattr(command, name) for name in (
                    "length", "momentum", "clip", "clip_limit", "sample_start",
                    "sample_stride", "target", "sample_target")}))
            frame = [self._pack("i", {"value": g, "last": int(k == len(gradient) - 1)})
                     for k, g in enumerate(gradient)]
            grads += frame * (2 if command.clip else 1)
            if len(indices):
                out += [self._pack("o", {"index": i, "value": v,
                                         "last": int(k == len(indices) - 1)})
                        for k, (i, v) in enumerate(zip(indices, values))]
            else:
                out.append(self._pack("o", {"index": 0, "value": 0, "last": 1}))
            status.append(self._pack("status", {"selected": st.selected,
                                                "threshold": st.threshold,
                                                "rounds": st.rounds, "shift": st.shift}))
            selected.append([st.selected, st.threshold, st.rounds, st.shift])
        return {"cmd": cmds, "i": grads}, out, status, selected

    async def run_sparsifier(self, *, stalled):
        inputs, out, status, golden = self.sparsifier_traffic()
        rec = self.recorded
        n = len(rec.gradients[0][0])
        passes = sum(2 if c.clip else 1 for c in rec.commands[0]) + len(rec.commands[0])
        budget = passes * n + 200 * len(rec.commands[0])
        seeds = {name: self.seed * 7 + k for k, name in enumerate(("cmd", "i", "o", "status"))}
        pauses = {}
        if stalled:
            pauses = {"cmd": self.cfg["idle"], "i": self.cfg["idle"],
                      "o": self.cfg["backpressure"], "status": self.cfg["backpressure"]}
        run = await self.run(inputs, out, label=f"sparsifier {'stalled' if stalled else 'free'}",
                             seeds=seeds, pauses=pauses, budget=budget,
                             more={"status": status})
        frames = _frame_gaps(run.sources["i"].cycles, n)
        status_cycles = run.more_sinks["status"].cycles
        cmd_cycles = run.sources["cmd"].cycles
        return {"status_golden": golden,
                "selected_golden": [g[0] for g in golden],
                "selected_rtl": [self.formats["status"].unpack(v)["selected"]
                                 for v in run.more_sinks["status"].items],
                "gradient_beats_per_cycle": frames,
                "step_cycles": [s - c for c, s in zip(cmd_cycles, status_cycles)],
                "command_intervals": [b - a for a, b in zip(cmd_cycles, cmd_cycles[1:])],
                "o_beats": len(out), "elements": n}

    # ---- the aggregator ------------------------------------------------------------------
    def aggregator_traffic(self):
        """(inputs, expected w_out, the per-step sums' nonzero counts)."""
        rec = self.recorded
        capacity = int(self.params["capacity"])
        value_width = int(self.params["value_width"])
        weight_width = int(self.params["weight_width"])
        workers = int(self.params["workers"])
        if workers > rec.workers:
            raise ValueError(f"the build merges {workers} workers, the training run "
                             f"recorded {rec.workers}")
        weights, w_bits = weights_fixed(rec.weights, weight_width)
        # lr_q / 2**LR_FRAC = lr * 2**w_bits / 2**g_bits: one step in weight units.
        lr_q = int(round(self.cfg["learning_rate"] * 2.0 ** (w_bits - rec.scale_bits)
                         * 2 ** dgc_fixed.LR_FRAC))
        if not 0 <= lr_q < 1 << dgc_fixed.REGISTER_BITS:
            raise ValueError(f"learning_rate gives lr_q {lr_q}, outside the register")
        n = len(weights)
        cmds, sparse, w_in, w_out = [], {k: [] for k in range(workers)}, [], []
        for step in range(rec.steps):
            cmds.append(self._pack("cmd", {"length": n, "lr": lr_q}))
            frames = []
            for k in range(workers):
                indices, values, _ = rec.sent[k][step]
                frames.append((indices, values))
                beats = list(zip(indices, values)) or [(0, 0)]
                sparse[k] += [self._pack(f"inputs__{k}", {"index": i, "value": v,
                                                          "last": int(j == len(beats) - 1)})
                              for j, (i, v) in enumerate(beats)]
            agg, error = dgc_fixed.aggregate(n, frames, capacity=capacity,
                                             value_width=value_width, workers=workers)
            assert not error
            new = dgc_fixed.apply_update(weights, agg, lr_q=lr_q, weight_width=weight_width)
            w_in += [self._pack("w_in", {"value": w, "last": int(j == n - 1)})
                     for j, w in enumerate(weights)]
            w_out += [self._pack("w_out", {"value": w, "last": int(j == n - 1)})
                      for j, w in enumerate(new)]
            weights = new
        inputs = {"cmd": cmds, "w_in": w_in, **{f"inputs__{k}": v for k, v in sparse.items()}}
        return inputs, w_out, {"lr_q": lr_q, "weight_scale_bits": w_bits, "elements": n}

    async def run_aggregator(self, *, stalled):
        inputs, w_out, info = self.aggregator_traffic()
        names = list(inputs) + ["w_out"]
        seeds = {name: self.seed * 11 + k for k, name in enumerate(names)}
        pauses = {}
        if stalled:
            pauses = {name: self.cfg["idle"] for name in inputs}
            pauses["w_out"] = self.cfg["backpressure"]
        budget = sum(len(v) for v in inputs.values()) + 100 * self.recorded.steps
        run = await self.run(inputs, w_out, sink="w_out", seeds=seeds, pauses=pauses,
                             budget=budget, label=f"aggregator {'stalled' if stalled else 'free'}")
        sparse_cycles = sorted(c for name, src in run.sources.items()
                               if name.startswith("inputs__") for c in src.cycles)
        return dict(info, weight_beats_per_cycle=_frame_gaps(run.sources["w_in"].cycles,
                                                             info["elements"]),
                    sparse_beats=len(sparse_cycles),
                    merge_beats_per_cycle=_merge_rate(sparse_cycles, self.recorded.steps))


def _frame_gaps(cycles, n):
    """Beats per cycle within each n-beat frame of a stream (1.0: one a cycle)."""
    out = []
    for start in range(0, len(cycles) - n + 1, n):
        frame = cycles[start:start + n]
        out.append(n / (frame[-1] - frame[0] + 1))
    return out


def _merge_rate(cycles, steps):
    """Sparse beats per cycle over the merge of each step: the beats come in runs of
    consecutive cycles, one run a step (the mean over the runs)."""
    if not cycles:
        return []
    runs, first, prev, count = [], cycles[0], cycles[0], 1
    for c in cycles[1:]:
        if c > prev + 8:       # the next step's merge
            runs.append(count / (prev - first + 1))
            first, count = c, 0
        prev = c
        count += 1
    runs.append(count / (prev - first + 1))
    return runs


@cocotb.test()
async def steps(dut):
    bench = DgcBench(dut)
    run = bench.run_sparsifier if bench.core == "dgc-sparsify" else bench.run_aggregator
    out = {"tensor": bench.cfg["tensor"], "steps": bench.recorded.steps}
    if bench.cfg["stall_free"]:
        out["stall_free"] = await run(stalled=False)
        await bench.reset()
    out["random_stalls"] = await run(stalled=True)
    record("steps", out)
