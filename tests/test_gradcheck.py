"""gradcheck itself: it passes correct VJPs and catches wrong ones with a useful message."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_cnn import GradcheckError, Tensor, gradcheck, ops


class WrongDouble(ops.Function):
    """y = 2x with a deliberately wrong VJP (3G instead of 2G) on one element."""

    def forward(self, x):
        return 2 * x

    def backward(self, grad_out):
        grad = 2 * grad_out
        grad.reshape(-1)[-1] *= 1.5
        return (grad,)


def wrong_double(t: Tensor) -> Tensor:
    return Tensor._from_op(WrongDouble(), (t,))


def test_full_jacobian_check_names_input_and_element():
    x = np.arange(6.0).reshape(2, 3)
    with pytest.raises(GradcheckError, match=r"input 0 \(shape \(2, 3\)\).*d input\(1, 2\).*3 analytically but 2"):
        gradcheck(wrong_double, [x])


class WrongTranspose(ops.Function):
    """y = x @ A with the classic bug in its VJP: G @ A instead of G @ Aᵀ."""

    def __init__(self, matrix):
        self.matrix = matrix

    def forward(self, x):
        return x @ self.matrix

    def backward(self, grad_out):
        return (grad_out @ self.matrix,)


@given(size=st.integers(20, 60), seed=st.integers(0, 2**32 - 1))
def test_projection_check_catches_errors_in_large_inputs(size, seed):
    rng = np.random.default_rng(seed)
    x, matrix = rng.standard_normal((size, size)), rng.standard_normal((size, size))
    # size² × size² is far too big for the full Jacobian: only the projections run
    with pytest.raises(GradcheckError, match="random direction"):
        gradcheck(lambda t: Tensor._from_op(WrongTranspose(matrix), (t,)), [x])
    assert gradcheck(lambda t: t @ matrix, [x])


def test_only_inputs_requiring_grad_are_checked():
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.arange(3.0))  # constant: its (wrong) gradient is never looked at
    assert gradcheck(lambda x, y: x * wrong_double(y), [a, b])
    with pytest.raises(ValueError, match="nothing to check"):
        gradcheck(lambda x: x * 2, [Tensor(np.ones(2))])


def test_float32_inputs_are_checked_in_float64():
    x = Tensor(np.linspace(-1, 1, 5, dtype=np.float32), requires_grad=True)
    assert gradcheck(lambda t: (t * t * t).sum(), [x], atol=1e-8, rtol=1e-7)


class NonFiniteIdentity(ops.Function):
    """y = x with a VJP that returns ``value`` (NaN or inf) times the incoming gradient."""

    def __init__(self, value):
        self.value = value

    def forward(self, x):
        return x

    def backward(self, grad_out):
        return (grad_out * self.value,)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("value, shown", [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_a_non_finite_vjp_fails_the_full_jacobian_check(value, shown):
    # NaN compares False with everything: a tolerance test alone would pass it
    with pytest.raises(GradcheckError, match=rf"input 0 .*d input\(0,\) is {shown} analytically but 1 numerically"
                                             r" \(a non-finite gradient\)"):
        gradcheck(lambda t: NonFiniteIdentity.apply(t, value=value), [np.ones(3)])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("value, shown", [(np.nan, "nan"), (np.inf, "inf")])
def test_a_non_finite_vjp_fails_the_projection_check(value, shown):
    # 100 × 100 is over the full-Jacobian limit: only the random projections run
    with pytest.raises(GradcheckError, match=rf"random direction .*analytic gradient element \(0,\) is {shown}"):
        gradcheck(lambda t: NonFiniteIdentity.apply(t, value=value), [np.ones(100)])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_non_finite_numeric_gradient_fails():
    # log at 1e-7: the step of 1e-6 leaves the domain, so the central difference is NaN
    with pytest.raises(GradcheckError, match=r"d input\(0,\) is 1e\+07 analytically but nan numerically"):
        gradcheck(lambda t: t.log(), [np.array([1e-7, 1.0])])


def test_non_finite_inputs_and_tolerances_are_refused():
    with pytest.raises(ValueError, match=r"input 1 \(shape \(2,\)\) holds NaN or inf"):
        gradcheck(lambda a, b: a * b, [np.ones(2), np.array([1.0, np.inf])])
    for name in ("atol", "rtol", "eps"):
        with pytest.raises(ValueError, match=f"{name} must be a finite number"):
            gradcheck(lambda t: t * 2, [np.ones(2)], **{name: np.nan})
    with pytest.raises(ValueError, match="eps must be a finite number > 0, got 0"):
        gradcheck(lambda t: t * 2, [np.ones(2)], eps=0)


class HalfSquare(ops.Function):
    """y = x² with a VJP that is half the true one: G·x instead of 2·G·x."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, grad_out):
        return (grad_out * self.x,)


