"""Board jobs (dnnhw.host.job, each core's Core.board_job) and `dnnhw board run`'s
argument handling. The jobs' golden beats are checked against references they are not
built from: the ZVC words decompress to the input, the FFT's output is close to
numpy.fft, the Diffy tile's output maps equal the direct convolution. The board itself
is tests/test_sim_board.py."""

import numpy as np
import pytest

from dnnhw.boards.run import make_job
from dnnhw.catalog import CORES, ParameterError, get_core
from dnnhw.cli import main
from dnnhw.golden import zvc as golden_zvc
from dnnhw.golden.conv import conv2d_direct_int
from dnnhw.host.job import BoardJob, load_arrays, run_job
from dnnhw.host.board import Throughput


RUNNABLE = [core.name for core in CORES if core.board_job]
SMALL = {"zvc-compress": {"lanes": 4, "width": 8}, "zvc-decompress": {"lanes": 4, "width": 8},
         "zvc-loopback": {"lanes": 4, "width": 8}, "fft": {"n": 16},
         "diffy-tile": {"lanes": 4, "filters": 2, "windows": 2, "width": 8}}


def test_the_runnable_cores():
    assert set(RUNNABLE) == set(SMALL)


@pytest.mark.parametrize("core", RUNNABLE)
def test_an_example_job_feeds_every_stream(core):
    sidecar, job = make_job(core, SMALL[core], seed=3)
    streams = sidecar["streams"]
    assert set(job.inputs) == {n for n, s in streams.items() if s["role"] == "sink"}
    assert set(job.expected) == {n for n, s in streams.items() if s["role"] == "source"}
    for name, beats in {**job.inputs, **job.expected}.items():
        assert beats and all(0 <= b < 1 << streams[name]["width"] for b in beats), name
    assert job.expect == {name: len(beats) for name, beats in job.expected.items()}
    assert job.describe
    # The same seed, the same job; another seed, other data.
    assert make_job(core, SMALL[core], seed=3)[1].inputs == job.inputs
    assert make_job(core, SMALL[core], seed=4)[1].inputs != job.inputs


# --- ZVC -------------------------------------------------------------------------------

def _sparse(rng, shape, low, high):
    return rng.integers(low, high, size=shape) * (rng.random(shape) < 0.4)


def test_compress_job_words_decompress_to_the_input():
    rng = np.random.default_rng(1)
    x = _sparse(rng, (2, 5, 4), -128, 128).astype(np.int8)
    _, job = make_job("zvc-compress", SMALL["zvc-compress"], arrays={"x": x})
    words = job.decode(job.expected)
    ends = np.flatnonzero(words["last"]) + 1
    frames = []
    for start, end in zip(np.r_[0, ends[:-1]], ends):
        frames.append(golden_zvc.decompress_frame(words["data"][start:end],
                                                  int(words["length"][end - 1]), width=8))
    assert np.array_equal(np.stack(frames), x.astype(np.int64) & 0xFF)
    assert "2 frames, 10 windows of 4 x 8 bits" in job.describe


def test_decompress_and_loopback_jobs_give_the_windows_back():
    rng = np.random.default_rng(2)
    x = _sparse(rng, (7, 9), 0, 256).astype(np.uint8)     # not whole windows: padded
    for core in ("zvc-decompress", "zvc-loopback"):
        _, job = make_job(core, SMALL[core], arrays={"x": x})
        windows = job.decode(job.expected)
        flat = np.zeros(64, dtype=np.uint64)
        flat[:63] = x.ravel()
        assert np.array_equal(windows["data"], flat.reshape(16, 4)), core
        assert list(windows["last"]) == [0] * 15 + [1]
        assert job.core_error is False


def test_float32_activations_are_their_bit_patterns():
    x = np.array([[0.0, 1.5, -0.0, 0.0]], dtype=np.float32)
    _, job = make_job("zvc-decompress", {"lanes": 4, "width": 32}, arrays={"x": x})
    data = job.decode(job.expected)["data"]
    assert list(data[0]) == [0, 0x3FC00000, 0x80000000, 0]   # -0.0 is not zero
    assert "50 % non-zero" in job.describe


