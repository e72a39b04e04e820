"""Slow, obviously-correct loop versions of conv2d, max_pool2d and avg_pool2d: the executable specification.

They follow the definitions pixel by pixel; the fast ops in tinygrad_cnn.ops must agree
with them on every drawn case, ties included.
"""

import numpy as np


def conv2d_loops(x: np.ndarray, weight: np.ndarray, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                 groups: int = 1, grad_out=None):
    """y[n,o,i,j] = Σ_{c,p,q} xpad[n, g·Cg + c, i*sh + p*dh, j*sw + q*dw] * weight[o, c, p, q],
    where g = o // (O/groups) is the output channel's group and Cg = C/groups; and (if
    grad_out = G is given) the gradients, each term's share added where it came from:
    dweight[o,c,p,q] += G[n,o,i,j] · xpad[…] and dxpad[…] += G[n,o,i,j] · weight[o,c,p,q],
    dx = dxpad without its padding."""
    batch, channels, height, width = x.shape
    out_channels, group_channels, kernel_h, kernel_w = weight.shape
    padded = np.zeros((batch, channels, height + 2 * padding[0], width + 2 * padding[1]), dtype=x.dtype)
    padded[:, :, padding[0] : padding[0] + height, padding[1] : padding[1] + width] = x
    out_h = (padded.shape[2] - dilation[0] * (kernel_h - 1) - 1) // stride[0] + 1
    out_w = (padded.shape[3] - dilation[1] * (kernel_w - 1) - 1) // stride[1] + 1
    output = np.zeros((batch, out_channels, out_h, out_w), dtype=x.dtype)
    grad_padded, grad_weight = np.zeros_like(padded), np.zeros_like(weight)
    for n in range(batch):
        for o in range(out_channels):
            first_channel = (o // (out_channels // groups)) * group_channels
            for i in range(out_h):
                for j in range(out_w):
                    total = 0.0
                    for c in range(group_channels):
                        for p in range(kernel_h):
                            for q in range(kernel_w):
                                row, column = i * stride[0] + p * dilation[0], j * stride[1] + q * dilation[1]
                                total += padded[n, first_channel + c, row, column] * weight[o, c, p, q]
                                if grad_out is not None:
                                    grad_weight[o, c, p, q] += grad_out[n, o, i, j] * padded[n, first_channel + c, row, column]
                                    grad_padded[n, first_channel + c, row, column] += grad_out[n, o, i, j] * weight[o, c, p, q]
                    output[n, o, i, j] = total
    if grad_out is None:
        return output
    return output, grad_padded[:, :, padding[0] : padding[0] + height, padding[1] : padding[1] + width], grad_weight


def avg_pool2d_loops(x: np.ndarray, kernel=(2, 2), stride=(2, 2), grad_out=None):
    """Window means, element by element; and (if grad_out is given) the gradient: each window
    hands G / (kh·kw) to each element it averaged, adding up where windows overlap."""
    batch, channels, height, width = x.shape
    out_h = (height - kernel[0]) // stride[0] + 1
    out_w = (width - kernel[1]) // stride[1] + 1
    output = np.zeros((batch, channels, out_h, out_w), dtype=x.dtype)
    grad_x = np.zeros_like(x)
    for n in range(batch):
        for c in range(channels):
            for i in range(out_h):
                for j in range(out_w):
                    rows = slice(i * stride[0], i * stride[0] + kernel[0])
                    columns = slice(j * stride[1], j * stride[1] + kernel[1])
                    output[n, c, i, j] = x[n, c, rows, columns].sum() / (kernel[0] * kernel[1])
                    if grad_out is not None:
                        grad_x[n, c, rows, columns] += grad_out[n, c, i, j] / (kernel[0] * kernel[1])
    return output if grad_out is None else (output, grad_x)


def max_pool2d_loops(x: np.ndarray, kernel=(2, 2), stride=(2, 2), grad_out=None):
    """Window maxima, and (if grad_out is given) the gradient routed to each window's
    first maximum in row-major order (a window holding a NaN: its last NaN, whose value it
    takes), adding up where windows overlap."""
    batch, channels, height, width = x.shape
    out_h = (height - kernel[0]) // stride[0] + 1
    out_w = (width - kernel[1]) // stride[1] + 1
    output = np.zeros((batch, channels, out_h, out_w), dtype=x.dtype)
    grad_x = np.zeros_like(x)
    for n in range(batch):
        for c in range(channels):
            for i in range(out_h):
                for j in range(out_w):
                    best, best_position = None, None
                    for p in range(kernel[0]):
                        for q in range(kernel[1]):
                            value = x[n, c, i * stride[0] + p, j * stride[1] + q]
                            if best is None or value > best or np.isnan(value):  # PyTorch's rule: the last NaN wins
                                best, best_position = value, (i * stride[0] + p, j * stride[1] + q)
                    output[n, c, i, j] = best
                    if grad_out is not None:
                        grad_x[n, c, best_position[0], best_position[1]] += grad_out[n, c, i, j]
    return output if grad_out is None else (output, grad_x)
