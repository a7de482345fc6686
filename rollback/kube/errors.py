"""Errors of the Kubernetes client, translated at the HTTP boundary.

Who raises them: :class:`rollback.kube.client.KubeClient` (API answers and transport failures)
and the connection builders in :mod:`rollback.kube.auth` / :mod:`rollback.kube.kubeconfig`
(configuration that cannot work). Who catches them: the rollback targets, which turn them into
:class:`rollback.targets.base.RollbackFailed` with ``retryable`` taken from here.

The tree::

    KubeError                      every failure; .status, .verb, .path, .reason, .retryable
    ├── KubeConfigError            no usable connection (bad kubeconfig, missing SA files)
    ├── KubeConnectionError        transport failure or timeout           (retryable)
    └── KubeAPIError               the API server answered with an error status
        ├── Unauthorized           401: token missing, wrong or expired
        ├── Forbidden              403: RBAC denies the verb on the resource
        ├── NotFound               404
        ├── Conflict               409                                     (retryable)
        ├── TooManyRequests        429; .retry_after from the header       (retryable)
        └── ServerError            5xx                                     (retryable)

Messages carry the verb, the path and the API server's own ``Status.message``; never a token,
a header or a certificate.
"""

from __future__ import annotations


class KubeError(Exception):
    """Base of every client error. ``retryable`` says whether sending the same request again
    later may succeed (conflicts, throttling, server errors, timeouts)."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        verb: str | None = None,
        path: str | None = None,
        reason: str | None = None,
    ) -> None:
        context = f"{verb} {path}: " if verb and path else ""
        super().__init__(f"{context}{message}")
        self.message = message
        self.status = status
        self.verb = verb
        self.path = path
        self.reason = reason


class KubeConfigError(KubeError):
    """The connection cannot be built: unreadable kubeconfig, unknown context, missing
    service-account files, an unsupported ``exec`` credential plugin."""


class KubeConnectionError(KubeError):
    """The request did not get an answer: connection refused, TLS failure, timeout."""

    retryable = True


class KubeAPIError(KubeError):
    """The API server answered with an error status (see subclasses)."""


class Unauthorized(KubeAPIError):
    """401: the credentials were not accepted."""


class Forbidden(KubeAPIError):
    """403: authenticated, but RBAC does not allow this verb on this resource."""


class NotFound(KubeAPIError):
    """404: the object (or its subresource, or its API group) does not exist."""


class Conflict(KubeAPIError):
    """409: a concurrent writer changed the object; sending again usually works."""

    retryable = True


class TooManyRequests(KubeAPIError):
    """429: API priority and fairness throttled us; ``retry_after`` is the server's hint."""

    retryable = True

    retry_after: float | None = None


class ServerError(KubeAPIError):
    """5xx: the API server (or something in front of it) failed."""

    retryable = True


_BY_STATUS: dict[int, type[KubeAPIError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: TooManyRequests,
}


def error_class_for(status: int) -> type[KubeAPIError]:
    """The exception class for an HTTP error status (5xx -> ServerError, other -> KubeAPIError).
    A 408 (timeout at the server) or 504 behaves like a 5xx: worth retrying."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500 or status == 408:
        return ServerError
    return KubeAPIError
