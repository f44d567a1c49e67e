"""Engine change events: what lets every panel of a kernel show at once what the magic or Python API changed."""

from __future__ import annotations

import gc

from gradient_jupyter.engine import transfer


def test_every_change_is_announced_to_the_listeners(engine, tmp_path):
    heard = []
    engine.on_change(heard.append)
    provider = engine.registry.create("other", {"bucket": "some-bucket"})
    engine.registry.update(provider.id, config={"region": "eu-west-1"})
    engine.delete_provider(provider.id, force=True)  # its bucket cannot be reached from here to count datasets
    assert heard == ["providers"] * 3

    heard.clear()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("hello\n")
    saved = transfer.save(engine, "events", tmp_path / "data")
    assert "datasets" in heard  # the dataset and its committed version
    heard.clear()
    ds, version = saved.dataset, saved.version.version
    engine.datasets.set_tag(ds, "v1", version)
    engine.datasets.delete_tag(ds, "v1")
    engine.datasets.update(ds, description="described")
    engine.datasets.update_version(ds, version, message="new words")
    engine.datasets.delete_version(ds, version)
    engine.datasets.delete(ds)
    assert heard == ["datasets"] * 6


def test_reading_announces_nothing_and_a_failing_listener_does_not_undo_the_change(engine):
    heard = []
    engine.on_change(heard.append)

    def broken(what):
        raise RuntimeError("listener bug")

    engine.on_change(broken)
    engine.registry.list()
    engine.datasets.list()
    assert heard == []
    engine.registry.create("kept", {"bucket": "some-bucket"})
    assert heard == ["providers"] and engine.registry.get("kept")


def test_a_bound_method_listener_is_held_weakly(engine):
    class Panel:
        heard = 0

        def changed(self, what):
            Panel.heard += 1

    panel = Panel()
    engine.on_change(panel.changed)
    engine.registry.create("one", {"bucket": "some-bucket"})
    del panel
    gc.collect()
    engine.registry.create("two", {"bucket": "some-bucket"})
    assert Panel.heard == 1
