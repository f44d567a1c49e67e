"""Credentials and boto3 clients of an S3 store: an access key and secret as given, else a profile or boto3's
default chain (environment, config files, SSO, container and instance roles), for obstore and for boto3 alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ..errors import StoreError


class Credentials(NamedTuple):
    access_key: str | None
    secret_key: str | None
    profile: str | None


NO_CREDENTIALS = "No credentials found: give accessKey and secretAccessKey, or a profile."


def session(creds: Credentials):
    """A boto3 session: the profile's, or the default chain's."""
    import boto3

    return boto3.session.Session(profile_name=creds.profile) if creds.profile else boto3.session.Session()


def obstore_credentials(creds: Credentials, translate: Callable[[Exception, str], Exception]):
    """obstore's credential provider: the access key as given, else the profile or default chain through boto3's
    public Session.get_credentials(), refreshed as they expire. `translate` turns other failures into engine
    errors."""
    if creds.access_key:
        static = {
            "access_key_id": creds.access_key,
            "secret_access_key": creds.secret_key or "",
            "token": None,
            "expires_at": None,
        }
        return lambda: static
    from obstore.auth.boto3 import Boto3CredentialProvider

    try:
        return Boto3CredentialProvider(session(creds))
    except ValueError as exc:  # the chain found nothing
        raise StoreError(NO_CREDENTIALS, reason="no-credentials") from exc
    except Exception as exc:
        raise translate(exc, "credentials") from exc


def boto3_client(
    service: str,
    creds: Credentials,
    *,
    endpoint: str | None,
    region: str | None,
    timeout: float,
    attempts: int,
    **config,
):
    """A boto3 client with these credentials, standard retries (`attempts` tries) and timeouts; `config`: more
    botocore Config options."""
    from botocore.config import Config

    options = Config(
        retries={"mode": "standard", "total_max_attempts": attempts},  # max_attempts would be retries: one more
        connect_timeout=min(timeout, 10),
        read_timeout=timeout,
        **config,
    )
    kwargs = {"config": options, "endpoint_url": endpoint, "region_name": region}
    if creds.access_key:
        kwargs.update(aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key)
    return session(creds).client(service, **kwargs)
