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
        self.resources.iter().filter_map(move |(id, r)| {
            (r.get("Type").and_then(Value::as_str) == Some(kind))
                .then(|| (id.as_str().unwrap_or("?"), r))
        })
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

/// A plain-data copy of `v` as JSON (tags dropped), for patterns.
pub fn to_json(v: &Value) -> serde_json::Value {
    serde_json::to_value(v).expect("plain data")
}