@pytest.mark.parametrize("x, message", [
    (np.zeros((2, 4), dtype=np.float64), "got dtype float64"),
    (np.zeros((2, 4), dtype=np.float16), "must hold integers"),         # width 8
    (np.array([[256, 0, 0, 0]]), r"8-bit values, -128..255"),
    (np.array([[-129, 0, 0, 0]]), r"8-bit values, -128..255"),
    (np.zeros((0, 4), dtype=np.int8), "is empty"),
])
def test_zvc_inputs_are_checked(x, message):
    with pytest.raises(ParameterError, match="zvc-compress: input x .*" + message):
        make_job("zvc-compress", SMALL["zvc-compress"], arrays={"x": x})


def test_a_zvc_job_takes_only_x():
    with pytest.raises(ParameterError, match="takes one array, x; got w, x"):
        make_job("zvc-compress", SMALL["zvc-compress"],
                 arrays={"x": np.zeros(4, np.int8), "w": np.zeros(4, np.int8)})


# --- FFT -------------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["complex", "parts", "real"])
def test_fft_job_is_close_to_numpy(form):
    rng = np.random.default_rng(3)
    z = rng.integers(-20000, 20000, size=(3, 16)) + 1j * rng.integers(-20000, 20000, (3, 16))
    if form == "real":
        z = z.real
    x = {"complex": z, "real": z.real.astype(np.int32),
         "parts": np.stack([z.real, z.imag], axis=-1).astype(np.int16)}[form]
    _, job = make_job("fft", SMALL["fft"], arrays={"x": x})
    y = job.decode(job.expected)["y"]
    want = np.fft.fft(z, axis=-1) / 16       # every stage halves
    assert y.shape == (3, 16)
    assert np.max(np.abs(y - want)) < 4      # the stages' rounding
    assert job.core_error is False


def test_fft_job_reports_the_golden_overflow():
    # Opposite corners half a frame apart: their halved difference saturates (docs/fft.md).
    x = np.zeros((1, 16), dtype=complex)
    x[0, 1], x[0, 9] = 32767 + 32767j, -32768 - 32768j
    _, job = make_job("fft", SMALL["fft"], arrays={"x": x})
    assert job.core_error is True


@pytest.mark.parametrize("x, message", [
    (np.zeros((2, 15)), r"frames of n = 16 samples: .* got shape \(2, 15\)"),
    (np.full((1, 16), 0.5), "integer parts .* with fractions"),
    (np.full((1, 16), 40000), r"16-bit, -32768..32767; got 0..40000"),
])
def test_fft_inputs_are_checked(x, message):
    with pytest.raises(ParameterError, match="fft: input x.* " + message):
        make_job("fft", SMALL["fft"], arrays={"x": x})


# --- Diffy -----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["diffy", "pragmatic", "stripes", "bitparallel"])
def test_diffy_job_output_maps_are_the_convolution(mode):
    rng = np.random.default_rng(4)
    x = rng.integers(-100, 100, size=(2, 5, 6, 7))
    w = rng.integers(-30, 30, size=(3, 5, 3, 3))
    params = dict(SMALL["diffy-tile"], mode=mode)
    _, job = make_job("diffy-tile", params,
                      arrays={"x": x, "w": w, "stride": np.int64(2), "padding": np.int64(1)})
    y = job.decode(job.expected)["y"]
    assert np.array_equal(y, conv2d_direct_int(x, w, stride=2, padding=1))
    assert len(job.inputs["a"]) == len(job.inputs["w"])      # a pallet of each
    assert "stride 2, padding 1" in job.describe


def test_diffy_stride_and_padding_default():
    rng = np.random.default_rng(5)
    x, w = rng.integers(0, 50, size=(2, 4, 4)), rng.integers(-5, 5, size=(2, 2, 1, 1))
    _, job = make_job("diffy-tile", SMALL["diffy-tile"], arrays={"x": x, "w": w})
    assert np.array_equal(job.decode(job.expected)["y"], conv2d_direct_int(x[None], w))


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.zeros((1, 2, 3, 3), np.int64)}, r"needs the arrays x .* has no w"),
    ({"x": np.zeros((1, 2, 3, 3)), "w": np.zeros((1, 2, 1, 1), np.int64)},
     "x must hold integers, got dtype float64"),
    ({"x": np.zeros((1, 2, 3, 3), np.int64), "w": np.zeros((1, 2, 1, 1), np.int64),
      "bias": np.zeros(1, np.int64)}, "has arrays bias; a layer takes x, w"),
    ({"x": np.zeros((1, 2, 3, 3), np.int64), "w": np.zeros((1, 2, 1, 1), np.int64),
      "stride": np.ones(2, np.int64)}, r"stride must be a scalar, got shape \(2,\)"),
    ({"x": np.zeros((1, 600, 3, 3), np.int64), "w": np.zeros((1, 600, 3, 3), np.int64)},
     "C \\* R \\* S = 5400 products per output; the tile takes max_products=4608"),
])
def test_diffy_inputs_are_checked(arrays, message):
    with pytest.raises(ParameterError, match="diffy-tile: .*" + message):
        make_job("diffy-tile", SMALL["diffy-tile"], arrays=arrays)


