"""Every ML Metadata query of watchnext, in one module.

ML Metadata (MLMD) records each run's executions, the artifacts they read and wrote (events)
and the node each execution belongs to (contexts). The runner, the CLI, the report, the
resolver strategies, the benchmarks and the crash drill ask it questions; they ask them
here, through small typed functions, and nowhere else:

- store level (take an open store, as TFX hands one to a resolver strategy): the newest
  artifact of a type, the executions of a component, what an execution read or wrote, who
  wrote an artifact, every artifact a node wrote in any run (or from a given input), an
  execution's recorded properties, the models pushed so far, each node's execution states;
- run level (take the path of a local run's SQLite store): what the newest run ingested,
  trained, evaluated and blessed.

`ml_metadata` is imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import watchnext  # noqa: F401  (pins Keras 2 before TensorFlow loads)

# ML Metadata's name for a node's context ("<pipeline>.<node id>").
NODE_CONTEXT = "node"
# The Pusher's output type and the custom property TFX's Pusher executors (ours included) set on it.
PUSHED_MODEL_TYPE = "PushedModel"
PUSHED_KEY = "pushed"
# The Pusher's input key for the model it pushes.
MODEL_KEY = "model"
# ExampleGen's custom property holding an Examples artifact's span.
SPAN_KEY = "span"


def open_metadata(metadata_path: str) -> Any:
    """The SQLite ML Metadata store at `metadata_path` (created if missing), as the runner opens it."""
    from ml_metadata.metadata_store import metadata_store
    from tfx import v1 as tfx

    return metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path))


# ---------------------------------------------------------------------------
# Store level.


def artifacts_of_type(store: Any, type_name: str) -> list[Any]:
    """Every artifact of `type_name`, oldest first; none when the type was never registered."""
    import ml_metadata as mlmd

    try:
        return sorted(store.get_artifacts_by_type(type_name), key=lambda a: a.id)
    except mlmd.errors.NotFoundError:
        return []


def newest_artifact(store: Any, type_name: str) -> Any | None:
    """The artifact of `type_name` recorded last (highest id), or None."""
    artifacts = artifacts_of_type(store, type_name)
    return artifacts[-1] if artifacts else None


def component_executions(store: Any, component: str) -> list[Any]:
    """Every execution of a TFX component class (`"Trainer"`), oldest first.

    ML Metadata names execution types by the component's full class path
    (`tfx.components.trainer.component.Trainer`), so the type is found by its last part.
    """
    names = [t.name for t in store.get_execution_types() if t.name.split(".")[-1] == component]
    if len(names) != 1:
        raise LookupError(f"{len(names)} execution types named {component!r} in ML Metadata: {names}")
    return sorted(store.get_executions_by_type(names[0]), key=lambda e: e.id)


def linked_artifact(store: Any, execution_id: int, type_name: str, output: bool) -> Any:
    """The one artifact of `type_name` that execution `execution_id` wrote (`output`) or read."""
    from ml_metadata.proto import metadata_store_pb2

    event = metadata_store_pb2.Event
    kinds = {event.OUTPUT, event.DECLARED_OUTPUT} if output else {event.INPUT, event.DECLARED_INPUT}
    ids = [e.artifact_id for e in store.get_events_by_execution_ids([execution_id]) if e.type in kinds]
    type_id = store.get_artifact_type(type_name).id
    matches = [a for a in store.get_artifacts_by_id(ids) if a.type_id == type_id]
    if len(matches) != 1:
        raise LookupError(f"execution {execution_id}: expected one {type_name} artifact "
                          f"{'written' if output else 'read'}, found {len(matches)}")
    return matches[0]


def producer(store: Any, artifact_id: int) -> int:
    """The execution that first wrote artifact `artifact_id` (cached reruns point at it again)."""
    from ml_metadata.proto import metadata_store_pb2

    event = metadata_store_pb2.Event
    outputs = [e.execution_id for e in store.get_events_by_artifact_ids([artifact_id])
               if e.type in (event.OUTPUT, event.DECLARED_OUTPUT)]
    if not outputs:
        raise LookupError(f"no execution wrote artifact {artifact_id}")
    return min(outputs)


def writer_node(store: Any, artifact_id: int) -> Any | None:
    """The node context (MLMD proto) of the execution that first wrote artifact `artifact_id`;
    None when no execution wrote it or that execution has no node context."""
    try:
        execution_id = producer(store, artifact_id)
    except LookupError:
        return None
    nodes = [c for c in store.get_contexts_by_execution(execution_id) if c.type == NODE_CONTEXT]
    return nodes[0] if nodes else None


def same_node_artifacts(store: Any, artifact: Any) -> list[Any] | None:
    """Every live artifact of `artifact`'s type written by the node that wrote it, in any run.

    `artifact` is an MLMD Artifact proto; so are the results. None when no execution wrote
    it, or its execution has no node context (nothing to look up).
    """
    import ml_metadata as mlmd

    output = mlmd.proto.Event.OUTPUT
    node = writer_node(store, artifact.id)
    if node is None:
        return None
    executions = [e.id for e in store.get_executions_by_context(node.id)]
    ids = {e.artifact_id for e in store.get_events_by_execution_ids(executions) if e.type == output}
    return [a for a in store.get_artifacts_by_id(sorted(ids))
            if a.type_id == artifact.type_id and a.state == mlmd.proto.Artifact.LIVE]


def node_outputs_from_input(store: Any, artifact: Any, input_id: int) -> list[tuple[Any, Any]]:
    """(artifact, execution) for every live artifact of `artifact`'s type written, in any run, by
    the node that wrote `artifact`, from an execution that read artifact `input_id`; oldest first.

    E.g. the statistics the main StatisticsGen node wrote of yesterday's Examples, given today's.
    `artifact` and the results are MLMD protos; none when `artifact` has no writer with a node.
    """
    import ml_metadata as mlmd

    event = mlmd.proto.Event
    node = writer_node(store, artifact.id)
    if node is None:
        return []
    executions = {e.id: e for e in store.get_executions_by_context(node.id)}
    events = store.get_events_by_execution_ids(sorted(executions))
    readers = {e.execution_id for e in events
               if e.artifact_id == input_id and e.type in (event.INPUT, event.DECLARED_INPUT)}
    writer = {e.artifact_id: e.execution_id for e in sorted(events, key=lambda e: -e.execution_id)
              if e.execution_id in readers and e.type in (event.OUTPUT, event.DECLARED_OUTPUT)}
    return [(a, executions[writer[a.id]]) for a in store.get_artifacts_by_id(sorted(writer))
            if a.type_id == artifact.type_id and a.state == mlmd.proto.Artifact.LIVE]


def writer_execution(store: Any, artifact_id: int) -> Any:
    """The execution (MLMD proto) that first wrote artifact `artifact_id` (see `producer`)."""
    (execution,) = store.get_executions_by_id([producer(store, artifact_id)])
    return execution


def execution_property(execution: Any, key: str) -> bytes:
    """An execution's property `key` as TFX recorded it (a typed or custom property, serialized);
    b"" when unset (TFX records no property whose value is None)."""
    for properties in (execution.properties, execution.custom_properties):
        if key in properties:
            return properties[key].SerializeToString(deterministic=True)
    return b""


def pushed_model_ids(store: Any) -> list[int]:
    """Ids of the Model artifacts that were pushed, oldest push first.

    A push is a live PushedModel artifact whose `pushed` property is 1; its model is the
    artifact its Pusher execution read under the input key `model`.
    """
    import ml_metadata as mlmd

    pushed = [a.id for a in artifacts_of_type(store, PUSHED_MODEL_TYPE)
              if a.state == mlmd.proto.Artifact.LIVE and a.custom_properties[PUSHED_KEY].int_value == 1]
    if not pushed:
        return []
    pusher_of = {e.artifact_id: e.execution_id for e in store.get_events_by_artifact_ids(pushed)
                 if e.type == mlmd.proto.Event.OUTPUT}
    model_of: dict[int, int] = {}
    for e in store.get_events_by_execution_ids(sorted(set(pusher_of.values()))):
        if e.type == mlmd.proto.Event.INPUT and e.path.steps and e.path.steps[0].key == MODEL_KEY:
            model_of[e.execution_id] = e.artifact_id
    return [model_of[pusher_of[a]] for a in pushed if a in pusher_of and pusher_of[a] in model_of]


def execution_history(store: Any) -> dict[str, list[str]]:
    """{node id: states of its executions, oldest first} (COMPLETE, CACHED, RUNNING, FAILED),
    resolvers left out (they resolve afresh on every run and are never cached)."""
    from ml_metadata.proto import metadata_store_pb2

    resolvers = {t.id for t in store.get_execution_types() if t.name.endswith("Resolver")}
    history: dict[str, list[str]] = {}
    for context in store.get_contexts_by_type(NODE_CONTEXT):
        executions = sorted((e for e in store.get_executions_by_context(context.id)
                             if e.type_id not in resolvers), key=lambda e: e.id)
        if executions:
            node = context.name.split(".", 1)[-1]  # "<pipeline>.<node id>"
            history[node] = [metadata_store_pb2.Execution.State.Name(e.last_known_state) for e in executions]
    return history


def newest_execution_with_config(store: Any, component: str, key: str, value: str) -> Any:
    """The newest execution of `component` whose `custom_config` JSON maps `key` to `value`.

    Finds a cached execution as well as a fresh one (both carry the same properties).
    """
    runs = [e for e in component_executions(store, component)
            if "custom_config" in e.custom_properties
            and json.loads(e.custom_properties["custom_config"].string_value).get(key) == value]
    if not runs:
        raise LookupError(f"no {component} execution with this {key} in ML Metadata")
    return runs[-1]


# ---------------------------------------------------------------------------
# Run level: a local run's store, by path.


@dataclass(frozen=True)
class Blessing:
    """The newest Evaluator verdict: blessed (None: the Evaluator never ran) and why."""

    blessed: bool | None
    reason: str


def ingested_spans(metadata_path: str) -> set[int]:
    """Spans already turned into Examples by this pipeline's ExampleGen."""
    if not os.path.exists(metadata_path):
        return set()
    return {a.custom_properties[SPAN_KEY].int_value for a in artifacts_of_type(open_metadata(metadata_path),
                                                                              "Examples")
            if SPAN_KEY in a.custom_properties}


