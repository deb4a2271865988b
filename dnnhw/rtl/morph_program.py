"""The sequencer program of Morph's array: the loop nest of ``docs/morph.md`` as microcode.

The array's sequencer is a small in-order machine with one ALU, a register file and a
program ROM, plus two hardware tile-loop counters (:class:`~dnnhw.rtl.morph_loops.TileLoops`)
that step the L2 and L1 tiles in the mapping's run-time orders. This module writes its one
program, the same for every layer and mapping: at each L2 step it turns the tile indices
into tile starts, ragged lengths, clipped halo boxes and base addresses, then launches the
transfers whose operand changed; inside, the same per L1 step, then the PE blocks. The
mapping is data (the configuration registers the host loader writes); the program never
changes, so one build runs every layer.

Everything here is plain Python (no Amaranth): the ROM's contents, the register map the
loader writes, and the fixed costs that become the array's timing constants. The RTL
executes this ROM; :mod:`dnnhw.sim.morph_machine` executes it in Python, which is how the
program is checked against the model before any RTL runs it.

The machine
-----------
Registers are ``value_width`` bits, two's complement. Instructions:

``li d, imm``, ``add d, a, b``, ``sub d, a, b``, ``min d, a, b``, ``max d, a, b`` (signed)
    one cycle each.
``mul d, a, b``
    ``d = a * b`` (the low bits), the build's multiplier cycles (:data:`MUL_CYCLES` with
    DSP blocks).
``cdiv d, a, b``
    ``d = ceil(a / b)`` for ``a >= 0, b >= 1``, :data:`DIV_CYCLES` cycles.
``sel d, a, b, flag``
    ``d = a if flag else b``, one cycle.
``skip flag`` / ``skipnot flag``
    skip the next instruction if ``flag`` is set / clear; one cycle either way.
``jump label`` / ``loop label, flag``
    jump always / while ``flag`` (one cycle).
``start L`` / ``next L``
    start level ``L``'s tile loops (``"l2"``: images outermost, then the L2 tiles;
    ``"l1"``: the L1 tiles of the L2 tile) / advance them; one cycle.
``run job``
    run a transfer or the PE blocks with the job's registers: load them into the
    engine's job window (:data:`LOAD_CYCLES`, two a cycle), start the job the cycle after,
    then the job.
``done``
    the layer is finished.

Flags (from the tile loops): ``<L>.running``, ``<L>.last_<d>`` (dimension ``d``'s index is
its last), and per operand ``<L>.fill_inputs``, ``<L>.fill_weights``, ``<L>.fill_psums``
(the operand's tile changed; for partial sums: and its channels do not start at 0) and
``<L>.writeback`` (the partial-sum tile changed and one is held). Read-only registers:
``<L>.index_<d>`` and ``n`` (the image).
"""

from dataclasses import dataclass


__all__ = ["Program", "sequencer_program", "timing", "instruction_cycles", "CONFIG", "JOBS",
           "RUNS", "COUNTERS", "ADDRESS_ORDER2", "ADDRESS_ORDER1", "ADDRESS_START",
           "MUL_CYCLES", "DIV_CYCLES",
           "JOB_OVERHEAD", "DIMS", "ENGINES", "WINDOWS", "LOAD_CYCLES"]

DIMS = "KCFHW"

#: Cycles of a multiply with the DSP multiplier (operands registered, then the product;
#: the serial one takes 1 + value_width, :attr:`MorphSequencer.mul_cycles`) and of a
#: ceiling division (16 quotient bits, one a cycle, plus one to start).
MUL_CYCLES = 2
DIV_CYCLES = 17

#: Fixed cycles of each kind of job beyond its words (the engine's pipeline); a DRAM fill
#: also waits for the memory's latency. The RTL engines must take exactly these.
JOB_OVERHEAD = {"dram_read": 0, "dram_write": 1, "l2_l1": 1, "blocks": 4}

