//! The CloudFormation templates in `infra/`, read as YAML with their
//! intrinsic-function tags (`!Ref`, `!GetAtt`, `!Sub`, `!If`) kept, for the
//! static tests of the templates (permissions, event patterns, deployment).

use std::path::PathBuf;

use serde_norway::{Mapping, Value};

use crate::workspace_root;

/// One template: its path under the workspace and its `Resources`.
#[derive(Clone)]
pub struct Template {
    pub file: String,
    pub resources: Mapping,
}

impl Template {
    /// The resource with this logical id.
    pub fn resource(&self, id: &str) -> Option<&Value> {
        self.resources.get(id)
    }

    /// The resources of one type, with their logical ids.
    pub fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> {
        self.resources
            .iter()
            .filter(move |(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
            .map(|(id, r)| (id.as_str().unwrap_or("?"), r))
    }
}

/// Every `infra/*.yaml` that has resources, in file-name order.
pub fn templates() -> Vec<Template> {
    let dir = workspace_root().join("infra");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("infra/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable template");
            let doc: Value = serde_norway::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()));
            let resources = doc.get("Resources")?.as_mapping()?.clone();
            Some(Template {
                file: format!("infra/{}", path.file_name()?.to_string_lossy()),
                resources,
            })
        })
        .collect()
}

/// The hub template (`infra/template.yaml`).
pub fn hub() -> Template {
    templates()
        .into_iter()
        .find(|t| t.file == "infra/template.yaml")
        .expect("infra/template.yaml")
}

/// The templates with `edit` applied to each one's resources as YAML text
/// (how the tests break a template on purpose).
pub fn edited(templates: &[Template], edit: impl Fn(&str) -> String) -> Vec<Template> {
    templates
        .iter()
        .map(|t| {
            let text = serde_norway::to_string(&t.resources).expect("resources serialize");
            Template {
                file: t.file.clone(),
                resources: serde_norway::from_str(&edit(&text)).expect("edited YAML parses"),
            }
        })
        .collect()
}

/// The value under an intrinsic-function tag (or the value itself).
pub fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

/// The strings of a string or a list of strings.
pub fn strings(v: &Value) -> Vec<String> {
    match untag(v) {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// The resource a `!Ref X` or `!GetAtt X.Attr` names.
pub fn referenced(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str().map(str::to_string),
        Value::Tagged(t) if t.tag == "GetAtt" => match untag(&t.value) {
            Value::String(s) => s.split('.').next().map(str::to_string),
            Value::Sequence(parts) => parts.first().and_then(Value::as_str).map(str::to_string),
            _ => None,
        },
        _ => None,
    }
}

/// The statements of an IAM policy document.
pub fn statements(document: &Value) -> Vec<Value> {
    match document.get("Statement").map(untag) {
        Some(Value::Sequence(s)) => s.clone(),
        Some(single @ Value::Mapping(_)) => vec![single.clone()],
        _ => Vec::new(),
    }
}

/// The actions an IAM policy document allows (conditions and resources aside).
pub fn allowed_actions(document: &Value) -> Vec<String> {
    statements(document)
        .iter()
        .filter(|s| s.get("Effect").and_then(Value::as_str) == Some("Allow"))
        .flat_map(|s| s.get("Action").map(strings).unwrap_or_default())
        .collect()
}

/// What a role carries: its inline policy documents and those of the
/// template's managed policies it attaches, and the ARNs of the AWS-managed
/// policies it attaches.
pub struct RolePolicies {
    pub documents: Vec<Value>,
    pub aws_managed: Vec<String>,
}

/// The policies of an `AWS::IAM::Role` of `template`.
pub fn role_policies(template: &Template, role: &Value) -> RolePolicies {
    let properties = role.get("Properties");
    let mut documents: Vec<Value> = match properties.and_then(|p| p.get("Policies")).map(untag) {
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(|p| p.get("PolicyDocument").cloned())
            .collect(),
        _ => Vec::new(),
    };
    let mut aws_managed = Vec::new();
    if let Some(arns) = properties.and_then(|p| p.get("ManagedPolicyArns")) {
        let (mut refs, mut texts) = (Vec::new(), Vec::new());
        leaves(arns, &mut refs, &mut texts);
        for name in refs {
            if let Some(document) = template
                .resource(&name)
                .and_then(|r| r.get("Properties"))
                .and_then(|p| p.get("PolicyDocument"))
            {
                documents.push(document.clone());
            }
        }
        aws_managed.extend(texts.into_iter().filter(|t| t.contains(":policy/")));
    }
    RolePolicies {
        documents,
        aws_managed,
    }
}

/// Every `!Ref`/`!GetAtt` target and every string under `v` (through `!If`, `!Sub`).
fn leaves(v: &Value, refs: &mut Vec<String>, texts: &mut Vec<String>) {
    if let Some(target) = referenced(v) {
        refs.push(target);
        return;
    }
    match untag(v) {
        Value::String(s) => texts.push(s.clone()),
        Value::Sequence(items) => items.iter().for_each(|i| leaves(i, refs, texts)),
        Value::Mapping(m) => m.values().for_each(|i| leaves(i, refs, texts)),
        _ => {}
    }
}

/// The actions the hub role of `function` allows, from the hub template
/// (resources and conditions aside): what the least-privilege test gives
/// the function's IAM user.
pub fn hub_role_actions(function: &str) -> Vec<String> {
    let hub = hub();
    let role = hub
        .of_type("AWS::Serverless::Function")
        .find(|(_, f)| f["Properties"]["FunctionName"].as_str() == Some(function))
        .and_then(|(_, f)| f["Properties"].get("Role").and_then(referenced))
        .unwrap_or_else(|| panic!("{function} has a Role in infra/template.yaml"));
    let role = hub
        .resource(&role)
        .expect("the function's role is in the template");
    let mut actions: Vec<String> = role_policies(&hub, role)
        .documents
        .iter()
        .flat_map(allowed_actions)
        .collect();
    actions.sort();
    actions.dedup();
    actions
}

/// A plain-data copy of `v` as JSON (tags dropped), for patterns.
pub fn to_json(v: &Value) -> serde_json::Value {
    serde_json::to_value(v).expect("plain data")
}
