//! The organization-scale fleet shared by the scale test and the scale
//! benchmark: member accounts (moto's multi-account mode, reached through
//! the member role, as steward reaches them) in several regions, each target
//! (account x region) with dev instances the off-hours sweep must stop and
//! prod instances it must leave alone; the policy that governs them; and
//! the count of what a sweep did.

use aws_config::{Region, SdkConfig};
use tokio::task::JoinSet;

use crate::fixtures::{self, Launch};
use crate::moto::Moto;
use crate::stack::MEMBER_ROLE;

/// Regions of the scale runs (moto serves each independently).
pub const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "us-west-2"];

/// `n` member account ids starting at `first` (12 digits each).
pub fn accounts(first: u64, n: usize) -> Vec<String> {
    (0..n as u64)
        .map(|i| format!("{:012}", first + i))
        .collect()
}

/// One account and region with its instances.
pub struct TargetFleet {
    pub account: String,
    pub region: String,
    pub config: SdkConfig,
    pub dev: Vec<String>,
    pub prod: Vec<String>,
}

/// Every target of a scale run.
pub struct OrgFleet {
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub targets: Vec<TargetFleet>,
}

/// What a sweep left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub dev_stopped: usize,
    pub dev_total: usize,
    pub prod_running: usize,
    pub prod_total: usize,
}

impl Tally {
    /// Every dev instance stopped and every prod instance still running.
    pub fn all_dev_stopped_prod_untouched(&self) -> bool {
        self.dev_stopped == self.dev_total && self.prod_running == self.prod_total
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} dev stopped, {}/{} prod running",
            self.dev_stopped, self.dev_total, self.prod_running, self.prod_total
        )
    }
}

/// Launches `dev` and `prod` instances in every account and region (the
/// targets are seeded concurrently; one RunInstances call per environment).
pub async fn seed(
    moto: &Moto,
    accounts: &[String],
    regions: &[&str],
    dev: i32,
    prod: i32,
) -> anyhow::Result<OrgFleet> {
    let mut set = JoinSet::new();
    for account in accounts {
        let member = moto.account_config(account, MEMBER_ROLE).await?;
        for region in regions {
            let config = member
                .to_builder()
                .region(Region::new(region.to_string()))
                .build();
            let (account, region) = (account.clone(), region.to_string());
            set.spawn(async move {
                let dev = fixtures::launch(
                    &config,
                    Launch {
                        count: dev,
                        tags: &[("env", "dev"), ("project", "scale")],
                        hibernation: false,
                    },
                )
                .await?;
                let prod = fixtures::launch(
                    &config,
                    Launch {
                        count: prod,
                        tags: &[("env", "prod"), ("project", "scale")],
                        hibernation: false,
                    },
                )
                .await?;
                anyhow::Ok(TargetFleet {
                    account,
                    region,
                    config,
                    dev,
                    prod,
                })
            });
        }
    }
    let mut targets = Vec::new();
    while let Some(done) = set.join_next().await {
        targets.push(done??);
    }
    targets.sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
    Ok(OrgFleet {
        accounts: accounts.to_vec(),
        regions: regions.iter().map(|r| r.to_string()).collect(),
        targets,
    })
}

impl OrgFleet {
    /// The policy of a sweep over this fleet: its accounts and regions,
    /// `concurrency` targets at a time, no blast-radius limit in the way,
    /// and work items of a replayed (past) run still accepted.
    pub fn policy(&self, concurrency: u32) -> String {
        let list = |items: &[String]| {
            items
                .iter()
                .map(|i| format!("\"{i}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "[targets]\naccounts = [{}]\nregions = [{}]\n[offhours]\nconcurrency = {concurrency}\nmax_work_item_age_minutes = 100000000\n[limits]\nmax_changes_per_run = 100000\n",
            list(&self.accounts),
            list(&self.regions)
        )
    }

    /// Targets (account x region) in this fleet.
    pub fn target_count(&self) -> usize {
        self.targets.len()
    }

    /// Reads every instance's state back (one DescribeInstances per target).
    pub async fn tally(&self) -> anyhow::Result<Tally> {
        let mut tally = Tally {
            dev_stopped: 0,
            dev_total: 0,
            prod_running: 0,
            prod_total: 0,
        };
        for t in &self.targets {
            let out = aws_sdk_ec2::Client::new(&t.config)
                .describe_instances()
                .set_instance_ids(Some(t.dev.iter().chain(&t.prod).cloned().collect()))
                .send()
                .await?;
            let state = |id: &str| {
                out.reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .find(|i| i.instance_id() == Some(id))
                    .and_then(|i| i.state())
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_string())
                    .unwrap_or_default()
            };
            tally.dev_total += t.dev.len();
            tally.dev_stopped += t.dev.iter().filter(|id| state(id) == "stopped").count();
            tally.prod_total += t.prod.len();
            tally.prod_running += t.prod.iter().filter(|id| state(id) == "running").count();
        }
        Ok(tally)
    }
}
