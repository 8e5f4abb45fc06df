"""The names the exported model, the Evaluator, serving and the pipeline agree on.

Each is written once here, so that a SavedModel exported by the Trainer can be read by the
Evaluator and by `watchnext rank` without either importing the model code, and so that the
pipeline can name its user functions without importing them (and TensorFlow with them).
"""

from __future__ import annotations

# The SavedModel's serving signature: serialized tf.Examples of raw features in (one per
# candidate, under EXAMPLES_INPUT); one output per head plus the combined SCORE_OUTPUT.
SERVING_SIGNATURE = "serving_default"
EXAMPLES_INPUT = "examples"
# The combined ranking score, an output beside the heads' (so no head may be named so).
SCORE_OUTPUT = "score"
# The optional tf.Example feature that overrides a request's score weights (one per head).
SCORE_WEIGHTS_FEATURE = "score_weights"

# Key of the config JSON inside Transform's, the Tuner's and the Trainer's custom_config.
CONFIG_KEY = "watchnext_config"

# The user functions TFX imports by name in its own processes: Transform's preprocessing_fn,
# the Trainer's run_fn, the Tuner's tuner_fn.
PREPROCESSING_FN = "watchnext.models.preprocessing.preprocessing_fn"
RUN_FN = "watchnext.models.trainer.run_fn"
TUNER_FN = "watchnext.models.tuner.tuner_fn"