#: The configuration registers the loader writes, in register-file order.
CONFIG = (
    # the layer
    "N", "C", "F", "H", "W", "K", "T", "R", "S", "sf", "sh", "sw", "pf", "ph", "pw",
    "Fo", "Ho", "Wo",
    # derived by the loader: tap counts and the DRAM tensors' strides
    "TRS", "RS", "x_n", "x_c", "x_f", "w_k", "y_n", "y_k", "y_f",
    # tiles: sizes per level, the L2 trips, and the L1 trips of a full and of the last
    # L2 tile
    *(f"t2_{d}" for d in DIMS), *(f"t1_{d}" for d in DIMS), *(f"trips2_{d}" for d in DIMS),
    *(f"trips1_{d}" for d in DIMS), *(f"trips1_last_{d}" for d in DIMS),
    # the PE block, the L2 regions, the tensors
    "Kp", "Hp", "Wp", "l2_inputs", "l2_weights", "l2_psums",
    "x_base", "w_base", "y_base",
)

#: Each job's registers: what its engine reads when ``run`` launches it.
JOBS = {
    # DRAM <-> L2, one request per row: three row loops, the row's length, the DRAM
    # strides of the three loops, the first row's DRAM address, the L2 tile's address.
    "dram_inputs": ("rows0", "rows1", "rows2", "row_len", "ds0", "ds1", "ds2",
                    "dram_addr", "l2_addr"),
    "dram_weights": ("rows0", "rows1", "rows2", "row_len", "ds0", "ds1", "ds2",
                     "dram_addr", "l2_addr"),
    "dram_psums": ("rows0", "rows1", "rows2", "row_len", "ds0", "ds1", "ds2",
                   "dram_addr", "l2_addr"),
    # L2 <-> L1: four loops and their L2 strides, the L2 address of the first word. The
    # L1 side is dense from 0 for inputs and weights; partial sums go to the PE banks.
    "l1_inputs": ("n0", "n1", "n2", "n3", "s0", "s1", "s2", "l2_addr"),
    "l1_weights": ("n0", "n1", "n2", "n3", "s0", "s1", "s2", "l2_addr"),
    "l1_psums": ("n0", "n1", "n2", "n3", "s0", "s1", "s2", "l2_addr",
                 "e0", "e1", "e2"),
    # The PE blocks of one L1 tile.
    "blocks": ("kb", "f", "hb", "wb", "c", "load",
               "in_base", "in_f", "in_hb", "in_c", "in_t", "in_r", "in_row", "in_col",
               "w_kb", "w_row", "e_kb", "e_f", "e_hb",
               "gf", "gh", "gw", "hp_step", "wp_step", "rem_k", "rem_h", "rem_w"),
}


@dataclass(frozen=True)
class Program:
    """The assembled program.

    Members
    -------
    code : tuple of tuples
        ``(op, *operands)`` per instruction; registers by index, labels resolved to
        instruction indices, flags and jobs by name.
    registers : dict
        Register name to index. Configuration first (:data:`CONFIG`), then each job's
        registers (``"<job>.<name>"``), then the program's temporaries.
    labels : dict
    """
    code: tuple
    registers: dict
    labels: dict

    @property
    def register_count(self):
        return len(self.registers)


class _Assembler:
    def __init__(self):
        self.code = []
        self.labels = {}
        self.registers = {}
        for name in CONFIG:
            self.reg(name)

    def reg(self, name):
        if name not in self.registers:
            self.registers[name] = len(self.registers)
        return self.registers[name]

    def alias(self, name, source):
        """``name`` is ``source``'s register: a job reads a value where it was computed
        instead of a copy (the value must not change before the job has run)."""
        assert name not in self.registers, name
        self.registers[name] = self.reg(source)

    def label(self, name):
        self.labels[name] = len(self.code)

    def emit(self, op, *operands):
        self.code.append((op, *operands))

    # one method per instruction; register operands by name
    def li(self, d, imm): self.emit("li", self.reg(d), imm)
    def add(self, d, a, b): self.emit("add", self.reg(d), self.reg(a), self.reg(b))
    def sub(self, d, a, b): self.emit("sub", self.reg(d), self.reg(a), self.reg(b))
    def min(self, d, a, b): self.emit("min", self.reg(d), self.reg(a), self.reg(b))
    def max(self, d, a, b): self.emit("max", self.reg(d), self.reg(a), self.reg(b))
    def mul(self, d, a, b): self.emit("mul", self.reg(d), self.reg(a), self.reg(b))
    def cdiv(self, d, a, b): self.emit("cdiv", self.reg(d), self.reg(a), self.reg(b))
    def sel(self, d, a, b, flag): self.emit("sel", self.reg(d), self.reg(a), self.reg(b), flag)
    def skipnot(self, flag): self.emit("skipnot", flag)
    def loop(self, label, flag): self.emit("loop", label, flag)
    def start(self, level): self.emit("start", level)
    def next(self, level): self.emit("next", level)
    def run(self, job): self.emit("run", job)
    def done(self): self.emit("done")

    def assemble(self):
        code = []
        for op, *operands in self.code:
            if op == "loop":
                operands[0] = self.labels[operands[0]]
            code.append((op, *operands))
        missing = [f"{job}.{name}" for job, names in JOBS.items() for name in names
                   if f"{job}.{name}" not in self.registers]
        assert not missing, f"job registers never set: {missing}"
        return Program(code=tuple(code), registers=dict(self.registers),
                       labels=dict(self.labels))


