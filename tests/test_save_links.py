"""What `save`, `datasets files put` of a folder and `datasets versions create --source-path` do with symlinks (README
"save"): links to files and folders inside PATH are followed; links leading out of PATH are refused, all named,
unless --follow-links; a link into the data home (provider registry, compat URL key) is refused always, so nothing of
it ever reaches a bucket. Through the console script against SeaweedFS over HTTP."""

from __future__ import annotations

import os

import pytest

from .helpers import cli, make_folder
from .helpers.providers import seaweed_provider


def bucket_bytes(seaweed, bucket) -> dict[str, bytes]:
    client = seaweed.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


@pytest.fixture
def project(engine, seaweed_bucket, aws_env, tmp_path):
    """(seaweed, bucket, project folder) with links of every kind, and the provider's secret in the data home."""
    seaweed, bucket = seaweed_bucket
    seaweed_provider(engine, seaweed, bucket)
    home = aws_env
    (home / "compat-url.key").write_bytes(b"compat-url-signing-key-DO-NOT-UPLOAD")
    assert seaweed.secret_key.encode() in (home / "registry.sqlite3").read_bytes()  # in clear, as the issue says
    data = make_folder(tmp_path / "project", {"a.csv": b"1,2\n", "sub/b.txt": b"b"})
    shared = make_folder(tmp_path / "shared", {"x.bin": b"shared bytes"})
    (tmp_path / "outside.txt").write_bytes(b"outside")
    (data / "alias.csv").symlink_to("a.csv")  # inside PATH: followed
    (data / "sub_alias").symlink_to("sub", target_is_directory=True)
    (data / "sub" / "up").symlink_to("..", target_is_directory=True)  # a loop: not followed
    (data / "dangling").symlink_to(tmp_path / "nothing")  # a link to nothing: nothing to save
    (data / "shared").symlink_to(shared, target_is_directory=True)  # outside PATH
    (data / "notes.txt").symlink_to(tmp_path / "outside.txt")
    (data / "registry").symlink_to(home / "registry.sqlite3")  # into the data home
    (data / "sub" / "keys").symlink_to(home, target_is_directory=True)
    return seaweed, bucket, data


def test_links_into_the_data_home_are_refused_always_and_links_out_of_path_unless_asked(project, aws_env):
    seaweed, bucket, data = project
    secrets = [seaweed.secret_key.encode(), b"compat-url-signing-key-DO-NOT-UPLOAD"]
    for flags in ([], ["--follow-links"]):
        refused = cli("save", "proj", data, "--provider", "weed", *flags)
        assert refused.returncode == 1, refused.stdout
        assert "3 links (registry -> " in refused.stderr and "sub/keys -> " in refused.stderr  # sub_alias/keys too
        assert "data home" in refused.stderr and "never saved" in refused.stderr
    for put in (
        ["datasets", "versions", "create", "--id", "proj", "--source-path", data, "--follow-links"],
        ["datasets", "files", "put", "--id", "proj:abcdefg", "--source-path", f"{data}/", "--follow-links"],
    ):
        refused = cli(*put)
        assert refused.returncode == 1 and "lead into gradient-jupyter's data home" in refused.stderr, refused.stderr
    assert not any(s in body for body in bucket_bytes(seaweed, bucket).values() for s in secrets)
    os.unlink(data / "registry")
    os.unlink(data / "sub" / "keys")

    refused = cli("save", "proj", data, "--provider", "weed")
    assert refused.returncode == 1
    assert f"2 links (notes.txt -> {data.parent / 'outside.txt'}, shared -> {data.parent / 'shared'})" in refused.stderr
    assert "--follow-links" in refused.stderr and "--exclude" in refused.stderr and "Nothing was sent" in refused.stderr
    assert bucket_bytes(seaweed, bucket) == {}  # not even the dataset

    saved = cli("save", "proj", data, "--provider", "weed", "--follow-links")
    assert saved.returncode == 0, saved.stderr
    listed = cli("datasets", "files", "list", "--id", "proj", "--recursive")
    for path in ("a.csv", "alias.csv", "sub/b.txt", "sub_alias/b.txt", "shared/x.bin", "notes.txt"):
        assert path in listed.stdout
    assert "up/" not in listed.stdout and "dangling" not in listed.stdout
    excluded = cli("save", "proj", data, "--exclude", "shared", "notes.txt")  # leaving them out is the other way
    assert excluded.returncode == 0, excluded.stderr
    assert not any(s in body for body in bucket_bytes(seaweed, bucket).values() for s in secrets)
