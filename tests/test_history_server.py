"""History over HTTP: `GET datasets/{id}/versions/{version}/diff`, lineage in every Version JSON, and a notebook
kernel that jupyter_server started recording its notebook's path in the versions it saves."""

from __future__ import annotations

import json
import os
import queue

import pytest

from .helpers import SECRET, sha

EVIL = "<img src=x onerror=alert(1)>.csv"
S3 = {"accessKey": "access-key", "secretAccessKey": SECRET}


@pytest.fixture
def moto_provider(jp_serverapp, s3_bucket):
    endpoint, bucket = s3_bucket
    engine = jp_serverapp.web_app.settings["gradient_engine"]
    return engine.registry.create("moto", {**S3, "bucket": bucket, "endpoint": endpoint}).to_json()


async def commit_version(api, ds: str, files: dict[str, bytes], message: str) -> dict:
    code, v = await api("POST", f"datasets/{ds}/versions", {"message": message})
    assert code == 201, v
    for path, data in files.items():
        code, _ = await api("PUT", f"datasets/{ds}/versions/{v['version']}/files/{path}", data=data)
        assert code == 200
    code, committed = await api("POST", f"datasets/{ds}/versions/{v['version']}/commit")
    assert code == 200, committed
    return committed


async def make_two_versions(api, moto_provider):
    code, ds = await api("POST", "datasets", {"name": "hist", "storageProviderId": moto_provider["id"]})
    assert code == 201
    first = {"keep.csv": b"a,b\n", "change.csv": b"1\n", "gone.txt": b"bye", "old/name.bin": b"same bytes"}
    second = {"keep.csv": b"a,b\n", "change.csv": b"1\n2\n", "new/name.bin": b"same bytes", "added.json": b"{}"}
    v1 = await commit_version(api, ds["id"], first, "first")
    v2 = await commit_version(api, ds["id"], second, "second")
    return ds, v1, v2


async def test_diff_of_a_version_since_its_parent_and_to_another_ref(api, moto_provider):
    ds, v1, v2 = await make_two_versions(api, moto_provider)
    code, d = await api("GET", f"datasets/{ds['id']}/versions/{v2['version']}/diff")
    assert code == 200
    assert d == {
        "added": [{"path": "added.json", "size": 2, "sha256": sha(b"{}")}],
        "removed": [{"path": "gone.txt", "size": 3, "sha256": sha(b"bye")}],
        "modified": [
            {
                "path": "change.csv",
                "before": {"path": "change.csv", "size": 2, "sha256": sha(b"1\n")},
                "after": {"path": "change.csv", "size": 4, "sha256": sha(b"1\n2\n")},
            }
        ],
        "renamed": [{"from": "old/name.bin", "to": "new/name.bin", "size": 10, "sha256": sha(b"same bytes")}],
        "unchanged": 1,
        "bytesAdded": 6,
        "bytesRemoved": 5,
        "from": f"{ds['id']}:{v1['version']}",
        "to": f"{ds['id']}:{v2['version']}",
    }
    code, back = await api(
        "GET", f"datasets/hist/versions/{v2['version']}/diff", params={"to": f"hist:{v1['version']}"}
    )
    assert code == 200 and back["from"] == d["to"] and back["to"] == d["from"]
    assert back["added"] == d["removed"] and back["removed"] == d["added"]
    assert back["renamed"] == [{"from": "new/name.bin", "to": "old/name.bin", "size": 10, "sha256": sha(b"same bytes")}]
    code, first = await api("GET", f"datasets/hist/versions/{v1['version']}/diff")
    assert code == 200 and first["from"] is None and len(first["added"]) == 4 and first["unchanged"] == 0
    code, some = await api(
        "GET",
        "datasets/hist/versions/latest/diff",
        params=[("include", "*.csv"), ("include", "*.json"), ("exclude", "keep*")],
    )
    assert code == 200 and [f["path"] for f in some["added"]] == ["added.json"]
    assert [m["path"] for m in some["modified"]] == ["change.csv"] and not some["renamed"] and some["unchanged"] == 0