def _axis_box(a, level, axis, kernel, stride, pad, size, start, length):
    """The clipped input box of output ``start .. start+length-1`` along ``axis``:
    ``<level>.lo_<axis>`` (first input index), ``<level>.ext_<axis>`` (its extent) and
    ``<level>.in_<axis>`` (the unclipped first index ``start * stride - pad``)."""
    a.mul(f"{level}.in_{axis}", start, stride)
    a.sub(f"{level}.in_{axis}", f"{level}.in_{axis}", pad)
    a.max(f"{level}.lo_{axis}", f"{level}.in_{axis}", "zero")
    # last input index: (start + length - 1) * stride - pad + kernel - 1
    a.add("tmp", start, length)
    a.sub("tmp", "tmp", "one")
    a.mul("tmp", "tmp", stride)
    a.sub("tmp", "tmp", pad)
    a.add("tmp", "tmp", kernel)
    a.sub("tmp", "tmp", "one")
    a.sub("tmp2", size, "one")
    a.min("tmp", "tmp", "tmp2")
    a.sub("tmp", "tmp", f"{level}.lo_{axis}")
    a.add(f"{level}.ext_{axis}", "tmp", "one")


def _affine(a, dest, products, addends):
    """``dest = sum(x * y for x, y in products) + sum(addends)``: the address of a tile's
    first word from its coordinates and the tensor's strides. One ``mul`` per product and
    one ``add`` per product after the first and per addend (at least one)."""
    (x, y), *rest = products
    a.mul("tmp", x, y)
    for x, y in rest:
        a.mul("tmp2", x, y)
        a.add("tmp", "tmp", "tmp2")
    *inner, last = addends
    for addend in inner:
        a.add("tmp", "tmp", addend)
    a.add(dest, "tmp", last)


