"""Re-export of the cluster's liveness record, which lives in zoho_sync/cluster.py so the sync engine and the admin
import it downwards (issue 20 item 2). This path stays: django-q2 Schedule rows store
`monitoring.heartbeat.cluster_heartbeat`, and monitoring's pages and checks read it from here."""

from zoho_sync.cluster import (  # noqa: F401  (re-exports, a stable dotted path)
    KEY,
    ClusterState,
    beat,
    cluster_alive,
    cluster_heartbeat,
    cluster_last_seen,
    cluster_state,
    worker_spawned,
)
