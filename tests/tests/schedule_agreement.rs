//! Agreement with Cloud Custodian: for random tag values in the grammar both
//! share (hour resolution) and random instants away from daylight-saving
//! changes, `steward schedule explain --window 1h` (the built CLI) must say
//! `start` exactly when c7n's `onhour` filter matches and `stop` exactly when
//! its `offhour` filter matches (when both match, steward starts: see
//! docs/schedules.md). c7n itself answers through tools/c7n_schedule_oracle.py
//! in the `.venv-c7n` virtualenv.

use std::io::Write;
use std::process::{Command, Stdio};

use chrono::{DateTime, Duration, NaiveDate, Offset, TimeZone, Utc};
use serde_json::{json, Value};
use steward_shared::schedule::zones;
use steward_tests::{function_binary, workspace_root};

const CASES: usize = 400;
const DEFAULT_SEED: u64 = 0x05ee_d0ff_4a11;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const DAYS: [char; 7] = ['M', 'T', 'W', 'H', 'F', 'S', 'U'];

/// Zones a tag may name: every alias, and IANA names including ones whose
/// spelling is not title case and ones with non-whole-hour offsets.
const TAG_ZONES: [&str; 22] = [
    "pt",
    "et",
    "ct",
    "mt",
    "at",
    "gmt",
    "bst",
    "ist",
    "cet",
    "it",
    "jst",
    "kst",
    "sgt",
    "aet",
    "brt",
    "nzst",
    "utc",
    "America/New_York",
    "Europe/Berlin",
    "America/Port-au-Prince",
    "Asia/Kathmandu",
    "Etc/GMT+5",
];

/// Default zones in the spelling c7n's `default_tz` accepts (it does not
/// lowercase the policy's zone).
const DEFAULT_ZONES: [&str; 8] = [
    "utc",
    "et",
    "pt",
    "cet",
    "Europe/London",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Asia/Kolkata",
];

struct Case {
    tag: String,
    default_tz: String,
    at: DateTime<Utc>,
}

/// A generated tag value, the zone it is read in, and the hours it names.
struct Tag {
    text: String,
    zone: Option<String>,
    hours: Vec<u32>,
}

fn rules(rng: &mut Rng, hours: &mut Vec<u32>) -> String {
    let count = match rng.below(10) {
        0..=5 => 1,
        6..=8 => 2,
        _ => 3,
    };
    let items: Vec<String> = (0..count)
        .map(|_| {
            let days = if rng.chance(40) {
                rng.pick(&DAYS).to_string()
            } else {
                format!("{}-{}", rng.pick(&DAYS), rng.pick(&DAYS))
            };
            let hour = rng.below(24) as u32;
            hours.push(hour);
            let hour_text = if hour < 10 && rng.chance(15) {
                format!("0{hour}")
            } else {
                hour.to_string()
            };
            format!("({days},{hour_text})")
        })
        .collect();
    let bracket = if count == 1 {
        rng.chance(30)
    } else {
        rng.chance(85)
    };
    if bracket {
        format!("[{}]", items.join(","))
    } else {
        items.join(",")
    }
}

fn escape(text: &str, rng: &mut Rng) -> String {
    let upper = rng.chance(30);
    text.chars()
        .map(|c| match c {
            '(' | ')' | '[' | ']' | ',' | ';' | '=' | '/' | '-' => {
                let code = format!("u{:x}", c as u32);
                if upper {
                    code.to_uppercase()
                } else {
                    code
                }
            }
            other => other.to_string(),
        })
        .collect()
}

