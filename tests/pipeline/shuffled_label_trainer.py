"""A deliberately broken Trainer: the real run_fn, fed labels shuffled within each batch.

The model it exports has learned nothing about the labels, so the Evaluator must refuse
to bless it against a model trained on the real labels. Imported by dotted path by the
Trainer (tests put this folder on sys.path).
"""

from __future__ import annotations

from watchnext.core.config import TrainerView
from watchnext.core.contract import CONFIG_KEY
from watchnext.models.trainer import run_fn as real_run_fn

import tensorflow as tf


def run_fn(fn_args):
    config = TrainerView.from_json(fn_args.custom_config[CONFIG_KEY])
    labels = list(config.label_keys)
    accessor = fn_args.data_accessor

    def shuffled_factory(*args, **kwargs):
        def shuffle(batch):
            batch = dict(batch)
            for key in labels:
                batch[key] = tf.random.shuffle(batch[key], seed=1)
            return batch

        return accessor.tf_dataset_factory(*args, **kwargs).map(shuffle)

    fn_args.data_accessor = accessor._replace(tf_dataset_factory=shuffled_factory)  # a NamedTuple
    real_run_fn(fn_args)
