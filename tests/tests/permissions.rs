//! The IAM actions each function's code declares (each adapter's
//! `PERMISSIONS`, gathered by the crate's `permissions()`, plus the kit's and
//! the trigger kinds' grants in `steward_shared::permissions`) against the
//! roles in the templates under `infra/`. Templates are found by content,
//! not by file name: every `*.yaml` there is read, every
//! `AWS::Serverless::Function` is matched to a function by its name, and
//! every other `AWS::IAM::Role` counts as a member-account role.
//!
//! It fails, naming the template and the action, when a function's role
//! lacks an action its code calls, when a function's role grants an action
//! nothing declares, or when a member role grants an action no function
//! declares. Resource scoping and conditions are not checked here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_norway::Value;
use steward_shared::permissions::{covers, KIT, LOGS, SQS_TRIGGER};
use steward_tests::workspace_root;

/// Each function and the actions its code declares.
fn declared() -> BTreeMap<&'static str, Vec<&'static str>> {
    steward_tests::functions::declared_permissions()
}

/// The SAM policy templates the templates may use, and the actions they grant.
fn sam_policy_template(name: &str) -> Option<&'static [&'static str]> {
    match name {
        "SQSSendMessagePolicy" => Some(&[
            "sqs:SendMessage*",
            "sqs:ChangeMessageVisibility*",
            "sqs:DeleteMessage*",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
        ]),
        "SQSPollerPolicy" => Some(SQS_TRIGGER),
        _ => None,
    }
}

struct Template {
    path: PathBuf,
    resources: serde_norway::Mapping,
}

fn templates() -> Vec<Template> {
    let dir = workspace_root().join("infra");
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("infra/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).expect("readable template");
        let doc: Value = serde_norway::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()));
        if let Some(resources) = doc.get("Resources").and_then(Value::as_mapping) {
            out.push(Template {
                path,
                resources: resources.clone(),
            });
        }
    }
    out
}

fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