# --- the job machinery -----------------------------------------------------------------

def test_a_core_without_a_board_job_names_the_ones_with():
    with pytest.raises(ParameterError, match="'morph-array' has no board job yet: `dnnhw "
                       "board run` takes zvc-compress, zvc-decompress"):
        get_core("morph-array").board_job_maker()


def test_load_arrays(tmp_path):
    np.save(tmp_path / "x.npy", np.arange(6))
    assert list(load_arrays(tmp_path / "x.npy")) == ["x"]
    np.savez(tmp_path / "layer.npz", x=np.ones(2), w=np.zeros(3))
    arrays = load_arrays(tmp_path / "layer.npz")
    assert sorted(arrays) == ["w", "x"] and arrays["w"].shape == (3,)
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="not a .npy or .npz file of plain arrays"):
        load_arrays(tmp_path / "objects.npy")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_arrays(tmp_path / "missing.npy")


class FakeBoard:
    """What run_job uses of a Board: run, status, last_run."""

    def __init__(self, outputs, core_error=False):
        self.outputs, self.core_error = outputs, core_error
        self.last_run = Throughput(seconds=1.0, baudrate=115200, bytes_sent=10,
                                   bytes_received=10, beats_sent=1, beats_received=1)

    def run(self, inputs, *, expect, timeout=None):
        return {name: self.outputs[name][:count] for name, count in expect.items()}

    def status(self):
        return {"frame_error": False, "core_error": self.core_error,
                "received": {}, "sent": {}}


def test_run_job_names_every_difference():
    job = BoardJob(inputs={"i": [1]}, expected={"o": [1, 2, 3]}, describe="d",
                   core_error=True)
    assert run_job(FakeBoard({"o": [1, 2, 3]}, core_error=True), job).passed
    result = run_job(FakeBoard({"o": [1, 7, 3]}, core_error=False), job)
    assert result.mismatches == ["o[1]: board 0x7, golden 0x2",
                                 "the golden model sets the core's error/overflow flag; "
                                 "the board's is clear"]
    many = run_job(FakeBoard({"o": [9, 9, 9]}), BoardJob({"i": [1]}, {"o": [1, 2, 3]}, "d"),
                   limit=2)
    assert many.mismatches[-1] == "o: 1 more differences"
    with pytest.raises(TypeError, match="job must be a BoardJob"):
        run_job(FakeBoard({}), {"i": [1]})


def test_a_sticky_flag_from_an_earlier_job_is_a_note():
    job = BoardJob(inputs={"i": [1]}, expected={"o": [5]}, describe="d", core_error=False)
    result = run_job(FakeBoard({"o": [5]}, core_error=True), job)
    assert result.passed and "from an earlier job" in result.notes[0]


def test_cli_board_run_errors(tmp_path, capsys):
    assert main(["board", "run", "morph-array", "--port", "/dev/null"]) == 2
    assert "has no board job yet" in capsys.readouterr().err
    assert main(["board", "run", "zvc-compress", "--port", "/dev/null",
                 "--input", str(tmp_path / "none.npy")]) == 2
    assert "--input: input" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", np.full(8, 1 << 20))
    assert main(["board", "run", "zvc-compress", "-p", "width=8", "--port", "/dev/null",
                 "--input", str(tmp_path / "x.npy")]) == 2
    assert "zvc-compress: input x must hold 8-bit values" in capsys.readouterr().err
    assert main(["board", "run", "zvc-compress", "--port", str(tmp_path / "no-such-port"),
                 "--timeout", "0.5"]) == 1
    assert "cannot open --port" in capsys.readouterr().err
