//! The domain types shared by the plan, the adapters and the report: what a
//! snapshot, a database and a DR copy are to the copier, with no SDK type.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use steward_shared::tags::TagMap;

/// Tag keys the copier writes on a DR copy (SPEC section 4), beside
/// `steward:copied-from` and `steward:managed` from the shared tag list.
pub const SOURCE_CREATED: &str = "steward:source-created";
pub const RETENTION: &str = "steward:retention";

/// An RDS instance snapshot or an Aurora cluster snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Instance,
    Cluster,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Instance => "instance",
            Kind::Cluster => "cluster",
        }
    }

    /// The resource part of a snapshot ARN (`snapshot`, `cluster-snapshot`).
    pub fn arn_resource(self) -> &'static str {
        match self {
            Kind::Instance => "snapshot",
            Kind::Cluster => "cluster-snapshot",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The retention class of a DR copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// The copy of an automated snapshot: kept `retention_days`.
    Daily,
    /// The first daily copy of a UTC month, per database: kept `monthly_retention_months`.
    Monthly,
    /// The copy of a manual snapshot: kept `manual_retention_days`.
    Manual,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Daily => "daily",
            Class::Monthly => "monthly",
            Class::Manual => "manual",
        }
    }
}

/// A snapshot as RDS describes it (a source, or a copy in the DR region).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub kind: Kind,
    pub id: String,
    pub arn: String,
    pub account: String,
    pub region: String,
    /// The instance or cluster the snapshot was taken of.
    pub database: String,
    /// `automated`, `manual`, `shared`, `public`, `awsbackup`.
    pub snapshot_type: String,
    /// `available`, `creating`, `pending`, `copying`, `failed`, ...
    pub status: String,
    pub encrypted: bool,
    /// `SnapshotCreateTime` (for a copy: when the copy was made).
    pub created: Option<DateTime<Utc>>,
    /// `OriginalSnapshotCreateTime` (instance snapshots only).
    pub original_created: Option<DateTime<Utc>>,
    /// Where AWS returns it: `SourceDBSnapshotIdentifier` (instances) or
    /// `SourceDBClusterSnapshotArn` (clusters) of a copy.
    pub source: Option<String>,
    /// Where AWS returns it: `SourceRegion` of an instance snapshot copy.
    pub source_region: Option<String>,
    pub tags: TagMap,
}

impl Snapshot {
    pub fn is_available(&self) -> bool {
        self.status == "available"
    }

    /// True while a copy is being made (`pending`, `copying`; a copy being
    /// created with a source region counts too).
    pub fn is_copy_in_progress(&self) -> bool {
        matches!(self.status.as_str(), "pending" | "copying")
            || (self.status == "creating" && self.source_region.is_some())
    }

    /// The manual snapshots count against the per-region manual-snapshot quota.
    pub fn is_manual(&self) -> bool {
        self.snapshot_type == "manual"
    }
}

/// A database (instance or Aurora cluster) with its tags.
#[derive(Debug, Clone, PartialEq)]
pub struct Database {
    pub kind: Kind,
    pub id: String,
    pub tags: TagMap,
}

/// Which database, where: groups its DR copies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DatabaseKey {
    pub account: String,
    pub region: String,
    pub kind: Kind,
    pub id: String,
}

impl fmt::Display for DatabaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} in {}/{}",
            self.kind, self.id, self.account, self.region
        )
    }
}

/// A copy waiting for capacity: the body of a copy-queue message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingCopy {
    pub account: String,
    pub region: String,
    pub kind: Kind,
    pub snapshot_id: String,
}
