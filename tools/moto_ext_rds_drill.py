"""RDS restores as slow and fallible as AWS's, for the snapshot copier's
restore drill. moto 5.2.5 supports `RestoreDBInstanceFromDBSnapshot` and
`RestoreDBClusterFromSnapshot` across regions with tags (a copy in the DR
region restores there), but a restored instance is `available` at once and
a restore never fails.

What it changes in moto's RDS backend (`install()`), only after a test asked
for it through the endpoint below (by default moto behaves as before):

1. A restored instance (`RestoreDBInstanceFromDBSnapshot`, and an instance
   created in a cluster restored by `RestoreDBClusterFromSnapshot`) reports
   `creating` for its first N `DescribeDBInstances` answers, then
   `available`, as AWS reports a restore in progress.
2. A restore can be made to fail: the restored instance reports the given
   status (`incompatible-restore`, as AWS does for a restore that cannot
   complete) and never becomes available.

Test endpoint (never reached by steward itself):

    POST /_steward/rds/restore-behaviour
        {"pending_describes": N, "fail_status": "incompatible-restore" | null}
        applies to every restore made afterwards, until set again.
"""

import json

from werkzeug.wrappers import Response

_BEHAVIOUR = {"pending_describes": 0, "fail_status": None}
# (account, region, instance id) -> describes left in `creating`, or the failed status.
_PENDING = {}
_FAILED = {}
# (account, region, cluster id) of clusters restored from a snapshot.
_RESTORED_CLUSTERS = set()


def _mark(backend, instance_id):
    key = (backend.account_id, backend.region_name, instance_id)
    if _BEHAVIOUR["fail_status"]:
        _FAILED[key] = _BEHAVIOUR["fail_status"]
    elif _BEHAVIOUR["pending_describes"] > 0:
        _PENDING[key] = int(_BEHAVIOUR["pending_describes"])


def install():
    from moto.rds.models import RDSBackend

    original_restore = RDSBackend.restore_db_instance_from_db_snapshot
    original_cluster_restore = RDSBackend.restore_db_cluster_from_snapshot
    original_create = RDSBackend.create_db_instance
    original_describe = RDSBackend.describe_db_instances

    def restore_db_instance_from_db_snapshot(self, *args, **kwargs):
        db = original_restore(self, *args, **kwargs)
        _mark(self, db.db_instance_identifier)
        return db

    def restore_db_cluster_from_snapshot(self, *args, **kwargs):
        cluster = original_cluster_restore(self, *args, **kwargs)
        _RESTORED_CLUSTERS.add((self.account_id, self.region_name, cluster.db_cluster_identifier))
        return cluster

    def create_db_instance(self, *args, **kwargs):
        db = original_create(self, *args, **kwargs)
        cluster = getattr(db, "db_cluster_identifier", None)
        if cluster and (self.account_id, self.region_name, cluster) in _RESTORED_CLUSTERS:
            _mark(self, db.db_instance_identifier)
        return db

    def describe_db_instances(self, *args, **kwargs):
        databases = original_describe(self, *args, **kwargs)
        for db in databases:
            key = (self.account_id, self.region_name, db.db_instance_identifier)
            if key in _FAILED:
                db.status = _FAILED[key]
            elif key in _PENDING:
                if _PENDING[key] > 0:
                    _PENDING[key] -= 1
                    db.status = "creating"
                else:
                    del _PENDING[key]
                    db.status = "available"
        return databases

    RDSBackend.restore_db_instance_from_db_snapshot = restore_db_instance_from_db_snapshot
    RDSBackend.restore_db_cluster_from_snapshot = restore_db_cluster_from_snapshot
    RDSBackend.create_db_instance = create_db_instance
    RDSBackend.describe_db_instances = describe_db_instances


def restore_behaviour(request):
    body = json.loads(request.get_data() or b"{}")
    _BEHAVIOUR["pending_describes"] = int(body.get("pending_describes") or 0)
    _BEHAVIOUR["fail_status"] = body.get("fail_status") or None
    return Response(json.dumps(_BEHAVIOUR), content_type="application/json")


ROUTES = {
    "/_steward/rds/restore-behaviour": restore_behaviour,
}