def newest_uri(metadata_path: str, type_name: str) -> str | None:
    """The folder of the newest artifact of `type_name` (e.g. "ModelRun", "ModelEvaluation"), or None."""
    artifact = newest_artifact(open_metadata(metadata_path), type_name)
    return artifact.uri if artifact is not None else None


def latest_model_run(metadata_path: str) -> str | None:
    """The newest Trainer run's folder (TensorBoard logs, expert utilization)."""
    return newest_uri(metadata_path, "ModelRun")


def latest_counts(metadata_path: str) -> tuple[dict[str, Any], str] | None:
    """(counts.json, rejected-records folder) of the newest ExampleGen run: what it read, wrote, rejected."""
    from watchnext.components.example_gen.artifacts import RejectedRecords

    uri = newest_uri(metadata_path, RejectedRecords.TYPE_NAME)
    path = os.path.join(uri, "counts.json") if uri else None
    if path is None or not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f), uri


def latest_ingestion(metadata_path: str) -> str | None:
    """One line: what the newest ExampleGen run read, wrote and rejected, and where the rejects are."""
    from watchnext.components.log_example_gen import counts
    from watchnext.components.table_example_gen import counts as table_counts

    found = latest_counts(metadata_path)
    if found is None:
        return None
    summary, uri = found
    describe = table_counts.describe if summary.get("source") == table_counts.SOURCE else counts.describe
    return f"ingestion: {describe(summary)}; rejected records: {uri}"


