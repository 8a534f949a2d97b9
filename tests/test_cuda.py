"""The CUDA kernels (``fastbp._cuda``) against NumPy and the CPU kernels, on a GPU or on
Numba's CUDA simulator.

On a machine without a GPU, run them on the simulator, which must be switched on before Numba
is imported::

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/test_cuda.py

(``.ci/run`` does, after installing ``fastbp[cuda]``.) Without a GPU and without the simulator
the kernel tests skip, saying so; the tests of the error messages and of the PTX compiled for a
real GPU (which need numba-cuda and NVIDIA's compiler libraries, not a GPU) run wherever they
can. The simulator runs every GPU thread as a Python thread, so its blocks are small
(``_cuda.TILE`` is 4 there) and the shapes here are tiny but span several blocks with partial
tiles.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
import threading
import types

import numba
import numpy as np
import pytest

from fastbp import Network
from fastbp import network as network_module

from . import naive

SIMULATOR = bool(numba.config.ENABLE_CUDASIM)
try:
    from numba import cuda

    GPU = cuda.is_available()
except ImportError:  # pragma: no cover - a Numba without its CUDA target
    cuda = None
    GPU = False

needs_cuda = pytest.mark.skipif(
    not GPU,
    reason="no CUDA GPU here; run NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/test_cuda.py "
    "for Numba's CUDA simulator",
)
needs_gpu = pytest.mark.skipif(
    not GPU or SIMULATOR, reason="needs a real NVIDIA GPU (this run has none, or simulates one)"
)


def serialise_simulator_shared_arrays() -> None:
    """Make Numba's CUDA simulator create each ``cuda.shared.array`` of a launch once (issue 23).

    The simulator runs a block's threads as Python threads. Its ``FakeCUDAShared.array``
    (``numba/cuda/simulator/kernelapi.py`` in numba-cuda 0.30.4) looks the array up in a dict of
    the launch, keyed by the calling line: ``get``, then, if it is missing, ``np.empty`` and a
    store, with no lock. A thread switched out between its ``get`` and its store lets another
    thread create a second array; the first block's threads then write their tile into two
    arrays and read slots of the other one that nobody wrote (``np.empty``): wrong values in the
    first block of a launch (later blocks find the array), mostly its first launch in a process.
    CI saw it once in about 14 runs; ``tests/stress_cudasim.py`` reproduces and counts it. A GPU
    gives each block one array, and ``fastbp._cuda``'s kernels synchronise correctly.

    This replaces the method by the same lookup and creation under a lock (same key, same
    ``np.empty``); dynamic shared memory (shape 0) and ``alignment``, which the simulator
    refuses, still go to its own method (``array.__wrapped__``). It can go once the simulator
    serialises the creation itself.
    """
    from numba.cuda.simulator import kernelapi

    shared = kernelapi.FakeCUDAShared
    if hasattr(shared.array, "__wrapped__"):
        return
    unsafe = shared.array
    lock = threading.Lock()

    @functools.wraps(unsafe)
    def array(self, shape, dtype, *args, **kwargs):
        if shape == 0 or args or kwargs:
            return unsafe(self, shape, dtype, *args, **kwargs)
        caller = sys._getframe(1)
        key = (caller.f_code.co_filename, caller.f_lineno)
        if isinstance(dtype, kernelapi.types.Type):
            dtype = kernelapi.numpy_support.as_dtype(dtype)
        with lock:
            if key not in self._allocations:
                self._allocations[key] = np.empty(shape, dtype)
            return self._allocations[key]

    shared.array = array


if GPU:
    from fastbp import _cuda
    from fastbp import kernels as K

    if SIMULATOR:
        # The simulator's threads wait for each other at every syncthreads: switch between them
        # more often than Python's default 5 ms.
        sys.setswitchinterval(1e-4)
        serialise_simulator_shared_arrays()


# --- what a machine without a GPU gets --------------------------------------------------------


def test_no_gpu_is_a_clear_error(monkeypatch):
    if cuda is None:
        pytest.skip("Numba's CUDA target is not installed: the next test covers that")
    monkeypatch.setattr(cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"device='cuda': no usable NVIDIA GPU") as info:
        Network([2, 3, 1], device="cuda")
    assert "NUMBA_ENABLE_CUDASIM=1" in str(info.value)
    net = Network([2, 3, 1])
    with pytest.raises(RuntimeError, match="no usable NVIDIA GPU"):
        net.to("cuda")
    assert net.device == "cpu"  # a failed move leaves the network where it was


def test_import_fastbp_needs_no_cuda_and_says_what_to_install():
    # A fresh interpreter in which Numba's CUDA target cannot be imported at all.
    script = textwrap.dedent(
        """
        import sys
        sys.modules["numba.cuda"] = None
        import numpy as np
        import fastbp
        net = fastbp.Network([2, 3, 1], seed=0)
        net.fit(np.eye(2), np.array([0.0, 1.0]), epochs=1, batch_size=1, lr=1.0)
        assert "fastbp._cuda" not in sys.modules
        try:
            fastbp.Network([2, 3, 1], device="cuda")
        except RuntimeError as exc:
            print(exc)
        """
    )
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert "device='cuda': Numba's CUDA target cannot be imported" in result.stdout
    assert "pip install 'fastbp[cuda]'" in result.stdout


@pytest.mark.parametrize("option", ["batch_norm", "residual"])
def test_features_the_gpu_lacks_are_refused_by_name(option):
    kwargs = {"batch_norm": True} if option == "batch_norm" else {"residual": [False, True]}
    net = Network([3, 4, 4, 2], **kwargs)
    with pytest.raises(ValueError, match=rf"device: {option} is not implemented"):
        net.to("cuda")
    with pytest.raises(ValueError, match="device: expected one of"):
        Network([2, 1], device="gpu")


@needs_cuda
def test_dropout_is_refused_on_the_gpu():
    net = Network([2, 3, 1], device="cuda")
    before = net.params.copy()
    with pytest.raises(ValueError, match="dropout: not implemented by the CUDA kernels"):
        net.fit(np.eye(2), [0.0, 1.0], epochs=1, batch_size=1, lr=1.0, dropout=0.5)
    assert net.params.tobytes() == before.tobytes()


# --- kernels against NumPy ------------------------------------------------------------------

ACTIVATIONS = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "linear", "step"]


def _launch(kernel, grid_block, *args):
    kernel[grid_block](*args)


@needs_cuda
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", [*ACTIVATIONS, "softmax"])
def test_weighted_input_and_activation(name, dtype):
    # 6 samples × 9 neurons from 7 inputs: several blocks and tiles, all partial (TILE 4 on the
    # simulator; on a GPU one partial 16 × 16 tile).
    rng = np.random.default_rng(1)
    w, b, a_in = rng.normal(size=(9, 7)), rng.normal(size=9), 3 * rng.normal(size=(6, 7))
    w, b, a_in = (v.astype(dtype) for v in (w, b, a_in))
    alpha = dtype(0.3)
    z, a, da = (cuda.device_array((6, 9), dtype=dtype) for _ in range(3))
    kind = network_module.ACTIVATIONS[name].code
    args = (cuda.to_device(w), cuda.to_device(b), cuda.to_device(a_in), z, a, da, kind, alpha)
    _launch(_cuda.weighted_input, _cuda._tiles(9, 6), *args)
    if name == "softmax":
        _launch(_cuda.softmax_rows, _cuda._line(6), z, a, da)
    z_ref = a_in.astype(np.float64) @ w.T.astype(np.float64) + b
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(z.copy_to_host(), z_ref, rtol=tol, atol=tol)
    if name == "step":
        a_ref, da_ref = (z_ref > 0).astype(float), np.zeros_like(z_ref)
    elif name == "softmax":
        a_ref, da_ref = np.stack([naive.softmax(row) for row in z_ref]), np.zeros_like(z_ref)
    else:
        a_ref, da_ref = naive.activation(name, z_ref, 0.3), naive.derivative(name, z_ref, 0.3)
    np.testing.assert_allclose(a.copy_to_host(), a_ref, rtol=10 * tol, atol=10 * tol)
    np.testing.assert_allclose(da.copy_to_host(), da_ref, rtol=10 * tol, atol=10 * tol)


@needs_cuda
@pytest.mark.parametrize(
    ("cost", "output"),
    [("quadratic", "sigmoid"), ("quadratic", "softmax"), ("cross_entropy", "sigmoid"),
     ("log_likelihood", "softmax"), ("quadratic", "tanh")],
)  # fmt: skip
def test_output_error_bp1(cost, output):
    rng = np.random.default_rng(2)
    z = rng.normal(size=(5, 6))
    if output == "softmax":
        a = np.stack([naive.softmax(row) for row in z])
        da = np.zeros_like(z)
    else:
        a, da = naive.activation(output, z), naive.derivative(output, z)
    y = np.eye(6)[rng.integers(0, 6, 9)]
    order = np.array([8, 3, 1, 0, 5, 2, 7, 4, 6])
    start = 2
    delta = cuda.device_array((5, 6))
    code = network_module.COSTS[cost].code
    kind = network_module.ACTIVATIONS[output].code
    _launch(_cuda.output_error, _cuda._tiles(6, 5), cuda.to_device(a), cuda.to_device(y),
            cuda.to_device(order), start, cuda.to_device(da), delta, code, kind)  # fmt: skip
    rows = order[start : start + 5]
    expected = [
        naive.output_delta(cost, output, z[s], a[s], y[r]) for s, r in enumerate(rows)
    ]  # fmt: skip
    np.testing.assert_allclose(delta.copy_to_host(), expected, rtol=1e-12, atol=1e-12)


@needs_cuda
def test_backpropagate_error_bp2():
    rng = np.random.default_rng(3)
    w_next, delta_next, da = rng.normal(size=(6, 9)), rng.normal(size=(5, 6)), rng.random((5, 9))
    delta = cuda.device_array((5, 9))
    _launch(_cuda.backpropagate_error, _cuda._tiles(9, 5), cuda.to_device(w_next),
            cuda.to_device(delta_next), cuda.to_device(da), delta)  # fmt: skip
    np.testing.assert_allclose(delta.copy_to_host(), (delta_next @ w_next) * da, rtol=1e-12)


@needs_cuda
@pytest.mark.parametrize("add", [False, True])
def test_accumulate_gradient_bp3_bp4(add):
    # 9 samples, 6 neurons, 5 inputs: the sums over the mini-batch cross several tiles.
    rng = np.random.default_rng(4)
    delta, a_in = rng.normal(size=(9, 6)), rng.normal(size=(9, 5))
    gw0, gb0 = rng.normal(size=(6, 5)), rng.normal(size=6)
    gw, gb = cuda.to_device(gw0), cuda.to_device(gb0)
    _launch(_cuda.accumulate_gradient, _cuda._tiles(5 + 1, 6), cuda.to_device(delta),
            cuda.to_device(a_in), gw, gb, 0.5, add)  # fmt: skip
    outer = sum(np.outer(d, a) for d, a in zip(delta, a_in, strict=True))
    np.testing.assert_allclose(gw.copy_to_host(), add * gw0 + 0.5 * outer, rtol=1e-12)
    np.testing.assert_allclose(gb.copy_to_host(), add * gb0 + 0.5 * delta.sum(axis=0), rtol=1e-12)


@needs_cuda
@pytest.mark.parametrize("optimizer", list(network_module.OPTIMIZERS))
def test_optimizer_step_matches_the_cpu_kernel(optimizer):
    rng = np.random.default_rng(5)
    n = 3 * _cuda.THREADS + 5  # several blocks, the last partial
    params, grad, state = rng.normal(size=n), rng.normal(size=n), rng.random((2, n))
    hyper = K.Hyper(momentum=0.9, beta1=0.8, beta2=0.95, eps=1e-8, rho=0.7)
    code, t, eta = network_module.OPTIMIZERS[optimizer].code, 3, 0.1
    p_d, s_d = cuda.to_device(params), cuda.to_device(state)
    _launch(_cuda.optimizer_step, _cuda._line(n), p_d, cuda.to_device(grad), s_d, code, eta,
            cuda.to_device(np.array(hyper)), 1 - 0.8**t, 1 - 0.95**t, cuda.to_device(np.ones(1)),
            False)  # fmt: skip
    K.optimizer_step(params, grad, state, code, eta, hyper, t)
    np.testing.assert_allclose(p_d.copy_to_host(), params, rtol=1e-14)
    np.testing.assert_allclose(s_d.copy_to_host(), state, rtol=1e-14)


@needs_cuda
@pytest.mark.parametrize(("max_norm", "max_value"), [(0.5, 0.0), (0.0, 0.3), (2.0, 0.3), (1e9, 0)])
def test_regularisation_and_clipping_match_the_cpu_kernels(max_norm, max_value):
    net = Network([7, 6, 3], seed=6, dtype="float64")
    rng = np.random.default_rng(6)
    grad = rng.normal(size=net.params.size)
    l2, l1 = 0.2, 0.05
    d = _cuda.DeviceNetwork(net.params, net._model, 1)
    d.grad.copy_to_device(grad)
    clip = np.array([max_norm, max_value])
    # With SGD and η = 1 the step is θ - g: the clipped, regularised gradient.
    d.step(cuda.to_device(np.zeros((2, 1))), K.SGD, 1.0, np.zeros(5), cuda.to_device(np.zeros(5)),
           1, l2, l1, clip)  # fmt: skip
    expected = grad.copy()
    K.add_regularisation_gradient(net.params, net._model, expected, l2, l1)
    K.clip_gradient(expected, max_norm, max_value)
    np.testing.assert_allclose(net.params - d.params.copy_to_host(), expected, rtol=1e-12)


@needs_cuda
def test_flag_non_finite():
    for bad in (np.nan, np.inf, -np.inf):
        d = _cuda.DeviceNetwork(np.ones(2 * _cuda.THREADS + 3), Network([5, 2])._model, 1)
        assert not d.non_finite()
        d.params[2 * _cuda.THREADS + 1 : 2 * _cuda.THREADS + 2].copy_to_device(np.array([bad]))
        assert d.non_finite()


# --- the network on the GPU against the CPU ---------------------------------------------------


@needs_cuda
@pytest.mark.parametrize(
    ("sizes", "options"),
    [([6, 5, 7, 3], {"activation": "tanh", "output": "softmax", "cost": "log_likelihood"}),
     ([5, 9, 2], {"activation": "leaky_relu", "alpha": 0.2}),
     ([4, 3, 1], {"activation": "elu", "cost": "cross_entropy"})],
)  # fmt: skip
def test_predictions_and_gradients_match_the_cpu(sizes, options):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(11, sizes[0]))
    y = rng.integers(0, max(sizes[-1], 2), 11)
    cpu = Network(sizes, seed=7, dtype="float64", **options)
    gpu = Network(sizes, seed=7, dtype="float64", device="cuda", **options)
    np.testing.assert_allclose(gpu.feedforward(X), cpu.feedforward(X), rtol=1e-12, atol=1e-14)
    assert (gpu.predict(X) == cpu.predict(X)).all()
    assert gpu.evaluate((X, y)) == cpu.evaluate((X, y))
    for g, c in zip(gpu.gradients(X, y), cpu.gradients(X, y), strict=True):
        for a, b in zip(g, c, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-14)
    for key, value in gpu.gradient_norms(X, y).items():
        np.testing.assert_allclose(value, cpu.gradient_norms(X, y)[key], rtol=1e-11)


@needs_cuda
def test_gpu_gradient_matches_central_differences():
    net = Network([3, 4, 2], seed=8, dtype="float64", activation="tanh", device="cuda")
    rng = np.random.default_rng(8)
    X, Y = rng.normal(size=(5, 3)), rng.random((5, 2))
    nabla_b, nabla_w = net.gradients(X, Y)
    analytic = np.concatenate([np.r_[w.ravel(), b] for w, b in zip(nabla_w, nabla_b, strict=True)])
    h = 1e-6
    for i in rng.choice(net.params.size, 6, replace=False):
        saved = net.params[i]
        net.params[i] = saved + h
        up = net.total_cost(X, Y)
        net.params[i] = saved - h
        down = net.total_cost(X, Y)
        net.params[i] = saved
        assert abs((up - down) / (2 * h) - analytic[i]) < 1e-7


@needs_cuda
@pytest.mark.parametrize(
    ("dtype", "options"),
    [("float64", {}),
     ("float32", {}),
     ("float64", {"optimizer": "adam", "lmbda": 0.5, "clip_norm": 0.1}),
     ("float64", {"optimizer": "rmsprop", "rho": 0.8, "clip_value": 0.5}),
     ("float64", {"optimizer": "nesterov", "l1": 0.3, "clip_value": 0.05}),
     ("float64", {"optimizer": "momentum", "lmbda": 1.0})],
)  # fmt: skip
def test_an_epoch_on_the_gpu_matches_the_cpu(dtype, options):
    # Same seed, same mini-batch order: the same weights within rounding (float64 1e-12,
    # float32 1e-5 relative to the weights' scale, after 5 steps; sums run in other orders).
    rng = np.random.default_rng(9)
    X, y = rng.random((23, 6)), rng.integers(0, 3, 23)
    common = {"epochs": 1, "batch_size": 5, "lr": 0.5, "seed": 1, **options}
    cpu = Network([6, 9, 3], seed=3, dtype=dtype, activation="elu")
    gpu = Network([6, 9, 3], seed=3, dtype=dtype, activation="elu", device="cuda")
    h_cpu = cpu.fit(X, y, validation_data=(X, y), **common)
    h_gpu = gpu.fit(X, y, validation_data=(X, y), **common)
    tol = 1e-12 if dtype == "float64" else 1e-5
    scale = np.abs(cpu.params).max()
    np.testing.assert_allclose(gpu.params, cpu.params, rtol=0, atol=tol * scale)
    assert gpu.params.dtype == np.dtype(dtype)
    np.testing.assert_allclose(h_gpu["val_cost"], h_cpu["val_cost"], rtol=100 * tol)
    assert h_gpu["val_correct"] == h_cpu["val_correct"]
    if "optimizer" in options:
        np.testing.assert_allclose(gpu._optimizer[1], cpu._optimizer[1], rtol=0, atol=tol)
        assert gpu._optimizer[2] == cpu._optimizer[2] == 5


@needs_cuda
def test_gpu_training_is_reproducible_and_moves_between_devices_bitwise(tmp_path):
    rng = np.random.default_rng(10)
    X, y = rng.random((12, 4)), rng.integers(0, 2, 12)

    def train():
        net = Network([4, 5, 2], seed=4, device="cuda")
        net.fit(X, y, epochs=1, batch_size=4, lr=1.0, seed=2, monitor_gradients=True)
        return net

    net = train()
    assert net.params.tobytes() == train().params.tobytes()
    net.save(tmp_path / "net.npz")
    loaded = Network.load(tmp_path / "net.npz")
    assert loaded.device == "cpu"
    assert loaded.params.tobytes() == net.params.tobytes()
    assert loaded.to("cuda") is loaded
    assert loaded.params.tobytes() == net.params.tobytes()
    assert net.to("cpu").params.tobytes() == loaded.params.tobytes()
    assert (net.predict(X) == loaded.predict(X)).all()


@needs_cuda
def test_the_data_is_copied_to_the_gpu_once(monkeypatch):
    # The number of host-to-device copies does not grow with the number of mini-batches, and
    # the training and validation data cross once each per fit call.
    rng = np.random.default_rng(11)
    X, y = rng.random((16, 3)), rng.integers(0, 2, 16)
    X_val = rng.random((5, 3))
    copies = []
    real = cuda.to_device

    def counting(array, *args, **kwargs):
        copies.append(np.shape(array))
        return real(array, *args, **kwargs)

    monkeypatch.setattr(cuda, "to_device", counting)
    counts = []
    for batch_size in (8, 2):
        copies.clear()
        net = Network([3, 4, 2], seed=5, dtype="float64", device="cuda")
        net.fit(X, y, epochs=2, batch_size=batch_size, lr=1.0, validation_data=(X_val, y[:5]))
        counts.append(len(copies))
        assert copies.count(X.shape) == 1
        assert copies.count(X_val.shape) == 1
    assert counts[0] == counts[1]


@needs_cuda
# The simulator computes with NumPy scalars, which warn of overflow and inf·0 (a GPU does not).
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_non_finite_epoch_on_the_gpu_names_the_mini_batch_and_keeps_the_last_finite_step():
    # As the CPU test in test_network: mini-batch 1 overflows the first layer's weights.
    def network(device):
        net = Network([2, 3, 1], seed=0, dtype="float64", device=device)
        net.weights[0][...] = 0
        return net

    X = np.array([[1.0, 0.0], [1e300, 1e300], [0.0, 1.0]])
    gpu = network("cuda")
    y = np.array([gpu.feedforward(X[0])[0], 0.0, 1.0])
    with pytest.raises(FloatingPointError, match="epoch 0, mini-batch 1, layer 1:"):
        gpu.fit(X, y, epochs=2, batch_size=1, lr=1e12, shuffle=False, optimizer="momentum")
    one_step = network("cuda")
    one_step.fit(X[:1], y[:1], epochs=1, batch_size=1, lr=1e12, optimizer="momentum")
    assert np.isfinite(gpu.params).all()
    assert gpu.params.tobytes() == one_step.params.tobytes()
    assert gpu._optimizer[2] == 1


# --- compiled for a real GPU, without one -----------------------------------------------------


def _ptx_compiler():
    """``compile_ptx`` with the device functions compiled for sm_90, or a skip reason."""
    if SIMULATOR or cuda is None:
        return None, "the simulator compiles nothing (run without NUMBA_ENABLE_CUDASIM)"
    try:
        import numba_cuda  # noqa: F401
        from numba.cuda import dispatcher
    except ImportError:
        return None, "numba-cuda is not installed (pip install 'fastbp[cuda]')"
    try:
        cuda.compile_ptx(lambda a: None, (numba.float32[::1],), cc=(9, 0))
    except Exception as exc:  # no NVVM/NVRTC: the toolkit's libraries are missing
        return None, f"NVIDIA's compiler libraries are not usable here ({type(exc).__name__})"
    return dispatcher, None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_kernel_compiles_to_ptx_for_a_hopper_gpu(dtype, monkeypatch):
    # Compiling for a real GPU types every kernel (the simulator runs them as Python), and the
    # float32 code must not fall back to float64 arithmetic (a stray literal would promote it).
    dispatcher, reason = _ptx_compiler()
    if dispatcher is None:
        pytest.skip(reason)
    if not GPU:  # device functions are compiled for the current GPU's architecture
        fake = types.SimpleNamespace(compute_capability=(9, 0))
        monkeypatch.setattr(dispatcher, "get_current_device", lambda: fake)
    from fastbp import _cuda as kernels

    f = getattr(numba, dtype)
    i64, m, v = numba.int64, f[:, ::1], f[::1]
    m_any = f[:, :]  # row slices of C-contiguous matrices
    signatures = {
        "gather_rows": (m, numba.int64[::1], i64, m_any),
        "weighted_input": (m_any, v, m_any, m_any, m_any, m_any, i64, f),
        "softmax_rows": (m_any, m_any, m_any),
        "output_error": (m_any, m, numba.int64[::1], i64, m_any, m_any, i64, i64),
        "backpropagate_error": (m_any, m_any, m_any, m_any),
        "accumulate_gradient": (m_any, m_any, m_any, v, f, numba.boolean),
        "regularise_and_clip": (v, v, v, f, f, f),
        "partial_sums_of_squares": (v, v),
        "clip_scale": (v, f, v),
        "optimizer_step": (v, v, m, i64, f, v, f, f, v, numba.boolean),
        "flag_non_finite": (v, numba.int32[::1]),
    }
    for name, signature in signatures.items():
        ptx, _ = cuda.compile_ptx(getattr(kernels, name).py_func, signature, cc=(9, 0))
        arithmetic = [
            line for line in ptx.splitlines()
            if ".f64" in line and not line.strip().startswith(("//", "."))
        ]  # fmt: skip
        if dtype == "float32":
            assert not arithmetic, f"{name}: float64 instructions in float32 code: {arithmetic[:3]}"
        assert ".entry" in ptx


@needs_gpu
@pytest.mark.parametrize("batch_size", [10, 100])
def test_an_mnist_shaped_epoch_on_a_real_gpu_matches_the_cpu(batch_size):
    # On hardware (16 × 16 tiles, many blocks, fused multiply-adds): 784 inputs, 500 samples.
    rng = np.random.default_rng(12)
    X, y = rng.random((500, 784)), rng.integers(0, 10, 500)
    nets = [Network([784, 30, 10], seed=1, dtype="float64", device=d) for d in ("cpu", "cuda")]
    for net in nets:
        net.fit(X, y, epochs=1, batch_size=batch_size, lr=0.5, seed=2)
    scale = np.abs(nets[0].params).max()
    np.testing.assert_allclose(nets[1].params, nets[0].params, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(nets[1].feedforward(X), nets[0].feedforward(X), atol=1e-10)
