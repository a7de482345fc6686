"""The Kubernetes API access of the rollback targets: plain httpx, no kubectl, no client library.

- :mod:`rollback.kube.client`: :class:`~rollback.kube.client.KubeClient` (the few calls the
  targets make) and :func:`~rollback.kube.client.connect` (from the rollback settings);
- :mod:`rollback.kube.auth`: in-cluster service-account access (rotating token, cluster CA);
- :mod:`rollback.kube.kubeconfig`: kubeconfig access for local development;
- :mod:`rollback.kube.errors`: the exception tree every failure is translated into.
"""
