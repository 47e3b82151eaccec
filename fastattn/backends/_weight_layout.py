"""Weight gradients laid out as their weights are stored.

GPT-2's Conv1D keeps its weight [in, out]; the fused FFN takes it as the transposed view
W = weight.t() ([out, in], column-major strides). A gradient returned as a row-major [out, in]
matrix reaches the parameter through that view's backward as an [in, out] tensor with column-major
strides, which autograd's gradient accumulation then copies into the parameter's own layout: a
transposing copy of every FFN weight at every step (on CPU, 140 ms of GPT-2-small's 3.2 s training
step at 2 x 128 tokens). Computing dW^T = inputs^T @ grad into an [in, out] buffer instead, and
returning its transposed view, is the same GEMM and leaves nothing to copy.

The fake (meta) functions of the custom ops take their layout from the same rule, so that traced
graphs see the strides the kernels produce.
"""


def stored_transposed(w):
    """True when the matrix w is the transposed view of a contiguous one (and not contiguous itself:
    a matrix with a dimension of 1 is both, and counts as row-major)."""
    return w.dim() == 2 and not w.is_contiguous() and w.t().is_contiguous()


def empty_like_weight(w):
    """An uninitialised matrix of w's shape and dtype laid out as weight_grad lays out w's gradient."""
    return w.new_empty(w.shape[::-1]).t() if stored_transposed(w) else w.new_empty(w.shape)


def weight_grad(w, grad, inputs, product):
    """dW = grad^T @ inputs, in w's layout: w [out, in], grad [rows, out], inputs [rows, in].
    `product(a, b)` returns a @ b as a new row-major matrix (the backend's GEMM)."""
    if stored_transposed(w):
        return product(inputs.t(), grad).t()
    return product(grad.t(), inputs)
