"""The served-model resolver: the baseline is the model pushed last, not merely blessed last."""

from __future__ import annotations

from watchnext.pipeline.metadata import pushed_model_ids
from watchnext.pipeline.served_model import LatestPushedModelStrategy

from ml_metadata.proto import metadata_store_pb2
from tfx.types import artifact, standard_artifacts


def _put(store, a: artifact.Artifact) -> artifact.Artifact:
    a.mlmd_artifact.state = metadata_store_pb2.Artifact.LIVE
    a.type_id = store.put_artifact_type(a.artifact_type)
    [a.id] = store.put_artifacts([a.mlmd_artifact])
    return a


def _execution(store, name: str, inputs: dict[str, artifact.Artifact], outputs: dict[str, artifact.Artifact]
               ) -> None:
    """One execution of component `name` reading `inputs` and writing `outputs`, with TFX's event paths."""
    type_id = store.put_execution_type(metadata_store_pb2.ExecutionType(name=name))
    [execution_id] = store.put_executions([metadata_store_pb2.Execution(type_id=type_id)])
    events = []
    event_type = metadata_store_pb2.Event
    for kind, artifacts in ((event_type.INPUT, inputs), (event_type.OUTPUT, outputs)):
        for key, a in artifacts.items():
            event = metadata_store_pb2.Event(artifact_id=a.id, execution_id=execution_id, type=kind)
            event.path.steps.add().key = key
            event.path.steps.add().index = 0
            events.append(event)
    store.put_events(events)


def _train(store) -> standard_artifacts.Model:
    model = _put(store, standard_artifacts.Model())
    _execution(store, "Trainer", {}, {"model": model})
    return model


def _push(store, model: standard_artifacts.Model, pushed: bool) -> None:
    record = standard_artifacts.PushedModel()
    record.set_int_custom_property("pushed", int(pushed))
    _execution(store, "Pusher", {"model": model}, {"pushed_model": _put(store, record)})


def test_the_baseline_is_the_model_pushed_last(store):
    day1, day2, day3 = _train(store), _train(store), _train(store)
    _push(store, day1, pushed=True)
    _push(store, day2, pushed=True)
    _push(store, day3, pushed=False)  # not blessed: the Pusher recorded "not pushed"
    assert pushed_model_ids(store) == [day1.id, day2.id]
    resolved = LatestPushedModelStrategy().resolve_artifacts(store, {"model": [day1, day2, day3]})
    assert [m.id for m in resolved["model"]] == [day2.id]


def test_a_model_blessed_but_never_pushed_is_not_the_baseline(store):
    # The run was killed during its Pusher: the model was blessed but no PushedModel recorded.
    served, interrupted = _train(store), _train(store)
    _push(store, served, pushed=True)
    resolved = LatestPushedModelStrategy().resolve_artifacts(store, {"model": [served, interrupted]})
    assert [m.id for m in resolved["model"]] == [served.id]


def test_nothing_pushed_yet_resolves_no_baseline(store):
    assert pushed_model_ids(store) == []  # no PushedModel type registered at all
    first = _train(store)
    assert LatestPushedModelStrategy().resolve_artifacts(store, {"model": [first]}) == {"model": []}
    _push(store, first, pushed=False)
    assert LatestPushedModelStrategy().resolve_artifacts(store, {"model": [first]}) == {"model": []}


def test_only_models_in_the_channel_are_chosen(store):
    # A model pushed by another pipeline sharing the store is not in this pipeline's channel.
    other, ours = _train(store), _train(store)
    _push(store, ours, pushed=True)
    _push(store, other, pushed=True)
    resolved = LatestPushedModelStrategy().resolve_artifacts(store, {"model": [ours]})
    assert [m.id for m in resolved["model"]] == [ours.id]
