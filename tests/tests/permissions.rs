//! Least privilege, read from the templates: the IAM actions each function's
//! code declares (each adapter's `PERMISSIONS`, gathered by the crate's
//! `permissions()`, plus the kit's and the trigger kinds' grants in
//! `steward_shared::permissions`) against every role in `infra/*.yaml`.
//!
//! Every `AWS::IAM::Role` must say what it is in its `Metadata.steward`:
//! - `function: F`, the hub role of function F (the function names it as
//!   its `Role`): it grants everything F's code calls, and nothing else;
//! - `member-of: F`, F's role in a member (or the management) account: it
//!   grants only what F declares, F's member roles together grant all F does
//!   outside the hub, and it trusts exactly F's hub role by ARN, within the
//!   organization;
//! - `infrastructure: event-forwarding`: EventBridge's role that forwards
//!   events to the hub bus (`events:PutEvents` only).
//!
//! No role or managed policy allows an action with a wildcard. The test
//! fails naming the template, the role and the action. Resource scoping and
//! conditions are checked by reading, by cfn-lint and checkov in `make lint`,
//! not here.

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::Value;
use steward_shared::permissions::{covers, KIT, LOGS, SQS_TRIGGER};
use steward_tests::templates::{
    allowed_actions, edited, referenced, role_policies, statements, strings, templates, Template,
};

/// Each function and the actions its code declares.
fn declared() -> BTreeMap<&'static str, Vec<&'static str>> {
    steward_tests::functions::declared_permissions()
}

/// What Lambda's AWS-managed VPC policy grants (the rotator, in a VPC).
const VPC_ACCESS: &[&str] = &[
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
];

/// The AWS-managed policies a role may attach, and what they grant.
fn aws_managed_policy(arn: &str) -> Option<&'static [&'static str]> {
    arn.ends_with("policy/service-role/AWSLambdaVPCAccessExecutionRole")
        .then_some(VPC_ACCESS)
}

/// Actions a function calls only with its own hub role, never in a member
/// account: the kit's services, the queues, Organizations, and the
/// GuardDuty administrator's findings list.
fn hub_only(action: &str) -> bool {
    let service = action.split(':').next().unwrap_or("");
    matches!(
        service,
        "sns" | "dynamodb" | "ssm" | "sts" | "sqs" | "organizations"
    ) || action == "guardduty:ListFindings"
}

/// What an event-forwarding role may do.
const FORWARDING: &[&str] = &["events:PutEvents"];

