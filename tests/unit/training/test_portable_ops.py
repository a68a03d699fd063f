"""Portable operators: accuracy against torch within their documented bounds, exactness of the
integer products, order-independence where float32 arithmetic is order-dependent, subnormal
flushing, the counter-based generator and the optimizers (docs/spec/portable.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from veritrain.errors import SpecError
from veritrain.training.portable import arith, fixed
from veritrain.training.portable import functions as pf
from veritrain.training.portable.modules import PortableDropout, convert
from veritrain.training.portable.optim import PortableAdam, PortableSGD, int_pow
from veritrain.training.portable.rng import bits, keep_mask


def test_transcendentals_stay_within_their_stated_bounds() -> None:
    x = torch.linspace(-87.3, 88.0, 400_001)  # results in float32's normal range
    want = torch.exp(x.double())
    rel = ((arith.pexp(x).double() - want).abs() / want).max().item()
    assert rel < 2**-21
    below = arith.pexp(torch.tensor([-87.5, -104.0, -1e30, float("-inf")]))
    assert below.tolist() == [0.0] * 4  # below 2**-126: +0, never a subnormal
    y = torch.logspace(-37, 38, 200_001)
    log_err = ((arith.plog(y).double() - torch.log(y.double())).abs()
               / torch.log(y.double()).abs().clamp_min(1.0)).max().item()
    assert log_err < 2**-20
    z = torch.linspace(-8.0, 8.0, 200_001)
    assert (arith.perf(z).double() - torch.erf(z.double())).abs().max().item() < 6e-7
    assert (arith.ptanh(z).double() - torch.tanh(z.double())).abs().max().item() < 2.5e-7


def _correct_sqrt(x: torch.Tensor) -> np.ndarray:
    return np.sqrt(x.numpy())  # numpy's float32 sqrt is the IEEE instruction: correctly rounded


def test_sqrt_is_correctly_rounded_even_when_the_library_sqrt_is_one_ulp_off(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """torch's CPU sqrt is MKL VML's, within one ulp and not correctly rounded (its bits moved
    with MKL's code path and the thread split, and a portable MLP diverged on another CPU).
    psqrt must give the correctly rounded root from any approximation within one ulp."""
    g = torch.Generator().manual_seed(11)
    x = torch.cat([torch.rand(200_000, generator=g) * 10.0 ** torch.randint(-30, 30, (200_000,), generator=g),
                   torch.tensor([0.0, 2.0**-126, 1.0, 4.0, 2.0, 3.4e38, float("inf")])])
    x = arith.flush(x.to(torch.float32))
    assert np.array_equal(arith.psqrt(x).numpy(), _correct_sqrt(x))
    real_sqrt = torch.sqrt
    for shift in (-1, 1):  # one ulp low, then high, but at 0 and inf
        def off_by_one_ulp(t: torch.Tensor, shift: int = shift) -> torch.Tensor:
            r = real_sqrt(t).to(torch.float32)
            moved = (r.view(torch.int32) + shift).view(torch.float32)
            return torch.where((r > 0) & torch.isfinite(r), moved, r).to(t.dtype)

        monkeypatch.setattr(torch, "sqrt", off_by_one_ulp)
        assert np.array_equal(arith.psqrt(x).numpy(), _correct_sqrt(x)), shift


def test_subnormals_are_flushed_to_positive_zero() -> None:
    tiny = torch.tensor([1e-40, -1e-40, -0.0, 2.0**-126, -3.0], dtype=torch.float32)
    out = arith.flush(tiny)
    assert out.tolist() == [0.0, 0.0, 0.0, 2.0**-126, -3.0]
    assert not torch.signbit(out[:3]).any()
    # a product whose exact value is subnormal leaves a portable op as +0, not as a subnormal
    a = torch.full((1, 4), 1e-20)
    assert fixed.pmm(a, a.t() * 1e-3).item() == 0.0


def test_integer_matmul_is_exact_and_the_float_result_rounds_once() -> None:
    g = torch.Generator().manual_seed(3)
    a = torch.randn(3, 17, 300, generator=g) * torch.logspace(-3, 3, 300)
    b = torch.randn(3, 300, 9, generator=g)
    c, sa, sb = fixed.integer_matmul(a, b)
    assert torch.equal(c, fixed.reference_integer_matmul(a, b))
    out = fixed.pmm(a, b)
    want = (a.double() @ b.double())
    scale = (a.double().abs() @ b.double().abs())
    assert ((out.double() - want).abs() / scale).max().item() < 2**-21


def test_products_and_sums_do_not_depend_on_order_or_blocking() -> None:
    """float32 sums change with the order of their terms; the fixed-point ones do not."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(64, 4096, generator=g) * torch.logspace(-4, 4, 4096)
    perm = torch.randperm(4096, generator=g)
    assert not torch.equal(x.sum(1), x[:, perm].sum(1))  # the hazard is real
    assert torch.equal(fixed.psum(x, 1), fixed.psum(x[:, perm], 1))
    w = torch.randn(4096, 32, generator=g)
    assert torch.equal(fixed.pmm(x, w), fixed.pmm(x[:, perm], w[perm]))
    # each row of a product is the same whichever rows it is computed with (batch-invariant)
    assert torch.equal(fixed.pmm(x, w)[10:13], fixed.pmm(x[10:13], w))


def test_every_operator_and_its_gradient_matches_torch() -> None:
    g = torch.Generator().manual_seed(7)

    def close(portable, reference, *shapes, tol=2e-6):  # type: ignore[no-untyped-def]
        xs = [torch.randn(*s, generator=g, requires_grad=True) for s in shapes]
        ys = [t.detach().clone().requires_grad_() for t in xs]
        out_p, out_t = portable(*xs), reference(*ys)
        grad = torch.randn(out_p.shape, generator=g)
        out_p.backward(grad)
        out_t.backward(grad)
        worst = max([(out_p - out_t).abs().max().item()]
                    + [(a.grad - b.grad).abs().max().item() for a, b in zip(xs, ys, strict=True)])
        assert worst < tol * max(1.0, out_t.abs().max().item())

    close(pf.linear, F.linear, (4, 5, 8), (6, 8), (6,))
    close(pf.matmul, torch.matmul, (2, 5, 8), (2, 8, 3))
    close(lambda x, w, b: pf.layer_norm(x, w, b, 1e-5),
          lambda x, w, b: F.layer_norm(x, (8,), w, b, 1e-5), (4, 5, 8), (8,), (8,))
    mask = torch.triu(torch.ones(6, 6, dtype=torch.bool), 1)
    close(lambda x: pf.softmax(x.masked_fill(mask, float("-inf"))),
          lambda x: x.masked_fill(mask, float("-inf")).softmax(-1), (3, 6, 6))
    close(pf.gelu, F.gelu, (200,))
    close(pf.tanh, torch.tanh, (200,))
    target = torch.randint(0, 7, (9,), generator=g)
    close(lambda x: pf.cross_entropy(x, target), lambda x: F.cross_entropy(x, target), (9, 7))
    idx = torch.randint(0, 5, (3, 4), generator=g)
    close(lambda w: pf.embedding(idx, w), lambda w: F.embedding(idx, w), (5, 6))


def test_dropout_generator_is_counter_based_and_keeps_one_minus_p() -> None:
    a, b = bits(11, 0, 100_000), bits(11, 0, 100_000)
    assert torch.equal(a, b) and not torch.equal(a, bits(11, 1, 100_000))
    assert not torch.equal(a, bits(12, 0, 100_000))
    assert int(a.min()) >= 0 and int(a.max()) < 2**32
    kept = keep_mask(11, 0, torch.Size([1000, 100]), 0.25).float().mean().item()
    assert abs(kept - 0.75) < 0.01
    drop = convert(torch.nn.Sequential(torch.nn.Dropout(0.5)))[0]
    assert isinstance(drop, PortableDropout)
    x = torch.ones(1000)
    first, second = drop(x), drop(x)
    assert int(drop.rng_calls) == 2 and not torch.equal(first, second)
    assert set(first.unique().tolist()) == {0.0, 2.0}
    drop.eval()
    assert torch.equal(drop(x), x)


def test_convert_refuses_modules_without_a_portable_form() -> None:
    with pytest.raises(SpecError, match="Conv2d"):
        convert(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)))
    with pytest.raises(SpecError, match="exact GELU"):
        convert(torch.nn.Sequential(torch.nn.GELU(approximate="tanh")))


