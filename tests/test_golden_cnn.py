"""The hand-written CNN (``dnnhw.golden.cnn``): im2col against a direct convolution, the
gradients against finite differences, the sharded gradients against the whole batch's,
the digits loader, the data-parallel trainer with every exchange, and the argument checks."""

import numpy as np
import pytest

from dnnhw.golden import cnn, dgc
from dnnhw.workloads import digits


SMALL = cnn.CNN(channels=(3, 4), strides=(1, 2))


@pytest.fixture(scope="module")
def data():
    return digits()


def _params(model, seed=0):
    rng = np.random.default_rng(seed)
    params = model.init(rng)
    # Non-zero biases keep the ReLUs off their kink at 0 (a zero pixel with a zero bias).
    return {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in params.items()}


def test_shapes_and_parameters():
    shapes = cnn.CNN().shapes()
    assert shapes == {"conv1.w": (16, 1, 3, 3), "conv1.b": (16,), "conv2.w": (32, 16, 3, 3),
                      "conv2.b": (32,), "fc.w": (512, 10), "fc.b": (10,)}
    assert sum(int(np.prod(s)) for s in shapes.values()) == 9930
    assert cnn.CNN().feature_sides() == [8, 4]
    assert SMALL.shapes()["fc.w"] == (64, 10)             # 4 channels x 4 x 4


def test_im2col_is_a_direct_convolution():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    for stride in (1, 2):
        out, _ = cnn.CNN().conv_forward(x, w, b, stride)
        padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        oh, ow = (5 - 1) // stride + 1, (6 - 1) // stride + 1
        direct = np.zeros((2, 4, oh, ow))
        for n in range(2):
            for f in range(4):
                for i in range(oh):
                    for j in range(ow):
                        patch = padded[n, :, i * stride:i * stride + 3, j * stride:j * stride + 3]
                        direct[n, f, i, j] = np.sum(patch * w[f]) + b[f]
        assert np.allclose(out, direct)


def test_col2im_is_the_adjoint_of_im2col():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 7, 7))
    for stride in (1, 2, 3):
        cols, _ = cnn.im2col(x, stride)
        c = rng.standard_normal(cols.shape)
        assert np.sum(cols * c) == pytest.approx(np.sum(x * cnn.col2im(c, x.shape, stride)))


def test_gradients_match_finite_differences(data):
    params = _params(SMALL)
    x, y = data.x_train[:6], data.y_train[:6]
    result = SMALL.gradients(params, x, y)
    assert len(result.activations) == 2
    assert result.activations[0].shape == (6, 3, 8, 8)
    assert result.activations[1].shape == (6, 4, 4, 4)
    assert all(np.all(a >= 0) for a in result.activations)
    rng = np.random.default_rng(3)
    eps = 1e-6
    for name, p in params.items():
        for _ in range(6):
            index = tuple(int(rng.integers(s)) for s in p.shape)
            old = p[index]
            p[index] = old + eps
            plus = SMALL.gradients(params, x, y).loss
            p[index] = old - eps
            minus = SMALL.gradients(params, x, y).loss
            p[index] = old
            numeric = (plus - minus) / (2 * eps)
            assert result.grads[name][index] == pytest.approx(numeric, rel=1e-4, abs=1e-8), \
                (name, index)


def test_loss_is_the_cross_entropy(data):
    params = _params(SMALL)
    x, y = data.x_test[:5], data.y_test[:5]
    logits = SMALL.logits(params, x)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = -np.log(p[np.arange(5), y]).mean()
    assert SMALL.gradients(params, x, y).loss == pytest.approx(expected)
    assert SMALL.gradients(params, x, y, normalizer=10).loss == pytest.approx(expected / 2)
    assert SMALL.evaluate(params, x, y)[0] == pytest.approx(expected)
    assert cnn.gradients(params, x, y, model=SMALL).loss == pytest.approx(expected)


