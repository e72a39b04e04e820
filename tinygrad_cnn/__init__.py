"""tinygrad_cnn: a numpy-only autograd engine with hand-written VJPs, built to train a CNN."""

from tinygrad_cnn.function import Function
from tinygrad_cnn.gradcheck import GradcheckError, gradcheck
from tinygrad_cnn.random import manual_seed
from tinygrad_cnn.tensor import Tensor, enable_grad, is_grad_enabled, no_grad, set_grad_enabled, train_mode

__all__ = ["Tensor", "Function", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "train_mode",
           "gradcheck", "GradcheckError", "manual_seed"]
__version__ = "0.1.0"