def sequencer_program():
    """The one program every layer runs (see the module docstring)."""
    a = _Assembler()
    a.li("zero", 0)
    a.li("one", 1)
    a.start("l2")

    # ---- one L2 step ------------------------------------------------------------------
    a.label("l2_step")
    # The held partial sums go back first, while the job's registers still describe them.
    a.skipnot("l2.writeback")
    a.run("dram_write_psums")
    for d in DIMS:
        size = {"K": "K", "C": "C", "F": "Fo", "H": "Ho", "W": "Wo"}[d]
        a.mul(f"l2.start_{d}", f"l2.index_{d}", f"t2_{d}")
        a.sub("tmp", size, f"l2.start_{d}")
        a.min(f"l2.len_{d}", f"t2_{d}", "tmp")
        a.sel(f"l2.trips_{d}", f"trips1_last_{d}", f"trips1_{d}", f"l2.last_{d}")
    for axis, kernel, stride, pad, size in (("F", "T", "sf", "pf", "F"),
                                            ("H", "R", "sh", "ph", "H"),
                                            ("W", "S", "sw", "pw", "W")):
        _axis_box(a, "l2", axis, kernel, stride, pad, size, f"l2.start_{axis}",
                  f"l2.len_{axis}")

    # DRAM inputs: rows of the clipped box, (c, f, h) loops, w along the row.
    job = "dram_inputs"
    a.alias(f"{job}.rows0", "l2.len_C")
    a.alias(f"{job}.rows1", "l2.ext_F")
    a.alias(f"{job}.rows2", "l2.ext_H")
    a.alias(f"{job}.row_len", "l2.ext_W")
    a.alias(f"{job}.ds0", "x_c")
    a.alias(f"{job}.ds1", "x_f")
    a.alias(f"{job}.ds2", "W")
    _affine(a, f"{job}.dram_addr", [("n", "x_n"), ("l2.start_C", "x_c"), ("l2.lo_F", "x_f"),
                                    ("l2.lo_H", "W")], ["x_base", "l2.lo_W"])
    a.alias(f"{job}.l2_addr", "l2_inputs")

    # DRAM weights: rows of T*R*S taps, (k, c) loops.
    job = "dram_weights"
    a.alias(f"{job}.rows0", "one")
    a.alias(f"{job}.rows1", "l2.len_K")
    a.alias(f"{job}.rows2", "l2.len_C")
    a.alias(f"{job}.row_len", "TRS")
    a.alias(f"{job}.ds0", "zero")
    a.alias(f"{job}.ds1", "w_k")
    a.alias(f"{job}.ds2", "TRS")
    _affine(a, f"{job}.dram_addr", [("l2.start_K", "w_k"), ("l2.start_C", "TRS")],
            ["w_base"])
    a.alias(f"{job}.l2_addr", "l2_weights")

    # DRAM partial sums (refill and write-back): rows of the output tile, (k, f, h).
    job = "dram_psums"
    a.alias(f"{job}.rows0", "l2.len_K")
    a.alias(f"{job}.rows1", "l2.len_F")
    a.alias(f"{job}.rows2", "l2.len_H")
    a.alias(f"{job}.row_len", "l2.len_W")
    a.alias(f"{job}.ds0", "y_k")
    a.alias(f"{job}.ds1", "y_f")
    a.alias(f"{job}.ds2", "Wo")
    _affine(a, f"{job}.dram_addr", [("n", "y_n"), ("l2.start_K", "y_k"), ("l2.start_F", "y_f"),
                                    ("l2.start_H", "Wo")], ["y_base", "l2.start_W"])
    a.alias(f"{job}.l2_addr", "l2_psums")

    a.skipnot("l2.fill_inputs")
    a.run("dram_read_inputs")
    a.skipnot("l2.fill_weights")
    a.run("dram_read_weights")
    a.skipnot("l2.fill_psums")
    a.run("dram_read_psums")

    # Strides of the L2 tiles, for the L1 transfers.
    a.mul("l2.in_hw", "l2.ext_H", "l2.ext_W")
    a.mul("l2.in_fhw", "l2.ext_F", "l2.in_hw")
    a.mul("l2.w_c", "l2.len_C", "TRS")
    a.mul("l2.ps_hw", "l2.len_H", "l2.len_W")
    a.mul("l2.ps_fhw", "l2.len_F", "l2.ps_hw")

    a.start("l1")
    # ---- one L1 step ------------------------------------------------------------------
    a.label("l1_step")
    a.skipnot("l1.writeback")
    a.run("l1_write_psums")
    for d in DIMS:
        a.mul(f"l1.start_{d}", f"l1.index_{d}", f"t1_{d}")
        a.add(f"l1.start_{d}", f"l1.start_{d}", f"l2.start_{d}")
        a.add("tmp", f"l2.start_{d}", f"l2.len_{d}")
        a.sub("tmp", "tmp", f"l1.start_{d}")
        a.min(f"l1.len_{d}", f"t1_{d}", "tmp")
        a.sub(f"l1.rel_{d}", f"l1.start_{d}", f"l2.start_{d}")
    for axis, kernel, stride, pad, size in (("F", "T", "sf", "pf", "F"),
                                            ("H", "R", "sh", "ph", "H"),
                                            ("W", "S", "sw", "pw", "W")):
        _axis_box(a, "l1", axis, kernel, stride, pad, size, f"l1.start_{axis}",
                  f"l1.len_{axis}")
        a.sub(f"l1.box_{axis}", f"l1.lo_{axis}", f"l2.lo_{axis}")

    # L1 inputs: (c, f, h, w) of the L1 box inside the dense L2 box.
    job = "l1_inputs"
    a.alias(f"{job}.n0", "l1.len_C")
    a.alias(f"{job}.n1", "l1.ext_F")
    a.alias(f"{job}.n2", "l1.ext_H")
    a.alias(f"{job}.n3", "l1.ext_W")
    a.alias(f"{job}.s0", "l2.in_fhw")
    a.alias(f"{job}.s1", "l2.in_hw")
    a.alias(f"{job}.s2", "l2.ext_W")
    _affine(a, f"{job}.l2_addr", [("l1.rel_C", "l2.in_fhw"), ("l1.box_F", "l2.in_hw"),
                                  ("l1.box_H", "l2.ext_W")], ["l1.box_W", "l2_inputs"])

    # L1 weights: (k, c, taps) inside the dense K2 x C2 x TRS tile.
    job = "l1_weights"
    a.alias(f"{job}.n0", "l1.len_K")
    a.alias(f"{job}.n1", "l1.len_C")
    a.alias(f"{job}.n2", "TRS")
    a.alias(f"{job}.n3", "one")
    a.alias(f"{job}.s0", "l2.w_c")
    a.alias(f"{job}.s1", "TRS")
    a.alias(f"{job}.s2", "one")
    _affine(a, f"{job}.l2_addr", [("l1.rel_K", "l2.w_c"), ("l1.rel_C", "TRS")],
            ["l2_weights"])

    # PE blocks of the L1 tile, and the partial sums' PE-bank entries.
    a.cdiv("l1.kb", "l1.len_K", "Kp")
    a.cdiv("l1.hb", "l1.len_H", "Hp")
    a.cdiv("l1.wb", "l1.len_W", "Wp")
    a.mul("l1.e_hb", "l1.wb", "one")           # entry stride of a block row: WB
    a.mul("l1.e_f", "l1.hb", "l1.wb")          # of a frame: HB * WB
    a.mul("l1.e_kb", "l1.len_F", "l1.e_f")     # of a filter block: F1 * HB * WB

    job = "l1_psums"
    a.alias(f"{job}.n0", "l1.len_K")
    a.alias(f"{job}.n1", "l1.len_F")
    a.alias(f"{job}.n2", "l1.len_H")
    a.alias(f"{job}.n3", "l1.len_W")
    a.alias(f"{job}.s0", "l2.ps_fhw")
    a.alias(f"{job}.s1", "l2.ps_hw")
    a.alias(f"{job}.s2", "l2.len_W")
    a.alias(f"{job}.e0", "l1.e_kb")
    a.alias(f"{job}.e1", "l1.e_f")
    a.alias(f"{job}.e2", "l1.e_hb")
    _affine(a, f"{job}.l2_addr", [("l1.rel_K", "l2.ps_fhw"), ("l1.rel_F", "l2.ps_hw"),
                                  ("l1.rel_H", "l2.len_W")], ["l1.rel_W", "l2_psums"])

    a.skipnot("l1.fill_inputs")
    a.run("l1_read_inputs")
    a.skipnot("l1.fill_weights")
    a.run("l1_read_weights")
    a.skipnot("l1.fill_psums")
    a.run("l1_read_psums")

    # The blocks: each PE (kk, i, j) of block (kb, f, hb, wb) at tap (c, t, r, s) reads
    # input (c, (f1 + f) * sf - pf + t, (h1 + hb * Hp + i) * sh - ph + r, ...) of the
    # dense L1 box, at in_base + the loops' strides + i * in_row + j * in_col.
    job = "blocks"
    a.alias(f"{job}.kb", "l1.kb")
    a.alias(f"{job}.f", "l1.len_F")
    a.alias(f"{job}.hb", "l1.hb")
    a.alias(f"{job}.wb", "l1.wb")
    a.alias(f"{job}.c", "l1.len_C")
    a.sel(f"{job}.load", "one", "zero", "l1.continues")
    a.mul("l1.in_hw", "l1.ext_H", "l1.ext_W")
    a.mul(f"{job}.in_c", "l1.ext_F", "l1.in_hw")
    a.alias(f"{job}.in_t", "l1.in_hw")
    a.alias(f"{job}.in_r", "l1.ext_W")
    a.mul(f"{job}.in_f", "sf", "l1.in_hw")
    a.mul(f"{job}.in_row", "sh", "l1.ext_W")
    a.mul(f"{job}.in_hb", "Hp", f"{job}.in_row")
    a.alias(f"{job}.in_col", "sw")
    # in_base: the unclipped box origin relative to the clipped one, (f, h, w) strides
    a.sub("tmp", "l1.in_F", "l1.lo_F")
    a.mul("tmp", "tmp", "l1.in_hw")
    a.sub("tmp2", "l1.in_H", "l1.lo_H")
    a.mul("tmp2", "tmp2", "l1.ext_W")
    a.add("tmp", "tmp", "tmp2")
    a.sub("tmp2", "l1.in_W", "l1.lo_W")
    a.add(f"{job}.in_base", "tmp", "tmp2")
    a.mul(f"{job}.w_row", "l1.len_C", "TRS")
    a.mul(f"{job}.w_kb", "Kp", f"{job}.w_row")
    a.alias(f"{job}.e_kb", "l1.e_kb")
    a.alias(f"{job}.e_f", "l1.e_f")
    a.alias(f"{job}.e_hb", "l1.e_hb")
    a.alias(f"{job}.gf", "l1.in_F")
    a.alias(f"{job}.gh", "l1.in_H")
    a.alias(f"{job}.gw", "l1.in_W")
    a.mul(f"{job}.hp_step", "Hp", "sh")
    a.mul(f"{job}.wp_step", "Wp", "sw")
    a.alias(f"{job}.rem_k", "l1.len_K")
    a.alias(f"{job}.rem_h", "l1.len_H")
    a.alias(f"{job}.rem_w", "l1.len_W")
    a.run("blocks")

    a.next("l1")
    a.loop("l1_step", "l1.running")
    # The L1 partial sums held at the end of the L2 step go back to the L2.
    a.run("l1_write_psums")

    a.next("l2")
    a.loop("l2_step", "l2.running")
    a.run("dram_write_psums")
    a.done()
    return a.assemble()