async def test_diff_refuses_two_datasets_unknown_refs_and_uncommitted_versions(api, moto_provider):
    ds, v1, v2 = await make_two_versions(api, moto_provider)
    code, other = await api("POST", "datasets", {"name": "other", "storageProviderId": moto_provider["id"]})
    await commit_version(api, other["id"], {"f": b"f"}, "")
    code, err = await api("GET", f"datasets/hist/versions/{v2['version']}/diff", params={"to": "other"})
    assert code == 400 and err["reason"] == "two-datasets" and "hist and other" in err["message"]
    code, err = await api("GET", "datasets/hist/versions/zzzzzzz/diff")
    assert code == 404 and err["reason"] == "unknown-version"
    code, err = await api("GET", "datasets/hist/versions/latest/diff", params={"to": "hist:nosuchtag"})
    assert code == 404
    code, err = await api("GET", "datasets/nope/versions/latest/diff")
    assert code == 404 and err["reason"] == "unknown-dataset"
    code, err = await api("GET", "datasets/hist/versions/latest/diff", params={"to": "hist:a:b"})
    assert code == 400 and err["reason"] == "invalid-ref"
    code, pending = await api("POST", f"datasets/{ds['id']}/versions", {"message": "wip"})
    code, err = await api("GET", f"datasets/hist/versions/{pending['version']}/diff")
    assert code == 409 and err["reason"] == "not-committed" and pending["version"] in err["message"]
    code, err = await api(
        "GET", f"datasets/hist/versions/{v1['version']}/diff", params={"to": f"hist:{pending['version']}"}
    )
    assert code == 409 and err["reason"] == "not-committed"


async def test_every_version_json_carries_parent_and_created_by(api, moto_provider, jp_fetch):
    import getpass
    import re
    import socket

    ds, v1, v2 = await make_two_versions(api, moto_provider)
    expected_by = {
        "host": socket.gethostname(),
        "tool": "gradient-jupyter 0.1.0 (REST API)",  # which API made it
    }
    assert v1["parent"] is None and v2["parent"] == v1["version"]

    def without_user(by: dict) -> dict:
        # the user is jupyter_server's identity of the request (SPEC 4.1), which names each token-authenticated
        # request of this test server anew (tests/test_team_hub.py has JupyterHub's named users)
        assert re.fullmatch("[0-9a-f]{32}", by["user"]) and by["user"] != getpass.getuser()
        return {k: v for k, v in by.items() if k != "user"}

    assert without_user(v1["createdBy"]) == without_user(v2["createdBy"]) == expected_by
    code, listing = await api("GET", f"datasets/{ds['id']}/versions")
    assert [(v["version"], v["parent"], without_user(v["createdBy"])) for v in listing["versions"]] == [
        (v2["version"], v1["version"], expected_by),
        (v1["version"], None, expected_by),
    ]
    code, resolved = await api("GET", "datasets/ref/hist:latest")
    assert resolved["version"]["parent"] == v1["version"]
    code, pending = await api("POST", f"datasets/{ds['id']}/versions", {"message": "wip"})
    assert code == 201 and pending["parent"] == v2["version"] and without_user(pending["createdBy"]) == expected_by
    # Gradient's compat API answers the same Version fields
    r = await jp_fetch("gradient/compat", "datasets", ds["id"], "versions", v2["version"], method="GET")
    compat = json.loads(r.body)
    assert compat["parent"] == v1["version"] and without_user(compat["createdBy"]) == expected_by
    r = await jp_fetch("gradient/compat", "datasets", ds["id"], "versions", method="POST", body=json.dumps({}))
    made = json.loads(r.body)
    assert without_user(made["createdBy"]) == {**expected_by, "tool": "gradient-jupyter 0.1.0 (Gradient API)"}


async def test_description_is_updated_over_http(api, moto_provider):
    await make_two_versions(api, moto_provider)
    code, ds = await api("PATCH", "datasets/hist", {"description": "Tables, <i>small</i>"})
    assert code == 200 and ds["description"] == "Tables, <i>small</i>"
    code, listing = await api("GET", "datasets")
    assert [d["description"] for d in listing["datasets"]] == ["Tables, <i>small</i>"]


