"""The op types a traced step runs, read from its graph (bench.analysis.kernels names the kernel).

Read from the function itself, not assumed from the implementation: Keras picks cuDNN or its
generic loop when it traces, so only the traced graph says which one ran.
"""

from __future__ import annotations

from collections import Counter


def graph_op_types(graph_def) -> Counter:
    """Op-type counts of a GraphDef: its nodes and those of its library (loops, gradients)."""
    counts = Counter(node.op for node in graph_def.node)
    for function in graph_def.library.function:
        counts.update(node.op for node in function.node_def)
    return counts


def traced_op_types(function) -> Counter:
    """Op-type counts of a tf.function that takes no arguments and has been called once."""
    concrete = function.get_concrete_function()  # the traced one: no new trace
    return graph_op_types(concrete.graph.as_graph_def())
