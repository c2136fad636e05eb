//! `steward schedule explain`: what an off-hours tag value means at an
//! instant, through the same schedule code the scheduler function runs. Prints
//! JSON: the action a scheduler run at `--at` would take, the next stop and
//! start, and the parsed schedule. A malformed tag exits non-zero with the
//! parse error.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Value};
use steward_shared::schedule::{self, Resolution};

use crate::context;

#[derive(clap::Args)]
pub struct ExplainArgs {
    /// The tag value, as written on the resource.
    #[arg(long)]
    pub tag: String,
    /// The instant (RFC 3339), for example 2026-11-20T19:05:00Z.
    #[arg(long)]
    pub at: String,
    /// Time zone when the tag names none (IANA name or alias; default: the policy's).
    #[arg(long)]
    pub tz: Option<String>,
    /// The scheduler window ending at `--at`, for example 15m, 1h, 1h30m
    /// (default: the policy's interval_minutes).
    #[arg(long)]
    pub window: Option<String>,
    /// Policy file for the default schedule, time zone and holidays
    /// (default: $STEWARD_POLICY, a file or ssm:/parameter/name, as the
    /// functions read it; unset: the built-in defaults).
    #[arg(long)]
    pub policy: Option<PathBuf>,
}

pub fn explain(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let mut policy = context::load_policy_blocking(args.policy.as_deref())?;
    if let Some(tz) = &args.tz {
        if schedule::zones::lookup(tz).is_none() {
            bail!("--tz: unknown time zone `{tz}`; use an IANA name such as Europe/Berlin or an alias such as pt, et, cet, utc");
        }
        policy.offhours.timezone = tz.clone();
    }
    let at = DateTime::parse_from_rfc3339(args.at.trim())
        .map_err(|e| {
            anyhow!(
                "--at `{}` is not an RFC 3339 instant ({e}); for example 2026-11-20T19:05:00Z",
                args.at
            )
        })?
        .with_timezone(&Utc);
    let window = match &args.window {
        Some(text) => parse_duration(text).context("--window")?,
        None => Duration::minutes(i64::from(policy.offhours.interval_minutes)),
    };
    let window_start = at - window;
    let holidays = schedule::holiday_dates(&policy.offhours);

    let tags = HashMap::from([(schedule::TAG.to_string(), args.tag.clone())]);
    let mut out = json!({
        "tag": args.tag,
        "at": rfc3339(at),
        "window": { "start": rfc3339(window_start), "end": rfc3339(at) },
        "holidays": holidays.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
    });
    match schedule::resolve(&tags, &policy.offhours) {
        Resolution::Scheduled(s) => {
            let extra = json!({
                "resolution": "scheduled",
                "action": s.action(window_start, at, &holidays).as_str(),
                "next_stop": s.next_stop(at, &holidays).map(rfc3339),
                "next_start": s.next_start(at, &holidays).map(rfc3339),
                "off_at": s.is_off_at(at, &holidays),
                "schedule": s.to_json(),
            });
            merge(&mut out, extra);
        }
        Resolution::OptedOut => {
            merge(
                &mut out,
                json!({
                    "resolution": "opted-out",
                    "action": "none",
                    "next_stop": null,
                    "next_start": null,
                    "off_at": false,
                    "schedule": null,
                }),
            );
        }
        Resolution::NotScheduled => {
            // Not reachable with a tag present; kept for completeness.
            merge(
                &mut out,
                json!({
                    "resolution": "not-scheduled",
                    "action": "none",
                    "next_stop": null,
                    "next_start": null,
                    "off_at": false,
                    "schedule": null,
                }),
            );
        }
        Resolution::Malformed { tag, value, error } => {
            bail!("{tag}={value:?} is not a schedule: {error}");
        }
    }
    let text = serde_json::to_string_pretty(&out)?;
    match writeln!(std::io::stdout().lock(), "{text}") {
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

fn merge(out: &mut Value, extra: Value) {
    if let (Value::Object(out), Value::Object(extra)) = (out, extra) {
        out.extend(extra);
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Parses durations like `15m`, `1h`, `1h30m`, `90s`, `2d`; a bare number is minutes.
fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim().to_ascii_lowercase();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let minutes: i64 = text.parse().map_err(|_| too_long(&text))?;
        return bounded(minutes.checked_mul(60), &text);
    }
    let mut total: i64 = 0;
    let mut number = String::new();
    let mut saw_unit = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: i64 = number.parse().map_err(|_| {
            anyhow!("`{text}` is not a duration; write for example 15m, 1h or 1h30m")
        })?;
        number.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => bail!("`{text}` is not a duration; units are s, m, h, d (for example 15m, 1h30m)"),
        };
        total = n
            .checked_mul(unit)
            .and_then(|s| s.checked_add(total))
            .ok_or_else(|| too_long(&text))?;
        saw_unit = true;
    }
    if !number.is_empty() || !saw_unit {
        bail!("`{text}` is not a duration; write for example 15m, 1h or 1h30m");
    }
    bounded(Some(total), &text)
}

/// The longest window explain accepts (a year and a day).
const MAX_WINDOW_SECONDS: i64 = 366 * 86_400;

fn too_long(text: &str) -> anyhow::Error {
    anyhow!("`{text}` is too long; a window is at most 366 days")
}

fn bounded(seconds: Option<i64>, text: &str) -> anyhow::Result<Duration> {
    match seconds {
        Some(s) if s <= 0 => bail!("`{text}` must be longer than zero"),
        Some(s) if s <= MAX_WINDOW_SECONDS => Ok(Duration::seconds(s)),
        _ => Err(too_long(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m").unwrap(), Duration::minutes(15));
        assert_eq!(parse_duration("1h").unwrap(), Duration::hours(1));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::minutes(90));
        assert_eq!(parse_duration("90s").unwrap(), Duration::seconds(90));
        assert_eq!(parse_duration("2d").unwrap(), Duration::days(2));
        assert_eq!(parse_duration("20").unwrap(), Duration::minutes(20));
        assert_eq!(parse_duration("366d").unwrap(), Duration::days(366));
        for bad in [
            "",
            "h",
            "1x",
            "15m3",
            "0m",
            "-5m",
            "367d",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