fn tag(rng: &mut Rng) -> Tag {
    let mut hours = Vec::new();
    match rng.below(100) {
        0..=3 => {
            return Tag {
                text: String::new(),
                zone: None,
                hours: vec![19, 7],
            }
        }
        4..=7 => {
            return Tag {
                text: "on".into(),
                zone: None,
                hours: vec![19, 7],
            }
        }
        8..=10 => {
            return Tag {
                text: rng.pick(&["off", "OFF", "Off"]).to_string(),
                zone: None,
                hours: vec![19, 7],
            }
        }
        _ => {}
    }
    let mut parts = Vec::new();
    let mut zone = None;
    let (mut has_off, mut has_on) = (false, false);
    if rng.chance(75) {
        parts.push(format!("off={}", rules(rng, &mut hours)));
        has_off = true;
    }
    if rng.chance(75) {
        parts.push(format!("on={}", rules(rng, &mut hours)));
        has_on = true;
    }
    if rng.chance(50) || parts.is_empty() {
        let z = rng.pick(&TAG_ZONES).to_string();
        let written = match rng.below(3) {
            0 => z.to_lowercase(),
            1 => z.to_uppercase(),
            _ => z.clone(),
        };
        parts.push(format!("tz={written}"));
        zone = Some(z);
    }
    if !has_off {
        hours.push(19);
    }
    if !has_on {
        hours.push(7);
    }
    // Any order.
    for i in (1..parts.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        parts.swap(i, j);
    }
    let mut text = parts.join(";");
    if rng.chance(10) {
        text.push(';');
    }
    text = match rng.below(3) {
        0 => text.to_lowercase(),
        1 => text.to_uppercase(),
        _ => text,
    };
    if rng.chance(15) {
        text = escape(&text, rng);
    }
    if rng.chance(10) {
        let q = if rng.chance(50) { '"' } else { '\'' };
        text = format!("{q}{text}{q}");
    }
    Tag { text, zone, hours }
}

/// True when the zone's UTC offset is the same three hours either side of `at`.
fn away_from_offset_change(zone: &str, at: DateTime<Utc>) -> bool {
    let tz = zones::lookup(zone).unwrap_or_else(|| panic!("zone {zone} resolves"));
    let offset = |t: DateTime<Utc>| tz.offset_from_utc_datetime(&t.naive_utc()).fix();
    offset(at - Duration::hours(3)) == offset(at + Duration::hours(3))
}

fn instant(rng: &mut Rng, zone: &str, hours: &[u32]) -> Option<DateTime<Utc>> {
    let base = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
    let day = base + Duration::days(rng.below(3 * 365) as i64);
    let at = if rng.chance(60) {
        // Inside an hour the schedule names, so transitions are exercised.
        let hour = *rng.pick(hours);
        let local = day.and_hms_opt(hour, rng.below(60) as u32, rng.below(60) as u32)?;
        let tz = zones::lookup(zone)?;
        tz.from_local_datetime(&local).single()?.with_timezone(&Utc)
    } else {
        let seconds = rng.below(86_400) as i64;
        day.and_hms_opt(0, 0, 0)?.and_utc() + Duration::seconds(seconds)
    };
    away_from_offset_change(zone, at).then_some(at)
}

fn cases(seed: u64) -> Vec<Case> {
    let mut rng = Rng(seed);
    let mut out = vec![
        Case {
            tag: "off=(M-F,19);on=(M-F,7)".into(),
            default_tz: "utc".into(),
            at: "2026-11-20T19:30:00Z".parse().unwrap(),
        },
        Case {
            tag: "off=[(M-F,21),(U,18)];on=[(M-F,6),(U,10)];tz=pt".into(),
            default_tz: "et".into(),
            at: "2026-11-23T02:10:00Z".parse().unwrap(),
        },
        Case {
            tag: "offu3du28M-Fu2c18u29u3btzu3dAustraliau2fSydney".into(),
            default_tz: "et".into(),
            at: "2026-11-23T07:59:00Z".parse().unwrap(),
        },
        Case {
            tag: "off=(S-M,1);on=(T-F,6)".into(),
            default_tz: "utc".into(),
            at: "2026-11-22T01:00:00Z".parse().unwrap(),
        },
    ];
    while out.len() < CASES {
        let t = tag(&mut rng);
        let default_tz = rng.pick(&DEFAULT_ZONES).to_string();
        let zone = t.zone.clone().unwrap_or_else(|| default_tz.clone());
        if let Some(at) = instant(&mut rng, &zone, &t.hours) {
            out.push(Case {
                tag: t.text,
                default_tz,
                at,
            });
        }
    }
    out
}

