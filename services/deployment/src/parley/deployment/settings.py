"""The deployment service's settings, from ``PARLEY_*`` environment variables."""

from parley.kit.settings import ServiceSettings

__all__ = ["DeploymentSettings"]


class DeploymentSettings(ServiceSettings, kw_only=True, frozen=True):
    """Settings of one deployment process."""

    deployment_apply_timeout: float = 5.0
    """Seconds to wait for the registry to take a promoted definition; a deployment the
    registry did not answer stays `applying` and is tried again
    (`PARLEY_DEPLOYMENT_APPLY_TIMEOUT`)."""
