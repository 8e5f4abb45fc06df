"""watchnext: YouTube's multitask Watch-Next ranker (Zhao et al., RecSys 2019) as a TFX pipeline.

Importing watchnext first pins Keras 2: tensorflow-recommenders 0.7.7, tf.Transform
and TFMA all need it, and TensorFlow 2.16 reads TF_USE_LEGACY_KERAS only when it is
first imported. Code in this package names `tf_keras` directly, never the keras attribute of
tensorflow, whose meaning flips with import order in this stack.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
if os.environ["TF_USE_LEGACY_KERAS"] != "1":
    raise ImportError(
        "watchnext needs Keras 2 (tf_keras): unset TF_USE_LEGACY_KERAS or set it to 1 "
        f"(it is {os.environ['TF_USE_LEGACY_KERAS']!r})"
    )

__version__ = "0.1.0"
