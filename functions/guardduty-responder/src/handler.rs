//! The responder's flow, orchestration only. A finding event: parse, verify
//! it with GuardDuty (act on GuardDuty's version, never the payload), triage,
//! decide whether it may be contained at all (verified, not a sample, a
//! governed account), contain through `containment`, and notify the
//! security team once per finding, band and renotify window. The scheduled
//! `findings-sweep` (in `sweep`) lists recent findings in every target
//! region and hands each to the same `respond` as if its event had arrived.

use std::sync::Arc;

use chrono::Utc;
use serde_json::{json, Value};
use steward_shared::entry::{Handler, Invocation};
use steward_shared::notify::Severity;
use steward_shared::observability::Metrics;
use steward_shared::trigger::{self, Jobs};
use steward_shared::{Policy, Steward};

use crate::clients::Apis;
use crate::containment::{Contained, Containment};
use crate::events::{self, Finding};
use crate::plan::{self, Band, Hold, Verification};
use crate::report::{self, Outcome};
use crate::trust::Trust;
use crate::FUNCTION_NAME;

/// The scheduled jobs (SPEC section 4).
pub const JOBS: Jobs = Jobs {
    default: "findings-sweep",
    others: &[],
};

/// The GuardDuty responder, built once per process.
pub struct Responder<A: Apis> {
    pub(crate) steward: Arc<Steward>,
    pub(crate) apis: A,
}

impl<A: Apis> Responder<A> {
    pub fn new(steward: Arc<Steward>, apis: A) -> Responder<A> {
        Responder { steward, apis }
    }

    /// Handles one invocation (tests call this; Lambda goes through `entry::serve`).
    pub async fn invoke(&self, payload: Value, request_id: &str) -> anyhow::Result<Value>
    where
        A: 'static,
    {
        steward_shared::entry::invoke(self, FUNCTION_NAME, payload, request_id).await
    }

    async fn on_event(&self, payload: &Value, metrics: &mut Metrics) -> anyhow::Result<Value> {
        let event = events::parse(payload)?;
        tracing::Span::current().record("event_id", event.event_id.as_str());
        let trust = Trust::new(&self.steward, &self.apis);
        let (verification, finding) = trust.verify(&event.event_id, &event.finding).await;
        let finding = finding.unwrap_or(event.finding);
        self.respond(&event.event_id, &finding, &verification, metrics)
            .await
    }