fn strings(v: &Value) -> Vec<String> {
    match untag(v) {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// The actions an IAM policy document allows.
fn allowed_actions(document: &Value) -> Vec<String> {
    let statements = match document.get("Statement").map(untag) {
        Some(Value::Sequence(s)) => s.clone(),
        Some(single @ Value::Mapping(_)) => vec![single.clone()],
        _ => Vec::new(),
    };
    statements
        .iter()
        .filter(|s| s.get("Effect").and_then(Value::as_str) == Some("Allow"))
        .flat_map(|s| s.get("Action").map(strings).unwrap_or_default())
        .collect()
}

/// The resource a `!Ref X` names, when `v` is one.
fn reference(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str().map(str::to_string),
        Value::Mapping(m) if m.len() == 1 => {
            m.get("Ref").and_then(Value::as_str).map(str::to_string)
        }
        _ => None,
    }
}

/// The actions a list of SAM `Policies` grants.
fn granted_by_policies(template: &Template, policies: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let items = match untag(policies) {
        Value::Sequence(items) => items.clone(),
        other => vec![other.clone()],
    };
    for item in &items {
        if let Some(name) = reference(item) {
            let managed = template
                .resources
                .get(name.as_str())
                .and_then(|r| r.get("Properties"))
                .and_then(|p| p.get("PolicyDocument"));
            if let Some(document) = managed {
                out.extend(allowed_actions(document));
            }
            continue;
        }
        let item = untag(item);
        if item.get("Statement").is_some() {
            out.extend(allowed_actions(item));
        } else if let Some(map) = item.as_mapping() {
            for key in map.keys().filter_map(Value::as_str) {
                match sam_policy_template(key) {
                    Some(actions) => out.extend(actions.iter().map(|a| a.to_string())),
                    None => panic!(
                        "{}: SAM policy template {key} is not known to this test; add what it grants",
                        template.path.display()
                    ),
                }
            }
        }
    }
    out
}

/// The actions an `AWS::IAM::Role` grants through its inline policies.
fn granted_by_role(role: &Value) -> Vec<String> {
    let Some(policies) = role.get("Properties").and_then(|p| p.get("Policies")) else {
        return Vec::new();
    };
    match untag(policies) {
        Value::Sequence(items) => items
            .iter()
            .filter_map(|p| p.get("PolicyDocument"))
            .flat_map(allowed_actions)
            .collect(),
        _ => Vec::new(),
    }
}

fn function_name(properties: &Value) -> Option<String> {
    if let Some(name) = properties.get("FunctionName").and_then(Value::as_str) {
        return Some(name.to_string());
    }
    let code = properties.get("CodeUri").and_then(Value::as_str)?;
    code.split('/')
        .rev()
        .find(|part| !part.is_empty() && *part != "bootstrap.zip")
        .map(str::to_string)
}

fn has_sqs_trigger(properties: &Value) -> bool {
    properties
        .get("Events")
        .and_then(Value::as_mapping)
        .is_some_and(|events| {
            events
                .values()
                .any(|e| e.get("Type").and_then(Value::as_str) == Some("SQS"))
        })
}

struct Findings(Vec<String>);

impl Findings {
    fn assert_none(self) {
        assert!(
            self.0.is_empty(),
            "the templates and the code disagree on IAM permissions:\n  {}",
            self.0.join("\n  ")
        );
    }
}

/// Checks every template against the declarations; the list of disagreements.
fn check(declared: &BTreeMap<&'static str, Vec<&'static str>>, templates: &[Template]) -> Findings {
    let mut findings = Vec::new();
    let mut seen_functions = BTreeSet::new();
    let every_declared: Vec<&str> = declared.values().flatten().copied().collect();
    for template in templates {
        let file = template
            .path
            .strip_prefix(workspace_root())
            .unwrap_or(&template.path)
            .display()
            .to_string();
        for (logical_id, resource) in &template.resources {
            let logical_id = logical_id.as_str().unwrap_or("?");
            let kind = resource.get("Type").and_then(Value::as_str).unwrap_or("");
            let Some(properties) = resource.get("Properties") else {
                continue;
            };
            if kind == "AWS::Serverless::Function" {
                let Some(name) = function_name(properties) else {
                    findings.push(format!(
                        "{file}: {logical_id}: cannot tell which function this is"
                    ));
                    continue;
                };
                let Some(actions) = declared.get(name.as_str()) else {
                    findings.push(format!(
                        "{file}: {logical_id} deploys `{name}`, which no crate declares permissions for"
                    ));
                    continue;
                };
                seen_functions.insert(name.clone());
                let granted = properties
                    .get("Policies")
                    .map(|p| granted_by_policies(template, p))
                    .unwrap_or_default();
                let needed = actions.iter().chain(KIT.iter());
                for action in needed {
                    if !granted.iter().any(|g| covers(g, action)) {
                        findings.push(format!(
                            "{file}: {logical_id} ({name}) lacks {action}, which its code calls"
                        ));
                    }
                }
                let sqs = has_sqs_trigger(properties);
                for grant in &granted {
                    let known = actions
                        .iter()
                        .chain(KIT.iter())
                        .chain(LOGS.iter())
                        .any(|a| covers(grant, a))
                        || (sqs && SQS_TRIGGER.iter().any(|a| covers(grant, a)))
                        || sam_policy_template("SQSSendMessagePolicy").is_some_and(|t| {
                            t.contains(&grant.as_str()) && actions.contains(&"sqs:SendMessage")
                        });
                    if !known {
                        findings.push(format!(
                            "{file}: {logical_id} ({name}) grants {grant}, which nothing in {name} declares"
                        ));
                    }
                }
            } else if kind == "AWS::IAM::Role" {
                for grant in granted_by_role(resource) {
                    if !every_declared.iter().any(|a| covers(&grant, a)) {
                        findings.push(format!(
                            "{file}: role {logical_id} grants {grant}, which no function declares"
                        ));
                    }
                }
            }
        }
    }
    for name in declared.keys() {
        if !seen_functions.contains(*name) {
            findings.push(format!("no template deploys the function `{name}`"));
        }
    }
    Findings(findings)
}

#[test]
fn every_declared_action_is_granted_and_every_grant_is_declared() {
    check(&declared(), &templates()).assert_none();
}

#[test]
fn a_removed_permission_is_caught_and_named() {
    let mut templates = templates();
    let declared = declared();
    // Take the first declared action of the first function out of every template.
    let (name, actions) = declared
        .iter()
        .find(|(_, a)| !a.is_empty())
        .expect("some function declares actions");
    let victim = actions[0];
    for template in &mut templates {
        let text = serde_norway::to_string(&template.resources).unwrap();
        let stripped = text
            .lines()
            .filter(|l| {
                l.trim() != format!("- {victim}") && !l.trim().ends_with(&format!(": {victim}"))
            })
            .collect::<Vec<_>>()
            .join("\n");
        template.resources = serde_norway::from_str(&stripped).unwrap();
    }
    let findings = check(&declared, &templates).0;
    assert!(
        findings
            .iter()
            .any(|f| f.contains(victim) && f.contains(name)),
        "removing {victim} went unnoticed: {findings:?}"
    );
}

#[test]
fn a_grant_nobody_declares_is_caught() {
    let mut declared = declared();
    let (name, actions) = declared
        .iter_mut()
        .find(|(_, a)| !a.is_empty())
        .expect("some function declares actions");
    let name = name.to_string();
    let dropped = actions.remove(0);
    let findings = check(&declared, &templates()).0;
    assert!(
        findings
            .iter()
            .any(|f| f.contains(dropped) && f.contains("declares")),
        "an undeclared grant of {dropped} in {name}'s role went unnoticed: {findings:?}"
    );
}