fn oracle(python: &std::path::Path, cases: &[Case]) -> Vec<Value> {
    let script = workspace_root()
        .join("tools")
        .join("c7n_schedule_oracle.py");
    let mut child = Command::new(python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the c7n oracle starts");
    let input: String = cases
        .iter()
        .map(|c| {
            json!({"tag": c.tag, "at": c.at.to_rfc3339(), "default_tz": c.default_tz}).to_string()
                + "\n"
        })
        .collect();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("the c7n oracle runs");
    writer.join().unwrap().expect("writing to the oracle");
    assert!(
        output.status.success(),
        "the c7n oracle failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let verdicts: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("oracle lines are JSON"))
        .collect();
    assert_eq!(verdicts.len(), cases.len(), "one oracle verdict per case");
    verdicts
}

fn steward_action(cli: &std::path::Path, case: &Case) -> Result<String, String> {
    let output = Command::new(cli)
        .args(["schedule", "explain"])
        .arg(format!("--tag={}", case.tag))
        .arg(format!("--at={}", case.at.to_rfc3339()))
        .arg(format!("--tz={}", case.default_tz))
        .arg("--window=1h")
        .env_remove("STEWARD_POLICY")
        .output()
        .expect("steward runs");
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let doc: Value = serde_json::from_slice(&output.stdout).expect("explain prints JSON");
    Ok(doc["action"]
        .as_str()
        .expect("action is a string")
        .to_string())
}

#[test]
fn steward_agrees_with_cloud_custodian() {
    let python = workspace_root()
        .join(".venv-c7n")
        .join("bin")
        .join("python");
    if !python.exists() {
        eprintln!(
            "SKIPPED: {} is missing; create it with `python3 -m venv .venv-c7n && .venv-c7n/bin/pip install -r tools/c7n-requirements.txt` (make test does)",
            python.display()
        );
        return;
    }
    let seed = std::env::var("STEWARD_AGREEMENT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    eprintln!("agreement seed {seed} (set STEWARD_AGREEMENT_SEED to replay another)");
    let cli = function_binary("steward");
    let cases = cases(seed);
    let verdicts = oracle(&python, &cases);

    let mut disagreements = Vec::new();
    let mut counts = std::collections::BTreeMap::new();
    for (case, verdict) in cases.iter().zip(&verdicts) {
        let context = format!(
            "tag {:?} at {} default_tz {}",
            case.tag,
            case.at.to_rfc3339(),
            case.default_tz
        );
        if let Some(error) = verdict["error"].as_str() {
            disagreements.push(format!(
                "{context}: outside the shared grammar, c7n says {error}"
            ));
            continue;
        }
        let expected = match (verdict["offhour"].as_bool(), verdict["onhour"].as_bool()) {
            (_, Some(true)) => "start",
            (Some(true), _) => "stop",
            _ => "none",
        };
        *counts.entry(expected).or_insert(0) += 1;
        match steward_action(&cli, case) {
            Ok(action) if action == expected => {}
            Ok(action) => disagreements.push(format!("{context}: c7n {verdict}, steward {action}")),
            Err(e) => disagreements.push(format!("{context}: c7n {verdict}, steward failed: {e}")),
        }
    }
    eprintln!("{} cases, expected actions {counts:?}", cases.len());
    assert!(
        disagreements.is_empty(),
        "{} of {} cases disagree:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
    // The sample must exercise every outcome, or agreement proves little.
    for action in ["stop", "start", "none"] {
        assert!(
            counts.get(action).copied().unwrap_or(0) >= 20,
            "too few `{action}` cases: {counts:?}"
        );
    }
}

/// Runs `steward schedule explain` with these arguments: (exit success, stdout JSON or stderr).
fn explain(args: &[&str]) -> (bool, Result<Value, String>) {
    let output = Command::new(function_binary("steward"))
        .args(["schedule", "explain"])
        .args(args)
        .env_remove("STEWARD_POLICY")
        .output()
        .expect("steward runs");
    let ok = output.status.success();
    if ok {
        (
            ok,
            Ok(serde_json::from_slice(&output.stdout).expect("explain prints JSON")),
        )
    } else {
        (
            ok,
            Err(String::from_utf8_lossy(&output.stderr).into_owned()),
        )
    }
}

#[test]
fn explain_prints_the_action_the_next_transitions_and_the_schedule() {
    let (ok, out) = explain(&[
        "--tag=off=(M-F,19);on=(M-F,7);tz=pt",
        "--at=2026-11-21T03:10:00Z",
        "--window=1h",
    ]);
    assert!(ok, "{out:?}");
    let out = out.unwrap();
    assert_eq!(out["action"], "stop");
    assert_eq!(out["next_start"], "2026-11-23T15:00:00Z");
    assert_eq!(out["next_stop"], "2026-11-24T03:00:00Z");
    assert_eq!(out["schedule"]["tz"], "America/Los_Angeles");
    assert_eq!(
        out["schedule"]["text"],
        "off=[(M-F,19)];on=[(M-F,7)];tz=America/Los_Angeles"
    );
    // The default window is the policy's 15 minutes: 03:10 is inside it, 03:20 is not.
    let (_, out) = explain(&["--tag=off=(M-F,19);tz=pt", "--at=2026-11-21T03:20:00Z"]);
    assert_eq!(out.unwrap()["action"], "none");
}

#[test]
fn explain_opted_out_and_malformed_tags() {
    let (ok, out) = explain(&["--tag='OFF'", "--at=2026-11-20T19:00:00Z"]);
    assert!(ok);
    let out = out.unwrap();
    assert_eq!(out["resolution"], "opted-out");
    assert_eq!(out["action"], "none");
    assert!(out["next_stop"].is_null() && out["schedule"].is_null());

    let (ok, err) = explain(&["--tag=off=(M-F,25)", "--at=2026-11-20T19:00:00Z"]);
    assert!(!ok, "a malformed tag must exit non-zero");
    let err = err.unwrap_err();
    assert!(err.contains("`25` is not an hour"), "{err}");

    let (ok, err) = explain(&["--tag=on", "--at=yesterday"]);
    assert!(!ok);
    assert!(err.unwrap_err().contains("RFC 3339"));
    let (ok, err) = explain(&["--tag=on", "--at=2026-11-20T19:00:00Z", "--tz=mars/base"]);
    assert!(!ok);
    assert!(err.unwrap_err().contains("unknown time zone `mars/base`"));
}

#[test]
fn explain_reads_default_schedule_zone_and_holidays_from_the_policy() {
    let dir = std::env::temp_dir().join(steward_tests::unique("steward-explain"));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        "[offhours]\ntimezone = \"cet\"\ndefault_schedule = \"off=(M-F,18);on=(M-F,8)\"\nholidays = [\"2026-11-23\"]\n",
    )
    .unwrap();
    let policy_arg = format!("--policy={}", policy.display());
    // Monday 2026-11-23 08:00 in Berlin is 07:00 UTC, but it is a holiday: no start.
    let (ok, out) = explain(&["--tag=", "--at=2026-11-23T07:05:00Z", &policy_arg]);
    assert!(ok, "{out:?}");
    let out = out.unwrap();
    assert_eq!(out["action"], "none");
    assert_eq!(out["off_at"], true);
    assert_eq!(out["next_start"], "2026-11-24T07:00:00Z");
    assert_eq!(out["holidays"], json!(["2026-11-23"]));
    // Friday 18:00 Berlin is 17:00 UTC.
    let (_, out) = explain(&["--tag=on", "--at=2026-11-20T17:00:00Z", &policy_arg]);
    assert_eq!(out.unwrap()["action"], "stop");
    // A policy whose default schedule does not parse is refused, naming the key.
    std::fs::write(&policy, "[offhours]\ndefault_schedule = \"off=(M-F,19\"\n").unwrap();
    let (ok, err) = explain(&["--tag=on", "--at=2026-11-20T17:00:00Z", &policy_arg]);
    assert!(!ok);
    assert!(err.unwrap_err().contains("offhours.default_schedule"));
    std::fs::remove_dir_all(&dir).ok();
}

/// The differences docs/schedules.md lists are real: c7n answers as the page
/// says, and steward as the page says.
#[test]
fn documented_differences_from_cloud_custodian_hold() {
    let python = workspace_root()
        .join(".venv-c7n")
        .join("bin")
        .join("python");
    if !python.exists() {
        eprintln!(
            "SKIPPED: {} is missing (make test creates it)",
            python.display()
        );
        return;
    }
    let case = |tag: &str, at: &str, tz: &str| Case {
        tag: tag.into(),
        default_tz: tz.into(),
        at: at.parse().unwrap(),
    };
    // (case, c7n offhour, c7n onhour, c7n reports an error, steward's action or "error")
    let table = [
        // Whitespace after `;`: c7n never starts; steward starts at 08:00.
        (
            case("off=(M-F,19); on=(M-F,8)", "2026-11-23T08:10:00Z", "utc"),
            false,
            false,
            false,
            "start",
        ),
        // Minutes: c7n cannot parse them.
        (
            case("off=(M-F,18:30)", "2026-11-23T18:40:00Z", "utc"),
            false,
            false,
            true,
            "stop",
        ),
        // A broken `off` part: c7n still starts by its defaults; steward refuses the tag.
        (
            case("off=(M-F,25)", "2026-11-23T07:10:00Z", "utc"),
            false,
            true,
            true,
            "error",
        ),
        // No `=` at all: c7n takes its default schedule; steward refuses the tag.
        (
            case("yes", "2026-11-23T19:10:00Z", "utc"),
            true,
            false,
            false,
            "error",
        ),
        // Nested quotes: not an opt-out for c7n.
        (
            case("\"'off'\"", "2026-11-23T19:10:00Z", "utc"),
            true,
            false,
            false,
            "none",
        ),
        // Stop and start in the same hour: both c7n filters match; steward starts.
        (
            case("off=(M-F,7);on=(M-F,7)", "2026-11-23T07:10:00Z", "utc"),
            true,
            true,
            false,
            "start",
        ),
        // Skipped hour (New York, 2026-03-08 02:00 -> 03:00): c7n never stops
        // that day; steward stops at the jump (07:00 UTC).
        (
            case("off=(U,2);tz=et", "2026-03-08T07:10:00Z", "utc"),
            false,
            false,
            false,
            "stop",
        ),
        // Repeated hour (New York, 2026-11-01 01:00 twice): c7n stops again in
        // the second 01:00 hour (06:00 UTC); steward stopped once, at 05:00 UTC.
        (
            case("off=(U,1);tz=et", "2026-11-01T06:10:00Z", "utc"),
            true,
            false,
            false,
            "none",
        ),
        (
            case("off=(U,1);tz=et", "2026-11-01T05:10:00Z", "utc"),
            true,
            false,
            false,
            "stop",
        ),
    ];
    let cases: Vec<Case> = table
        .iter()
        .map(|(c, ..)| Case {
            tag: c.tag.clone(),
            default_tz: c.default_tz.clone(),
            at: c.at,
        })
        .collect();
    let verdicts = oracle(&python, &cases);
    let cli = function_binary("steward");
    for ((case, off, on, error, steward), verdict) in table.iter().zip(&verdicts) {
        let context = format!("tag {:?} at {}", case.tag, case.at.to_rfc3339());
        assert_eq!(
            verdict["offhour"].as_bool(),
            Some(*off),
            "c7n offhour, {context}: {verdict}"
        );
        assert_eq!(
            verdict["onhour"].as_bool(),
            Some(*on),
            "c7n onhour, {context}: {verdict}"
        );
        assert_eq!(
            !verdict["error"].is_null(),
            *error,
            "c7n error, {context}: {verdict}"
        );
        let ours = steward_action(&cli, case).unwrap_or_else(|_| "error".to_string());
        assert_eq!(ours, *steward, "steward, {context}");
    }
}