fn steward_metadata(resource: &Value, key: &str) -> Option<String> {
    resource
        .get("Metadata")?
        .get("steward")?
        .get(key)?
        .as_str()
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

/// The AWS principals a role trusts, and whether trust requires the organization.
fn trust(role: &Value) -> (Vec<String>, bool) {
    let Some(document) = role
        .get("Properties")
        .and_then(|p| p.get("AssumeRolePolicyDocument"))
    else {
        return (Vec::new(), false);
    };
    let mut principals = Vec::new();
    let mut organization = true;
    for statement in statements(document) {
        let Some(aws) = statement.get("Principal").and_then(|p| p.get("AWS")) else {
            continue;
        };
        principals.extend(strings(aws));
        let condition = statement
            .get("Condition")
            .map(|c| serde_norway::to_string(c).unwrap_or_default())
            .unwrap_or_default();
        organization &= condition.contains("aws:PrincipalOrgID");
    }
    (principals, organization)
}

/// The function that runs with a hub role, and whether SQS triggers it.
struct HubRole {
    function: String,
    sqs_trigger: bool,
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

    fn mention(&self, words: &[&str]) -> bool {
        self.0.iter().any(|f| words.iter().all(|w| f.contains(w)))
    }
}

/// Checks every template against the declarations; the list of disagreements.
fn check(declared: &BTreeMap<&'static str, Vec<&'static str>>, templates: &[Template]) -> Findings {
    let mut findings = Vec::new();
    let mut hub_roles: BTreeMap<String, HubRole> = BTreeMap::new();
    let mut member_grants: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut deployed = BTreeSet::new();
    for template in templates {
        let file = &template.file;
        for (id, resource) in &template.resources {
            let id = id.as_str().unwrap_or("?");
            let kind = resource.get("Type").and_then(Value::as_str).unwrap_or("");
            if kind == "AWS::IAM::ManagedPolicy" {
                let document = resource
                    .get("Properties")
                    .and_then(|p| p.get("PolicyDocument"));
                for action in document.map(allowed_actions).unwrap_or_default() {
                    if action.contains('*') {
                        findings.push(format!("{file}: {id} allows the wildcard action {action}"));
                    }
                }
            }
            if kind == "AWS::Serverless::Function" {
                let properties = resource.get("Properties").cloned().unwrap_or_default();
                let Some(name) = properties.get("FunctionName").and_then(Value::as_str) else {
                    findings.push(format!("{file}: {id} has no FunctionName"));
                    continue;
                };
                deployed.insert(name.to_string());
                if !declared.contains_key(name) {
                    findings.push(format!(
                        "{file}: {id} deploys `{name}`, which no crate declares permissions for"
                    ));
                }
                let Some(role) = properties.get("Role").and_then(referenced) else {
                    findings.push(format!(
                        "{file}: {id} ({name}) has no Role of its own; member roles trust the hub role by name"
                    ));
                    continue;
                };
                hub_roles.insert(
                    role,
                    HubRole {
                        function: name.to_string(),
                        sqs_trigger: has_sqs_trigger(&properties),
                    },
                );
            }
        }
    }
    for template in templates {
        let file = &template.file;
        for (id, resource) in &template.resources {
            let id = id.as_str().unwrap_or("?");
            if resource.get("Type").and_then(Value::as_str) != Some("AWS::IAM::Role") {
                continue;
            }
            let policies = role_policies(template, resource);
            let aws_managed: Vec<&str> = policies
                .aws_managed
                .iter()
                .filter_map(|arn| aws_managed_policy(arn))
                .flatten()
                .copied()
                .collect();
            let granted: Vec<String> = policies
                .documents
                .iter()
                .flat_map(allowed_actions)
                .chain(aws_managed.iter().map(|a| a.to_string()))
                .collect();
            for action in granted.iter().filter(|a| a.contains('*')) {
                findings.push(format!(
                    "{file}: role {id} allows the wildcard action {action}"
                ));
            }
            let granted_any = |action: &str| granted.iter().any(|g| covers(g, action));
            if let Some(function) = steward_metadata(resource, "function") {
                let Some(user) = hub_roles.get(id) else {
                    findings.push(format!(
                        "{file}: role {id} says it is {function}'s hub role, but no function uses it"
                    ));
                    continue;
                };
                if user.function != function {
                    findings.push(format!(
                        "{file}: role {id} says it is {function}'s, but {} uses it",
                        user.function
                    ));
                }
                let Some(actions) = declared.get(function.as_str()) else {
                    continue;
                };
                for action in actions.iter().chain(KIT.iter()) {
                    if !granted_any(action) {
                        findings.push(format!(
                            "{file}: role {id} ({function}) lacks {action}, which its code calls"
                        ));
                    }
                }
                for grant in &granted {
                    let known = actions
                        .iter()
                        .chain(KIT)
                        .chain(LOGS)
                        .chain(aws_managed.iter())
                        .chain(if user.sqs_trigger { SQS_TRIGGER } else { &[] })
                        .any(|a| covers(grant, a));
                    if !known {
                        findings.push(format!(
                            "{file}: role {id} ({function}) grants {grant}, which nothing in {function} declares"
                        ));
                    }
                }
            } else if let Some(function) = steward_metadata(resource, "member-of") {
                let Some(actions) = declared.get(function.as_str()) else {
                    findings.push(format!(
                        "{file}: role {id} is a member role of `{function}`, which no crate declares"
                    ));
                    continue;
                };
                for grant in &granted {
                    if !actions.iter().any(|a| covers(grant, a)) {
                        findings.push(format!(
                            "{file}: role {id} ({function} in member accounts) grants {grant}, which {function} does not declare"
                        ));
                    }
                }
                member_grants
                    .entry(function.clone())
                    .or_default()
                    .extend(granted.iter().cloned());
                let (principals, organization) = trust(resource);
                let expected = format!(":role/${{NamePrefix}}-hub-{function}");
                if principals.len() != 1
                    || principals
                        .iter()
                        .any(|p| p.contains('*') || !p.ends_with(&expected))
                {
                    findings.push(format!(
                        "{file}: role {id} must trust exactly {function}'s hub role by ARN (…{expected}), not {principals:?}"
                    ));
                }
                if !organization {
                    findings.push(format!(
                        "{file}: role {id} trusts without an aws:PrincipalOrgID condition"
                    ));
                }
            } else if steward_metadata(resource, "infrastructure").is_some() {
                for grant in &granted {
                    if !FORWARDING.iter().any(|a| covers(grant, a)) {
                        findings.push(format!(
                            "{file}: infrastructure role {id} grants {grant}; it may only forward events"
                        ));
                    }
                }
            } else {
                findings.push(format!(
                    "{file}: role {id} has no Metadata.steward (function, member-of or infrastructure)"
                ));
            }
        }
    }
    for (name, actions) in declared {
        if !deployed.contains(*name) {
            findings.push(format!("no template deploys the function `{name}`"));
        }
        let grants = member_grants.get(*name).cloned().unwrap_or_default();
        for action in actions.iter().filter(|a| !hub_only(a)) {
            if !grants.iter().any(|g| covers(g, action)) {
                findings.push(format!(
                    "no member role of `{name}` grants {action}, which {name} calls in member accounts"
                ));
            }
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
    let declared = declared();
    // Take the first declared action of the first function out of every template.
    let (name, actions) = declared
        .iter()
        .find(|(_, a)| !a.is_empty())
        .expect("some function declares actions");
    let victim = actions[0];
    let templates = edited(&templates(), |text| {
        text.lines()
            .filter(|l| {
                l.trim() != format!("- {victim}") && !l.trim().ends_with(&format!(": {victim}"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    let findings = check(&declared, &templates);
    assert!(
        findings.mention(&[victim, name, "lacks"]),
        "removing {victim} went unnoticed: {:?}",
        findings.0
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
    let findings = check(&declared, &templates());
    assert!(
        findings.mention(&[dropped, "declare"]),
        "an undeclared grant of {dropped} in {name}'s roles went unnoticed: {:?}",
        findings.0
    );
}

#[test]
fn a_wildcard_action_is_caught() {
    let templates = edited(&templates(), |text| {
        text.replace("- ec2:DescribeInstances\n", "- ec2:Describe*\n")
    });
    let findings = check(&declared(), &templates);
    assert!(
        findings.mention(&["wildcard", "ec2:Describe*"]),
        "ec2:Describe* went unnoticed: {:?}",
        findings.0
    );
}

#[test]
fn a_member_role_trusting_more_than_its_hub_role_is_caught() {
    let templates = edited(&templates(), |text| {
        text.replace("role/${NamePrefix}-hub-tag-enforcer", "role/*")
    });
    let findings = check(&declared(), &templates);
    assert!(
        findings.mention(&["must trust exactly tag-enforcer's hub role"]),
        "a wildcard trust went unnoticed: {:?}",
        findings.0
    );
}
