"""Morph's sequencer program run in Python, instruction by instruction, moving real data.

:class:`Machine` executes :func:`dnnhw.rtl.morph_program.sequencer_program` the way the
array's RTL does: the ALU instructions on a register file of ``value_width`` bits, the two
tile loops with their run-time orders and the flags they raise, and each ``run`` as its
engine does it, word by word through the DRAM, the L2, the replicated L1 copies and the
PE banks. It counts every word where it moves and every cycle, so a layer's outputs can
be compared with a convolution and its counters and cycles with the model
(:func:`dnnhw.golden.morph.counts`) before the RTL exists, and the RTL with it after.

It knows nothing of the model's closed form or walk: its rules are the program's and the
engines' (``docs/morph-array.md``).
"""

import itertools

from dnnhw.rtl.morph_program import (CONFIG, DIMS, JOB_OVERHEAD, JOBS, RUNS,
                                     instruction_cycles)


__all__ = ["Machine", "MachineError", "empty_counters"]

OPERANDS = ("inputs", "weights", "psums")
RELEVANT = {"inputs": "NCFHW", "weights": "KC", "psums": "NKFHW"}


class MachineError(RuntimeError):
    """The program did something the hardware would flag (an address outside a buffer,
    a runaway loop)."""


def empty_counters():
    """``{level: {operand: {"reads": 0, "writes": 0}}}`` plus MACs and cycles."""
    traffic = {level: {op: {"reads": 0, "writes": 0} for op in OPERANDS}
               for level in ("dram", "l2", "l1")}
    return {"traffic": traffic, "macs": 0, "cycles": 0, "stall_cycles": 0}


class _TileLoops:
    """The nest of tile loops of one level: ``dims`` outermost first with their trips; an
    index per dimension and, after each step, which dimensions changed."""

    def __init__(self, dims, trips):
        self.dims = dims
        self.trips = trips
        self.steps = itertools.product(*(range(trips[d]) for d in dims))
        self.index = None
        self.changed = set()
        self.running = True
        self.first = True
        self.advance()
        self.first = True

    def advance(self):
        before = self.index
        step = next(self.steps, None)
        self.first = False
        if step is None:
            self.running = False
            return
        self.index = dict(zip(self.dims, step))
        self.changed = (set(self.dims) if before is None else
                        {d for d in self.dims if before[d] != self.index[d]})


