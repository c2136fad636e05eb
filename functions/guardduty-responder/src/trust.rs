//! Whether a finding may lead to containment at all, orchestration only:
//! verify it with GuardDuty (the hub's detector in the finding's region
//! first, else the member's through the member role; the responder acts on
//! GuardDuty's version, never the payload), then check that its account is
//! one steward governs (`[targets]` accounts, or an account at any depth
//! under `[targets]` organizational units, read from Organizations). The
//! decisions are `plan::trust`, `plan::governance` and `plan::governed_by_units`.

use steward_shared::{Policy, Steward};

use crate::clients::Apis;
use crate::events::{self, Finding};
use crate::plan::{self, Governance, Hold, Verification};

/// Verification and the governed-account check for the handler.
pub struct Trust<'a, A: Apis> {
    steward: &'a Steward,
    apis: &'a A,
}

impl<'a, A: Apis> Trust<'a, A> {
    pub fn new(steward: &'a Steward, apis: &'a A) -> Self {
        Trust { steward, apis }
    }

    /// Verified, not a sample, and in a governed account (checked in that
    /// order; Organizations is asked only about a finding GuardDuty vouches for).
    pub async fn check(
        &self,
        policy: &Policy,
        verification: &Verification,
        f: &Finding,
    ) -> Result<(), Hold> {
        plan::trust(verification, &f.id, f.is_sample(), &f.account_id, Ok(()))?;
        let governed = self.governed(policy, &f.account_id).await;
        plan::trust(verification, &f.id, f.is_sample(), &f.account_id, governed)
    }

    async fn governed(&self, policy: &Policy, account: &str) -> Result<(), String> {
        let own = self.steward.aws.own_account();
        match plan::governance(&policy.targets, own, account) {
            Governance::Governed => Ok(()),
            Governance::NotGoverned(why) => Err(why),
            Governance::AskOrganizations => {
                let chain = match self.apis.organization().await {
                    Ok(org) => org.ancestors(account).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = &chain {
                    tracing::warn!(account, error = %format!("{e:#}"), "the account's organizational units could not be read");
                }
                let chain = chain.map_err(|e| format!("{e:#}"));
                plan::governed_by_units(&policy.targets, chain.as_deref().map_err(String::as_str))
            }
        }
    }

    /// Asks GuardDuty for the finding: the hub's detector in the finding's
    /// region first, else the member's detector through the member role.
    pub async fn verify(&self, event_id: &str, f: &Finding) -> (Verification, Option<Finding>) {
        let own = self.steward.aws.own_account().to_string();
        let mut accounts = vec![own.clone()];
        if f.account_id != own {
            accounts.push(f.account_id.clone());
        }
        let mut errors = Vec::new();
        let mut no_answer = true;
        for account in accounts {
            match self.lookup(&account, &f.region, event_id, &f.id).await {
                Ok(Some(found)) => return (Verification::Verified, Some(found)),
                Ok(None) => {}
                Err(e) => {
                    no_answer &= e.chain().any(|c| c.is::<crate::guardduty::NoAnswer>());
                    errors.push(format!("account {account}: {e:#}"));
                }
            }
        }
        if errors.is_empty() {
            (Verification::Unknown, None)
        } else if no_answer {
            tracing::warn!(finding_id = %f.id, errors = %errors.join("; "), "GuardDuty gave no answer; the finding is verified at the retry");
            (Verification::NoAnswer(errors.join("; ")), None)
        } else {
            tracing::warn!(finding_id = %f.id, errors = %errors.join("; "), "GuardDuty could not verify the finding");
            (Verification::Unreachable(errors.join("; ")), None)
        }
    }

    async fn lookup(
        &self,
        account: &str,
        region: &str,
        event_id: &str,
        id: &str,
    ) -> anyhow::Result<Option<Finding>> {
        let gd = self.apis.guardduty(account, region, event_id).await?;
        let Some(detector) = gd.detector().await? else {
            return Ok(None);
        };
        let found = gd.get_findings(&detector, &[id.to_string()]).await?;
        let Some(detail) = found.iter().find(|d| d["id"] == id) else {
            return Ok(None);
        };
        let finding = events::parse_detail(detail)
            .map_err(|e| anyhow::anyhow!("GuardDuty's own finding could not be read: {e}"))?;
        Ok(Some(finding))
    }
}
