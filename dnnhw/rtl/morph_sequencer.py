"""The sequencer of Morph's array: the microprogram of :mod:`.morph_program` in hardware.

A small pipelined machine built around two memories, so that it costs little logic:

- **Fetch.** The program is a ROM (a :class:`~amaranth.lib.memory.Memory` with an
  initial value: block RAM), one word an instruction, read a cycle ahead of decode.
- **Decode.** The instruction's register fields address the register file (a memory
  too, two read ports, a cycle of latency: block RAM), and control flow is decided here:
  ``skipnot`` and ``loop`` choose the next fetch address from the tile loops' flags, so
  neither ever costs a bubble; ``start`` and ``next`` step the tile loops here (the
  instruction in execute still sees the loops as they were).
- **Execute.** One ALU, a multiplier (:data:`MULTIPLIERS`) and a divider. The result is
  written back and forwarded: the register file's reads are a cycle behind its writes.

Every instruction takes exactly :func:`.morph_program.instruction_cycles` cycles in the
execute stage, a ``run`` its load cycles plus its job's, which is what makes the array's
cycle count the model's.

The engines do not see the register file. A ``run`` loads its job's registers, two a
cycle, into its engine's *job window* (``job``: one set of flip-flops the engines share,
as they never run at once), then starts the job; the window holds until the next ``run``
loads it. The register codes a run loads sit in the ROM after the program, two pairs a
word, read while the run executes (the ROM reads its successor again before it leaves).
The layer values the engines read besides (:data:`LAYER`) and the tile loops' trip
counts are shadow registers, written whenever the register file is written at their
index (configuration writes included). ``li`` reads its immediate from the register
file, where it is a constant above the program's registers; the read-only registers (the
tile indices, the image) are read from the tile loops, in decode.
"""

from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ._checks import check_int
from .morph_loops import TileLoops
from .morph_program import DIMS, DIV_CYCLES, ENGINES, JOBS, LOAD_CYCLES, RUNS, WINDOWS
from .ram import registered_read


__all__ = ["MorphSequencer", "OPCODES", "MULTIPLIERS", "LAYER"]

OPCODES = ("li", "add", "sub", "min", "max", "mul", "cdiv", "sel", "skipnot", "loop",
           "start", "next", "run", "done")
#: ``dsp``: operands registered, then one multiply (2 cycles, maps to DSP blocks);
#: ``serial``: one bit a cycle (1 + value_width cycles, no multiplier at all).
MULTIPLIERS = ("dsp", "serial")
#: The configuration registers the engines read besides their job window (``layer``).
LAYER = ("T", "R", "S", "sf", "sh", "sw", "F", "H", "W", "Kp", "Hp", "Wp")
#: The operands the program may ask of its operations, by operand: psums and inputs are
#: indexed by the images, weights not; N is the sixth dimension of the L2 loops.
_RELEVANT = {"inputs": "NCFHW", "weights": "KC", "psums": "NKFHW"}
_DIM_INDEX = {d: i for i, d in enumerate(DIMS + "N")}
_ALU = ("add", "sub", "min", "max", "mul", "cdiv", "sel")
#: Register codes of the read-only registers (tile indices, the image): the top
#: ``_SPECIALS`` codes of a register field.
_SPECIALS = 16
#: Quotient bits of ``cdiv``: one a cycle after the first.
_QUOTIENT_BITS = DIV_CYCLES - 1


