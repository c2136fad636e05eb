//! In-process tests of the handler: the real parse, plan and report, with
//! in-memory adapters and `steward_shared::testing` (publisher and store).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use steward_shared::entry::invoke;
use steward_shared::safety::RunMode;
use steward_shared::testing::{self, tags, TestSteward};
use steward_shared::Policy;

use crate::apis::Apis;
use crate::config_rule::ConfigApi;
use crate::handler::TagEnforcer;
use crate::model::{ConfigItem, Evaluation, ResourceRef, ResourceState, ResourceType};
use crate::resources::{ec2_instance, Resources, TaggedResource};
use crate::FUNCTION_NAME;

/// EC2 instances in memory.
#[derive(Default)]
struct MemoryInstances {
    items: Mutex<Vec<ResourceState>>,
}

#[async_trait::async_trait]
impl TaggedResource for MemoryInstances {
    fn kind(&self) -> &'static ResourceType {
        &ec2_instance::TYPE
    }

    async fn read(&self, ids: &[String]) -> anyhow::Result<Vec<ResourceState>> {
        let items = self.items.lock().unwrap();
        Ok(items
            .iter()
            .filter(|s| ids.contains(&s.r.id))
            .cloned()
            .collect())
    }

    async fn list(&self) -> anyhow::Result<Vec<ResourceState>> {
        Ok(self.items.lock().unwrap().clone())
    }

    async fn add_tags(
        &self,
        resource: &ResourceState,
        add: &BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        let mut items = self.items.lock().unwrap();
        if let Some(s) = items.iter_mut().find(|s| s.r == resource.r) {
            s.tags.extend(add.clone());
        }
        Ok(())
    }
}

/// AWS Config in memory: the evaluations put, and the tags recorded before a change.
#[derive(Default)]
struct MemoryConfig {
    put: Mutex<Vec<Evaluation>>,
    history: Mutex<HashMap<String, HashMap<String, String>>>,
}

#[async_trait::async_trait]
impl ConfigApi for MemoryConfig {
    async fn put_evaluations(&self, _token: &str, e: &[Evaluation]) -> anyhow::Result<usize> {
        self.put.lock().unwrap().extend(e.iter().cloned());
        Ok(0)
    }

    async fn reported_resources(&self, _rule: &str) -> anyhow::Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }

    async fn latest_item(
        &self,
        _t: &str,
        _id: &str,
        _at: DateTime<Utc>,
    ) -> anyhow::Result<Option<ConfigItem>> {
        Ok(None)
    }

    async fn tags_before(
        &self,
        _t: &str,
        id: &str,
        _before: DateTime<Utc>,
    ) -> anyhow::Result<Option<HashMap<String, String>>> {
        Ok(self.history.lock().unwrap().get(id).cloned())
    }
}

#[derive(Clone, Default)]
struct MemoryApis {
    instances: Arc<MemoryInstances>,
    config: Arc<MemoryConfig>,
}

#[async_trait::async_trait]
impl Apis for MemoryApis {
    async fn resources(&self, _a: &str, _r: &str, _e: &str) -> anyhow::Result<Resources> {
        let instances: Arc<dyn TaggedResource> = self.instances.clone();
        Ok(Resources::new(vec![instances]))
    }

    async fn config(&self, _a: &str, _r: &str, _e: &str) -> anyhow::Result<Arc<dyn ConfigApi>> {
        let config: Arc<dyn ConfigApi> = self.config.clone();
        Ok(config)
    }