    /// Triage, trust, containment and the notification for one finding.
    pub(crate) async fn respond(
        &self,
        event_id: &str,
        f: &Finding,
        verification: &Verification,
        metrics: &mut Metrics,
    ) -> anyhow::Result<Value> {
        let policy = self.steward.policy.current().await;
        let band = Band::of(f.severity);
        let thresholds = plan::thresholds(&policy.containment, &f.finding_type);
        let (_, label, _) = report::resource_of(f);
        metrics.resources_evaluated += 1;
        tracing::info!(
            finding_id = %f.id, finding_type = %f.finding_type, severity = f.severity, band = %band,
            account = %f.account_id, region = %f.region, resource = %label, count = f.count(),
            verified = matches!(verification, Verification::Verified), "GuardDuty finding received"
        );
        let base = json!({
            "event_id": event_id, "finding_id": f.id, "type": f.finding_type,
            "band": band.as_str(), "resource": label, "mode": self.steward.mode().as_str(),
        });
        if f.service.archived {
            tracing::info!(finding_id = %f.id, "the finding is archived; not notified, nothing contained");
            return Ok(merge(base, json!({"skipped": "archived"})));
        }
        if band < thresholds.notify && band < thresholds.contain {
            tracing::info!(band = %band, notify_from = %thresholds.notify, "below the notify and contain thresholds; logged only");
            let why = format!("{band} is below the notify threshold {}", thresholds.notify);
            return Ok(merge(base, json!({ "skipped": why })));
        }
        let trusted = Trust::new(&self.steward, &self.apis)
            .check(&policy, verification, f)
            .await;
        let containment = Containment::new(&self.steward, &self.apis);
        let contained = match trusted {
            Err(hold) => Ok(Contained::Outcome(Outcome::held(hold, f.resource_tags()))),
            Ok(()) => {
                containment
                    .contain(event_id, f, band, thresholds, &policy, metrics)
                    .await
            }
        };
        // A containment that cannot even start (the member role cannot be
        // assumed, a read is denied) is still reported, then retried.
        let contained = contained.unwrap_or_else(|e| {
            tracing::error!(error = %format!("{e:#}"), "containment could not run");
            metrics.actions_failed += 1;
            Contained::Outcome(Outcome {
                failures: vec![format!("containment could not run: {e:#}")],
                tags: f.resource_tags(),
                ..Outcome::default()
            })
        });
        let outcome = match contained {
            Contained::Outcome(o) => o,
            Contained::Blocked(exceeded, count) => {
                let o = Outcome::held(
                    Hold::Unsupported {
                        what: exceeded.clone(),
                    },
                    f.resource_tags(),
                );
                let key = format!("{}#blast-radius", plan::notification_key(&f.id, band, 0));
                let mut n = report::notification(f, band, &o, self.steward.mode(), key);
                n.severity = Severity::High;
                n.what = "blast-radius".into();
                n.summary = format!(
                    "{label} not contained (blast-radius limit): {}",
                    f.finding_type
                );
                self.notify(&n, &policy, metrics).await?;
                return Ok(merge(
                    base,
                    json!({"blocked": exceeded, "planned_changes": count}),
                ));
            }
            Contained::Capped(o) => {
                let key = plan::cap_alert_key(Utc::now());
                let n = report::cap_alert(policy.containment.max_per_hour, f, key);
                self.notify(&n, &policy, metrics).await?;
                o
            }
        };
        let status = outcome.status(self.steward.mode());
        let notification = self
            .notify_finding(
                f,
                band,
                thresholds.notify,
                &outcome,
                verification,
                &policy,
                metrics,
            )
            .await?;
        if !outcome.failures.is_empty() {
            anyhow::bail!(
                "containment of {label} for finding {} failed: {}; the retry will try again",
                f.id,
                outcome.failures.join("; ")
            );
        }
        // GuardDuty gave no answer (throttled, a 5xx, no connection): the
        // team has been told the finding is UNVERIFIED, and the invocation
        // fails so Lambda delivers it again and containment follows as soon
        // as GuardDuty vouches for it, instead of waiting for the sweep. An
        // answer that refuses or does not parse is not retried.
        if let (Verification::NoAnswer(e), true) = (verification, self.steward.mode().may_change())
        {
            anyhow::bail!(
                "GuardDuty could not be asked about finding {} ({e}); the security team was told it is UNVERIFIED and nothing was contained; the retry will verify it again",
                f.id
            );
        }
        Ok(merge(
            base,
            json!({
                "containment": status,
                "verified": matches!(verification, Verification::Verified),
                "actions": outcome.steps,
                "held": outcome.hold.as_ref().map(Hold::reason),
                "already": outcome.already,
                "snapshots": outcome.snapshots,
                "notification": notification,
            }),
        ))
    }

    /// The message about the finding, once per finding, band and window (an
    /// unverified finding has its own key, so a forged payload cannot use up
    /// the genuine finding's notification).
    #[allow(clippy::too_many_arguments)]
    async fn notify_finding(
        &self,
        f: &Finding,
        band: Band,
        notify_from: Band,
        outcome: &Outcome,
        verification: &Verification,
        policy: &Policy,
        metrics: &mut Metrics,
    ) -> anyhow::Result<String> {
        if band < notify_from && !outcome.acted() {
            return Ok("below-threshold".into());
        }
        let window = plan::window(f.updated_at, policy.containment.renotify_after_hours);
        let mut key = plan::notification_key(&f.id, band, window);
        if !matches!(verification, Verification::Verified) {
            key.push_str("#unverified");
        }
        if !outcome.failures.is_empty() {
            key.push_str("#failed");
        } else if self.notified_higher(&f.id, band, window).await? {
            tracing::info!(finding_id = %f.id, band = %band, "already notified in a higher band in this window; not notified again");
            return Ok("suppressed".into());
        }
        let n = report::notification(f, band, outcome, self.steward.mode(), key);
        Ok(self.notify(&n, policy, metrics).await?.to_string())
    }