#: What each ``run`` launches: ``(registers of JOBS, engine kind, operand, direction)``.
RUNS = {
    "dram_read_inputs": ("dram_inputs", "dram_read", "inputs"),
    "dram_read_weights": ("dram_weights", "dram_read", "weights"),
    "dram_read_psums": ("dram_psums", "dram_read", "psums"),
    "dram_write_psums": ("dram_psums", "dram_write", "psums"),
    "l1_read_inputs": ("l1_inputs", "l2_l1", "inputs"),
    "l1_read_weights": ("l1_weights", "l2_l1", "weights"),
    "l1_read_psums": ("l1_psums", "l2_l1", "psums"),
    "l1_write_psums": ("l1_psums", "l1_l2", "psums"),
    "blocks": ("blocks", "blocks", None),
}


#: The engine each kind of job runs on (the second field of :data:`RUNS`). A ``run`` first
#: loads its job's registers into the engine's job window (the sequencer's ``job`` output),
#: two registers a cycle, and starts the job in the cycle after: every run of one engine
#: costs the same, whatever its window, which is what gives the model one latency per
#: kind of transfer.
ENGINES = {"dram_read": "dram", "dram_write": "dram", "l2_l1": "l2l1", "l1_l2": "l2l1",
           "blocks": "blocks"}

