"""The component shape every watchnext ExampleGen shares (`RejectingExampleGen`).

A FileBasedExampleGen (TFX's FileBasedDriver resolves spans and fingerprints the input
files, so an unchanged input is a cache hit) whose spec adds the rejection limit and the
`rejected` output (RejectedRecords). A subclass sets SPEC_CLASS (a RejectingExampleGenSpec
with its own parameters) and EXECUTOR_SPEC, and passes its own parameters to `__init__`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from watchnext.components.example_gen.artifacts import RejectedRecords
from watchnext.components.example_gen.executor import MAX_REJECTED_FRACTION_KEY, REJECTED_KEY

from tfx import types
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import base_beam_component
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter


class RejectingExampleGenSpec(standard_component_specs.FileBasedExampleGenSpec):
    """FileBasedExampleGen's spec plus the rejection limit and the `rejected` output."""

    PARAMETERS: ClassVar[dict[str, ExecutionParameter]] = {
        **standard_component_specs.FileBasedExampleGenSpec.PARAMETERS,
        MAX_REJECTED_FRACTION_KEY: ExecutionParameter(type=float),
    }
    OUTPUTS: ClassVar[dict[str, ChannelParameter]] = {
        **standard_component_specs.FileBasedExampleGenSpec.OUTPUTS,
        REJECTED_KEY: ChannelParameter(type=RejectedRecords),
    }


class RejectingExampleGen(FileBasedExampleGen):
    """A FileBasedExampleGen with `examples` and `rejected` outputs and a rejection limit."""

    SPEC_CLASS = RejectingExampleGenSpec

    def __init__(self, input_base: str, input_config: example_gen_pb2.Input,
                 output_config: example_gen_pb2.Output, max_rejected_fraction: float,
                 range_config: Any = None, output_file_format: int = example_gen_pb2.FORMAT_TFRECORDS_GZIP,
                 **parameters: Any):
        """Args:
        input_base, input_config, output_config, range_config, output_file_format: as TFX's
          FileBasedExampleGen.
        max_rejected_fraction: fail when more than this fraction of what is read is rejected.
        **parameters: the subclass's own spec parameters.
        """
        if not 0.0 <= max_rejected_fraction <= 1.0:
            raise ValueError(f"{type(self).__name__}: max_rejected_fraction={max_rejected_fraction} "
                             "must be in [0, 1]")
        spec = self.SPEC_CLASS(
            input_base=input_base,
            input_config=input_config,
            output_config=output_config,
            custom_config=None,
            range_config=range_config,
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=output_file_format,
            max_rejected_fraction=float(max_rejected_fraction),
            examples=types.Channel(type=standard_artifacts.Examples),
            rejected=types.Channel(type=RejectedRecords),
            **parameters,
        )
        # FileBasedExampleGen.__init__ builds the standard spec; build ours instead.
        base_beam_component.BaseBeamComponent.__init__(self, spec=spec)
