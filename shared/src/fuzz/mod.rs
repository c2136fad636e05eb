//! Property-test inputs for parsers (feature `testing`): arbitrary JSON whose
//! object keys and strings are drawn mostly from what real events contain,
//! and real event fixtures with a few parts replaced, removed or retyped.
//! Every parser of every function is run over these and must return a value
//! or a `BadEvent`, never panic. `PROPTEST_CASES` sets the number of cases
//! (`make test` runs the default 256 per property, `make fuzz` many more).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value};

/// The repository's `events/` directory of real-shaped fixtures.
pub fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// Every `*.json` fixture of `dir`, parsed, sorted by file name.
pub fn fixtures(dir: &Path) -> Vec<Value> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("fixtures in {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p)
                .unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()));
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("fixture {} is not JSON: {e}", p.display()))
        })
        .collect()
}

/// The object keys and string values found anywhere in `values` (string
/// values that hold JSON, like an SQS body, are searched too).
pub fn vocabulary(values: &[Value]) -> (Vec<String>, Vec<String>) {
    fn walk(v: &Value, keys: &mut BTreeSet<String>, strings: &mut BTreeSet<String>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    keys.insert(k.clone());
                    walk(child, keys, strings);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, keys, strings)),
            Value::String(s) => {
                strings.insert(s.clone());
                if let Ok(inner) = serde_json::from_str::<Value>(s) {
                    if inner.is_object() || inner.is_array() {
                        walk(&inner, keys, strings);
                    }
                }
            }
            _ => {}
        }
    }
    let (mut keys, mut strings) = (BTreeSet::new(), BTreeSet::new());
    values.iter().for_each(|v| walk(v, &mut keys, &mut strings));
    keys.insert(String::new());
    (keys.into_iter().collect(), strings.into_iter().collect())
}

/// Strings a parser is likely to choke on: times at and past the edges of
/// the calendar, templates, ARNs with too few parts, odd Unicode, work-item
/// bodies with extreme times.
pub fn tricky_strings() -> Vec<String> {
    [
        "",
        " ",
        "0",
        "-1",
        "true",
        "null",
        "[]",
        "{}",
        "{\"account\":\"123456789012\",\"region\":\"us-east-1\",\"time\":\"+262143-12-31T23:59:59Z\"}",
        "{\"account\":\"123456789012\",\"region\":\"us-east-1\",\"time\":\"-262143-01-01T00:00:00Z\"}",
        "{\"account\":\"123456789012\",\"region\":\"us-east-1\",\"time\":\"0000-01-01T00:00:00Z\"}",
        "{\"account\":\"123456789012\",\"region\":\"us-east-1\",\"time\":\"9999-12-31T23:59:59Z\"}",
        "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-23:59",
        "0000-01-01T00:00:00+23:59",
        "+262143-12-31T23:59:59Z",
        "-262143-01-01T00:00:00Z",
        "2026-02-30T10:00:00Z",
        "2026-11-20T24:00:00Z",
        "2026-11-20T23:59:60Z",
        "<aws.scheduler.scheduled-time>",
        "arn:",
        "arn:aws",
        "arn:aws:secretsmanager",
        "arn:aws:secretsmanager:::::::::",
        "arn:aws:ec2:us-east-1:123456789012:instance/",
        "arn:aws:iam::123456789012:role/",
        "i-",
        "x[",
        "x]",
        "[",
        "(",
        "\u{0}",
        "é",
        "😀😀😀",
        "ǅ\u{301}",
        "18446744073709551616",
        "-9223372036854775809",
        "1e309",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A string: mostly from `pool` (fixture strings and tricky ones), sometimes arbitrary.
pub fn string_from(pool: Vec<String>) -> BoxedStrategy<String> {
    let mut pool = pool;
    pool.extend(tricky_strings());
    prop_oneof![
        3 => prop::sample::select(pool),
        1 => "\\PC{0,24}",
        1 => ".{0,12}",
    ]
    .boxed()
}

/// A scalar JSON value, with numbers at the edges of every width.
fn scalar(strings: BoxedStrategy<String>) -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(vec![
            0i64,
            -1,
            1,
            i64::MAX,
            i64::MIN,
            i64::from(i32::MAX),
            i64::from(u32::MAX),
        ])
        .prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        strings.prop_map(Value::String),
    ]
    .boxed()
}

/// Arbitrary JSON (depth at most 4) whose object keys come mostly from `keys`.
pub fn arbitrary_json(keys: Vec<String>, strings: Vec<String>) -> BoxedStrategy<Value> {
    let key = prop_oneof![3 => prop::sample::select(keys), 1 => "\\PC{0,12}"].boxed();
    scalar(string_from(strings))
        .prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..6)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
            ]
        })
        .boxed()
}

/// One change to a fixture, at a path chosen among all of its paths.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Replace the value at the path with another value.
    Replace(Index, Value),
    /// Remove the member or element at the path.
    Remove(Index),
    /// Replace the value at the path with other JSON, serialized into a
    /// string (how an SQS body or a Config item carries JSON).
    Reencode(Index, Value),
}

