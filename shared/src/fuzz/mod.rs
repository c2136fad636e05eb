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

/// The number of cases of a function crate's parser properties: small by
/// default so `make test` stays fast, `PROPTEST_CASES` when set (`make fuzz`).
pub const PARSER_CASES: u32 = 64;

/// The proptest configuration of the function crates' parser properties:
/// [`PARSER_CASES`] cases, or `PROPTEST_CASES` when the variable is set.
pub fn parser_config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = PARSER_CASES;
    }
    config
}

/// The four properties every function's parser holds, as `proptest` tests
/// in the calling test crate: arbitrary text, bytes and JSON, and the
/// mutated fixtures `$fixtures` (a `Vec<Value>`), each handed to `$check`
/// (a `fn(&Value) -> _` that parses and asserts the invariants of what
/// parses). A crate adds its own properties in its own `proptest!` block.
#[macro_export]
macro_rules! parser_properties {
    ($check:path, $fixtures:expr) => {
        ::proptest::proptest! {
            #![proptest_config($crate::fuzz::parser_config())]

            #[test]
            fn any_text_is_parsed_or_refused(text in "\\PC{0,300}") {
                if let Ok(v) = ::serde_json::from_str::<::serde_json::Value>(&text) {
                    let _ = $check(&v);
                }
                let _ = $check(&::serde_json::Value::String(text));
            }

            #[test]
            fn any_bytes_are_parsed_or_refused(
                bytes in ::proptest::collection::vec(::proptest::prelude::any::<u8>(), 0..300),
            ) {
                if let Ok(v) = ::serde_json::from_slice::<::serde_json::Value>(&bytes) {
                    let _ = $check(&v);
                }
            }

            #[test]
            fn any_json_is_parsed_or_refused(payload in $crate::fuzz::event_inputs()) {
                let _ = $check(&payload);
            }

            #[test]
            fn mutated_fixtures_are_parsed_or_refused(
                payload in $crate::fuzz::mutated_named_fixture($fixtures),
            ) {
                let _ = $check(&payload);
            }
        }
    };
}

/// The fixtures of `events/` whose file name starts with one of `prefixes`,
/// with their file names, sorted by name. Panics (a test setup error) when
/// none matches.
pub fn named_fixtures(prefixes: &[&str]) -> Vec<(String, Value)> {
    let dir = events_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fixtures in {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json") && prefixes.iter().any(|p| n.starts_with(p)))
        .collect();
    names.sort();
    assert!(
        !names.is_empty(),
        "no fixture in events/ starts with {prefixes:?}"
    );
    names
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
            let value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("fixture {name} is not JSON: {e}"));
            (name, value)
        })
        .collect()
}

/// Values at the edges: huge and empty strings, control characters and odd
/// Unicode, numbers at the limits of every width, times before the epoch and
/// past chrono's range, empty and deeply nested containers.
pub fn extreme_values() -> Vec<Value> {
    let deep = (0..100).fold(Value::Null, |inner, _| Value::Array(vec![inner]));
    let mut values = vec![
        Value::Null,
        Value::Bool(false),
        Value::from(0),
        Value::from(-1),
        Value::from(u64::MAX),
        Value::from(i64::MIN),
        Value::from(f64::MAX),
        Value::from(f64::MIN_POSITIVE),
        Value::from(-0.0),
        Value::from(1e-300),
        Value::String(String::new()),
        Value::String(" \t\n ".into()),
        Value::String("x".repeat(100_000)),
        Value::String("é😀".repeat(20_000)),
        Value::String("\u{0}\u{1b}[31m\r\n\u{7f}".into()),
        Value::String("\u{202e}\u{200b}\u{feff}ǅ\u{301}".into()),
        Value::String("1970-01-01T00:00:00Z".into()),
        Value::String("1969-12-31T23:59:59Z".into()),
        Value::String("2038-01-19T03:14:08Z".into()),
        Value::String("+262143-12-31T23:59:59Z".into()),
        Value::String("-262144-01-01T00:00:00Z".into()),
        Value::String("9999-12-31T23:59:59.999999999+23:59".into()),
        Value::String("2026-11-20T10:00:00.123456789123Z".into()),
        Value::String("2026-11-20".into()),
        Value::Array(Vec::new()),
        Value::Object(Map::new()),
        deep,
    ];
    values.extend(tricky_strings().into_iter().map(Value::String));
    values
}