#: Each engine's job window: the registers of its longest job (the others are prefixes).
WINDOWS = {engine: max((JOBS[window] for window, kind, _ in RUNS.values()
                        if ENGINES[kind] == engine), key=len)
           for engine in dict.fromkeys(ENGINES.values())}
assert all(WINDOWS[ENGINES[kind]][:len(JOBS[window])] == JOBS[window]
           for window, kind, _ in RUNS.values())

#: Cycles a ``run`` spends loading its engine's job window, two registers a cycle.
LOAD_CYCLES = {engine: -(-len(names) // 2) for engine, names in WINDOWS.items()}


def instruction_cycles(instruction, mul_cycles=MUL_CYCLES):
    """Cycles of one instruction, a ``run``'s job excluded.

    The sequencer is pipelined (fetch, decode and register read, execute) and resolves
    ``skipnot`` and ``loop`` in its decode stage, so neither ever costs a bubble: a
    ``skipnot`` is one cycle whether it skips or not (a skipped instruction costs
    nothing), a ``loop`` one cycle taken or not. ``start`` and ``next`` act in the decode
    stage too and cost one cycle. A ``run`` loads its job window
    (:data:`LOAD_CYCLES`) and starts the job in the cycle after."""
    op = instruction[0]
    if op == "run":
        return 1 + LOAD_CYCLES[ENGINES[RUNS[instruction[1]][1]]]
    return {"mul": mul_cycles, "cdiv": DIV_CYCLES}.get(op, 1)


def _run_cycles(kind):
    """Cycles of the ``run`` of any job of ``kind`` (the same for every one of them)."""
    return 1 + LOAD_CYCLES[ENGINES[kind]]


def timing(program, memory_latency, mul_cycles=MUL_CYCLES):
    """The array's timing constants (the model's ``Hardware`` fields) for ``program`` with
    a memory of ``memory_latency`` cycles, read off the code: a transfer costs its ``run``
    and its engine's overhead, a step the straight-line code around its transfers (a
    ``skipnot`` costs its cycle whether it skips its transfer or not)."""
    if not isinstance(memory_latency, int) or memory_latency < 1:
        raise ValueError(f"memory_latency must be an integer >= 1, got {memory_latency!r}")
    code, labels = program.code, program.labels
    loops = {level: next(i for i, ins in enumerate(code)
                         if ins[0] == "loop" and ins[1] == labels[f"{level}_step"])
             for level in ("l1", "l2")}

    def straight(lo, hi):
        """Cycles of code[lo:hi] outside the transfers: every skip costs its cycle, a
        transfer's run belongs to the transfer, the PE blocks' run to the L1 step."""
        total = 0
        for ins in code[lo:hi]:
            if ins[0] == "run":
                if ins[1] == "blocks":
                    total += instruction_cycles(ins, mul_cycles) + JOB_OVERHEAD["blocks"]
            else:
                total += instruction_cycles(ins, mul_cycles)
        return total

    l2_step = (straight(labels["l2_step"], labels["l1_step"])
               + straight(loops["l1"] + 1, loops["l2"] + 1))
    l1_step = straight(labels["l1_step"], loops["l1"] + 1)
    layer = straight(0, labels["l2_step"]) + straight(loops["l2"] + 1, len(code))
    if _run_cycles("l2_l1") != _run_cycles("l1_l2"):
        raise ValueError("the L2-L1 transfers' runs must cost the same both ways")
    return {
        "dram_latency": _run_cycles("dram_read") + JOB_OVERHEAD["dram_read"] + memory_latency,
        "dram_write_latency": _run_cycles("dram_write") + JOB_OVERHEAD["dram_write"],
        "l2_latency": _run_cycles("l2_l1") + JOB_OVERHEAD["l2_l1"],
        "l2_step_overhead": l2_step,
        "l1_step_overhead": l1_step,
        "layer_overhead": layer,
        "block_overhead": 0,
        "dram_words_per_cycle": 1,
        "l2_words_per_cycle": 1,
    }


#: The array's counters, in the order its counter port numbers them: reads and writes per
#: level and operand, then MACs, the layer's cycles (busy), the PE blocks' MAC cycles
#: (compute) and the cycles a DRAM transfer waited on the memory (stall).
COUNTERS = tuple(f"{level}.{operand}.{direction}"
                 for level in ("dram", "l2", "l1")
                 for operand in ("inputs", "weights", "psums")
                 for direction in ("reads", "writes")) + ("macs", "cycles",
                                                          "compute_cycles", "stall_cycles")

#: Configuration-port addresses beyond the register file: the two loop orders (three bits
#: per loop, the outermost at bit 0) and the start of a layer.
ADDRESS_ORDER2 = 253
ADDRESS_ORDER1 = 254
ADDRESS_START = 255
