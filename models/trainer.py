"""The Trainer's `run_fn`: read transformed examples, fit the multitask model (models/fit.py), export it."""

from __future__ import annotations

import dataclasses
import logging
import math

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import TrainerView
from watchnext.core.contract import CONFIG_KEY
from watchnext.models import expert_utilization, features, fit, run_summary
from watchnext.models.callbacks import EarlyStopping, TrainingDiverged
from watchnext.models.distribution import chief_writes, strategy_from_config
from watchnext.models.export import export_model
from watchnext.models.heads import label_priors
from watchnext.models.layers import device_feature
from watchnext.models.model import build_model
from watchnext.models.tuner import apply_hyperparameters, tuned_settings
from watchnext.models.warm_start import warm_start

import tf_keras
from tfx import v1 as tfx

log = logging.getLogger(__name__)


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Called by the TFX Trainer."""
    config = TrainerView.from_json(fn_args.custom_config[CONFIG_KEY])
    # The Tuner's best values (tuning.enabled), applied the way each of its trials applied them.
    hyperparameters = getattr(fn_args, "hyperparameters", None)
    if hyperparameters:
        config = apply_hyperparameters(config, hyperparameters)
    log.info("hyperparameters (%s): %s", "from the Tuner" if hyperparameters else "from the config",
             tuned_settings(config))
    # First: MultiWorkerMirroredStrategy must exist before any other TensorFlow op runs.
    strategy = strategy_from_config(config)
    tf_keras.utils.set_random_seed(config.training.seed)
    inputs = fit.training_inputs(fn_args, fn_args.transform_output, config)
    log.info("vocabulary sizes: %s", inputs.vocab_sizes)
    t = config.training
    # TrainArgs.num_steps is training.train_steps (unset when 0, i.e. derive from epochs).
    if fn_args.train_steps:
        config = config.replace(training=dataclasses.replace(t, train_steps=fn_args.train_steps))
        t = config.training
    train_examples = fit.count_examples(fn_args.train_files)
    budget = fit.training_budget(train_examples, config)
    log.info("training budget: %s", budget.describe())
    train, validation, eval_steps = inputs.train, inputs.validation, inputs.validation_steps
    priors = label_priors(config, train)
    log.info("output biases start at the label priors (%d batches): %s", t.prior_bias_batches,
             {k: round(v, 4) for k, v in priors.items()})
    with strategy.scope():
        model = build_model(config, inputs.vocab_sizes, priors)
        if t.warm_start and fn_args.base_model:
            model(next(iter(train)), training=False)  # create the variables before assigning them
            vocabularies = {name: inputs.tf_transform_output.vocabulary_by_name(name)
                            for name in features.vocabulary_names(config)}
            warm_start(model, fn_args.base_model, vocabularies, config)
        fit.compile_model(model, config)
    # An explicit training.train_steps means exactly that many steps and the last weights; the
    # validations are still logged.
    patience = 0 if budget.explicit else t.early_stopping_patience
    stopper = EarlyStopping(fit.early_stopping_weights(config), patience, t.early_stopping_min_delta,
                            restore_best=not budget.explicit)
    fit.fit(model, train, budget.total_steps, validation_interval=budget.validation_interval,
            validation=validation, validation_steps=eval_steps,
            callbacks=[stopper, tf_keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir,
                                                               update_freq="epoch")])
    log.info("training stopped: %s; validation %s by step: %s", stopper.reason, stopper.monitor,
             [(step, round(v, 5)) for step, v in stopper.history])
    metrics = model.evaluate(validation, steps=eval_steps, return_dict=True, verbose=0)
    log.info("eval metrics after %d steps (%s): %s", stopper.step, stopper.kept_weights(),
             {k: round(float(v), 4) for k, v in metrics.items()})
    bad = {k: v for k, v in metrics.items() if not math.isfinite(float(v))}
    if bad:
        raise TrainingDiverged(f"eval metrics are not finite: {bad}; no model exported")
    # Every worker saves (a save may run collective ops); only the chief's copy is kept.
    with chief_writes(strategy, fn_args.serving_model_dir) as export_dir:
        export_model(model, inputs.tf_transform_output, config, export_dir)
    log.info("exported the serving model to %s", export_dir)
    # How the gates spread their weight on eval data; the CLI and report.md raise the alarm.
    utilization = expert_utilization.measure(model, validation, eval_steps or -1, config)
    for alarm in expert_utilization.alarms(utilization):
        log.warning("%s", alarm)
    devices = ([d.decode() if isinstance(d, bytes) else str(d) for d in
                inputs.tf_transform_output.vocabulary_by_name(device_feature(config).vocabulary)]
               if model.shallow_tower is not None else [])
    position = run_summary.position_curve(model.shallow_tower, devices)
    # The run's summaries (report.md reads them): the chief's copy only, as for the model.
    with chief_writes(strategy, fn_args.model_run_dir) as run_dir:
        expert_utilization.write(utilization, run_dir)
        run_summary.write(run_dir, train_examples=train_examples, batch_size=t.batch_size,
                          steps=stopper.step, best_step=stopper.best_step, stop_reason=stopper.reason,
                          position=position)