def test_int_pow_is_repeated_squaring_close_to_the_exact_power() -> None:
    from fractions import Fraction

    assert int_pow(0.5, 10) == 2.0**-10 and int_pow(0.9, 0) == 1.0
    exact = Fraction(0.999) ** 1000
    assert abs(Fraction(int_pow(0.999, 1000)) - exact) / exact < 1e-13


@pytest.mark.parametrize("name", ["sgd", "sgd_nesterov", "adam", "adamw"])
def test_portable_optimizers_follow_torchs_updates(name: str) -> None:
    g = torch.Generator().manual_seed(1)
    w0 = torch.randn(50, generator=g)
    grads = [torch.randn(50, generator=g) for _ in range(30)]
    make = {
        "sgd": (lambda p: PortableSGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
                lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01)),
        "sgd_nesterov": (lambda p: PortableSGD(p, lr=0.1, momentum=0.9, nesterov=True),
                         lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
        "adam": (lambda p: PortableAdam(p, lr=1e-2, weight_decay=0.01),
                 lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=0.01)),
        "adamw": (lambda p: PortableAdam(p, lr=1e-2, weight_decay=0.1, decoupled=True),
                  lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1)),
    }[name]
    ws = [w0.clone().requires_grad_(), w0.clone().requires_grad_()]
    opts = [make[0]([ws[0]]), make[1]([ws[1]])]
    for grad in grads:
        for w, opt in zip(ws, opts, strict=True):
            w.grad = grad.clone()
            opt.step()
    assert not torch.equal(ws[0], w0)
    np.testing.assert_allclose(ws[0].detach().numpy(), ws[1].detach().numpy(), atol=2e-5)
    # the state has torch's names, so checkpoints store it the same way
    assert set(opts[0].state_dict()["state"][0]) == set(opts[1].state_dict()["state"][0])
