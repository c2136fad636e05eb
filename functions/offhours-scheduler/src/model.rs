//! What the scheduler knows about one governed resource, independent of its
//! AWS service: kind, identity, tags, power state and why it may not be acted on.

use std::fmt;

use serde::Serialize;
use steward_shared::tags::TagMap;

/// The resource types the scheduler governs (one adapter file each).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Ec2Instance,
    AutoScalingGroup,
    EksNodegroup,
    RdsInstance,
    AuroraCluster,
    EcsService,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Ec2Instance,
        Kind::AutoScalingGroup,
        Kind::EksNodegroup,
        Kind::RdsInstance,
        Kind::AuroraCluster,
        Kind::EcsService,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ec2Instance => "ec2-instance",
            Kind::AutoScalingGroup => "auto-scaling-group",
            Kind::EksNodegroup => "eks-nodegroup",
            Kind::RdsInstance => "rds-instance",
            Kind::AuroraCluster => "aurora-cluster",
            Kind::EcsService => "ecs-service",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a resource is up, down, or between the two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Power {
    Running,
    Stopped,
    /// Starting, stopping, modifying...: the service's own word for it.
    Busy(String),
}

/// One resource as listed by its adapter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resource {
    pub kind: Kind,
    /// The id the service's stop/start calls take (instance id, group name,
    /// `cluster/nodegroup`, DB identifier, service ARN).
    pub id: String,
    pub arn: String,
    pub tags: TagMap,
    pub power: Power,
    /// Why the scheduler must leave this resource to something else (an ASG,
    /// a replica relationship, a cluster...), if it must.
    pub owner_skip: Option<String>,
    /// Why a stopped resource cannot be started (for example no saved capacity).
    pub start_blocker: Option<String>,
    /// EC2 only: `HibernationOptions.Configured`.
    pub hibernation_configured: bool,
    /// Groups and services: the capacity when listed (saved before scaling to zero).
    pub capacity: Option<Capacity>,
    /// When the resource was last started or changed by a user, as AWS
    /// itself reports it (EC2: `LaunchTime` of a running instance, which a
    /// start resets, and the time in a `User initiated (...)`
    /// `StateTransitionReason`); `None` when the service gives no such
    /// evidence. A transition older than this change is not applied.
    pub changed_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Resource {
    /// A running resource with no restrictions (the adapters refine it).
    pub fn new(
        kind: Kind,
        id: impl Into<String>,
        arn: impl Into<String>,
        tags: TagMap,
        power: Power,
    ) -> Resource {
        Resource {
            kind,
            id: id.into(),
            arn: arn.into(),
            tags,
            power,
            owner_skip: None,
            start_blocker: None,
            hibernation_configured: false,
            capacity: None,
            changed_at: None,
        }
    }
}

/// Set on an RDS instance or Aurora cluster that AWS started after seven
/// days stopped and that was not yet available to be stopped again: the
/// event time (RFC 3339). The next run in its off time stops it and removes
/// the tag; a marker older than a day is ignored.
pub const RESTART_PENDING: &str = "steward:restart-pending";

/// Set on a dev resource stopped because its account's budget was breached
/// (`budget-stop` job): the budget period's exclusive end (YYYY-MM-DD, the
/// first day of the next period). The off-hours start leaves it stopped
/// before that day.
pub const BUDGET_HOLD: &str = "steward:budget-hold";

/// Capacity saved in `steward:saved-capacity` (`min:max:desired`) for groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capacity {
    pub min: i32,
    pub max: i32,
    pub desired: i32,
}

impl Capacity {
    pub fn is_zero(&self) -> bool {
        self.min == 0 && self.desired == 0
    }

    pub fn to_tag(&self) -> String {
        format!("{}:{}:{}", self.min, self.max, self.desired)
    }

    /// Parses `min:max:desired`; errors name the expected form.
    pub fn parse(value: &str) -> Result<Capacity, String> {
        let parts: Vec<&str> = value.trim().split(':').collect();
        let numbers: Result<Vec<i32>, _> = parts.iter().map(|p| p.trim().parse::<i32>()).collect();
        match numbers.as_deref() {
            Ok([min, max, desired]) if *min >= 0 && *max >= *min && *desired >= *min && *desired <= *max => {
                Ok(Capacity { min: *min, max: *max, desired: *desired })
            }
            _ => Err(format!("steward:saved-capacity={value:?} is not min:max:desired with min <= desired <= max")),
        }
    }
}

/// Parses the saved desired count of an ECS service.
pub fn parse_saved_desired(value: &str) -> Result<i32, String> {
    match value.trim().parse::<i32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "steward:saved-capacity={value:?} is not a positive desired count"
        )),
    }
}

/// The outcome of stopping or starting one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemResult {
    pub id: String,
    pub result: Result<(), String>,
}

impl ItemResult {
    pub fn ok(id: &str) -> ItemResult {
        ItemResult {
            id: id.to_string(),
            result: Ok(()),
        }
    }

    pub fn failed(id: &str, error: impl Into<String>) -> ItemResult {
        ItemResult {
            id: id.to_string(),
            result: Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_round_trips_and_rejects_nonsense() {
        let c = Capacity::parse("1:4:2").unwrap();
        assert_eq!(
            c,
            Capacity {
                min: 1,
                max: 4,
                desired: 2
            }
        );
        assert_eq!(c.to_tag(), "1:4:2");
        assert!(Capacity::parse("1:4").is_err());
        assert!(Capacity::parse("3:2:2").is_err());
        assert!(Capacity::parse("a:b:c").is_err());
        assert_eq!(parse_saved_desired("3"), Ok(3));
        assert!(parse_saved_desired("0").is_err());
    }
}
