"""The team file's providers (engine/team.py) as Providers, and how they join the user's own in every listing."""

from __future__ import annotations

from dataclasses import replace

from ..team import Team, TeamProvider, team_provider_id
from .model import MANAGED_NAME, Provider


def from_team(team: Team, tp: TeamProvider, *, managed: bool = False) -> Provider:
    """A team file's provider as a Provider: read-only to users, its secrets read when a store is made."""
    default = (team.default or "").strip().lower() == tp.name.lower()
    return Provider(
        id=team_provider_id(team.team_id, tp.name),
        name=tp.name,
        config=dict(tp.config),
        is_team_default=default,
        is_gradient_managed=managed,
        dt_created=team.modified,
        dt_modified=team.modified,
        source="team",
        read_only=tp.read_only,
        secrets=dict(tp.secrets),
        team_file=team.path,
    )


def with_team(team: Team, own: list[Provider]) -> list[Provider]:
    """The user's providers `own` under a team file: Gradient Managed first, then the team's, then the user's. Its
    default is the only default, its Gradient Managed replaces the embedded one, and a user provider whose name a
    team provider takes is marked `shadowed`."""
    ours = [from_team(team, tp) for tp in team.providers]
    taken = {p.name.lower() for p in ours}
    decided = (team.default or "").strip().lower()
    managed = [from_team(team, team.managed, managed=True)] if team.managed else []
    for p in own:
        if p.is_gradient_managed and managed:
            continue
        if p.is_gradient_managed and decided:
            p = replace(p, is_team_default=decided == MANAGED_NAME.lower())
        elif not p.is_gradient_managed:
            p = replace(p, is_team_default=p.is_team_default and not decided, shadowed=p.name.lower() in taken)
        (managed if p.is_gradient_managed else ours).append(p)
    providers = managed + ours
    if not any(p.is_team_default for p in providers):  # the user's default was Gradient Managed on S3's row
        providers[0] = replace(providers[0], is_team_default=True)
    return providers
