"""tinygrad_cnn: a numpy-only autograd engine with hand-written VJPs, built to train a CNN."""

from tinygrad_cnn.tensor import Tensor, is_grad_enabled, no_grad, train_mode
from tinygrad_cnn.gradcheck import GradcheckError, gradcheck

__all__ = ["Tensor", "no_grad", "is_grad_enabled", "train_mode", "gradcheck", "GradcheckError"]
__version__ = "0.1.0"