@given(size=st.integers(70, 100), scale=st.floats(1e-5, 1e-1), seed=st.integers(0, 2**32 - 1))
def test_projection_check_catches_a_wrong_vjp_with_small_gradients(size, scale, seed):
    # size² inputs and outputs: only the projections run. Each wrong Jacobian entry is off by
    # x, at least 1e-5 in most places, which the full check would catch entry by entry; with
    # unit-length projection vectors ⟨u, J v⟩ shrank by size² and fell under atol.
    x = scale * np.random.default_rng(seed).standard_normal((size, size))
    with pytest.raises(GradcheckError, match="random direction"):
        gradcheck(lambda t: HalfSquare.apply(t), [x])
    with pytest.raises(GradcheckError, match="random direction"):
        gradcheck(lambda t: HalfSquare.apply(t).sum(), [x])
    assert gradcheck(lambda t: t * t, [x]) and gradcheck(lambda t: (t * t).sum(), [x])


def test_a_check_that_would_check_nothing_is_refused():
    with pytest.raises(ValueError, match=r"projections=0 and the full Jacobian \(10000 inputs × 10000 outputs\) "
                                         r"is over full_jacobian_limit=4096, so nothing would be checked"):
        gradcheck(lambda t: HalfSquare.apply(t), [np.ones((100, 100))], projections=0)
    with pytest.raises(ValueError, match="nothing would be checked"):
        gradcheck(lambda t: HalfSquare.apply(t), [np.ones(2)], projections=0, full_jacobian_limit=0)
    with pytest.raises(GradcheckError, match=r"d input\(0,\)"):  # small enough: the full Jacobian alone runs
        gradcheck(lambda t: HalfSquare.apply(t), [np.ones(2)], projections=0)


@given(seed=st.integers(0, 2**32 - 1), op=st.sampled_from(["relu", "abs", "max_pool2d"]))
def test_projections_pass_correct_ops_with_kinks_on_large_random_inputs(seed, op):
    # 200,704 standard-normal values: some lie within a step (ε times a normal entry) of relu's
    # or abs's kink at 0, or of a tie in a pool window; a step across one changes the
    # difference quotient, so the check must look again with smaller steps, not fail
    x = np.random.default_rng(seed).standard_normal((8, 32, 28, 28))
    call = {"relu": lambda t: t.relu(), "abs": lambda t: t.abs(), "max_pool2d": lambda t: t.max_pool2d(2, 2)}[op]
    assert gradcheck(call, [x])


def test_projections_look_again_with_steps_small_enough_for_a_near_tie():
    # this seed puts two values of one 2x2 window 2.4e-8 apart: steps of 1e-6, 1e-7 and 1e-8 all
    # cross that tie (and fail the correct max pool); one of 1e-9 does not
    x = np.random.default_rng(797005838).standard_normal((8, 32, 28, 28))
    assert gradcheck(lambda t: t.max_pool2d(2, 2), [x])


def test_projections_allow_for_the_rounding_of_large_outputs():
    # sqrt of values near 1e8: outputs near 1e4 whose rounding, divided by 2ε, is about 2e-6 per
    # output; summed over 90,000 outputs that is far above atol, though the VJP is right
    x = 1e8 * (1 + np.random.default_rng(0).random((300, 300)))
    assert gradcheck(lambda t: t.sqrt(), [x])
    x = 1e6 * (1 + np.random.default_rng(0).random((300, 300)))  # and a 10 % error still fails there
    with pytest.raises(GradcheckError, match="random direction"):
        gradcheck(lambda t: ScaledSqrt.apply(t), [x])


class ScaledSqrt(ops.Function):
    """y = √x with a VJP 10 % too small."""

    def forward(self, x):
        self.y = np.sqrt(x)
        return self.y

    def backward(self, grad_out):
        return (0.9 * grad_out / (2 * self.y),)


class DoublingInPlace(ops.Function):
    """y = x with a wrong VJP, 2G instead of G, written into G itself."""

    def forward(self, x):
        return x.copy()

    def backward(self, grad_out):
        grad_out *= 2
        return grad_out


def test_a_vjp_that_changes_its_gradient_in_place_cannot_change_the_projection():
    # backward(u) handed u itself to the VJP, which doubled it: the numeric side ⟨u, J v⟩, computed
    # afterwards, used the doubled u too and agreed with the wrong analytic side (it passed)
    x = np.random.default_rng(0).standard_normal((100, 50))  # too big for the full Jacobian
    with pytest.raises(GradcheckError, match="random direction"):
        gradcheck(lambda t: DoublingInPlace.apply(t), [x])


def test_the_full_jacobian_allows_for_the_rounding_of_large_outputs():
    # f(x) = x + 1e8 has derivative exactly 1, but its difference quotient is 0.998 (rounding of
    # values near 1e8, divided by 2ε): the full check failed it, though the projections passed it
    x = np.random.default_rng(0).standard_normal(3)
    assert gradcheck(lambda t: t + 1e8, [x])
    with pytest.raises(GradcheckError, match="2 analytically but 0.998"):
        gradcheck(lambda t: DoublingInPlace.apply(t) + 1e8, [x])  # a wrong VJP still fails there
