"""Gradient's `.gradient/settings.yaml` in the Jupyter root: dataset integrations mounted at `datasets/<name>`.

    integrations:
      mnist:    {type: dataset, ref: "mnist:v1"}
      images:   {type: dataset, id: dsabc..., version: abc1234}
      raw:      {type: s3, ...}          # not mounted: the log says what to do instead

The server mounts them when it starts, in the background; each failure is logged and never stops the server. A
`datasets` folder (or `datasets/<name>`) that is a link leading out of the Jupyter root is refused: the server mounts
inside its root only.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BadInput, GradientError
from ..ids import DATASET_NAME, parse_ref
from ..records import MAX_YAML, read_yaml

if TYPE_CHECKING:
    from ..core import Engine

SETTINGS = Path(".gradient") / "settings.yaml"
log = logging.getLogger("gradient_jupyter")


def dataset_integrations(root, log: logging.Logger = log) -> list[tuple[str, str]]:
    """(name, ref) of each dataset integration in `<root>/.gradient/settings.yaml`; other entries are logged."""
    path = Path(root) / SETTINGS
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_YAML + 1)  # bounded, aliases refused: records.read_yaml
    except FileNotFoundError:
        return []
    try:
        settings = read_yaml(raw, str(path)) or {}
    except BadInput as exc:
        raise BadInput(f"{exc.message} Then restart the server.", reason="bad-settings") from exc
    integrations = settings.get("integrations") if isinstance(settings, dict) else None
    if not isinstance(integrations, dict):
        if integrations is not None:
            log.warning("%s: 'integrations' must be a mapping of names to settings; ignored.", path)
        return []
    found = []
    for name, spec in integrations.items():
        if not isinstance(name, str) or not DATASET_NAME.fullmatch(name) or not isinstance(spec, dict):
            log.warning(
                "%s: integration %r ignored: a name is letters, digits, '.', '_', '-' and its settings a "
                "mapping with a 'type'.",
                path,
                name,
            )
            continue
        kind = spec.get("type")
        if kind == "s3":
            log.warning(
                "%s: integration %r is a bucket (type: s3), which gradient-jupyter does not mount. Add it "
                "as a storage provider (gradient-jupyter storageProviders create s3 --name %s --bucket ...), "
                "then save its data as a dataset and list that here as type: dataset.",
                path,
                name,
                name,
            )
            continue
        if kind != "dataset":
            log.warning("%s: integration %r has type %r; only 'dataset' integrations are mounted.", path, name, kind)
            continue
        ref = spec.get("ref")
        if ref is None and spec.get("id"):
            ref = f"{spec['id']}:{spec['version']}" if spec.get("version") else str(spec["id"])
        try:
            parse_ref(str(ref) if ref is not None else "")
        except BadInput as exc:
            log.warning(
                "%s: integration %r needs 'ref: <dataset>[:<version|tag>]' or 'id:' and 'version:' (%s)",
                path,
                name,
                exc.message,
            )
            continue
        found.append((name, str(ref)))
    return found


def mount_integrations(engine: Engine, root, log: logging.Logger = log) -> dict[str, str]:
    """Mount each dataset integration at `<root>/datasets/<name>`; name -> "mounted <ref>" or the error, logged
    (to `log`: the server's own, so they show where its messages do)."""
    from .mount import mount

    outcome = {}
    try:
        integrations = dataset_integrations(root, log)
    except BadInput as exc:
        log.error("gradient-jupyter: %s", exc.message)
        return {}
    real_root = os.path.realpath(root)
    for name, ref in integrations:
        folder = Path(root) / "datasets" / name
        leads_to = os.path.realpath(folder)
        if not leads_to.startswith(real_root.rstrip(os.sep) + os.sep):  # `datasets -> /elsewhere`, say
            outcome[name] = (
                f"{str(folder)!r} leads to {leads_to!r}, outside the Jupyter root {real_root!r}: integrations are "
                "mounted inside the root only. Remove the link, then restart the server."
            )
            log.error("gradient-jupyter: integration %r (%s) was not mounted: %s", name, ref, outcome[name])
            continue
        try:
            result = mount(engine, ref, folder)
            outcome[name] = f"mounted {result.version.ref}"
            log.info("gradient-jupyter: integration %r mounted %s at %s", name, result.version.ref, result.folder)
        except (GradientError, OSError) as exc:
            outcome[name] = getattr(exc, "message", None) or str(exc)
            log.error("gradient-jupyter: integration %r (%s) was not mounted: %s", name, ref, outcome[name])
    return outcome
