"""The primitive ops, one class each, forward and vector-Jacobian product side by side.

Every op works on plain numpy arrays and knows nothing about Tensors or graphs (see
``tinygrad_cnn.function`` for the protocol). Shapes in the docstrings use N = batch,
C = channels, H/W = height and width, O = output channels, K = classes, G = grad_out.

    elementwise.py   + - * / % // neg relu exp log sqrt pow sin cos tanh sigmoid gelu abs clip maximum where …
    reductions.py    sum mean max min argmax argmin
    movement.py      reshape pad transpose getitem embedding cat stack cast
    neural.py        matmul conv2d max_pool2d avg_pool2d softmax log_softmax cross_entropy dropout
                     batch_norm
"""

from tinygrad_cnn.function import Function, Gradients, unbroadcast
from tinygrad_cnn.ops.elementwise import *  # noqa: F401,F403
from tinygrad_cnn.ops.movement import *  # noqa: F401,F403
from tinygrad_cnn.ops.neural import *  # noqa: F401,F403
from tinygrad_cnn.ops.reductions import *  # noqa: F401,F403