async def test_openapi_documents_the_diff_route(api):
    code, doc = await api("GET", "openapi.json")
    op = doc["paths"]["/datasets/{datasetId}/versions/{version}/diff"]["get"]
    assert [p["name"] for p in op["parameters"]] == ["to", "include", "exclude"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Diff"}
    assert {"parent", "createdBy"} <= set(doc["components"]["schemas"]["Version"]["properties"])


# -- a kernel jupyter_server started for a notebook ---------------------------------------------------------------
async def execute(kc, code: str) -> list[dict]:
    msg_id = kc.execute(code)
    messages = []
    while True:
        try:
            msg = await kc.get_iopub_msg(timeout=120)
        except queue.Empty:  # pragma: no cover - a hung kernel fails the test below
            break
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    return messages


async def test_a_notebook_kernel_records_its_notebook_and_shows_diffs_escaped(
    api, jp_fetch, jp_serverapp, jp_root_dir, tmp_path
):
    (jp_root_dir / "work").mkdir()
    r = await jp_fetch(
        "api",
        "sessions",
        method="POST",
        body=json.dumps(
            {"path": "work/analysis.ipynb", "name": "analysis.ipynb", "type": "notebook", "kernel": {"name": "python3"}}
        ),
    )
    kernel_id = json.loads(r.body)["kernel"]["id"]
    km = jp_serverapp.kernel_manager.get_kernel(kernel_id)
    kc = km.client()  # asks the kernel's manager, not heartbeats, whether the kernel is alive
    kc.start_channels()
    folder = tmp_path / "to-save"
    folder.mkdir()
    (folder / "a.csv").write_text("1\n")
    try:
        await kc.wait_for_ready(timeout=120)
        run = lambda code: execute(kc, code)  # noqa: E731
        await run("%load_ext gradient_jupyter")
        await run(f"%gradient_storage save nb {folder} -m one")
        (folder / EVIL).write_text("2\n")  # a legal file name, and HTML if shown unescaped
        (folder / "twin.csv").write_text("2\n")
        await run(f"%gradient_storage save nb {folder} -m two")
        messages = await run("%gradient_storage datasets versions diff --id nb")
        html = [m["content"]["data"]["text/html"] for m in messages if m["msg_type"] == "execute_result"]
        plain = [m["content"]["data"]["text/plain"] for m in messages if m["msg_type"] == "execute_result"]
        messages = await run(
            "import gradient_jupyter\nd = gradient_jupyter.diff('nb')\n"
            "print(d.bytes_added, [f.path for f in d.added], d.unchanged)\nd"
        )
        printed = "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")
        api_html = [m["content"]["data"]["text/html"] for m in messages if m["msg_type"] == "execute_result"]
        await run('%gradient_storage datasets update --id nb --description "made in a notebook"')
        messages = await run("%gradient_storage datasets versions log --id nb")
        log = [m["content"]["data"]["text/plain"] for m in messages if m["msg_type"] == "execute_result"]
    finally:
        kc.stop_channels()
        await jp_fetch("api", "kernels", kernel_id, method="DELETE")
    for shown in (html[0], api_html[0]):
        assert "&lt;img src=x onerror=alert(1)&gt;.csv" in shown and "<img" not in shown
    assert f"A {EVIL}" in plain[0]
    assert printed.strip() == f"4 ['{EVIL}', 'twin.csv'] 1"
    assert log[0].splitlines()[0] == "History of nb" and '"two"' in log[0].splitlines()[1]
    assert '"one"' in log[0].splitlines()[2] and len(log[0].splitlines()) == 3
    code, ds = await api("GET", "datasets/nb")
    assert ds["description"] == "made in a notebook"
    code, listing = await api("GET", "datasets/nb/versions")
    assert all(
        v["createdBy"]["notebook"] == os.path.join(str(jp_root_dir), "work", "analysis.ipynb")
        for v in listing["versions"]
    )