/// A fixture from `fixtures` with one to four mutations applied.
pub fn mutated_fixture(fixtures: Vec<Value>) -> BoxedStrategy<Value> {
    let (keys, strings) = vocabulary(&fixtures);
    let value = arbitrary_json(keys, strings);
    let mutation = prop_oneof![
        3 => (any::<Index>(), value.clone()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        2 => any::<Index>().prop_map(Mutation::Remove),
        1 => (any::<Index>(), value).prop_map(|(i, v)| Mutation::Reencode(i, v)),
    ];
    (
        prop::sample::select(fixtures),
        prop::collection::vec(mutation, 1..5),
    )
        .prop_map(|(mut fixture, mutations)| {
            for m in mutations {
                apply(&mut fixture, m);
            }
            fixture
        })
        .boxed()
}

/// Inputs for an event parser: the fixtures of `events/` as they are and
/// mutated, and arbitrary JSON built from their vocabulary.
pub fn event_inputs() -> BoxedStrategy<Value> {
    let fixtures = fixtures(&events_dir());
    let (keys, strings) = vocabulary(&fixtures);
    prop_oneof![
        3 => mutated_fixture(fixtures.clone()),
        1 => prop::sample::select(fixtures),
        2 => arbitrary_json(keys, strings),
    ]
    .boxed()
}

/// One step of a path into a JSON value.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    At(usize),
}

fn paths(v: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                prefix.push(Step::Key(k.clone()));
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                prefix.push(Step::At(i));
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn child_mut<'a>(parent: &'a mut Value, step: &Step) -> Option<&'a mut Value> {
    match step {
        Step::Key(k) => parent.get_mut(k.as_str()),
        Step::At(i) => parent.get_mut(*i),
    }
}

fn apply(root: &mut Value, mutation: Mutation) {
    let mut all = Vec::new();
    paths(root, &mut Vec::new(), &mut all);
    if all.is_empty() {
        return;
    }
    let index = match &mutation {
        Mutation::Replace(i, _) | Mutation::Remove(i) | Mutation::Reencode(i, _) => i,
    };
    let path = &all[index.index(all.len())];
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut parent = &mut *root;
    for step in parent_path {
        match child_mut(parent, step) {
            Some(child) => parent = child,
            None => return,
        }
    }
    match mutation {
        Mutation::Remove(_) => match (last, parent) {
            (Step::Key(k), Value::Object(map)) => {
                map.remove(k);
            }
            (Step::At(i), Value::Array(items)) if *i < items.len() => {
                items.remove(*i);
            }
            _ => {}
        },
        Mutation::Replace(_, v) => {
            if let Some(slot) = child_mut(parent, last) {
                *slot = v;
            }
        }
        Mutation::Reencode(_, v) => {
            if let Some(slot) = child_mut(parent, last) {
                *slot = Value::String(v.to_string());
            }
        }
    }
}

/// TOML-ish text: lines from the policy's own sections and keys, values of
/// every TOML type (and broken ones), quoted keys with any characters.
pub fn tomlish_text() -> BoxedStrategy<String> {
    const SECTIONS: &[&str] = &[
        "[targets]",
        "[tagging]",
        "[tagging.allowed_values]",
        "[tagging.account_environments]",
        "[offhours]",
        "[rotation]",
        "[containment]",
        "[[containment.overrides]]",
        "[snapshots]",
        "[budgets]",
        "[notifications]",
        "[limits]",
        "[x[]",
        "[[",
        "[a.b.c.d]",
    ];
    const KEYS: &[&str] = &[
        "accounts",
        "organizational_units",
        "regions",
        "required",
        "env",
        "tag_creator",
        "enabled",
        "environments",
        "timezone",
        "default_schedule",
        "mode",
        "interval_minutes",
        "holidays",
        "concurrency",
        "restart_wait_seconds",
        "password_length",
        "notify_min_band",
        "contain_min_band",
        "prefix",
        "max_items",
        "min_severity",
        "max_changes_per_run",
        "\"123456789012\"",
        "\"x[\"",
        "\"a.b\"",
        "\"[0]\"",
        "'x['",
        "x.y",
    ];
    const VALUES: &[&str] = &[
        "true",
        "0",
        "-1",
        "4294967296",
        "99999999999999999999",
        "1e400",
        "nan",
        "\"dev\"",
        "\"\"",
        "\"x[\"",
        "\"opt-in\"",
        "\"HIGH\"",
        "\"INFO\"",
        "\"off=(M-F,19);on=(M-F,7)\"",
        "\"off=[(m-f,25)]\"",
        "\"Europe/Berlin\"",
        "\"Mars/Olympus\"",
        "[\"2026-12-25\", \"xmas\"]",
        "[\"123456789012\", \"1\"]",
        "[\"x[\", \"\"]",
        "[]",
        "[[[]]]",
        "{ a = 1 }",
        "1979-05-27T07:32:00Z",
        "\"\"\"multi\nline\"\"\"",
        "'''",
        "\"\\u0000\"",
        "\"é😀\"",
    ];
    let line = prop_oneof![
        2 => prop::sample::select(SECTIONS).prop_map(str::to_string),
        5 => (
            prop_oneof![3 => prop::sample::select(KEYS).prop_map(str::to_string), 1 => "\\PC{0,8}"],
            prop_oneof![3 => prop::sample::select(VALUES).prop_map(str::to_string), 1 => "\\PC{0,10}"],
        )
            .prop_map(|(k, v)| format!("{k} = {v}")),
        1 => (".{0,16}").prop_map(|s| format!("\"{s}\" = \"dev\"")),
        1 => "\\PC{0,20}",
    ];
    prop::collection::vec(line, 0..12)
        .prop_map(|lines| lines.join("\n"))
        .boxed()
}

#[cfg(test)]
mod tests;
