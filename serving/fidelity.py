"""Check that a pushed model serves in TF Serving's loader exactly as it does in TF2.

No TF Serving binary exists on the machines this project is developed on, so this
is the closest honest check: `tf1_loader.py` loads the model through the MetaGraph
and SignatureDef tensor names (the C++ loader's path) in a fresh process that imports
neither tf.Transform nor watchnext, and its outputs are compared with
`tf.saved_model.load(...).signatures[...]` in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)

import numpy as np

LOADER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tf1_loader.py")


class FidelityError(RuntimeError):
    """The model would not serve, or serves different numbers, under TF Serving's loader."""


@dataclass
class FidelityReport:
    """What the check compared and the largest difference it saw per output."""

    model_dir: str
    signature: str
    examples: int
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    mismatched: list[str] = field(default_factory=list)
    python_ops: list[str] = field(default_factory=list)
    op_count: int = 0

    @property
    def ok(self) -> bool:
        return not self.python_ops and not self.mismatched


def check_serving_fidelity(model_dir: str, examples: list[bytes], signature: str = "serving_default",
                           rtol: float = 1e-5, atol: float = 1e-5) -> FidelityReport:
    """Run `examples` through both loaders; raise FidelityError on any mismatch.

    Outputs must agree to float32 rounding: |a - b| <= atol + rtol * |b| elementwise
    (watch time is in seconds, so an absolute bound alone would flag rounding).
    """
    import tensorflow as tf

    if not examples:
        raise FidelityError("no examples to check with")
    model_dir = os.path.abspath(model_dir)  # the loader runs in a temporary working directory
    with tempfile.TemporaryDirectory() as tmp:
        records = os.path.join(tmp, "examples.tfrecord")
        with tf.io.TFRecordWriter(records) as w:
            for e in examples:
                w.write(e)
        out = os.path.join(tmp, "tf1.npz")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        proc = subprocess.run([sys.executable, LOADER, model_dir, records, out, signature],
                              capture_output=True, text=True, env=env, cwd=tmp, check=False)
        if proc.returncode != 0:
            raise FidelityError(f"TF Serving-style load of {model_dir} failed:\n{proc.stderr[-3000:]}")
        probe = json.loads(proc.stdout.strip().splitlines()[-1])
        tf1 = dict(np.load(out, allow_pickle=False))
    if probe["imported_non_tf_modules"]:
        raise FidelityError(f"the loader imported {probe['imported_non_tf_modules']}: not a fair check")
    tf2 = tf.saved_model.load(model_dir).signatures[signature]
    (input_name,) = tf2.structured_input_signature[1]
    expected = {k: v.numpy() for k, v in tf2(**{input_name: tf.constant(examples)}).items()}
    report = FidelityReport(model_dir, signature, len(examples), python_ops=probe["python_ops"],
                            op_count=probe["op_count"])
    if set(expected) != set(tf1):
        raise FidelityError(f"outputs differ: TF2 {sorted(expected)} vs TF Serving loader {sorted(tf1)}")
    for key, value in expected.items():
        report.max_abs_diff[key] = float(np.max(np.abs(value - tf1[key]))) if value.size else 0.0
        if not np.allclose(tf1[key], value, rtol=rtol, atol=atol):
            report.mismatched.append(key)
    if report.python_ops:
        raise FidelityError(f"the graph holds Python ops TF Serving cannot run: {report.python_ops}")
    if report.mismatched:
        bad = {k: report.max_abs_diff[k] for k in report.mismatched}
        raise FidelityError(f"outputs differ between loaders beyond rtol={rtol}, atol={atol}: {bad}")
    return report
