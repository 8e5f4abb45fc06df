"""`mixing_layer_from_config`: the mixing layer a config's `model.architecture` names."""

from __future__ import annotations

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from watchnext.core.config import ARCHITECTURES, Config
from watchnext.models.layers.extraction import CGC, PLE
from watchnext.models.layers.mixing import MixingLayer
from watchnext.models.layers.mixture import MMoE, OMoE
from watchnext.models.layers.sharing import SharedBottom, SingleTask


def mixing_layer_from_config(config: Config) -> MixingLayer:
    """The mixing layer named by `config.model.architecture`, one task per head (config order).

    Experts are sized by `model.expert_units`; mmoe/omoe use `model.num_experts` experts,
    cgc/ple use `model.num_experts` shared experts plus `model.task_experts` per task,
    and shared_bottom/single_task use one MLP of `model.expert_units` (shared or per task).
    """
    m = config.model
    tasks = config.head_names
    builders = {
        "mmoe": lambda: MMoE(tasks, m.num_experts, m.expert_units, m.gate_dropout, name="mmoe"),
        "omoe": lambda: OMoE(tasks, m.num_experts, m.expert_units, m.gate_dropout, name="omoe"),
        "shared_bottom": lambda: SharedBottom(tasks, m.expert_units, name="shared_bottom"),
        "cgc": lambda: CGC(tasks, m.task_experts, m.num_experts, m.expert_units, m.gate_dropout, name="cgc"),
        "ple": lambda: PLE(tasks, m.task_experts, m.num_experts, m.expert_units, m.ple_levels,
                           m.gate_dropout, name="ple"),
        "single_task": lambda: SingleTask(tasks, m.expert_units, name="single_task"),
    }
    assert set(builders) == set(ARCHITECTURES), "every configurable architecture needs a builder"
    if m.architecture not in builders:
        raise ValueError(f"config key model.architecture: {m.architecture!r} is not one of {ARCHITECTURES}")
    return builders[m.architecture]()