def test_shard_gradients_add_up_to_the_batch(data):
    params = _params(SMALL, 4)
    x, y = data.x_train[:12], data.y_train[:12]
    whole = SMALL.gradients(params, x, y)
    losses, shards, _ = SMALL.shard_gradients(params, x, y, 3)
    assert sum(losses) == pytest.approx(whole.loss)
    for name in params:
        assert np.allclose(sum(s[name] for s in shards), whole.grads[name])
    for k in range(3):
        alone = SMALL.gradients(params, x[4 * k:4 * k + 4], y[4 * k:4 * k + 4],
                                normalizer=12)
        assert losses[k] == pytest.approx(alone.loss)
        for name in params:
            assert np.allclose(shards[k][name], alone.grads[name])


def test_digits_loader(data):
    assert data.x_train.shape == (1433, 8, 8) and data.x_test.shape == (364, 8, 8)
    assert data.x_train.dtype == np.float32
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    assert data.y_train.dtype == np.int64 and set(data.y_test) == set(range(10))
    # Every class in the test set in proportion (a fifth of it, rounded up).
    counts = np.bincount(data.y_test)
    assert np.all(np.abs(counts - (np.bincount(data.y_train) + counts) / 5) < 1)
    again = digits()
    assert all(np.array_equal(a, b) for a, b in zip(data, again))
    train_rows = {row.tobytes() for row in data.x_train}
    assert sum(row.tobytes() in train_rows for row in data.x_test) < 5   # (duplicates)
    with pytest.raises(ValueError, match="test_every must be in 2..100, got 1"):
        digits(1)