def _bits(count):
    """Bits of an unsigned number below ``count`` (at least one)."""
    return max(1, (count - 1).bit_length())


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
    layer_bits : dict of str to int, optional
        Members of :data:`LAYER` the engines only read in a few low bits (and test for
        being larger): ``{name: k}`` keeps ``k`` bits of the value and one more, set when
        any higher bit is (see ``layer``), instead of ``value_width``.

    Members
    -------
    config_we, config_addr, config_data : In
        A register write, taken while not ``running``.
    order2, order1 : In(ArrayLayout(3, 5))
        The loop orders (dimension indices of ``KCFHW``, outermost first).
    start : In(1)
        Begins the program at instruction 0 (while not running, and not in the first
        cycle after reset).
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
    job : Out(UnionLayout({engine: StructLayout({name: signed(value_width)})}))
        The job window, a view per engine of :data:`~.morph_program.WINDOWS`
        (``job.dram.rows0``, ``job.l2l1.e0``, ``job.blocks.in_base``, ...): the job's
        registers from ``job_start`` until the next ``run`` loads the window again (so
        while the job runs). The members of a window a job does not have (``e0..e2`` of
        the L2-L1 transfers of inputs and weights) hold stale values.
    layer : Out(StructLayout({name: signed(value_width) for name in LAYER}))
        The registers of :data:`LAYER`, always current; a member of ``layer_bits`` is its
        low ``k`` bits, with bit ``k`` set if any higher bit of the register is (so it
        is zero, below ``2 ** k``, or equal to a value below ``2 ** k`` exactly when the
        register is).
    error : Out(1)
        A ``cdiv`` by a number below 1 (one cycle, the ``cdiv``'s first; its result is
        then meaningless).
    """

    def __init__(self, *, program, value_width=32, index_width=8, multiplier="dsp",
                 layer_bits=None):
        self._program = program
        self._value_width = check_int("value_width", value_width, 16, 32)
        layer_bits = dict(layer_bits or {})
        for name, bits in layer_bits.items():
            if name not in LAYER:
                raise ValueError(f"layer_bits names {name!r}, not one of {', '.join(LAYER)}")
            check_int(f"layer_bits[{name!r}]", bits, 1, value_width - 1)
        self._layer_bits = layer_bits
        self._index_width = check_int("index_width", index_width, 1, 12)
        if multiplier not in MULTIPLIERS:
            raise ValueError(f"multiplier must be one of {', '.join(MULTIPLIERS)}, "
                             f"got {multiplier!r}")
        self._multiplier = multiplier
        self._count = max(program.registers.values()) + 1
        self._prepare()
        vw = value_width
        super().__init__({
            "config_we": In(1),
            "config_addr": In(range(self._count)),
            "config_data": In(signed(vw)),
            "order2": In(data.ArrayLayout(unsigned(3), len(DIMS))),
            "order1": In(data.ArrayLayout(unsigned(3), len(DIMS))),
            "start": In(1),
            "abort": In(1),
            "running": Out(1),
            "done": Out(1),
            "job_start": Out(1),
            "job_run": Out(range(len(RUNS))),
            "job_busy": In(1),
            "job": Out(data.UnionLayout({
                engine: data.StructLayout({name: signed(vw) for name in names})
                for engine, names in WINDOWS.items()})),
            "layer": Out(data.StructLayout({name: signed(vw) for name in LAYER})),
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

    # ---- the program as ROM words ---------------------------------------------------
    def _prepare(self):
        """Check the program and lay out the ROM (the program, a ``done``, the load
        tables) and the register file's constants."""
        program = self._program
        names, code = program.registers, program.code
        runs = list(RUNS)
        specials = sorted({index for name, index in names.items()
                           if name == "n" or ".index_" in name})
        by_index = {index: name for name, index in names.items()}
        if len(specials) > _SPECIALS:
            raise ValueError(f"the program has {len(specials)} read-only registers, the "
                             f"sequencer reads at most {_SPECIALS}")
        self._special_names = [by_index[i] for i in specials]
        self._flags = sorted({ins[-1] for ins in code if ins[0] in ("sel", "skipnot", "loop")})
        flag_index = {name: i for i, name in enumerate(self._flags)}
        constants = list(dict.fromkeys(ins[2] for ins in code if ins[0] == "li"))

        # The load tables: pairs 1.. of each run's registers (pair 0 is in the run's word),
        # two pairs a word, each table at a multiple of its size rounded up to a power of
        # two (so its words are the base OR an index).
        pair_names = {run: self._pair_names(run) for run in runs}
        tables = {}
        for run in runs:
            tables.setdefault(tuple(pair_names[run][1:]), []).append(run)
        address = len(code) + 1          # after the program and a `done`
        layout = {}
        for pairs in sorted(tables, key=len, reverse=True):
            entries = -(-len(pairs) // 2)
            size = 1 << _bits(max(1, entries))
            address = -(-address // size) * size
            layout[pairs] = address
            address += entries
        depth = 1 << _bits(address)
        self._pc_width = _bits(depth)
        self._fw = _bits(max(1, len(self._flags), len(runs)))
        self._reg_width = rw = max(_bits(self._count + len(constants) + _SPECIALS),
                                   self._pc_width, 5)
        self._word = data.StructLayout({"ra": rw, "rb": rw, "rd": rw, "op": 4,
                                        "flag": self._fw,
                                        "pad": max(0, rw - 4 - self._fw)})
        special_base = (1 << rw) - _SPECIALS
        self._constants = {self._count + i: value for i, value in enumerate(constants)}
        constant_index = {value: index for index, value in self._constants.items()}

        def reg(index, written=False):
            if index in specials:
                if written:
                    raise ValueError(f"the program writes the read-only register "
                                     f"{by_index[index]}")
                return special_base + specials.index(index)
            return index

        def word(op, rd=0, ra=0, rb=0, flag=0):
            return self._word.const({"op": OPCODES.index(op), "rd": rd, "ra": ra, "rb": rb,
                                     "flag": flag}).as_value().value

        rom = []
        for ins in code:
            op = ins[0]
            if op == "li":
                rom.append(word(op, rd=reg(ins[1], True), ra=constant_index[ins[2]]))
            elif op in _ALU:
                rom.append(word(op, rd=reg(ins[1], True), ra=reg(ins[2]), rb=reg(ins[3]),
                                flag=flag_index[ins[4]] if op == "sel" else 0))
            elif op == "skipnot":
                rom.append(word(op, flag=flag_index[ins[1]]))
            elif op == "loop":
                rom.append(word(op, rd=ins[1], flag=flag_index[ins[2]]))
            elif op in ("start", "next"):
                rom.append(word(op, rd=int(ins[1] == "l2")))
            elif op == "run":
                a, b = (reg(names[n]) for n in pair_names[ins[1]][0])
                rom.append(word(op, rd=layout[tuple(pair_names[ins[1]][1:])], ra=a, rb=b,
                                flag=runs.index(ins[1])))
            elif op == "done":
                rom.append(word(op))
            else:
                raise ValueError(f"unknown instruction {ins}")
        rom.append(word("done"))
        rom += [0] * (depth - len(rom))
        for pairs, base in layout.items():
            codes = [reg(names[n]) for pair in pairs for n in pair]
            for i in range(0, len(codes), 4):
                rom[base + i // 4] = sum(c << (rw * j) for j, c in enumerate(codes[i:i + 4]))
        self._rom = rom
        # The read ports that ever read a read-only register: the others need no path.
        reads = [[ins[2] for ins in code if ins[0] in _ALU],
                 [ins[3] for ins in code if ins[0] in _ALU]]
        for run in runs:
            for a, b in pair_names[run]:
                reads[0].append(names[a])
                reads[1].append(names[b])
        self._special_ports = [any(index in specials for index in port) for port in reads]

    def _pair_names(self, run):
        """The register names a ``run`` loads, two a cycle (an odd window's last pair
        twice its last register). Its engine's :data:`~.morph_program.LOAD_CYCLES` may be
        more: the reads of those cycles load nothing."""
        window, _, _ = RUNS[run]
        regs = [f"{window}.{name}" for name in JOBS[window]]
        regs += regs[-1:] * (len(regs) % 2)
        return tuple(zip(regs[0::2], regs[1::2]))

    # ---- the hardware ---------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        program, vw, iw = self._program, self._value_width, self._index_width
        names = program.registers
        rw = self._reg_width
        runs = list(RUNS)
        ops = {op: OPCODES.index(op) for op in OPCODES}

        # ---- the register file's write port and the shadows ---------------------------
        we = Signal()
        waddr = Signal(range(max(self._count, 2)))
        wdata = Signal(signed(vw))
        trips2 = {d: Signal(iw + 1, name=f"trips2_{d}") for d in DIMS}
        trips1 = {d: Signal(iw + 1, name=f"trips1_{d}") for d in DIMS}
        trips_n = Signal(iw + 1)
        shadows = []
        for name in LAYER:
            if name in self._layer_bits:
                bits = self._layer_bits[name]
                narrow = Signal(bits + 1, name=f"layer_{name}")
                m.d.comb += getattr(self.layer, name).eq(narrow)
                with m.If(we & (waddr == names[name])):
                    m.d.sync += narrow.eq(Cat(wdata[:bits], wdata[bits:].any()))
            else:
                shadows.append((names[name], getattr(self.layer, name)))
        shadows += [(names[f"trips2_{d}"], trips2[d]) for d in DIMS]
        shadows += [(names[f"l2.trips_{d}"], trips1[d]) for d in DIMS]
        shadows.append((names["N"], trips_n))
        for index, shadow in shadows:
            with m.If(we & (waddr == index)):
                m.d.sync += shadow.eq(wdata[:len(shadow)])

        # ---- tile loops and flags -----------------------------------------------------
        m.submodules.l2 = l2 = TileLoops(index_width=iw, dimensions=6)
        m.submodules.l1 = l1 = TileLoops(index_width=iw, dimensions=5)
        for p in range(len(DIMS)):
            m.d.comb += [l2.order[p + 1].eq(self.order2[p]), l1.order[p].eq(self.order1[p])]
        m.d.comb += l2.order[0].eq(_DIM_INDEX["N"])
        for d in DIMS:
            m.d.comb += [l2.trips[_DIM_INDEX[d]].eq(trips2[d]),
                         l1.trips[_DIM_INDEX[d]].eq(trips1[d])]
        m.d.comb += l2.trips[_DIM_INDEX["N"]].eq(trips_n)
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
        flags = Signal(max(1, len(self._flags)))
        m.d.comb += flags.eq(Cat(*(flag_value(name) for name in self._flags)))

        def special_value(name):
            if name == "n":
                return l2.index[_DIM_INDEX["N"]]
            level, _, d = name.partition(".index_")
            return loops[level].index[_DIM_INDEX[d]]
        specials = Array(special_value(name) for name in self._special_names)

        # ---- fetch: the ROM, a cycle ahead of decode ----------------------------------
        m.submodules.rom = rom = Memory(shape=self._word.size, depth=len(self._rom),
                                        init=self._rom)
        fetch = rom.read_port()
        ins = data.View(self._word, fetch.data)      # the instruction in decode
        pc = Signal(self._pc_width)                    # its address

        # ---- the register file: two read ports, the write before forwarded ------------
        m.submodules.regfile = regfile = Memory(
            shape=signed(vw), depth=1 << rw,
            init=[self._constants.get(i, 0) for i in range(1 << rw)])
        wport = regfile.write_port()
        m.d.comb += [wport.en.eq(we), wport.addr.eq(waddr), wport.data.eq(wdata)]
        last = Signal(signed(vw))                      # the last value written
        with m.If(we):
            m.d.sync += last.eq(wdata)
        raddr = [Signal(rw, name="raddr_a"), Signal(rw, name="raddr_b")]
        ren = Signal()
        operands = []
        for i, addr in enumerate(raddr):
            # Not regfile.read_port(): its data register is undefined in Verilog and not
            # reset. The reads in reset, at addresses decoded from the fetch register's
            # own undefined first word, left X there that reached the ALU's state; this
            # one is 0 after reset.
            port = registered_read(m, regfile, name=f"read_{'ab'[i]}")
            forward = Signal(name=f"forward_{'ab'[i]}")
            m.d.comb += [port.addr.eq(addr), port.en.eq(ren)]
            # (A write is always in a cycle that reads: the forwarding is the read's.)
            with m.If(ren):
                m.d.sync += forward.eq(we & (addr == waddr))
            value = Mux(forward, last, port.data)
            if self._special_ports[i]:
                special = Signal(name=f"special_{'ab'[i]}")
                special_data = Signal(iw, name=f"special_data_{'ab'[i]}")
                with m.If(ren):
                    m.d.sync += [special.eq(addr[4:] == (1 << (rw - 4)) - 1),
                                 special_data.eq(specials[addr[:4]])]
                value = Mux(special, special_data, value)
            operand = Signal(signed(vw), name="ab"[i])
            m.d.comb += operand.eq(value)
            operands.append(operand)
        a, b = operands

        # ---- execute ------------------------------------------------------------------
        op = Signal(4)                                 # the instruction in execute
        rd = Signal(rw)
        field = Signal(self._fw)                       # its flag field (a run's index)
        flag = Signal()                                # its flag, read in decode
        phase = Signal(range(max(self.mul_cycles, DIV_CYCLES, max(LOAD_CYCLES.values()) + 1)
                             + 1))
        waiting = Signal()                             # a job was launched, may still run
        execute = Signal()
        m.d.comb += execute.eq(self.running & ~(waiting & self.job_busy) & ~self.abort)
        with m.If(execute):
            m.d.sync += [waiting.eq(0), phase.eq(phase + 1)]
        is_op = {name: op == code for name, code in ops.items()}

        # The ALU: one adder for add, sub and the comparisons.
        subtract = is_op["sub"] | is_op["min"] | is_op["max"]
        total = Signal(signed(vw))
        m.d.comb += total.eq((Cat(subtract, a) + Cat(subtract, b ^ subtract.replicate(vw)))[1:])
        less = Mux(a[-1] != b[-1], a[-1], total[-1])   # a < b, signed
        pick_a = Mux(is_op["sel"], flag, Mux(is_op["min"], less,
                                             Mux(is_op["max"], ~less, is_op["li"])))
        chosen = Mux(pick_a, a, b)

        # mul and cdiv: a shift-and-add accumulator.
        long_result, long_last, div_error = self._long_ops(m, a, b, phase, is_op)
        m.d.comb += self.error.eq(execute & is_op["cdiv"] & (phase == 0) & div_error)
        result = Signal(signed(vw))
        m.d.comb += result.eq(Mux(is_op["add"] | is_op["sub"], total,
                                  Mux(is_op["mul"] | is_op["cdiv"], long_result, chosen)))

        load_cycles = Signal(range(max(LOAD_CYCLES.values()) + 1))
        with m.Switch(field):
            for i, run in enumerate(runs):
                with m.Case(i):
                    m.d.comb += load_cycles.eq(LOAD_CYCLES[ENGINES[RUNS[run][1]]])
        complete = Signal()                            # the instruction's last cycle
        write = Signal()
        with m.Switch(op):
            with m.Case(ops["li"], ops["add"], ops["sub"], ops["min"], ops["max"],
                        ops["sel"]):
                m.d.comb += [complete.eq(1), write.eq(1)]
            with m.Case(ops["mul"], ops["cdiv"]):
                m.d.comb += [complete.eq(long_last), write.eq(long_last)]
            with m.Case(ops["run"]):
                m.d.comb += complete.eq(phase == load_cycles)
            with m.Default():
                m.d.comb += complete.eq(1)
        finish = Signal()                              # execute moves to the next one
        m.d.comb += finish.eq(execute & complete)
        with m.If(finish):
            m.d.sync += phase.eq(0)

        # The job window: pair k of the run's registers into members 2k and 2k + 1.
        loading = Signal()
        m.d.comb += [loading.eq(execute & is_op["run"] & (phase < load_cycles)),
                     self.job_start.eq(execute & is_op["run"] & (phase == load_cycles)),
                     self.job_run.eq(field)]
        with m.If(self.job_start):
            m.d.sync += waiting.eq(1)
        window = Signal(len(self.job.as_value()))
        written = {instruction[1] for instruction in program.code
                   if instruction[0] in _ALU or instruction[0] == "li"}
        for member in range(len(window) // vw):
            bits = slice(member * vw, (member + 1) * vw)
            holds = [i for i, run in enumerate(runs) if member < len(JOBS[RUNS[run][0]])]
            sources = {names[f"{RUNS[runs[i]][0]}.{JOBS[RUNS[runs[i]][0]][member]}"]
                       for i in holds}
            layer = [name for name in LAYER if {names[name]} == sources
                     and name not in self._layer_bits]
            if layer and names[layer[0]] not in written:
                # Always the same layer value: its shadow, no flip-flops of its own.
                m.d.comb += self.job.as_value()[bits].eq(getattr(self.layer, layer[0]))
                continue
            m.d.comb += self.job.as_value()[bits].eq(window[bits])
            if not holds:
                continue
            here = Cat(*(field == i for i in holds)).any() if len(holds) < len(runs) else 1
            with m.If(loading & (phase == member // 2) & here):
                m.d.sync += window[bits].eq((a, b)[member % 2])

        # ---- decode: control flow, the tile loops, the next fetch ---------------------
        advance = Signal()          # decode's instruction moves to execute
        m.d.comb += advance.eq((finish & ~is_op["done"]) | (~self.running & self.start))
        flag_d = flags.bit_select(ins.flag, 1)
        target = Signal(self._pc_width)
        m.d.comb += target.eq(pc + 1)
        with m.If(ins.op == ops["skipnot"]):
            m.d.comb += target.eq(pc + 1 + ~flag_d)
        with m.If((ins.op == ops["loop"]) & flag_d):
            m.d.comb += target.eq(ins.rd)
        with m.If(advance):
            m.d.sync += [op.eq(ins.op), rd.eq(ins.rd), field.eq(ins.flag), flag.eq(flag_d)]
            for level, loop, chosen_level in (("l2", l2, ins.rd[0]), ("l1", l1, ~ins.rd[0])):
                with m.If(chosen_level & (ins.op == ops["start"])):
                    m.d.comb += loop.start.eq(1)
                    m.d.sync += held[level].eq(0)
                with m.If(chosen_level & (ins.op == ops["next"])):
                    m.d.comb += loop.advance.eq(1)
                    m.d.sync += held[level].eq(1)

        stop = Signal()             # done, or an abort: back to idle, instruction 0 next
        m.d.comb += stop.eq(self.running & (self.abort | (finish & is_op["done"])))
        m.d.comb += self.done.eq(finish & is_op["done"])
        # A run reads its load table through the fetch port: word 0 instead of its
        # successor, word j in its phase 2j - 1, and its successor again in its last
        # load cycle.
        odd = phase[0]
        m.d.comb += fetch.en.eq(0)     # decode holds its instruction
        with m.If(advance):
            m.d.comb += [fetch.addr.eq(Mux(ins.op == ops["run"], ins.rd, target)),
                         fetch.en.eq(1)]
            m.d.sync += pc.eq(target)
        with m.Elif(~self.running | stop):
            # Idle: instruction 0 waits in decode, its operands read.
            m.d.comb += [fetch.addr.eq(0), fetch.en.eq(1)]
            m.d.sync += pc.eq(0)
        with m.Elif(loading & (phase + 1 == load_cycles)):
            m.d.comb += [fetch.addr.eq(pc), fetch.en.eq(1)]
        with m.Elif(loading & odd & (phase + 2 < load_cycles)):
            m.d.comb += [fetch.addr.eq(rd | ((phase + 1) >> 1)), fetch.en.eq(1)]
        # Register reads: decode's operands, or the run's next pair (from the table word:
        # the first pair where an instruction's ra and rb are, the second after them).
        word = fetch.data
        with m.If(loading & odd & (phase + 1 < load_cycles)):
            m.d.comb += [raddr[0].eq(word[2 * rw:3 * rw]), raddr[1].eq(word[3 * rw:4 * rw]),
                         ren.eq(1)]
        with m.Else():
            m.d.comb += [raddr[0].eq(ins.ra), raddr[1].eq(ins.rb),
                         ren.eq(advance | ~self.running | (loading & (phase + 1 < load_cycles)))]

        # ---- write back, configuration, start and stop --------------------------------
        with m.If(self.running):
            m.d.comb += [we.eq(execute & write), waddr.eq(rd), wdata.eq(result)]
        with m.Else():
            m.d.comb += [we.eq(self.config_we), waddr.eq(self.config_addr),
                         wdata.eq(self.config_data)]
        with m.If(~self.running & self.start):
            m.d.sync += [self.running.eq(1), waiting.eq(0), phase.eq(0)]
        with m.If(stop):
            m.d.sync += [self.running.eq(0), waiting.eq(0), phase.eq(0)]
        return m

    def _long_ops(self, m, a, b, phase, is_op):
        """``mul`` and ``cdiv``: ``(result, last, divide_error)``, the result valid in the
        last cycle. Both shift an accumulator left once a cycle from phase 1 (cleared in
        phase 0; the operands hold meanwhile, as the register file's read ports do): the
        serial multiply adds ``a`` for each bit of ``b``, the most significant first; the
        division by restoring adds its quotient bits (``floor(a / b)`` of the low
        ``_QUOTIENT_BITS`` bits of ``a``), and one more in its last cycle if the
        remainder is not zero."""
        vw, qb = self._value_width, _QUOTIENT_BITS
        is_mul, is_div = is_op["mul"], is_op["cdiv"]
        clear = phase == 0
        # Division: one restoring step a cycle.
        rem = Signal(qb)
        den = b.as_unsigned()[:qb + 1]
        dividend_bit = Cat(0, a.as_unsigned()[:qb][::-1]).bit_select(phase, 1)  # qb - phase
        shifted = Cat(dividend_bit, rem)                           # qb + 1 bits
        diff = shifted - den                                       # negative: no fit
        fits = ~diff[-1]
        rem_next = Mux(fits, diff[:qb], shifted[:qb])
        div_last = phase == DIV_CYCLES - 1
        m.d.sync += rem.eq(Mux(clear, 0, rem_next))
        # The accumulator.
        acc = Signal(vw)
        if self._multiplier == "serial":
            multiplier_bit = Cat(0, b.as_unsigned()[::-1]).bit_select(phase, 1)  # vw - phase
            adding = is_mul & multiplier_bit
            addend = Cat(Mux(is_mul, a[0] & multiplier_bit, fits),
                         a.as_unsigned()[1:] & adding.replicate(vw - 1))
        else:
            addend = fits
        carry = is_div & div_last & (rem_next != 0)
        step = (Cat(1, (acc << 1)[:vw]) + Cat(carry, addend))[1:vw + 1]
        m.d.sync += acc.eq(Mux(clear, 0, step))
        mul_last = phase == self.mul_cycles - 1
        if self._multiplier == "dsp":
            # Registered operands, then the product: the DSP blocks' input registers.
            op_a = Signal(signed(vw))
            op_b = Signal(signed(vw))
            m.d.sync += [op_a.eq(a), op_b.eq(b)]
            result = Mux(is_mul, (op_a * op_b)[:vw], step)
        else:
            result = step
        return result, Mux(is_mul, mul_last, div_last), b <= 0
