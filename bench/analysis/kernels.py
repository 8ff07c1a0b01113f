"""Which kernel did the recurrent math: a name from the op types of a traced graph (no TensorFlow).

The measuring side counts the op types of a case's traced `tf.function` (its graph and every
function of its library: while bodies, gradients, nested functions; bench.impls.kernels) and
names the kernel here, so the rules are plain Python and tested with hand-made op lists:

- an op that runs the whole sequence wins: `CudnnRNNV3`, `BlockLSTM` (several: joined by `+`);
- else a per-step cell op, else a matmul, inside a loop: `while(LSTMBlockCell)`, `while(MatMul)`;
- or the same ops copied per step without a loop: `unrolled MatMul×240`, where the count is the
  number of such ops in the traced graph (forward and gradient ones alike);
- `unknown` when none of these ops is in the graph.

The graph is the traced one, before Grappler and XLA rewrite it: with `-xla` the same ops are
compiled by XLA.
"""

from __future__ import annotations

from collections.abc import Mapping

# Ops that run a whole sequence in one kernel, in the order they are named.
SEQUENCE_OPS = ("CudnnRNN", "CudnnRNNV2", "CudnnRNNV3", "BlockLSTM", "BlockLSTMV2")
# Ops that run one time step of a cell.
CELL_OPS = ("LSTMBlockCell", "GRUBlockCell")
# Ops that do the matmuls of a cell written with plain TensorFlow ops.
MATMUL_OPS = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum")
# Control-flow-v2 loops (tf.while_loop inside tf.function) and the v1 loop frame op.
LOOP_OPS = ("While", "StatelessWhile", "NextIteration")
UNKNOWN = "unknown"
# How a promise (bench.registry.ImplSpec.kernel_promise) reads in an error message.
PROMISE_NAMES = {"CudnnRNN": "cuDNN"}


def classify_kernel(op_types: Mapping[str, int]) -> str:
    """The kernel name of a traced graph from its op-type counts (see the module docstring)."""
    fused = [op for op in SEQUENCE_OPS if op_types.get(op, 0) > 0]
    if fused:
        return "+".join(fused)
    looped = any(op_types.get(op, 0) > 0 for op in LOOP_OPS)
    for family in (CELL_OPS, MATMUL_OPS):
        found = [op for op in family if op_types.get(op, 0) > 0]
        if not found:
            continue
        if looped:
            return f"while({'+'.join(found)})"
        return "unrolled " + "+".join(f"{op}×{op_types[op]}" for op in found)
    return UNKNOWN


def kernel_problem(promise: str | None, kernel: str | None) -> str | None:
    """Why `kernel` breaks `promise` (an op-type prefix); None when it keeps it or there is none."""
    if promise is None:
        return None
    if kernel is not None and any(part.startswith(promise) for part in kernel.split("+")):
        return None
    return f"promised {PROMISE_NAMES.get(promise, promise)} but ran {kernel or UNKNOWN}"