    async fn own_role(&self) -> Option<String> {
        Some("steward-TagEnforcerFunctionRole-AB12".into())
    }
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn instance(id: &str, pairs: &[(&str, &str)]) -> ResourceState {
    ResourceState {
        r: ResourceRef {
            kind: ec2_instance::TYPE.kind,
            id: id.into(),
        },
        config_type: ec2_instance::TYPE.config_type,
        arn: format!("arn:aws:ec2:us-east-1:123456789012:instance/{id}"),
        config_id: id.into(),
        tags: tags(pairs),
    }
}

fn setup(
    mode: RunMode,
    instances: Vec<ResourceState>,
) -> (TestSteward, MemoryApis, TagEnforcer<MemoryApis>) {
    let mut policy = Policy::default();
    policy
        .tagging
        .account_environments
        .insert("123456789012".into(), "dev".into());
    let t = testing::steward(FUNCTION_NAME, policy, mode);
    let apis = MemoryApis::default();
    *apis.instances.items.lock().unwrap() = instances;
    let handler = TagEnforcer::new(t.steward.clone(), apis.clone());
    (t, apis, handler)
}

#[tokio::test]
async fn a_create_call_tags_once_and_notifies_once() {
    let (t, apis, handler) = setup(RunMode::Live, vec![instance("i-1", &[("project", "web")])]);
    let mut e = fixture("cloudtrail-run-instances.json");
    e["detail"]["responseElements"]["instancesSet"]["items"] = json!([{"instanceId": "i-1"}]);
    let out = invoke(&handler, FUNCTION_NAME, e.clone(), "r-1")
        .await
        .unwrap();
    assert_eq!(out["tagged"].as_array().unwrap().len(), 1, "{out}");
    let tags = apis.instances.items.lock().unwrap()[0].tags.clone();
    assert_eq!(tags["steward:created-by"], "alice");
    assert_eq!(tags["env"], "dev");
    assert_eq!(t.publisher.count(), 1);
    assert!(t.publisher.subjects()[0].contains("LOW tagging: 1 new resource created by alice"));
    let again = invoke(&handler, FUNCTION_NAME, e, "r-2").await.unwrap();
    assert_eq!(again["notification"], "duplicate");
    assert_eq!(t.publisher.count(), 1);
}

#[tokio::test]
async fn the_config_path_reports_nothing_in_dry_run() {
    let (t, apis, handler) = setup(RunMode::DryRun, Vec::new());
    let out = invoke(
        &handler,
        FUNCTION_NAME,
        fixture("config-change-ec2-instance.json"),
        "r-1",
    )
    .await
    .unwrap();
    assert_eq!(out["reported"], false, "{out}");
    assert!(
        apis.config.put.lock().unwrap().is_empty(),
        "no PutEvaluations"
    );
    assert_eq!(t.publisher.count(), 1);
    assert!(t.publisher.subjects()[0].contains("DRY RUN"));
    assert!(t.store.keys().is_empty(), "no idempotency record");
}

#[tokio::test]
async fn governance_tag_changes_are_reported_once_unless_steward_made_them() {
    let (t, apis, handler) = setup(
        RunMode::Live,
        vec![instance("i-0123456789abcdef0", &[("env", "dev")])],
    );
    apis.config
        .history
        .lock()
        .unwrap()
        .insert("i-0123456789abcdef0".into(), tags(&[("env", "prod")]));
    let e = fixture("cloudtrail-tag-ec2-create-tags.json");
    let out = invoke(&handler, FUNCTION_NAME, e.clone(), "r-1")
        .await
        .unwrap();
    assert_eq!(out["severity"], "HIGH", "{out}");
    assert_eq!(t.publisher.count(), 1);
    let subject = &t.publisher.subjects()[0];
    assert!(
        subject.contains("HIGH tagging: alice set env=dev on i-0123456789abcdef0 (was prod)"),
        "{subject}"
    );
    invoke(&handler, FUNCTION_NAME, e.clone(), "r-2")
        .await
        .unwrap();
    assert_eq!(t.publisher.count(), 1, "a repeat is silent");

    for (role, session) in [
        ("steward-member", "steward-tag-enforcer-abc"),
        ("steward-TagEnforcerFunctionRole-AB12", "tag-enforcer"),
    ] {
        let mut own = e.clone();
        own["id"] = json!(format!("own-{role}"));
        own["detail"]["userIdentity"] = json!({
            "type": "AssumedRole",
            "arn": format!("arn:aws:sts::123456789012:assumed-role/{role}/{session}"),
        });
        let out = invoke(&handler, FUNCTION_NAME, own, "r-3").await.unwrap();
        assert_eq!(out["skipped"], "steward's own tag write", "{out}");
    }
    assert_eq!(t.publisher.count(), 1);
}
