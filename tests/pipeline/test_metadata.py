"""pipeline/metadata.py, the one module that queries ML Metadata, against a real SQLite store.

The store is built in the test the way TFX records a run: typed artifacts, executions of
component types named by class path, INPUT/OUTPUT events with their keys, node contexts.
"""

from __future__ import annotations

import json
import os

from watchnext.pipeline import metadata

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb
from tfx.types import artifact, standard_artifacts

TRAINER = "tfx.components.trainer.component.Trainer"


class Run:
    """Writes a small pipeline's lineage into a store (artifacts, executions, events, node contexts)."""

    def __init__(self, store, pipeline: str = "watchnext") -> None:
        self.store = store
        self.pipeline = pipeline
        self.node_type = store.put_context_type(pb.ContextType(name=metadata.NODE_CONTEXT))

    def artifact(self, a: artifact.Artifact, uri: str = "", **props: int) -> artifact.Artifact:
        a.uri = uri
        for key, value in props.items():
            a.set_int_custom_property(key, value)
        a.mlmd_artifact.state = pb.Artifact.LIVE
        a.type_id = self.store.put_artifact_type(a.artifact_type)
        [a.id] = self.store.put_artifacts([a.mlmd_artifact])
        return a

    def execution(self, type_name: str, node: str, inputs: dict, outputs: dict,
                  state: int = pb.Execution.COMPLETE, custom_config: dict | None = None) -> int:
        type_id = self.store.put_execution_type(pb.ExecutionType(name=type_name))
        execution = pb.Execution(type_id=type_id, last_known_state=state)
        if custom_config is not None:
            execution.custom_properties["custom_config"].string_value = json.dumps(custom_config)
        [execution_id] = self.store.put_executions([execution])
        events = []
        for kind, artifacts in ((pb.Event.INPUT, inputs), (pb.Event.OUTPUT, outputs)):
            for key, a in artifacts.items():
                event = pb.Event(artifact_id=a.id, execution_id=execution_id, type=kind)
                event.path.steps.add().key = key
                event.path.steps.add().index = 0
                events.append(event)
        self.store.put_events(events)
        name = f"{self.pipeline}.{node}"
        contexts = self.store.get_contexts_by_type(metadata.NODE_CONTEXT)
        context = next((c.id for c in contexts if c.name == name), None)
        if context is None:
            [context] = self.store.put_contexts([pb.Context(type_id=self.node_type, name=name)])
        self.store.put_attributions_and_associations(
            [], [pb.Association(context_id=context, execution_id=execution_id)])
        return execution_id


@pytest.fixture()
def path(tmp_path):
    return str(tmp_path / "metadata.sqlite")


def _day(run: Run, tmp_path, span: int, config: str, blessed: bool, failures: list[str]) -> dict:
    """ExampleGen → Transform → Trainer → Evaluator of one span, as a local run records them."""
    raw = run.artifact(standard_artifacts.Examples(), f"/raw/{span}", span=span)
    run.execution("watchnext.components.log_example_gen.component.LogExampleGen", "LogExampleGen",
                  {}, {"examples": raw})
    transformed = run.artifact(standard_artifacts.Examples(), f"/transformed/{span}")
    run.execution("tfx.components.transform.component.Transform", "Transform",
                  {"examples": raw}, {"transformed_examples": transformed})
    model = run.artifact(standard_artifacts.Model(), f"/model/{span}")
    model_run = run.artifact(standard_artifacts.ModelRun(), str(tmp_path / f"run-{span}"))
    trainer = run.execution(TRAINER, "Trainer", {"examples": transformed},
                            {"model": model, "model_run": model_run}, custom_config={"config": config})
    evaluation_dir = tmp_path / f"evaluation-{span}"
    evaluation_dir.mkdir()
    (evaluation_dir / "metrics.json").write_text(json.dumps({"failures": failures}))
    evaluation = run.artifact(standard_artifacts.ModelEvaluation(), str(evaluation_dir))
    blessing = run.artifact(standard_artifacts.ModelBlessing(), "/blessing", blessed=int(blessed))
    run.execution("watchnext.components.evaluator.component.Evaluator", "Evaluator", {"model": model},
                  {"evaluation": evaluation, "blessing": blessing})
    return {"raw": raw, "transformed": transformed, "model": model, "trainer": trainer}


def test_an_empty_store_answers_none_rather_than_failing(path):
    store = metadata.open_metadata(path)
    assert metadata.artifacts_of_type(store, "ModelBlessing") == []  # type never registered
    assert metadata.newest_artifact(store, "ModelBlessing") is None
    assert metadata.pushed_model_ids(store) == []
    assert metadata.execution_history(store) == {}
    assert metadata.latest_blessing(path) == metadata.Blessing(None, "the Evaluator did not run")
    assert metadata.latest_model_run(path) is None and metadata.latest_evaluation(path) is None
    assert metadata.latest_ingestion(path) is None
    assert metadata.ingested_spans(os.path.join(os.path.dirname(path), "missing.sqlite")) == set()


