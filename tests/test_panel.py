"""The panel's widgets, driven as a user would (set values, click), against moto and the embedded store."""
from __future__ import annotations

import json

import ipywidgets
import pytest

from gradient_jupyter import panel
from gradient_jupyter.engine import Engine, GradientStorage

from .conftest import SECRET


def widget_tree(root: ipywidgets.Widget) -> list[ipywidgets.Widget]:
    """Every widget reachable from `root` through its synced traits (children, layout, style...)."""
    seen, todo = {}, [root]
    while todo:
        widget = todo.pop()
        if id(widget) in seen:
            continue
        seen[id(widget)] = widget
        for name in widget.keys:
            value = getattr(widget, name)
            todo += [v for v in (value if isinstance(value, (list, tuple)) else [value])
                     if isinstance(v, ipywidgets.Widget)]
    return list(seen.values())


def state_text(root) -> str:
    return "\n".join(json.dumps(w.get_state(), default=str) for w in widget_tree(root))


def fill_provider_form(tab, endpoint, bucket, *, name="moto", secret=SECRET):
    tab.name.value, tab.bucket.value, tab.endpoint.value = name, bucket, endpoint
    tab.region.value, tab.access_key.value, tab.secret.value = "us-east-1", "testing", secret


@pytest.fixture
def shown(engine):
    """The panel as `panel()` shows it, once its first load has finished."""
    p = panel(engine)
    p.wait()
    return p


def test_panel_lists_gradient_managed_first_with_its_quota(aws_env):
    engine = Engine(GradientStorage(managed_quota=4000))
    engine.store(engine.registry.managed()).put_bytes(f"{engine.team_id}/probe", b"x" * 1000)
    p = panel(engine)
    p.wait()
    tab = p.providers
    assert "gj-panel" in p._dom_classes
    assert tab.table.value.index("Gradient Managed") < tab.table.value.index("</tbody>")
    assert tab.quota.value == pytest.approx(0.25)
    assert tab.quota_label.value == "1000 B used of 3.9 KiB (25.0%)"
    assert tab.choice.value == engine.registry.managed().id
    assert "gj-error" not in tab.status.value


def test_add_provider_via_the_form_clears_the_secret(engine, shown, s3_bucket):
    endpoint, bucket = s3_bucket
    tab = shown.providers
    fill_provider_form(tab, endpoint, bucket)
    tab.add_button.click()
    assert tab.secret.value == ""  # cleared at once, before the work even runs
    shown.wait()
    provider = engine.registry.get("moto")
    assert tab.status.value.endswith(f"Created storage provider: {provider.id}</span>")
    assert provider.config == {"bucket": bucket, "endpoint": endpoint, "region": "us-east-1",
                               "accessKey": "testing", "secretAccessKey": SECRET}
    assert "moto" in tab.table.value and bucket in tab.table.value and endpoint in tab.table.value
    assert tab.choice.value == provider.id
    assert tab.name.value == tab.bucket.value == tab.access_key.value == ""
    assert SECRET not in state_text(shown)
    assert SECRET not in repr(shown)


@pytest.mark.parametrize("change, words", [
    ({"bucket": "Bad_Bucket"}, "Invalid bucket name"),
    ({"secret": ""}, "secret access key is empty"),
    ({"endpoint": "ftp://example.com"}, "endpoint"),
])
def test_bad_form_input_shows_plain_words_and_adds_nothing(engine, shown, s3_bucket, change, words):
    endpoint, bucket = s3_bucket
    tab = shown.providers
    fill_provider_form(tab, change.get("endpoint", endpoint), change.get("bucket", bucket),
                       secret=change.get("secret", SECRET))
    tab.add_button.click()
    shown.wait()
    assert "gj-error" in tab.status.value and words in tab.status.value
    assert "Traceback" not in tab.status.value and SECRET not in tab.status.value
    assert [p.name for p in engine.registry.list()] == ["Gradient Managed"]
    assert tab.secret.value == "" and SECRET not in state_text(shown)
    assert tab.bucket.value  # the rest of the form stays, to be corrected
    assert not tab.add_button.disabled


def test_duplicate_name_is_refused_in_plain_words(engine, shown, s3_bucket):
    endpoint, bucket = s3_bucket
    engine.registry.create("moto", {"bucket": bucket})
    fill_provider_form(shown.providers, endpoint, bucket, name="MOTO")
    shown.providers.add_button.click()
    shown.wait()
    assert "exists already" in shown.providers.status.value
    assert len(engine.registry.list()) == 2


def test_an_unreachable_bucket_does_not_hide_the_others(engine, s3_bucket):
    engine.registry.create("gone", {"bucket": "no-such-bucket-here", "endpoint": s3_bucket[0]})
    p = panel(engine)
    p.wait()
    assert "gone" in p.providers.table.value and "unreachable" in p.providers.table.value
    assert "Gradient Managed" in p.providers.table.value