def test_digits_load_offline(monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert digits().x_train.shape == (1433, 8, 8)


def test_dense_training_learns(data):
    result = cnn.train(SMALL, data, workers=2, epochs=2, seed=0, batch=16, lr=0.1)
    history = result.history
    assert [e["epoch"] for e in history] == [0, 1]
    assert history[-1]["test_accuracy"] > 0.6                 # chance is 0.1
    assert history[-1]["loss"] < history[0]["loss"] < np.log(10) + 0.5
    n = sum(int(np.prod(s)) for s in SMALL.shapes().values())
    steps = len(data.x_train) // 16
    assert history[0]["steps"] == steps
    assert history[0]["dense_bytes"] == history[0]["sent_bytes"] == steps * 2 * 4 * n
    assert history[0]["keep"] is None


def test_training_is_deterministic_and_hooks_run(data):
    seen = {"steps": 0, "epochs": []}

    def on_step(state):
        seen["steps"] += 1
        assert len(state.worker_grads) == 3 and set(state.update) == set(state.params)

    def on_epoch(state):
        seen["epochs"].append(state.epoch)
        state.record["extra"] = state.epoch * 10

    small = (data.x_train[:300], data.y_train[:300], data.x_test, data.y_test)
    a = cnn.train(SMALL, small, workers=3, epochs=2, seed=5, batch=30, on_step=on_step,
                  on_epoch=on_epoch)
    b = cnn.train(SMALL, small, workers=3, epochs=2, seed=5, batch=30)
    assert seen == {"steps": 20, "epochs": [0, 1]}
    assert [e["extra"] for e in a.history] == [0, 10]
    for name in a.params:
        assert np.array_equal(a.params[name], b.params[name])
    # A batch the workers do not divide goes through one gradient a shard: same result.
    c = cnn.train(SMALL, small, workers=4, epochs=1, seed=5, batch=30)
    assert c.history[0]["steps"] == 10


def test_dgc_training_learns_and_counts_its_bytes(data):
    exchange = cnn.DgcExchange(momentum=0.9, clip=1.0)
    result = cnn.train(SMALL, data, workers=2, epochs=3, seed=1, batch=16, lr=0.1,
                       exchange=exchange)
    history = result.history
    assert [e["keep"] for e in history] == [0.25, 0.0625, 0.015625]
    assert history[-1]["test_accuracy"] > 0.5
    for e in history:
        # a 4-byte count a message, 8 bytes an element
        messages = e["steps"] * 2 * len(SMALL.shapes())
        assert e["sent_bytes"] == 4 * messages + 8 * sum(e["sent_elements"].values())
        assert e["sent_bytes"] < e["dense_bytes"]
    assert history[0]["sent_bytes"] > history[2]["sent_bytes"]


def test_dgc_without_momentum_correction_runs_momentum_on_the_aggregate():
    params = {"w": np.zeros(4)}
    ex = cnn.DgcExchange(momentum=0.5, keep=0.5, warmup=False, momentum_correction=False,
                         sample_ratio=1.0)
    ex.start(params, workers=1, rng=np.random.default_rng(0))
    g = np.array([4.0, 3.0, 0.0, 0.0])
    u1, _, _ = ex([{"w": g}], epoch=0)
    assert np.allclose(u1["w"], [4.0, 3.0, 0, 0])
    u2, _, _ = ex([{"w": np.zeros(4)}], epoch=0)            # nothing left to send
    assert np.allclose(u2["w"], [2.0, 1.5, 0, 0])            # momentum 0.5 on the aggregate


def test_fixed_point_training_learns(data):
    exchange = cnn.FixedDgcExchange(momentum=0.9, clip=1.0)
    result = cnn.train(SMALL, data, workers=2, epochs=2, seed=2, batch=16, lr=0.1,
                       exchange=exchange)
    last = result.history[-1]
    assert last["test_accuracy"] > 0.5
    assert last["grad_elements"] > 0 and last["sent_values"] > 0
    assert all(bits is not None and bits >= 0 for bits in last["scale_bits"].values())
    assert last["sent_bytes"] < last["dense_bytes"]


@pytest.mark.parametrize("call,match", [
    (lambda d: cnn.train(SMALL, d, workers=0), "workers must be >= 1, got 0"),
    (lambda d: cnn.train(SMALL, d, workers=8, batch=4), r"batch must be >= workers \(8\)"),
    (lambda d: cnn.train(SMALL, d, epochs=-1), "epochs must be >= 0, got -1"),
    (lambda d: cnn.train(SMALL, d, batch=5000), "batch must be at most the training set"),
    (lambda d: cnn.train(SMALL, (d.x_train, d.y_train[:5], d.x_test, d.y_test)),
     "x_train has 1433 images but y_train 5"),
    (lambda d: SMALL.gradients(SMALL.init(np.random.default_rng()), np.ones((2, 7, 7)),
                               [0, 1]), r"x must have shape \(N, 1, 8, 8\)"),
    (lambda d: SMALL.gradients(SMALL.init(np.random.default_rng()), d.x_train[:2], [0]),
     r"y must have one label per image \(2\)"),
    (lambda d: SMALL.gradients(SMALL.init(np.random.default_rng()), d.x_train[:2], [0, 10]),
     r"y must hold labels in 0..9"),
    (lambda d: SMALL.shard_gradients(SMALL.init(np.random.default_rng()), d.x_train[:5],
                                     d.y_train[:5], 2), "shards must divide the 5 images"),
    (lambda d: cnn.CNN(channels=(4,), strides=(1, 2)),
     "channels and strides must have the same length"),
    (lambda d: cnn.CNN(channels=(0,), strides=(1,)), "channels entries must be in 1..1024"),
    (lambda d: cnn.DenseExchange(momentum=1.5), r"momentum must be in \[0, 1\)"),
    (lambda d: cnn.DgcExchange(keep=0.0), r"keep must be in \(0, 1\)"),
    (lambda d: cnn.DgcExchange(sample_ratio=2.0), r"sample_ratio must be in \(0, 1\]"),
    (lambda d: cnn.DgcExchange(clip=0.0), r"clip must be in \(0, inf\)"),
    (lambda d: cnn.FixedDgcExchange(headroom=20), "headroom must be in 0..14"),
])
def test_errors_name_the_parameter(data, call, match):
    with pytest.raises(ValueError, match=match):
        call(data)


def test_dgc_exchange_rejects_zero_workers():
    with pytest.raises(ValueError, match="workers must be >= 1, got 0"):
        cnn.DgcExchange().start({"w": np.zeros(3)}, workers=0, rng=np.random.default_rng())
    assert dgc.KEEP == cnn.DgcExchange().keep(10)