def latest_utilization(metadata_path: str) -> dict[str, Any] | None:
    """The expert-utilization summary of the newest Trainer run (models/expert_utilization.py)."""
    from watchnext.models import expert_utilization

    run = latest_model_run(metadata_path)
    return expert_utilization.read(run) if run else None


def latest_evaluation(metadata_path: str) -> dict[str, Any] | None:
    """The newest Evaluator run's metrics.json (None: no evaluation, or one another evaluator wrote)."""
    from watchnext.components.evaluator import read_metrics

    uri = newest_uri(metadata_path, "ModelEvaluation")
    if uri is None:
        return None
    try:
        return read_metrics(uri)
    except (OSError, ValueError):
        return None


def latest_blessing(metadata_path: str) -> Blessing:
    """The newest Evaluator verdict, with the failed checks if any."""
    from watchnext.components.evaluator import read_metrics

    store = open_metadata(metadata_path)
    newest = newest_artifact(store, "ModelBlessing")
    if newest is None:
        return Blessing(None, "the Evaluator did not run")
    blessed = newest.custom_properties["blessed"].int_value == 1
    evaluation = newest_artifact(store, "ModelEvaluation")
    if blessed or evaluation is None:
        return Blessing(blessed, "blessed" if blessed else "not blessed")
    try:
        failures = read_metrics(evaluation.uri)["failures"]
    except (OSError, KeyError, ValueError):  # an evaluation written by another Evaluator
        failures = []
    detail = "; ".join(failures[:5]) or "see " + evaluation.uri
    return Blessing(False, f"not blessed by the Evaluator ({detail})")


def execution_states(metadata_path: str) -> dict[str, list[str]]:
    """`execution_history` of the run's store."""
    return execution_history(open_metadata(metadata_path))