    async fn notify(
        &self,
        n: &steward_shared::Notification,
        policy: &Policy,
        metrics: &mut Metrics,
    ) -> anyhow::Result<&'static str> {
        let outcome = self.steward.notify(n, policy).await?;
        if outcome.is_sent() {
            metrics.notifications_sent += 1;
        }
        Ok(match outcome {
            steward_shared::context::NotifyOutcome::BelowThreshold => "below-min-severity",
            other => other.as_str(),
        })
    }

    /// True when the same finding was notified in a higher band in this window.
    async fn notified_higher(
        &self,
        finding_id: &str,
        band: Band,
        window: i64,
    ) -> anyhow::Result<bool> {
        if !self.steward.mode().may_change() {
            return Ok(false);
        }
        for key in plan::higher_band_keys(finding_id, band, window) {
            if self.steward.already_notified(&key).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

pub(crate) fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

#[async_trait::async_trait]
impl<A: Apis + 'static> Handler for Responder<A> {
    async fn handle(&self, payload: Value, invocation: &mut Invocation) -> anyhow::Result<Value> {
        match trigger::parse_scheduled(&payload, JOBS, Utc::now())? {
            Some(run) => self.sweep(&run, &mut invocation.metrics).await,
            None => self.on_event(&payload, &mut invocation.metrics).await,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The flow with in-memory adapters: a step failing part-way, the retry
    //! completing from what is in place, and the third delivery changing nothing.

    use std::sync::Mutex;

    use steward_shared::tags::TagMap;
    use steward_shared::testing::{self, MemoryPublisher, MemoryStore};
    use steward_shared::RunMode;

    use super::*;
    use crate::autoscaling::AutoScalingApi;
    use crate::ec2::{Ec2Api, ForensicSnapshot};
    use crate::elbv2::TargetGroupsApi;
    use crate::guardduty::FindingsApi;
    use crate::iam::IamApi;
    use crate::organizations::OrganizationApi;
    use crate::plan::{
        GroupFacts, GroupMembership, InstanceFacts, InterfaceFacts, TargetRegistration,
    };

    #[derive(Default)]
    struct Ec2State {
        instance: Option<InstanceFacts>,
        group: Option<(String, bool)>,
        open: Option<String>,
        snapshots: Vec<ForensicSnapshot>,
        calls: Vec<String>,
    }

    #[derive(Default)]
    struct FakeEc2 {
        state: Mutex<Ec2State>,
        fail_snapshot_of: Mutex<Option<String>>,
    }

    #[async_trait::async_trait]
    impl Ec2Api for FakeEc2 {
        async fn instance(&self, _id: &str) -> anyhow::Result<Option<InstanceFacts>> {
            Ok(self.state.lock().unwrap().instance.clone())
        }
        async fn quarantine_group(
            &self,
            _vpc: &str,
            _name: &str,
        ) -> anyhow::Result<Option<GroupFacts>> {
            Ok(self
                .state
                .lock()
                .unwrap()
                .group
                .clone()
                .map(|(id, has_rules)| GroupFacts { id, has_rules }))
        }
        async fn create_quarantine_group(&self, vpc: &str, _name: &str) -> anyhow::Result<String> {
            let mut s = self.state.lock().unwrap();
            s.calls.push(format!("create-group {vpc}"));
            s.group = Some(("sg-q".into(), false));
            Ok("sg-q".into())
        }
        async fn open_group(&self, _vpc: &str, _name: &str) -> anyhow::Result<Option<String>> {
            Ok(self.state.lock().unwrap().open.clone())
        }
        async fn create_open_group(&self, vpc: &str, _name: &str) -> anyhow::Result<String> {
            let mut s = self.state.lock().unwrap();
            s.calls.push(format!("create-open-group {vpc}"));
            s.open = Some("sg-open".into());
            Ok("sg-open".into())
        }
        async fn remove_all_rules(&self, group_id: &str) -> anyhow::Result<()> {
            let mut s = self.state.lock().unwrap();
            s.calls.push(format!("remove-rules {group_id}"));
            s.group = Some((group_id.into(), false));
            Ok(())
        }
        async fn set_interface_groups(&self, eni: &str, groups: &[String]) -> anyhow::Result<()> {
            let mut s = self.state.lock().unwrap();
            s.calls
                .push(format!("set-groups {eni} {}", groups.join(",")));
            let i = s.instance.as_mut().unwrap();
            i.interfaces
                .iter_mut()
                .find(|n| n.id == eni)
                .unwrap()
                .groups = groups.to_vec();
            Ok(())
        }
        async fn tag(&self, resource: &str, key: &str, value: &str) -> anyhow::Result<()> {
            let mut s = self.state.lock().unwrap();
            s.calls.push(format!("tag {resource} {key}"));
            let i = s.instance.as_mut().unwrap();
            if i.id == resource {
                i.tags.insert(key.into(), value.into());
            } else {
                i.interfaces
                    .iter_mut()
                    .find(|n| n.id == resource)
                    .unwrap()
                    .tags
                    .insert(key.into(), value.into());
            }
            Ok(())
        }
        async fn untag(&self, _resource: &str, _key: &str) -> anyhow::Result<()> {
            unreachable!("containment never removes tags")
        }
        async fn enable_termination_protection(&self, id: &str) -> anyhow::Result<()> {
            let mut s = self.state.lock().unwrap();
            s.calls.push(format!("protect {id}"));
            s.instance.as_mut().unwrap().termination_protection = true;
            Ok(())
        }
        async fn snapshot(
            &self,
            volume: &str,
            _instance: &str,
            finding: &str,
        ) -> anyhow::Result<String> {
            if self.fail_snapshot_of.lock().unwrap().as_deref() == Some(volume) {
                anyhow::bail!("CreateSnapshot of {volume} failed: SnapshotLimitExceeded");
            }
            let mut s = self.state.lock().unwrap();
            s.calls.push(format!("snapshot {volume}"));
            let id = format!("snap-{volume}");
            s.snapshots.push(ForensicSnapshot {
                snapshot_id: id.clone(),
                volume_id: volume.into(),
                finding_id: finding.into(),
            });
            Ok(id)
        }
        async fn forensic_snapshots(
            &self,
            _volumes: &[String],
        ) -> anyhow::Result<Vec<ForensicSnapshot>> {
            Ok(self.state.lock().unwrap().snapshots.clone())
        }
    }

    /// GuardDuty as the hub's detector sees it: the findings it knows.
    #[derive(Default)]
    struct FakeGuardDuty {
        findings: Mutex<Vec<Value>>,
    }

    #[async_trait::async_trait]
    impl FindingsApi for FakeGuardDuty {
        async fn detector(&self) -> anyhow::Result<Option<String>> {
            Ok(Some("d-1".into()))
        }
        async fn get_findings(&self, _d: &str, ids: &[String]) -> anyhow::Result<Vec<Value>> {
            let known = self.findings.lock().unwrap();
            Ok(known
                .iter()
                .filter(|f| ids.iter().any(|i| f["id"] == i.as_str()))
                .cloned()
                .collect())
        }
        async fn list_findings(
            &self,
            _d: &str,
            _q: &crate::guardduty::SweepQuery,
        ) -> anyhow::Result<Vec<String>> {
            let known = self.findings.lock().unwrap();
            Ok(known
                .iter()
                .filter_map(|f| f["id"].as_str().map(str::to_string))
                .collect())
        }
    }

    /// An instance in no Auto Scaling group and no target group.
    struct NoEvidence;

    #[async_trait::async_trait]
    impl AutoScalingApi for NoEvidence {
        async fn membership(&self, _i: &str) -> anyhow::Result<Option<GroupMembership>> {
            Ok(None)
        }
        async fn set_scale_in_protection(
            &self,
            _g: &str,
            _i: &str,
            _p: bool,
        ) -> anyhow::Result<()> {
            unreachable!("no group")
        }
        async fn enter_standby(&self, _g: &str, _i: &str, _d: bool) -> anyhow::Result<()> {
            unreachable!("no group")
        }
        async fn exit_standby(&self, _g: &str, _i: &str) -> anyhow::Result<()> {
            unreachable!("no group")
        }
    }

    #[async_trait::async_trait]
    impl TargetGroupsApi for NoEvidence {
        async fn registrations(&self, _i: &str) -> anyhow::Result<Vec<TargetRegistration>> {
            Ok(Vec::new())
        }
        async fn target_group_arns(&self) -> anyhow::Result<Vec<String>> {
            Ok(Vec::new())
        }
        async fn deregister(&self, _t: &str, _i: &str, _p: Option<i32>) -> anyhow::Result<()> {
            unreachable!("not registered")
        }
        async fn register(&self, _t: &str, _i: &str, _p: Option<i32>) -> anyhow::Result<()> {
            unreachable!("not registered")
        }
    }

    /// An instance InService in group `web`, whose Standby fails.
    struct StandbyFails;

    #[async_trait::async_trait]
    impl AutoScalingApi for StandbyFails {
        async fn membership(&self, _i: &str) -> anyhow::Result<Option<GroupMembership>> {
            Ok(Some(GroupMembership {
                group: "web".into(),
                lifecycle_state: "InService".into(),
                protected: false,
                min_size: 1,
                desired: 2,
            }))
        }
        async fn set_scale_in_protection(
            &self,
            _g: &str,
            _i: &str,
            _p: bool,
        ) -> anyhow::Result<()> {
            Ok(())
        }
        async fn enter_standby(&self, _g: &str, _i: &str, _d: bool) -> anyhow::Result<()> {
            anyhow::bail!("EnterStandby failed: ValidationError")
        }
        async fn exit_standby(&self, _g: &str, _i: &str) -> anyhow::Result<()> {
            unreachable!("containment never exits Standby")
        }
    }

    struct FakeApis(Arc<FakeEc2>, Arc<FakeGuardDuty>, Arc<dyn AutoScalingApi>);

    #[async_trait::async_trait]
    impl Apis for FakeApis {
        async fn ec2(&self, _a: &str, _r: &str, _e: &str) -> anyhow::Result<Arc<dyn Ec2Api>> {
            Ok(self.0.clone())
        }
        async fn iam(&self, _a: &str, _r: &str, _e: &str) -> anyhow::Result<Arc<dyn IamApi>> {
            anyhow::bail!("no IAM in this test")
        }
        async fn guardduty(
            &self,
            _a: &str,
            _r: &str,
            _e: &str,
        ) -> anyhow::Result<Arc<dyn FindingsApi>> {
            Ok(self.1.clone())
        }
        async fn autoscaling(
            &self,
            _a: &str,
            _r: &str,
            _e: &str,
        ) -> anyhow::Result<Arc<dyn AutoScalingApi>> {
            Ok(self.2.clone())
        }
        async fn target_groups(
            &self,
            _a: &str,
            _r: &str,
            _e: &str,
        ) -> anyhow::Result<Arc<dyn TargetGroupsApi>> {
            Ok(Arc::new(NoEvidence))
        }
        async fn organization(&self) -> anyhow::Result<Arc<dyn OrganizationApi>> {
            anyhow::bail!("no Organizations in this test")
        }
    }

    fn instance() -> InstanceFacts {
        let tags: TagMap = [("env".to_string(), "prod".to_string())].into();
        InstanceFacts {
            id: "i-0a1b2c3d4e5f67890".into(),
            vpc_id: Some("vpc-1".into()),
            state: "running".into(),
            tags,
            interfaces: vec![InterfaceFacts {
                id: "eni-1".into(),
                groups: vec!["sg-web".into()],
                tags: TagMap::new(),
            }],
            volumes: vec!["vol-1".into(), "vol-2".into()],
            termination_protection: false,
        }
    }

    fn finding() -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../events/guardduty-ec2-backdoor.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    struct Rig {
        responder: Responder<FakeApis>,
        ec2: Arc<FakeEc2>,
        guardduty: Arc<FakeGuardDuty>,
        inbox: Arc<MemoryPublisher>,
        store: Arc<MemoryStore>,
    }

    /// GuardDuty knows the event's finding (as the payload states it).
    fn known(rig: &Rig, event: &Value) {
        rig.guardduty
            .findings
            .lock()
            .unwrap()
            .push(event["detail"].clone());
    }

    fn rig(policy: Policy) -> Rig {
        rig_with(policy, Arc::new(NoEvidence))
    }

    fn rig_with(policy: Policy, autoscaling: Arc<dyn AutoScalingApi>) -> Rig {
        let kit = testing::steward(FUNCTION_NAME, policy, RunMode::Live);
        let ec2 = Arc::new(FakeEc2::default());
        ec2.state.lock().unwrap().instance = Some(instance());
        let guardduty = Arc::new(FakeGuardDuty::default());
        let apis = FakeApis(ec2.clone(), guardduty.clone(), autoscaling);
        let responder = Responder::new(kit.steward, apis);
        Rig {
            responder,
            ec2,
            guardduty,
            inbox: kit.publisher,
            store: kit.store,
        }
    }

    #[tokio::test]
    async fn a_failed_standby_is_reported_and_retried_but_the_instance_is_still_isolated() {
        let rig = rig_with(Policy::default(), Arc::new(StandbyFails));
        known(&rig, &finding());
        let err = rig
            .responder
            .invoke(finding(), "r-1")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ValidationError") && err.contains("the retry will try again"),
            "{err}"
        );
        let calls = rig.ec2.state.lock().unwrap().calls.clone();
        assert!(
            calls.contains(&"set-groups eni-1 sg-q".to_string()),
            "isolated anyway: {calls:?}"
        );
        let published = rig.inbox.sent.lock().unwrap();
        let text = &published[0].text;
        assert!(
            text.contains(
                "- done: set scale-in protection on i-0a1b2c3d4e5f67890 in Auto Scaling group web"
            ),
            "{text}"
        );
        assert!(
            text.contains("- FAILED: put i-0a1b2c3d4e5f67890 in Standby in Auto Scaling group web"),
            "{text}"
        );
        assert!(
            !text.contains("- done: put"),
            "never claims the Standby: {text}"
        );
        assert!(
            !rig.store.keys().iter().any(|k| k.starts_with("action#")),
            "the retry does the rest"
        );
    }

    #[tokio::test]
    async fn unreachable_account_is_still_reported_then_retried() {
        let rig = rig(Policy::default());
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../events/guardduty-iam-user-tor.json");
        let tor: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        known(&rig, &tor);
        let err = rig
            .responder
            .invoke(tor, "r-1")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no IAM in this test") && err.contains("the retry will try again"),
            "{err}"
        );
        let published = rig.inbox.sent.lock().unwrap();
        assert_eq!(
            published.len(),
            1,
            "the team hears about the finding even though nothing could be done"
        );
        assert_eq!(
            published[0].chat["metadata"]["eventType"],
            "steward.guardduty.containment-failed"
        );
        assert!(published[0]
            .text
            .contains("containment could not run: no IAM in this test"));
    }

    #[tokio::test]
    async fn blast_radius_limit_changes_nothing_and_alerts_high() {
        let mut policy = Policy::default();
        policy.limits.max_changes_per_run = 1;
        let rig = rig(policy);
        known(&rig, &finding());
        let out = rig.responder.invoke(finding(), "r-1").await.unwrap();
        assert!(
            out["blocked"]
                .as_str()
                .unwrap()
                .contains("max_changes_per_run = 1"),
            "{out}"
        );
        assert!(rig.ec2.state.lock().unwrap().calls.is_empty());
        let published = rig.inbox.sent.lock().unwrap();
        assert_eq!(published[0].attributes["severity"], "HIGH");
        assert_eq!(
            published[0].chat["metadata"]["eventType"],
            "steward.guardduty.blast-radius"
        );
    }

    #[tokio::test]
    async fn failed_step_is_reported_and_the_retry_completes_without_repeating_work() {
        let rig = rig(Policy::default());
        known(&rig, &finding());
        let Rig {
            responder,
            ec2,
            inbox,
            store,
            ..
        } = rig;
        *ec2.fail_snapshot_of.lock().unwrap() = Some("vol-2".into());

        let err = responder
            .invoke(finding(), "r-1")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SnapshotLimitExceeded") && err.contains("the retry will try again"),
            "{err}"
        );
        {
            let published = inbox.sent.lock().unwrap();
            assert_eq!(published.len(), 1);
            assert_eq!(published[0].attributes["severity"], "HIGH");
            assert_eq!(
                published[0].chat["metadata"]["eventType"],
                "steward.guardduty.containment-failed"
            );
            assert!(
                published[0].text.contains("- FAILED: snapshot vol-2"),
                "{}",
                published[0].text
            );
            assert!(published[0].text.contains("- done: snapshotted vol-1"));
        }
        let records = store.keys();
        assert!(
            !records.iter().any(|k| k.starts_with("action#")),
            "a failed attempt records nothing: {records:?}"
        );
        assert!(!ec2
            .state
            .lock()
            .unwrap()
            .instance
            .as_ref()
            .unwrap()
            .tags
            .contains_key("steward:quarantined"));

        // The retry: only the missing steps run.
        *ec2.fail_snapshot_of.lock().unwrap() = None;
        ec2.state.lock().unwrap().calls.clear();
        let out = responder.invoke(finding(), "r-2").await.unwrap();
        assert_eq!(out["containment"], "contained", "{out}");
        let calls = ec2.state.lock().unwrap().calls.clone();
        assert_eq!(
            calls,
            vec![
                "snapshot vol-2".to_string(),
                "tag i-0a1b2c3d4e5f67890 steward:quarantined".to_string()
            ]
        );
        assert_eq!(
            inbox.sent.lock().unwrap().len(),
            2,
            "the completed containment is notified too"
        );
        assert_eq!(
            inbox.sent.lock().unwrap()[1].chat["metadata"]["eventType"],
            "steward.guardduty.contained"
        );

        // A third delivery: nothing to do, nothing sent.
        ec2.state.lock().unwrap().calls.clear();
        let out = responder.invoke(finding(), "r-3").await.unwrap();
        assert_eq!(out["containment"], "already-contained");
        assert_eq!(out["notification"], "duplicate");
        assert!(ec2.state.lock().unwrap().calls.is_empty());
        assert_eq!(ec2.state.lock().unwrap().snapshots.len(), 2);
    }

    #[tokio::test]
    async fn a_finding_guardduty_does_not_know_contains_nothing() {
        let rig = rig(Policy::default());
        let out = rig.responder.invoke(finding(), "r-1").await.unwrap();
        assert_eq!(out["containment"], "not-contained", "{out}");
        assert_eq!(out["verified"], false);
        assert!(
            out["held"].as_str().unwrap().contains("UNVERIFIED"),
            "{out}"
        );
        assert!(rig.ec2.state.lock().unwrap().calls.is_empty());
        let published = rig.inbox.sent.lock().unwrap();
        assert_eq!(published.len(), 1);
        assert_eq!(
            published[0].chat["metadata"]["eventType"],
            "steward.guardduty.unverified"
        );
        assert!(
            published[0].subject.contains("UNVERIFIED"),
            "{}",
            published[0].subject
        );
    }

    #[tokio::test]
    async fn the_swap_goes_through_the_allow_all_group_first() {
        let rig = rig(Policy::default());
        known(&rig, &finding());
        let out = rig.responder.invoke(finding(), "r-1").await.unwrap();
        assert_eq!(out["containment"], "contained", "{out}");
        let calls = rig.ec2.state.lock().unwrap().calls.clone();
        let swaps: Vec<&String> = calls
            .iter()
            .filter(|c| c.starts_with("set-groups"))
            .collect();
        assert_eq!(
            swaps,
            vec!["set-groups eni-1 sg-open", "set-groups eni-1 sg-q"],
            "{calls:?}"
        );
        let open = calls
            .iter()
            .position(|c| c.starts_with("create-open-group"))
            .unwrap();
        let first_swap = calls
            .iter()
            .position(|c| c.starts_with("set-groups"))
            .unwrap();
        assert!(open < first_swap, "{calls:?}");
    }

    #[tokio::test]
    async fn the_hourly_cap_stops_containing_and_alerts_critical_once() {
        let mut policy = Policy::default();
        policy.containment.max_per_hour = 1;
        let rig = rig(policy);
        let first = finding();
        known(&rig, &first);
        let out = rig.responder.invoke(first, "r-1").await.unwrap();
        assert_eq!(out["containment"], "contained", "{out}");
        for n in 0..2 {
            // Another instance's finding in the same hour.
            rig.ec2.state.lock().unwrap().instance = Some(instance());
            let mut other = finding();
            other["id"] = json!(format!("event-{n}"));
            other["detail"]["id"] = json!(format!("finding-{n}"));
            known(&rig, &other);
            rig.ec2.state.lock().unwrap().calls.clear();
            let out = rig.responder.invoke(other, "r-2").await.unwrap();
            assert_eq!(out["containment"], "not-contained", "{out}");
            assert!(
                out["held"].as_str().unwrap().contains("max_per_hour"),
                "{out}"
            );
            assert!(rig.ec2.state.lock().unwrap().calls.is_empty());
        }
        let published = rig.inbox.sent.lock().unwrap();
        let critical: Vec<_> = published
            .iter()
            .filter(|m| m.chat["metadata"]["eventType"] == "steward.guardduty.containment-cap")
            .collect();
        assert_eq!(critical.len(), 1, "one CRITICAL alert an hour");
        assert_eq!(critical[0].attributes["severity"], "CRITICAL");
    }
}
