"""The Watch-Next ranker's building blocks (Zhao et al., RecSys 2019), one concept a module.

Reading order follows the data:
    tensors          no_autograph, smart_training, as_batch_vector, drop_position
    feature_encoder  FeatureEncoder: transformed features → x (one table per vocabulary)
    dense            MLP, the dense stack everything is made of
    experts          FusedExperts: n experts as one batched matmul per layer
    gates            ExpertGate: g_k(x) = softmax(W_k x) with expert-utilization dropout
    mixing           MixingLayer, the one interface of the mixing layers
    mixture          MMoE, OMoE
    sharing          SharedBottom, SingleTask
    extraction       ExtractionLevel, PLE, and CGC (PLE with one level)
    architectures    mixing_layer_from_config
    towers           Tower, a task's head
    shallow_tower    ShallowTower, the selection-bias tower on position and device
    score            CombinedScore, the product of per-head utilities that ranks candidates

This package's namespace is the layers' public API: `from watchnext.models.layers import MMoE`.
"""

from watchnext.models.layers.architectures import mixing_layer_from_config
from watchnext.models.layers.dense import MLP
from watchnext.models.layers.experts import FusedExperts, stack_expert_weights
from watchnext.models.layers.extraction import CGC, PLE, ExtractionLevel
from watchnext.models.layers.feature_encoder import FeatureEncoder, device_feature, id_input_dim
from watchnext.models.layers.gates import ExpertGate
from watchnext.models.layers.mixing import MixingLayer, MixingOutput
from watchnext.models.layers.mixture import MMoE, OMoE
from watchnext.models.layers.score import CombinedScore
from watchnext.models.layers.shallow_tower import ShallowTower, apply_position_bias
from watchnext.models.layers.sharing import SharedBottom, SingleTask
from watchnext.models.layers.tensors import as_batch_vector, drop_position, no_autograph
from watchnext.models.layers.towers import Tower

__all__ = [
    "CGC",
    "MLP",
    "PLE",
    "CombinedScore",
    "ExpertGate",
    "ExtractionLevel",
    "FeatureEncoder",
    "FusedExperts",
    "MMoE",
    "MixingLayer",
    "MixingOutput",
    "OMoE",
    "ShallowTower",
    "SharedBottom",
    "SingleTask",
    "Tower",
    "apply_position_bias",
    "as_batch_vector",
    "device_feature",
    "drop_position",
    "id_input_dim",
    "mixing_layer_from_config",
    "no_autograph",
    "stack_expert_weights",
]
