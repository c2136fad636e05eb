"""RDS snapshot copies as AWS makes them, where moto 5.2.5 differs (see
EMULATOR.md, "RDS snapshots and KMS"). Used by the snapshot-copier tests.

What it changes in moto's RDS backend (`install()`):

1. `CopyDBSnapshot` returns the source fields AWS returns on a copy:
   `SourceDBSnapshotIdentifier` (the source ARN) and `SourceRegion`.
   `CopyDBClusterSnapshot` returns `SourceDBClusterSnapshotArn`.
2. `CopyDBClusterSnapshot` of an unencrypted cluster snapshot with a
   `KmsKeyId` is refused with `InvalidParameterCombination`, as AWS does
   (moto accepts it and makes an encrypted copy).

Test endpoints (`ROUTES`), for states moto never produces by itself:

    POST /_steward/rds/snapshot
        {"account": ID, "region": R, "kind": "instance"|"cluster", "id": SNAPSHOT,
         "created": RFC3339?, "original_created": RFC3339?, "status": S?}
        backdates `SnapshotCreateTime` (and, for instances,
        `OriginalSnapshotCreateTime`) and sets the status (`copying`,
        `pending`, `available`, ...): moto makes copies `available` at once
        and stamps every snapshot with the current time.

    POST /_steward/rds/automated-snapshot
        {"account": ID, "region": R, "db": INSTANCE, "id": "rds:...", "created": RFC3339?}
        makes an automated snapshot of an instance, as RDS does every day
        (moto makes only one, when the instance is created).

    POST /_steward/kms/key
        {"account": ID, "region": R, "alias": "alias/..."}
        creates a symmetric key with that alias and returns its ARN, so the
        test harness needs no KMS client of its own.
"""

import datetime
import json

from werkzeug.wrappers import Response


def _backend(account, region):
    from moto.backends import get_backend

    return get_backend("rds")[account][region]


def _region_of(arn):
    parts = arn.split(":")
    return parts[3] if len(parts) > 6 and parts[0] == "arn" else None


def install():
    from moto.rds.exceptions import RDSClientError
    from moto.rds.models import RDSBackend

    original_copy = RDSBackend.copy_db_snapshot
    original_cluster_copy = RDSBackend.copy_db_cluster_snapshot

    def copy_db_snapshot(self, source_db_snapshot_identifier, target_db_snapshot_identifier, *args, **kwargs):
        target = original_copy(self, source_db_snapshot_identifier, target_db_snapshot_identifier, *args, **kwargs)
        target.source_db_snapshot_identifier = source_db_snapshot_identifier
        target.source_region = _region_of(source_db_snapshot_identifier) or self.region_name
        return target

    def copy_db_cluster_snapshot(
        self, source_db_cluster_snapshot_identifier, target_db_cluster_snapshot_identifier, *args, **kwargs
    ):
        source = self.get_db_cluster_snapshot(source_db_cluster_snapshot_identifier)
        if kwargs.get("kms_key_id") and not source.storage_encrypted:
            raise RDSClientError(
                "InvalidParameterCombination",
                "Cannot copy an unencrypted DB cluster snapshot with a KMS key: encryption cannot be added on copy.",
            )
        target = original_cluster_copy(
            self, source_db_cluster_snapshot_identifier, target_db_cluster_snapshot_identifier, *args, **kwargs
        )
        target.source_db_cluster_snapshot_arn = source.arn
        return target

    RDSBackend.copy_db_snapshot = copy_db_snapshot
    RDSBackend.copy_db_cluster_snapshot = copy_db_cluster_snapshot


def _time(value, like):
    parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if like is not None and like.tzinfo is None:
        parsed = parsed.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return parsed


def set_snapshot(request):
    body = json.loads(request.get_data() or b"{}")
    backend = _backend(body["account"], body["region"])
    snapshot_id = body["id"].lower()
    store = backend.cluster_snapshots if body.get("kind") == "cluster" else backend.database_snapshots
    snapshot = store.get(snapshot_id)
    if snapshot is None:
        return Response(json.dumps({"error": f"no snapshot {snapshot_id}"}), status=404, content_type="application/json")
    if "created" in body:
        snapshot.created = _time(body["created"], snapshot.created)
    if "original_created" in body and hasattr(snapshot, "original_snapshot_create_time"):
        snapshot.original_snapshot_create_time = _time(body["original_created"], snapshot.created)
    if "status" in body:
        snapshot.status = body["status"]
    return Response("{}", content_type="application/json")


def automated_snapshot(request):
    body = json.loads(request.get_data() or b"{}")
    backend = _backend(body["account"], body["region"])
    snapshot = backend.create_auto_snapshot(body["db"], body["id"])
    if "created" in body:
        snapshot.created = _time(body["created"], snapshot.created)
        snapshot.original_snapshot_create_time = snapshot.created
    return Response(json.dumps({"arn": snapshot.arn}), content_type="application/json")


def kms_key(request):
    from moto.backends import get_backend

    body = json.loads(request.get_data() or b"{}")
    backend = get_backend("kms")[body["account"]][body["region"]]
    key = backend.create_key(None, "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", "steward test key", None)
    if body.get("alias"):
        backend.create_alias(key.id, body["alias"])
    return Response(json.dumps({"arn": key.arn}), content_type="application/json")


ROUTES = {
    "/_steward/kms/key": kms_key,
    "/_steward/rds/snapshot": set_snapshot,
    "/_steward/rds/automated-snapshot": automated_snapshot,
}
