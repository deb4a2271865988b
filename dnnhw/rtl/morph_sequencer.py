"""The sequencer of Morph's array: the microprogram of :mod:`.morph_program` in hardware.

A non-pipelined machine: every cycle it executes the instruction at ``pc`` unless a
multi-cycle instruction (``mul``, ``cdiv``) is under way or a launched job still runs.
The program is fixed at construction and becomes a case statement on ``pc`` (a ROM); the
mapping is data in the register file, written through the configuration port while the
sequencer is idle. Two :class:`~.morph_loops.TileLoops` step the L2 tiles (the images
outermost) and the L1 tiles in the orders given at run time, and raise the flags the
program tests. Each instruction takes exactly :func:`.morph_program.instruction_cycles`
cycles, and a ``run`` one cycle plus its job's, which is what makes the array's cycle
count the model's.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ._checks import check_int
from .morph_loops import TileLoops
from .morph_program import DIMS, DIV_CYCLES, RUNS


__all__ = ["MorphSequencer", "OPCODES", "MULTIPLIERS"]

OPCODES = ("li", "add", "sub", "min", "max", "mul", "cdiv", "sel", "skipnot", "loop",
           "start", "next", "run", "done")
#: ``dsp``: operands registered, then one multiply (2 cycles, maps to DSP blocks);
#: ``serial``: one bit a cycle (1 + value_width cycles, no multiplier at all).
MULTIPLIERS = ("dsp", "serial")
#: The operands the program may ask of its operations, by operand: psums and inputs are
#: indexed by the images, weights not; N is the sixth dimension of the L2 loops.
_RELEVANT = {"inputs": "NCFHW", "weights": "KC", "psums": "NKFHW"}
_DIM_INDEX = {d: i for i, d in enumerate(DIMS + "N")}


class MorphSequencer(wiring.Component):
    """The microprogrammed sequencer.

    Parameters
    ----------
    program : :class:`~.morph_program.Program`
    value_width : int
        Bits of a register, 16 to 32.
    index_width : int
        Bits of a tile index, 1 to 12 (at most ``2 ** index_width`` tiles per dimension).
    multiplier : str
        One of :data:`MULTIPLIERS`.

    Members
    -------
    config_we, config_addr, config_data : In
        A register write, taken while not ``running``.
    order2, order1 : In(ArrayLayout(3, 5))
        The loop orders (dimension indices of ``KCFHW``, outermost first).
    start : In(1)
        Begins the program at instruction 0 (while not running).
    abort : In(1)
        Stops it (an engine's error).
    running : Out(1)
        From the cycle after ``start`` to the ``done`` instruction's cycle, inclusive.
    done : Out(1)
        One cycle: the ``done`` instruction.
    job_start : Out(1), job_run : Out(range(len(RUNS)))
        A ``run``: which of :data:`~.morph_program.RUNS`, by its index in that dict.
    job_busy : In(1)
        The launched job still runs (its engine's ``busy``, from the next cycle on).
    registers : Out(ArrayLayout(signed(value_width), register_count))
        The register file, for the engines' job registers.
    error : Out(1)
        A ``cdiv`` by a number below 1 (one cycle; the result is then 0).
    """

    def __init__(self, *, program, value_width=32, index_width=8, multiplier="dsp"):
        self._program = program
        self._value_width = check_int("value_width", value_width, 16, 32)
        self._index_width = check_int("index_width", index_width, 1, 12)
        if multiplier not in MULTIPLIERS:
            raise ValueError(f"multiplier must be one of {', '.join(MULTIPLIERS)}, "
                             f"got {multiplier!r}")
        self._multiplier = multiplier
        self._count = max(program.registers.values()) + 1
        super().__init__({
            "config_we": In(1),
            "config_addr": In(range(self._count)),
            "config_data": In(signed(value_width)),
            "order2": In(data.ArrayLayout(unsigned(3), len(DIMS))),
            "order1": In(data.ArrayLayout(unsigned(3), len(DIMS))),
            "start": In(1),
            "abort": In(1),
            "running": Out(1),
            "done": Out(1),
            "job_start": Out(1),
            "job_run": Out(range(len(RUNS))),
            "job_busy": In(1),
            "registers": Out(data.ArrayLayout(signed(value_width), self._count)),
            "error": Out(1),
        })

    @property
    def program(self):
        return self._program

    @property
    def register_count(self):
        return self._count

    @property
    def mul_cycles(self):
        """Cycles of a ``mul``: what :func:`~.morph_program.timing` must be given."""
        return 2 if self._multiplier == "dsp" else 1 + self._value_width

    def elaborate(self, platform):
        m = Module()
        program, vw = self._program, self._value_width
        names = program.registers
        code = program.code
        flag_names = sorted({ins[-1] for ins in code if ins[0] in ("sel", "skipnot", "loop")}
                            | {ins[1] for ins in code if ins[0] == "skipnot"})
        flag_index = {name: i for i, name in enumerate(flag_names)}
        runs = list(RUNS)

        # ---- tile loops and flags ------------------------------------------------------
        m.submodules.l2 = l2 = TileLoops(index_width=self._index_width, dimensions=6)
        m.submodules.l1 = l1 = TileLoops(index_width=self._index_width, dimensions=5)
        regs = [Signal(signed(vw), name=f"r{i}") for i in range(self._count)]
        for p in range(len(DIMS)):
            m.d.comb += [l2.order[p + 1].eq(self.order2[p]), l1.order[p].eq(self.order1[p])]
        m.d.comb += l2.order[0].eq(_DIM_INDEX["N"])
        for d in DIMS:
            m.d.comb += [l2.trips[_DIM_INDEX[d]].eq(regs[names[f"trips2_{d}"]]),
                         l1.trips[_DIM_INDEX[d]].eq(regs[names[f"l2.trips_{d}"]])]
        m.d.comb += l2.trips[_DIM_INDEX["N"]].eq(regs[names["N"]])
        loops = {"l2": l2, "l1": l1}
        held = {"l2": Signal(name="held_l2"), "l1": Signal(name="held_l1")}
        continues = {"l2": l2.index[_DIM_INDEX["C"]] != 0,
                     "l1": (l2.index[_DIM_INDEX["C"]] != 0) | (l1.index[_DIM_INDEX["C"]] != 0)}

        def changed(level, operand):
            loop = loops[level]
            return Cat(*(loop.changed[_DIM_INDEX[d]] for d in _RELEVANT[operand]
                         if _DIM_INDEX[d] < loop.dimensions)).any()

        def flag_value(name):
            level, field = name.split(".")
            loop = loops[level]
            if field == "running":
                return loop.running
            if field.startswith("last_"):
                d = _DIM_INDEX[field[-1]]
                return loop.index[d] + 1 == loop.trips[d]
            if field == "continues":
                return continues[level]
            if field == "fill_inputs":
                return changed(level, "inputs")
            if field == "fill_weights":
                return changed(level, "weights")
            if field == "fill_psums":
                return changed(level, "psums") & continues[level]
            if field == "writeback":
                return changed(level, "psums") & held[level]
            raise ValueError(f"the program tests an unknown flag {name}")
        flags = Signal(len(flag_names))
        m.d.comb += flags.eq(Cat(*(flag_value(name) for name in flag_names)))

        # ---- register reads (tile indices and the image read the loops) ---------------
        readable = list(regs)
        for name, index in names.items():
            if name == "n":
                readable[index] = Cat(l2.index[_DIM_INDEX["N"]], Const(0, 1)).as_signed()
            elif ".index_" in name:
                level, _, d = name.partition(".index_")
                readable[index] = Cat(loops[level].index[_DIM_INDEX[d]], Const(0, 1)).as_signed()
        for i, reg in enumerate(regs):
            m.d.comb += self.registers[i].eq(readable[i])
        read_file = Array(readable)

        # ---- the ROM ------------------------------------------------------------------
        pc = Signal(range(len(code) + 1))
        opcode = Signal(range(len(OPCODES)))
        rd = Signal(range(self._count))
        ra = Signal(range(self._count))
        rb = Signal(range(self._count))
        imm = Signal(signed(vw))
        flag_sel = Signal(range(max(1, len(flag_names))))
        target = Signal(range(len(code) + 1))
        level_sel = Signal()          # 1: the L2 loops, 0: the L1 loops
        run_sel = Signal(range(len(runs)))
        with m.Switch(pc):
            for i, ins in enumerate(code):
                with m.Case(i):
                    op = ins[0]
                    m.d.comb += opcode.eq(OPCODES.index(op))
                    if op == "li":
                        m.d.comb += [rd.eq(ins[1]), imm.eq(ins[2])]
                    elif op in ("add", "sub", "min", "max", "mul", "cdiv"):
                        m.d.comb += [rd.eq(ins[1]), ra.eq(ins[2]), rb.eq(ins[3])]
                    elif op == "sel":
                        m.d.comb += [rd.eq(ins[1]), ra.eq(ins[2]), rb.eq(ins[3]),
                                     flag_sel.eq(flag_index[ins[4]])]
                    elif op == "skipnot":
                        m.d.comb += flag_sel.eq(flag_index[ins[1]])
                    elif op == "loop":
                        m.d.comb += [target.eq(ins[1]), flag_sel.eq(flag_index[ins[2]])]
                    elif op in ("start", "next"):
                        m.d.comb += level_sel.eq(ins[1] == "l2")
                    elif op == "run":
                        m.d.comb += run_sel.eq(runs.index(ins[1]))
            with m.Default():
                m.d.comb += opcode.eq(OPCODES.index("done"))

        a = Signal(signed(vw))
        b = Signal(signed(vw))
        flag = Signal()
        m.d.comb += [a.eq(read_file[ra]), b.eq(read_file[rb]), flag.eq(flags.bit_select(flag_sel, 1))]

        # ---- execution ----------------------------------------------------------------
        waiting = Signal()            # a job was launched and may still run
        phase = Signal(range(2 + vw))   # cycles spent in a multi-cycle instruction
        op_a = Signal(signed(vw))
        op_b = Signal(vw)
        acc = Signal(vw)
        # Division: ceil(a / b) = floor((a + b - 1) / b), restoring, 16 quotient bits.
        num = Signal(17)
        den = Signal(17)
        rem = Signal(17)
        quo = Signal(16)

        stalled = Signal()
        m.d.comb += stalled.eq(waiting & self.job_busy)
        execute = Signal()
        m.d.comb += execute.eq(self.running & ~stalled & ~self.abort)

        write = Signal()
        result = Signal(signed(vw))
        advance_pc = Signal()
        m.d.comb += advance_pc.eq(execute)
        with m.If(execute):
            m.d.sync += waiting.eq(0)
            with m.Switch(opcode):
                with m.Case(OPCODES.index("li")):
                    m.d.comb += [write.eq(1), result.eq(imm)]
                with m.Case(OPCODES.index("add")):
                    m.d.comb += [write.eq(1), result.eq(a + b)]
                with m.Case(OPCODES.index("sub")):
                    m.d.comb += [write.eq(1), result.eq(a - b)]
                with m.Case(OPCODES.index("min")):
                    m.d.comb += [write.eq(1), result.eq(Mux(a < b, a, b))]
                with m.Case(OPCODES.index("max")):
                    m.d.comb += [write.eq(1), result.eq(Mux(a > b, a, b))]
                with m.Case(OPCODES.index("sel")):
                    m.d.comb += [write.eq(1), result.eq(Mux(flag, a, b))]
                with m.Case(OPCODES.index("mul")):
                    self._multiply(m, a, b, phase, op_a, op_b, acc, write, result, advance_pc)
                with m.Case(OPCODES.index("cdiv")):
                    last = phase == DIV_CYCLES - 1
                    with m.If(phase == 0):
                        m.d.sync += [num.eq(a + b - 1), den.eq(b), rem.eq(0), quo.eq(0)]
                        with m.If(b < 1):
                            m.d.comb += self.error.eq(1)
                    # one restoring step per cycle, on the latched operands
                    shifted = Cat(num[15], rem[:16])
                    fits = shifted >= den
                    step_rem = Mux(fits, shifted - den, shifted)
                    step_quo = Cat(fits, quo[:15])
                    with m.If(phase != 0):
                        m.d.sync += [rem.eq(step_rem), quo.eq(step_quo), num.eq(num << 1)]
                    with m.If(last):
                        m.d.sync += phase.eq(0)
                        m.d.comb += [write.eq(1),
                                     result.eq(Mux(den == 0, 0, step_quo))]
                    with m.Else():
                        m.d.sync += phase.eq(phase + 1)
                        m.d.comb += advance_pc.eq(0)
                with m.Case(OPCODES.index("start")):
                    with m.If(level_sel):
                        m.d.comb += l2.start.eq(1)
                        m.d.sync += held["l2"].eq(0)
                    with m.Else():
                        m.d.comb += l1.start.eq(1)
                        m.d.sync += held["l1"].eq(0)
                with m.Case(OPCODES.index("next")):
                    with m.If(level_sel):
                        m.d.comb += l2.advance.eq(1)
                        m.d.sync += held["l2"].eq(1)
                    with m.Else():
                        m.d.comb += l1.advance.eq(1)
                        m.d.sync += held["l1"].eq(1)
                with m.Case(OPCODES.index("run")):
                    m.d.comb += [self.job_start.eq(1), self.job_run.eq(run_sel)]
                    m.d.sync += waiting.eq(1)
                with m.Case(OPCODES.index("done")):
                    m.d.comb += [self.done.eq(1), advance_pc.eq(0)]
                    m.d.sync += self.running.eq(0)

        next_pc = Signal.like(pc)
        m.d.comb += next_pc.eq(pc + 1)
        with m.If(execute & (opcode == OPCODES.index("skipnot")) & ~flag):
            m.d.comb += next_pc.eq(pc + 2)
        with m.If(execute & (opcode == OPCODES.index("loop")) & flag):
            m.d.comb += next_pc.eq(target)
        with m.If(advance_pc):
            m.d.sync += pc.eq(next_pc)

        with m.If(write):
            m.d.sync += Array(regs)[rd].eq(result)
        with m.If(~self.running & self.config_we):
            m.d.sync += Array(regs)[self.config_addr].eq(self.config_data)
        with m.If(~self.running & self.start):
            m.d.sync += [self.running.eq(1), pc.eq(0), waiting.eq(0), phase.eq(0)]
        with m.If(self.running & self.abort):
            m.d.sync += [self.running.eq(0), waiting.eq(0), phase.eq(0)]
        return m

    def _multiply(self, m, a, b, phase, op_a, op_b, acc, write, result, advance_pc):
        vw = self._value_width
        if self._multiplier == "dsp":
            # Registered operands, then the product: the DSP blocks' input registers.
            with m.If(phase == 0):
                m.d.sync += [op_a.eq(a), op_b.eq(b), phase.eq(1)]
                m.d.comb += advance_pc.eq(0)
            with m.Else():
                m.d.sync += phase.eq(0)
                m.d.comb += [write.eq(1), result.eq((op_a * op_b.as_signed())[:vw])]
            return
        # One bit of b a cycle: acc += a << i when bit i of b is set (the low vw bits of
        # the product are the same for signed and unsigned operands).
        addend = Mux(op_b[0], op_a, 0)
        with m.If(phase == 0):
            m.d.sync += [op_a.eq(a), op_b.eq(b), acc.eq(0), phase.eq(1)]
            m.d.comb += advance_pc.eq(0)
        with m.Elif(phase == vw):
            m.d.sync += phase.eq(0)
            m.d.comb += [write.eq(1), result.eq(acc + addend)]
        with m.Else():
            m.d.sync += [acc.eq(acc + addend), op_a.eq(op_a << 1), op_b.eq(op_b >> 1),
                         phase.eq(phase + 1)]
            m.d.comb += advance_pc.eq(0)