def test_lineage_queries_follow_a_trainer_back_to_its_raw_examples(path, tmp_path):
    run = Run(metadata.open_metadata(path))
    first = _day(run, tmp_path, 20260101, "A", blessed=True, failures=[])
    second = _day(run, tmp_path, 20260102, "B", blessed=False, failures=["click: AUC 0.61 < 0.7"])
    store = run.store

    assert metadata.ingested_spans(path) == {20260101, 20260102}
    assert [e.id for e in metadata.component_executions(store, "Trainer")] == [first["trainer"],
                                                                              second["trainer"]]
    trainer = metadata.newest_execution_with_config(store, "Trainer", "config", "A")
    assert trainer.id == first["trainer"]
    with pytest.raises(LookupError, match="no Trainer execution"):
        metadata.newest_execution_with_config(store, "Trainer", "config", "C")
    model = metadata.linked_artifact(store, trainer.id, "Model", output=True)
    transformed = metadata.linked_artifact(store, trainer.id, "Examples", output=False)
    assert (model.uri, transformed.id) == ("/model/20260101", first["transformed"].id)
    transform = metadata.producer(store, transformed.id)
    assert metadata.linked_artifact(store, transform, "Examples", output=False).uri == "/raw/20260101"
    with pytest.raises(LookupError, match="expected one ModelBlessing"):
        metadata.linked_artifact(store, trainer.id, "ModelBlessing", output=True)

    # The newest day's run is what the run-level questions answer about.
    assert metadata.latest_model_run(path) == str(tmp_path / "run-20260102")
    assert metadata.latest_evaluation(path) == {"failures": ["click: AUC 0.61 < 0.7"]}
    assert metadata.latest_blessing(path) == metadata.Blessing(
        False, "not blessed by the Evaluator (click: AUC 0.61 < 0.7)")


def test_latest_blessing_of_a_blessed_run(path, tmp_path):
    _day(Run(metadata.open_metadata(path)), tmp_path, 20260101, "A", blessed=True, failures=[])
    assert metadata.latest_blessing(path) == metadata.Blessing(True, "blessed")


def test_same_node_artifacts_are_every_run_of_the_node_that_wrote_one(path):
    run = Run(metadata.open_metadata(path))
    spans = {}
    for node, span in (("LogExampleGen", 1), ("LogExampleGen", 2), ("OtherExampleGen", 3)):
        spans[span] = run.artifact(standard_artifacts.Examples(), f"/{span}", span=span)
        run.execution("LogExampleGen", node, {}, {"examples": spans[span]})
    found = metadata.same_node_artifacts(run.store, spans[2].mlmd_artifact)
    assert sorted(a.id for a in found) == [spans[1].id, spans[2].id]
    orphan = run.artifact(standard_artifacts.Examples(), "/orphan", span=4)
    assert metadata.same_node_artifacts(run.store, orphan.mlmd_artifact) is None


def test_execution_history_is_each_nodes_states_without_resolvers(path):
    run = Run(metadata.open_metadata(path))
    run.execution(TRAINER, "Trainer", {}, {}, state=pb.Execution.RUNNING)
    run.execution(TRAINER, "Trainer", {}, {}, state=pb.Execution.COMPLETE)
    run.execution("tfx.components.transform.component.Transform", "Transform", {}, {},
                  state=pb.Execution.CACHED)
    run.execution("tfx.dsl.components.common.resolver.Resolver", "span_window", {}, {})
    assert metadata.execution_states(path) == {"Trainer": ["RUNNING", "COMPLETE"], "Transform": ["CACHED"]}


def test_latest_ingestion_reads_the_newest_examplegens_counts(path, tmp_path):
    from watchnext.components.example_gen.artifacts import RejectedRecords

    run = Run(metadata.open_metadata(path))
    for span in (1, 2):
        folder = tmp_path / f"rejected-{span}"
        folder.mkdir()
        (folder / "counts.json").write_text(json.dumps({"span": span}))
        run.artifact(RejectedRecords(), str(folder))
    summary, uri = metadata.latest_counts(path)
    assert summary == {"span": 2} and uri == str(tmp_path / "rejected-2")


def test_component_executions_finds_a_component_by_its_class_name(store):
    def put(type_name: str) -> int:
        type_id = store.put_execution_type(pb.ExecutionType(name=type_name))
        [execution_id] = store.put_executions([pb.Execution(type_id=type_id)])
        return execution_id

    first = put("tfx.components.trainer.component.Trainer")
    put("tfx.components.evaluator.component.Evaluator")
    second = put("tfx.components.trainer.component.Trainer")
    put("watchnext.components.other.NotATrainer")  # only the exact class name counts
    assert [e.id for e in metadata.component_executions(store, "Trainer")] == [first, second]
    with pytest.raises(LookupError, match="'Pusher'"):
        metadata.component_executions(store, "Pusher")
