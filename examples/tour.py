"""A five-minute tour of tinygrad_cnn: build a graph, backpropagate by hand, then let the engine do it.

Run it from the repository root:

    PYTHONPATH=. python examples/tour.py

Read this file top to bottom next to its output. It touches the three ideas the whole
framework is made of:

1. Every Tensor computed from a tensor that wants a gradient remembers the op that made
   it and that op's inputs (``tensor.node.op`` and ``tensor.node.inputs``): a graph.
2. Every op is a small class with a ``forward`` and a hand-written ``backward``: its
   vector-Jacobian product (VJP). Given dy/d(output) it returns dy/d(input) for each input.
3. ``y.backward()`` walks the graph once from y back to the leaves, calling each VJP, and
   *adds* the results into ``leaf.grad`` (a tensor used twice gets two contributions).

Then we check the engine against finite differences with ``gradcheck``. A CNN is nothing
more than this, with bigger ops (conv2d, max_pool2d, cross_entropy): see docs/autograd.md.
"""

import numpy as np

from tinygrad_cnn import Tensor, gradcheck


def text(array) -> str:
    return np.array2string(np.asarray(array, dtype=np.float64), separator=", ", max_line_width=200).replace("\n", "")


def show(name: str, computed, expected) -> None:
    """Print a gradient next to its hand-derived value, and stop loudly if they differ."""
    agree = np.allclose(np.asarray(computed, dtype=np.float64), np.asarray(expected, dtype=np.float64))
    print(f"  {name:<7} computed {text(computed):<28} by hand {text(expected):<28} {'✓' if agree else '✗ MISMATCH'}")
    if not agree:
        raise SystemExit(f"{name}: the engine and the hand derivation disagree")


def build(a: Tensor, b: Tensor):
    """y = Σ (a·b + b), written as three primitive ops: Mul, Add, Sum."""
    c = a * b     # Mul:  c_i = a_i b_i
    d = c + b     # Add:  d_i = c_i + b_i      (b is used a second time here!)
    y = d.sum()   # Sum:  y = Σ_i d_i          (a scalar: something we can differentiate)
    return c, d, y


print("1. Forward: each result remembers the op that made it and that op's inputs")
# Leaves: tensors we create ourselves. requires_grad=True asks the engine for dy/d(leaf).
a = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
b = Tensor(np.array([4.0, 5.0, 6.0]), requires_grad=True)
c, d, y = build(a, b)
names = {id(a): "a", id(b): "b", id(c): "c", id(d): "d", id(y): "y"}
for name, tensor in (("c", c), ("d", d), ("y", y)):
    inputs = ", ".join(names[id(parent)] for parent in tensor.node.inputs)
    print(f"  {name} = {tensor.node.op.name}({inputs}) = {tensor.data}")
print(f"  a and b are leaves: a.node is {a.node}, b.node is {b.node}")

print("\n2. Backward by hand: call each op's VJP ourselves, from y back to the leaves")
# The chain rule, one op at a time. g_x below means dy/dx, an array of x's shape.
g_y = np.array(1.0)                        # dy/dy = 1: where every backward pass starts
(g_d,) = y.node.op.backward(g_y)           # Sum's VJP: every d_i counts once → g_d = 1 for all i
g_c, g_b_from_add = d.node.op.backward(g_d)  # Add's VJP passes g_d to both inputs unchanged
g_a, g_b_from_mul = c.node.op.backward(g_c)  # Mul's VJP: g_a = g_c·b and g_b = g_c·a
g_b = g_b_from_add + g_b_from_mul          # b fed two ops, so its two contributions ADD up
show("dy/dy", g_y, 1.0)
show("dy/dd", g_d, np.ones(3))
show("dy/dc", g_c, np.ones(3))
show("dy/da", g_a, b.data)                 # ∂/∂a_i Σ (a_i b_i + b_i) = b_i
show("dy/db", g_b, a.data + 1)             # ∂/∂b_i Σ (a_i b_i + b_i) = a_i + 1

print("\n3. The engine does exactly that: y.backward() fills a.grad and b.grad")
# A fresh graph (backward frees the graph it walks, so a graph is backpropagated once).
a = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
b = Tensor(np.array([4.0, 5.0, 6.0]), requires_grad=True)
_, _, y = build(a, b)
y.backward()
show("a.grad", a.grad, b.data)
show("b.grad", b.grad, a.data + 1)
# Only leaves keep a .grad; the intermediate gradients (g_c, g_d) lived only during the walk.

print("\n4. A layer: h = relu(x @ W), loss = Σ h")
x = Tensor(np.array([[1.0, -2.0]]))                         # a constant input (1 x 2)
W = Tensor(np.array([[0.5, -1.0, 2.0], [1.0, 0.5, 0.25]]), requires_grad=True)  # 2 x 3
z = x @ W                                                   # MatMul: z = x W   → [-1.5, -2, 1.5]
loss = z.relu().sum()                                       # ReLU then Sum
loss.backward()
# By hand: dloss/dh = 1; ReLU lets the gradient through only where z > 0: g_z = [z > 0];
# MatMul's VJP for the right operand is dW = xᵀ g_z (an outer product here).
g_z = (z.data > 0).astype(float)
show("W.grad", W.grad, x.data.T @ g_z)
print(f"  (only the third column of W gets a gradient: z = {z.data[0]}, and relu is flat below 0)")

print("\n5. gradcheck: compare every VJP above with finite differences (f(x+ε) − f(x−ε)) / 2ε")
gradcheck(lambda a, b: build(a, b)[2], [np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])])
gradcheck(lambda x, W: (x @ W).relu().sum(), [Tensor(x.data), W.data])  # checks W only (x is a constant)
print("  gradcheck OK: the hand-written VJPs agree with the numbers")
print("\nNext: docs/autograd.md derives the VJP of every op, conv2d and max_pool2d included;")
print("tinygrad_cnn.summary.summary(SeedCNN(), (1, 1, 28, 28)) prints the CNN op by op.")
