"""Load a SavedModel the way TF Serving's C++ loader does, and run one signature.

Run as a script in a fresh process: `python tf1_loader.py MODEL_DIR EXAMPLES.tfrecord OUT.npz
[SIGNATURE]`. It imports TensorFlow alone — neither tf.Transform nor watchnext — loads
the MetaGraph tagged "serve" into a new graph and session with
`tf.compat.v1.saved_model.load`, and feeds and fetches by the SignatureDef's tensor
names, as TF Serving does. A model that needs Python code or ops outside core
TensorFlow fails here as it would fail in TF Serving.

This file must stay importable without the watchnext package (it is run by path).
"""

from __future__ import annotations

import json
import sys

# Ops that run Python: TF Serving has no interpreter, so a graph holding them cannot be served.
PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})


def graph_op_types(meta_graph: object) -> set[str]:
    """Every op type in the MetaGraph, including those inside its function library."""
    ops = {n.op for n in meta_graph.graph_def.node}
    for fn in meta_graph.graph_def.library.function:
        ops.update(n.op for n in fn.node_def)
    return ops


def run(model_dir: str, examples_path: str, out_path: str, signature: str = "serving_default") -> dict:
    import numpy as np
    import tensorflow as tf

    examples = [r.numpy() for r in tf.data.TFRecordDataset(examples_path)]
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as sess:
        meta_graph = tf.compat.v1.saved_model.load(sess, ["serve"], model_dir)
        sig = meta_graph.signature_def[signature]
        (input_info,) = sig.inputs.values()
        fetches = {key: info.name for key, info in sig.outputs.items()}
        outputs = sess.run(fetches, feed_dict={input_info.name: np.array(examples, dtype=object)})
        ops = graph_op_types(meta_graph)
    np.savez(out_path, **outputs)
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow_transform", "watchnext"))
    return {
        "signature": signature,
        "input": input_info.name,
        "outputs": fetches,
        "examples": len(examples),
        "python_ops": sorted(ops & PYTHON_OPS),
        "op_count": len(ops),
        "imported_non_tf_modules": leaked,
    }


if __name__ == "__main__":
    report = run(*sys.argv[1:])
    print(json.dumps(report))