/// A fixture with one to four changes: a member removed, or a value replaced
/// by arbitrary JSON (another type most of the time), by one of
/// [`extreme_values`], or by JSON serialized into a string.
pub fn mutated_named_fixture(fixtures: Vec<Value>) -> BoxedStrategy<Value> {
    let (keys, strings) = vocabulary(&fixtures);
    let value = prop_oneof![
        2 => arbitrary_json(keys, strings),
        1 => prop::sample::select(extreme_values()),
    ]
    .boxed();
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

/// Every single-step edit of `fixture`, each with a description naming the
/// path: each member or element removed, and each value replaced by a value
/// of every other JSON type (and by the empty string and a huge one). Small
/// enough to run in full for every fixture on every `make test`.
pub fn single_edits(fixture: &Value) -> Vec<(String, Value)> {
    let replacements = [
        Value::Null,
        Value::Bool(true),
        Value::from(-1),
        Value::from(u64::MAX),
        Value::from(1.5),
        Value::String(String::new()),
        Value::String("é".repeat(5_000)),
        Value::Array(Vec::new()),
        Value::Object(Map::new()),
    ];
    let mut all = Vec::new();
    paths(fixture, &mut Vec::new(), &mut all);
    let mut out = Vec::new();
    for path in &all {
        let shown: Vec<String> = path
            .iter()
            .map(|s| match s {
                Step::Key(k) => k.clone(),
                Step::At(i) => i.to_string(),
            })
            .collect();
        let shown = shown.join(".");
        let mut removed = fixture.clone();
        edit_at(&mut removed, path, None);
        out.push((format!("{shown} removed"), removed));
        for r in &replacements {
            let mut replaced = fixture.clone();
            edit_at(&mut replaced, path, Some(r.clone()));
            let r: String = r.to_string().chars().take(24).collect();
            out.push((format!("{shown} = {r}"), replaced));
        }
    }
    out
}

/// Removes the member or element at `path` (`None`) or replaces its value.
fn edit_at(root: &mut Value, path: &[Step], replacement: Option<Value>) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut parent = root;
    for step in parent_path {
        match child_mut(parent, step) {
            Some(child) => parent = child,
            None => return,
        }
    }
    match (replacement, last, parent) {
        (None, Step::Key(k), Value::Object(map)) => {
            map.remove(k);
        }
        (None, Step::At(i), Value::Array(items)) if *i < items.len() => {
            items.remove(*i);
        }
        (Some(v), step, parent) => {
            if let Some(slot) = child_mut(parent, step) {
                *slot = v;
            }
        }
        _ => {}
    }
}

/// The JSON document serialized in the string at `pointer` of `fixture`
/// (an SQS body, a Config `invokingEvent`, an SNS `Message`).
pub fn embedded(fixture: &Value, pointer: &str) -> Option<Value> {
    serde_json::from_str(fixture.pointer(pointer)?.as_str()?).ok()
}

/// [`single_edits`] of the document serialized at `pointer`, each put back
/// (serialized) into a copy of `fixture`.
pub fn single_edits_within(fixture: &Value, pointer: &str) -> Vec<(String, Value)> {
    let Some(inner) = embedded(fixture, pointer) else {
        return Vec::new();
    };
    single_edits(&inner)
        .into_iter()
        .filter_map(|(what, edited)| {
            let mut outer = fixture.clone();
            *outer.pointer_mut(pointer)? = Value::String(edited.to_string());
            Some((format!("{pointer}: {what}"), outer))
        })
        .collect()
}

/// Fixtures whose document serialized at `pointer` is mutated as by
/// [`mutated_named_fixture`] and put back. `fixtures` must all hold JSON there.
pub fn mutated_within(fixtures: Vec<Value>, pointer: &'static str) -> BoxedStrategy<Value> {
    let inner: Vec<Value> = fixtures
        .iter()
        .filter_map(|f| embedded(f, pointer))
        .collect();
    assert!(!inner.is_empty(), "no fixture holds JSON at {pointer}");
    (prop::sample::select(fixtures), mutated_named_fixture(inner))
        .prop_map(move |(mut outer, edited)| {
            if let Some(slot) = outer.pointer_mut(pointer) {
                *slot = Value::String(edited.to_string());
            }
            outer
        })
        .boxed()
}