class Machine:
    """The sequencer and engines of an array of ``kp x hp x wp`` PEs.

    Parameters
    ----------
    kp, hp, wp : int
        The built PE block.
    l2_words, l1_input_words, l1_weight_words, l1_psum_entries : int
        Words of the L2, of one L1 input copy, of one L1 weight copy; entries of one PE's
        partial-sum bank.
    value_width : int
        Bits of a register.
    memory_latency : int
        Cycles from a read request to its first word (a fixed-latency memory).
    mul_cycles : int
        Cycles of a ``mul`` (the build's multiplier).
    on_job : callable or None
        Called as ``on_job(run, job, machine, when)`` before (``when="before"``) and after
        (``"after"``) each job, ``job`` the job's register values by name: the engines'
        benches replay a real layer's jobs from it. ``machine.l2``, ``machine.l1`` and
        ``machine.dram`` hold the buffers.
    """

    def __init__(self, program, *, kp, hp, wp, l2_words, l1_input_words, l1_weight_words,
                 l1_psum_entries, value_width=32, memory_latency=10, mul_cycles=2,
                 on_job=None):
        self.program = program
        self.kp, self.hp, self.wp = kp, hp, wp
        self.l2_words = l2_words
        self.l1_input_words = l1_input_words
        self.l1_weight_words = l1_weight_words
        self.l1_psum_entries = l1_psum_entries
        self.value_width = value_width
        self.memory_latency = memory_latency
        self.mul_cycles = mul_cycles
        self.on_job = on_job

    @classmethod
    def for_shape(cls, program, shape, **overrides):
        """The machine of a build (a :class:`~dnnhw.sim.morph_loader.ArrayShape`); keyword
        arguments (``memory_latency``, ``on_job``, ...) override or add to its values."""
        values = dict(kp=shape.kp, hp=shape.hp, wp=shape.wp,
                      l2_words=shape.l2_banks * shape.l2_bank_words,
                      l1_input_words=shape.l1_input_words,
                      l1_weight_words=shape.l1_weight_words,
                      l1_psum_entries=shape.l1_psum_entries, value_width=shape.value_width,
                      mul_cycles=shape.mul_cycles)
        values.update(overrides)
        return cls(program, **values)

    # ---- values ---------------------------------------------------------------------
    def _wrap(self, value):
        # The widest value the program has made so far, in two's-complement bits.
        self.widest = max(self.widest, (value if value >= 0 else ~value).bit_length() + 1)
        value &= (1 << self.value_width) - 1
        return value - (1 << self.value_width) if value >> (self.value_width - 1) else value

    def run(self, config, dram, *, max_cycles=10**9):
        """Run one layer. ``config`` maps every name of :data:`CONFIG` to its value, plus
        ``order2`` and ``order1`` (permutations of ``"KCFHW"``); ``dram`` is a list of
        ints (inputs, weights and outputs at their bases), updated in place, or ``None``
        to run the program alone (the engines move nothing and count nothing). Returns the
        counters (:func:`empty_counters`); ``widest`` is then the most two's-complement
        bits any register value took before it was wrapped to ``value_width``."""
        program = self.program
        self.widest = 0
        reg = [0] * (max(program.registers.values()) + 1)
        names = program.registers
        for name in CONFIG:
            reg[names[name]] = self._wrap(config[name])
        counters = empty_counters()
        self.counters = counters
        self.dram = dram
        self.l2 = [None] * self.l2_words
        self.l1 = {"inputs": [None] * self.l1_input_words,
                   "weights": [None] * self.l1_weight_words,
                   "psums": [[None] * self.l1_psum_entries
                             for _ in range(self.kp * self.hp * self.wp)]}
        self.config = config
        loops = {}
        held = {"l2": False, "l1": False}

        def value(name):
            return reg[names[name]]

        def special(name):
            level, _, field = name.partition(".")
            if name == "n":
                return loops["l2"].index["N"]
            if field.startswith("index_"):
                return loops[level].index[field[-1]]
            return None

        def read(index):
            return reg[index]

        # Read-only registers: tile indices and the image, read through `special`.
        readonly = {}
        for name, index in names.items():
            if name == "n" or ".index_" in name:
                readonly[index] = name

        def get(index):
            if index in readonly:
                return special(readonly[index])
            return read(index)

        def flag(name):
            level, field = name.split(".")
            loop = loops[level]
            if field == "running":
                return loop.running
            if field.startswith("last_"):
                d = field[-1]
                return loop.index[d] == loop.trips[d] - 1
            changed = {op: bool(loop.changed & set(RELEVANT[op])) for op in OPERANDS}
            channels_continue = (loops["l2"].index["C"] != 0 if level == "l2" else
                                 loops["l2"].index["C"] != 0 or loop.index["C"] != 0)
            if field == "continues":
                return channels_continue
            if field == "fill_inputs":
                return changed["inputs"]
            if field == "fill_weights":
                return changed["weights"]
            if field == "fill_psums":
                return changed["psums"] and channels_continue
            if field == "writeback":
                return changed["psums"] and held[level]
            raise MachineError(f"unknown flag {name}")

        pc = 0
        code = program.code
        while True:
            if counters["cycles"] > max_cycles:
                raise MachineError(f"no done after {max_cycles} cycles")
            ins = code[pc]
            op = ins[0]
            counters["cycles"] += instruction_cycles(ins, self.mul_cycles)
            pc += 1
            if op == "li":
                reg[ins[1]] = self._wrap(ins[2])
            elif op in ("add", "sub", "min", "max", "mul", "cdiv"):
                x, y = get(ins[2]), get(ins[3])
                if op == "add":
                    result = x + y
                elif op == "sub":
                    result = x - y
                elif op == "min":
                    result = min(x, y)
                elif op == "max":
                    result = max(x, y)
                elif op == "mul":
                    result = x * y
                else:
                    if x < 0 or y < 1:
                        raise MachineError(f"cdiv of {x} by {y} at {pc - 1}")
                    result = -(-x // y)
                reg[ins[1]] = self._wrap(result)
            elif op == "sel":
                reg[ins[1]] = get(ins[2]) if flag(ins[4]) else get(ins[3])
            elif op == "skipnot":
                if not flag(ins[1]):
                    pc += 1
            elif op == "loop":
                if flag(ins[2]):
                    pc = ins[1]
            elif op == "start":
                if ins[1] == "l2":
                    trips = {"N": config["N"]}
                    trips.update({d: config[f"trips2_{d}"] for d in DIMS})
                    loops["l2"] = _TileLoops("N" + config["order2"], trips)
                    held["l2"] = False
                else:
                    trips = {d: value(f"l2.trips_{d}") for d in DIMS}
                    loops["l1"] = _TileLoops(config["order1"], trips)
                    held["l1"] = False
            elif op == "next":
                loops[ins[1]].advance()
                held[ins[1]] = True
            elif op == "run":
                self._job(ins[1], lambda n: get(names[n]))
            elif op == "done":
                return counters
            else:
                raise MachineError(f"unknown instruction {ins}")

    # ---- engines --------------------------------------------------------------------
    def _job(self, run, value):
        window, kind, operand = RUNS[run]
        job = {name: value(f"{window}.{name}") for name in JOBS[window]}
        if self.on_job is not None:
            self.on_job(run, job, self, "before")
        if self.dram is not None:
            self._engine(run, window, kind, operand, job)
        if self.on_job is not None:
            self.on_job(run, job, self, "after")

    def _engine(self, run, window, kind, operand, job):
        counters = self.counters
        traffic = counters["traffic"]
        if kind in ("dram_read", "dram_write"):
            rows = [(job["rows0"], job["ds0"]), (job["rows1"], job["ds1"]),
                    (job["rows2"], job["ds2"])]
            l2 = job["l2_addr"]
            words = 0
            for i0, i1, i2 in itertools.product(*(range(n) for n, _ in rows)):
                row = job["dram_addr"] + i0 * rows[0][1] + i1 * rows[1][1] + i2 * rows[2][1]
                for w in range(job["row_len"]):
                    self._check(0 <= row + w < len(self.dram), f"{run}: DRAM address "
                                f"{row + w} outside 0..{len(self.dram) - 1}")
                    self._check(0 <= l2 < self.l2_words,
                                f"{run}: L2 address {l2} outside 0..{self.l2_words - 1}")
                    if kind == "dram_read":
                        self.l2[l2] = self.dram[row + w]
                    else:
                        self._check(self.l2[l2] is not None, f"{run}: L2 word {l2} unset")
                        self.dram[row + w] = self.l2[l2]
                    l2 += 1
                    words += 1
            if kind == "dram_read":
                traffic["dram"][operand]["reads"] += words
                traffic["l2"][operand]["writes"] += words
                counters["cycles"] += JOB_OVERHEAD["dram_read"] + self.memory_latency + words
            else:
                traffic["l2"][operand]["reads"] += words
                traffic["dram"][operand]["writes"] += words
                counters["cycles"] += JOB_OVERHEAD["dram_write"] + words
        elif kind in ("l2_l1", "l1_l2"):
            counts = [job["n0"], job["n1"], job["n2"], job["n3"]]
            strides = [job["s0"], job["s1"], job["s2"], 1]
            words = 0
            for position, idx in enumerate(itertools.product(*(range(n) for n in counts))):
                l2 = job["l2_addr"] + sum(i * s for i, s in zip(idx, strides))
                self._check(0 <= l2 < self.l2_words,
                            f"{run}: L2 address {l2} outside 0..{self.l2_words - 1}")
                if operand == "psums":
                    k, f, h, w = idx
                    cfg = self.config
                    bank = ((k % cfg["Kp"]) * self.hp + h % cfg["Hp"]) * self.wp + w % cfg["Wp"]
                    entry = (k // cfg["Kp"] * job["e0"] + f * job["e1"]
                             + h // cfg["Hp"] * job["e2"] + w // cfg["Wp"])
                    self._check(0 <= entry < self.l1_psum_entries, f"{run}: PE entry "
                                f"{entry} outside 0..{self.l1_psum_entries - 1}")
                    store, at = self.l1["psums"][bank], entry
                else:
                    store, at = self.l1[operand], position
                    self._check(at < len(store), f"{run}: L1 {operand} address {at} "
                                f"outside 0..{len(store) - 1}")
                if kind == "l2_l1":
                    self._check(self.l2[l2] is not None, f"{run}: L2 word {l2} unset")
                    store[at] = self.l2[l2]
                else:
                    self._check(store[at] is not None, f"{run}: L1 word {at} unset")
                    self.l2[l2] = store[at]
                words += 1
            src, dst = ("l2", "l1") if kind == "l2_l1" else ("l1", "l2")
            traffic[src][operand]["reads"] += words
            traffic[dst][operand]["writes"] += words
            counters["cycles"] += JOB_OVERHEAD["l2_l1"] + words
        else:
            self._blocks(job)

    def _blocks(self, job):
        cfg = self.config
        counters = self.counters
        tr = counters["traffic"]["l1"]
        kp, hp, wp = cfg["Kp"], cfg["Hp"], cfg["Wp"]
        T, R, S = cfg["T"], cfg["R"], cfg["S"]
        taps = T * R * S
        cycles = 0
        inputs, weights, banks = self.l1["inputs"], self.l1["weights"], self.l1["psums"]
        for kb, f, hb, wb in itertools.product(range(job["kb"]), range(job["f"]),
                                               range(job["hb"]), range(job["wb"])):
            entry = kb * job["e_kb"] + f * job["e_f"] + hb * job["e_hb"] + wb
            pes = [(kk, i, j) for kk in range(kp) for i in range(hp) for j in range(wp)
                   if kk < job["rem_k"] - kb * kp and i < job["rem_h"] - hb * hp
                   and j < job["rem_w"] - wb * wp]
            acc = {}
            if pes:
                self._check(0 <= entry < self.l1_psum_entries,
                            f"blocks: PE entry {entry} outside 0..{self.l1_psum_entries - 1}")
            for kk, i, j in pes:
                bank = (kk * self.hp + i) * self.wp + j
                if job["load"]:
                    self._check(banks[bank][entry] is not None, "accumulator load unset")
                    acc[kk, i, j] = banks[bank][entry]
                    tr["psums"]["reads"] += 1
                else:
                    acc[kk, i, j] = 0
            for c, t, r, s in itertools.product(range(job["c"]), range(T), range(R), range(S)):
                cycles += 1
                base = (job["in_base"] + f * job["in_f"] + hb * job["in_hb"]
                        + wb * job["wp_step"] + c * job["in_c"] + t * job["in_t"]
                        + r * job["in_r"] + s)
                gf = job["gf"] + f * cfg["sf"] + t
                gh = job["gh"] + hb * job["hp_step"] + r
                gw = job["gw"] + wb * job["wp_step"] + s
                wbase = kb * job["w_kb"] + c * taps + (t * R + r) * S + s
                positions = {(i, j) for _, i, j in pes}
                x = {}
                for i, j in positions:
                    inside = (0 <= gf < cfg["F"] and 0 <= gh + i * cfg["sh"] < cfg["H"]
                              and 0 <= gw + j * cfg["sw"] < cfg["W"])
                    if inside:
                        at = base + i * job["in_row"] + j * job["in_col"]
                        self._check(0 <= at < len(inputs) and inputs[at] is not None,
                                    f"blocks: L1 input {at} unset or outside")
                        x[i, j] = inputs[at]
                        tr["inputs"]["reads"] += 1
                    else:
                        x[i, j] = 0
                wv = {}
                for kk in {kk for kk, _, _ in pes}:
                    at = wbase + kk * job["w_row"]
                    self._check(0 <= at < len(weights) and weights[at] is not None,
                                f"blocks: L1 weight {at} unset or outside")
                    wv[kk] = weights[at]
                    tr["weights"]["reads"] += 1
                for pe in pes:
                    acc[pe] += wv[pe[0]] * x[pe[1], pe[2]]
                    counters["macs"] += 1
            for kk, i, j in pes:
                bank = (kk * self.hp + i) * self.wp + j
                self._check(0 <= entry < self.l1_psum_entries,
                            f"blocks: PE entry {entry} outside")
                banks[bank][entry] = acc[kk, i, j]
                tr["psums"]["writes"] += 1
        counters["cycles"] += JOB_OVERHEAD["blocks"] + cycles

    @staticmethod
    def _check(ok, message):
        if not ok:
            raise MachineError(message)
