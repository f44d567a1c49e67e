"""The README's "Deploying for a team": its team file is valid and its console lines run as written; the Zero to
JupyterHub values (configuration, not run) give the servers the env vars the team file names."""

from __future__ import annotations

import yaml

from gradient_jupyter.engine.team import load_team_file

from .helpers.readme import README, block, console, run_steps

HEADING = "## Deploying for a team"


def test_the_team_file_is_valid_and_the_listing_runs_as_written(tmp_path):
    (tmp_path / "team.yaml").write_text(block(HEADING, "yaml"))
    team = load_team_file(tmp_path / "team.yaml")
    assert [(p.name, p.read_only) for p in team.providers] == [("team-data", False), ("reference", True)]
    run_steps(console(HEADING), tmp_path, {})


def test_the_zero_to_jupyterhub_values_give_the_referenced_env_vars():
    section = README[README.index(HEADING) :]
    values = yaml.safe_load(section.split("```yaml\n")[2].split("```", 1)[0])
    env = values["singleuser"]["extraEnv"]
    assert env["GRADIENT_JUPYTER_TEAM_FILE"] == "/etc/gradient/team.yaml"
    referenced = {
        ref["env"]
        for p in yaml.safe_load(block(HEADING, "yaml"))["providers"]
        for ref in p.values()
        if isinstance(ref, dict) and "env" in ref
    }
    assert referenced <= set(env)
    mount = values["singleuser"]["storage"]["extraVolumeMounts"][0]
    assert mount["mountPath"] == "/etc/gradient" and mount["readOnly"] is True
