//! Off-hours schedules: the `steward:offhours` / `maid_offhours` tag grammar
//! (Cloud Custodian's, with steward's extensions), how a resource's tags and
//! the policy resolve to a schedule, and what a schedule does in a scheduler
//! window. The scheduler function, `steward plan` and `steward schedule
//! explain` all decide through this module.

mod grammar;
mod holiday;
mod timeline;
pub mod zones;

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::json;

pub use grammar::Rule;
pub use holiday::{Holiday, NotADate};
use timeline::{local_date, transitions, Transition};

/// The tag steward reads first.
pub const TAG: &str = crate::tags::OFFHOURS;
/// Cloud Custodian's tag, read when steward's is absent.
pub const CUSTODIAN_TAG: &str = crate::tags::MAID_OFFHOURS;

/// How far ahead `next_stop` / `next_start` look (holidays can push a start out).
const LOOKAHEAD_DAYS: i64 = 400;

/// Whether scheduled resources must opt in with a tag, or are scheduled unless they opt out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleMode {
    OptOut,
    OptIn,
}

/// What this module reads of the policy (its `[offhours]` section
/// implements it): the mode, the default schedule and its zone, and the
/// holidays. The schedule module depends on this, never on the policy.
pub trait Defaults {
    fn mode(&self) -> ScheduleMode;
    /// IANA name or Cloud Custodian alias of the default schedule's zone.
    fn timezone(&self) -> &str;
    /// The default schedule, in the tag grammar.
    fn default_schedule(&self) -> &str;
    /// Dates (in the schedule's zone) with no start transition.
    fn holidays(&self) -> &[Holiday];
}

/// A parsed schedule: stop times, start times and the zone they are read in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    off: Vec<Rule>,
    on: Vec<Rule>,
    tz: Tz,
}

/// Why a tag value is not a schedule. Display names the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleError(pub String);

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScheduleError {}

/// What a schedule does in a window, or at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Stop,
    Start,
    None,
}

impl Action {
    /// `stop`, `start` or `none`, as `steward schedule explain` prints it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Stop => "stop",
            Action::Start => "start",
            Action::None => "none",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a resource's tags resolve against the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The resource follows this schedule.
    Scheduled(Schedule),
    /// The tag says `off`: never stopped or started by the scheduler.
    OptedOut,
    /// Opt-in mode and no schedule tag: not scheduled.
    NotScheduled,
    /// The tag (or the policy's default schedule) does not parse: leave the
    /// resource alone and report `tag`, `value` and `error`.
    Malformed {
        tag: String,
        value: String,
        error: ScheduleError,
    },
}

/// Reads `steward:offhours` (wins) or `maid_offhours` from the tags and applies the policy:
/// empty value or `on` -> the policy's default schedule; `off` -> OptedOut; a value naming only
/// off/on/tz takes the rest from the policy; no tag -> default schedule in opt-out mode,
/// NotScheduled in opt-in mode.
pub fn resolve(tags: &HashMap<String, String>, policy: &impl Defaults) -> Resolution {
    match find_tag(tags) {
        Some((key, value)) => {
            if grammar::normalize(value) == "off" {
                return Resolution::OptedOut;
            }
            match parse(value, policy) {
                Ok(schedule) => Resolution::Scheduled(schedule),
                Err(error) => Resolution::Malformed {
                    tag: key.to_string(),
                    value: value.to_string(),
                    error,
                },
            }
        }
        None => match policy.mode() {
            ScheduleMode::OptIn => Resolution::NotScheduled,
            ScheduleMode::OptOut => match parse("", policy) {
                Ok(schedule) => Resolution::Scheduled(schedule),
                Err(error) => Resolution::Malformed {
                    tag: "offhours.default_schedule".to_string(),
                    value: policy.default_schedule().to_string(),
                    error,
                },
            },
        },
    }
}

/// The schedule tag on a resource: `steward:offhours` before `maid_offhours`,
/// each matched exactly first and then without regard to case.
fn find_tag(tags: &HashMap<String, String>) -> Option<(&str, &str)> {
    for wanted in [TAG, CUSTODIAN_TAG] {
        if let Some((k, v)) = tags.get_key_value(wanted) {
            return Some((k.as_str(), v.as_str()));
        }
        if let Some((k, v)) = tags.iter().find(|(k, _)| k.eq_ignore_ascii_case(wanted)) {
            return Some((k.as_str(), v.as_str()));
        }
    }
    None
}

/// Parses a tag value against the policy: empty or `on` is the policy's
/// default schedule; parts the value leaves out come from the default; the
/// zone is the value's `tz`, else the default schedule's, else the policy's
/// `timezone`. `off` is an opt-out, not a schedule, and is an error here.
pub fn parse(value: &str, policy: &impl Defaults) -> Result<Schedule, ScheduleError> {
    let default = default_parts(policy)?;
    let normalized = grammar::normalize(value);
    let parts = match normalized.as_str() {
        "" | "on" => grammar::Parts::default(),
        "off" => {
            return Err(ScheduleError(
                "`off` opts the resource out of off-hours; it is not a schedule".to_string(),
            ))
        }
        text => grammar::parse_parts(text).map_err(|e| {
            ScheduleError(format!(
                "malformed off-hours schedule `{}`: {e}",
                value.trim()
            ))
        })?,
    };
    Ok(Schedule {
        off: parts.off.unwrap_or(default.off),
        on: parts.on.unwrap_or(default.on),
        tz: parts.tz.unwrap_or(default.tz),
    })
}

/// The policy's default schedule, its zone resolved.
fn default_parts(policy: &impl Defaults) -> Result<Schedule, ScheduleError> {
    let tz = zones::lookup(policy.timezone()).ok_or_else(|| {
        ScheduleError(format!(
            "policy offhours.timezone: unknown time zone `{}`; use an IANA name such as Europe/Berlin or an alias such as pt, et, cet, utc",
            policy.timezone()
        ))
    })?;
    let parts = grammar_of_default(policy).map_err(|e| {
        ScheduleError(format!(
            "policy offhours.default_schedule `{}`: {e}",
            policy.default_schedule()
        ))
    })?;
    Ok(Schedule {
        off: parts.off.unwrap_or_default(),
        on: parts.on.unwrap_or_default(),
        tz: parts.tz.unwrap_or(tz),
    })
}

/// The parts the policy's default schedule names (an empty default names none).
fn grammar_of_default(policy: &impl Defaults) -> Result<grammar::Parts, String> {
    let text = grammar::normalize(policy.default_schedule());
    match text.as_str() {
        "" | "off" => Ok(grammar::Parts::default()),
        text => grammar::parse_parts(text),
    }
}

/// The policy's holidays as dates (parsed when the policy was read).
pub fn holiday_dates(policy: &impl Defaults) -> Vec<NaiveDate> {
    policy.holidays().iter().map(|h| h.date()).collect()
}

/// Problems with the policy's `[offhours]` schedule keys, as (key, message),
/// for policy validation.
pub fn policy_problems(policy: &impl Defaults) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if zones::lookup(policy.timezone()).is_none() {
        problems.push((
            "offhours.timezone".to_string(),
            format!(
                "unknown time zone `{}`; use an IANA name such as Europe/Berlin or an alias such as pt, et, cet, utc",
                policy.timezone()
            ),
        ));
    } else if let Err(e) = grammar_of_default(policy) {
        problems.push((
            "offhours.default_schedule".to_string(),
            format!("`{}` is not a schedule: {e}", policy.default_schedule()),
        ));
    } else if grammar::normalize(policy.default_schedule()) == "off" {
        problems.push((
            "offhours.default_schedule".to_string(),
            "`off` is not a schedule; set enabled = false to turn the scheduler off".to_string(),
        ));
    }
    problems
}

impl Schedule {
    /// A schedule from its parts (mostly for tests and tools).
    pub fn new(off: Vec<Rule>, on: Vec<Rule>, tz: Tz) -> Schedule {
        Schedule { off, on, tz }
    }

    pub fn off_rules(&self) -> &[Rule] {
        &self.off
    }

    pub fn on_rules(&self) -> &[Rule] {
        &self.on
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// Effective transitions whose local dates fall around `[from, to]`.
    fn transitions_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        holidays: &[NaiveDate],
    ) -> Vec<Transition> {
        // One day of margin each side: a skipped local time can move an
        // instant past midnight.
        let first = local_date(self.tz, from)
            .pred_opt()
            .unwrap_or(NaiveDate::MIN);
        let last = local_date(self.tz, to).succ_opt().unwrap_or(NaiveDate::MAX);
        transitions(self.tz, &self.off, &self.on, first, last, holidays)
    }

    /// The action for a scheduler window (start exclusive, end inclusive): the latest transition in the window wins,
    /// `start` wins at the same instant; holidays (dates in the schedule's zone) suppress start transitions.
    pub fn action(
        &self,
        window_start: DateTime<Utc>,
        window_end: DateTime<Utc>,
        holidays: &[NaiveDate],
    ) -> Action {
        self.last_transition(window_start, window_end, holidays)
            .map_or(Action::None, |(action, _)| action)
    }

    /// The transition [`action`](Self::action) acts on, with its instant
    /// (`None`: no transition in the window), so a caller can tell whether a
    /// resource was changed after it.
    pub fn last_transition(
        &self,
        window_start: DateTime<Utc>,
        window_end: DateTime<Utc>,
        holidays: &[NaiveDate],
    ) -> Option<(Action, DateTime<Utc>)> {
        if window_end <= window_start {
            return None;
        }
        self.transitions_between(window_start, window_end, holidays)
            .into_iter()
            .rev()
            .find(|t| t.at > window_start && t.at <= window_end)
            .map(|t| (t.action, t.at))
    }

    fn next(
        &self,
        after: DateTime<Utc>,
        wanted: Action,
        holidays: &[NaiveDate],
    ) -> Option<DateTime<Utc>> {
        let rules = if wanted == Action::Stop {
            &self.off
        } else {
            &self.on
        };
        if rules.is_empty() {
            return None;
        }
        // Search a week at a time so the usual case reads few dates.
        let mut from = after;
        let limit = after + Duration::days(LOOKAHEAD_DAYS);
        while from < limit {
            let to = from + Duration::days(7);
            if let Some(t) = self
                .transitions_between(from, to, holidays)
                .into_iter()
                .find(|t| t.at > after && t.action == wanted)
            {
                return Some(t.at);
            }
            from = to;
        }
        None
    }

    /// The first stop transition strictly after `after`.
    pub fn next_stop(&self, after: DateTime<Utc>, holidays: &[NaiveDate]) -> Option<DateTime<Utc>> {
        self.next(after, Action::Stop, holidays)
    }

    /// The first start transition strictly after `after` (holidays have none).
    pub fn next_start(
        &self,
        after: DateTime<Utc>,
        holidays: &[NaiveDate],
    ) -> Option<DateTime<Utc>> {
        self.next(after, Action::Start, holidays)
    }

    /// True when `at` is inside an off period (the last transition at or before `at` is a stop) — used to undo RDS's 7-day automatic restart.
    pub fn is_off_at(&self, at: DateTime<Utc>, holidays: &[NaiveDate]) -> bool {
        // Every stop rule recurs weekly, so eight days back always reaches the
        // last stop if there is one.
        self.transitions_between(at - Duration::days(8), at, holidays)
            .into_iter()
            .rev()
            .find(|t| t.at <= at)
            .is_some_and(|t| t.action == Action::Stop)
    }

    /// The schedule as JSON: rules with days and local time, the zone, and
    /// the canonical tag text.
    pub fn to_json(&self) -> serde_json::Value {
        let rules = |rules: &[Rule]| -> Vec<serde_json::Value> {
            rules
                .iter()
                .map(|r| {
                    json!({
                        "days": r.days_text(),
                        "weekdays": r.days().iter().map(|d| d.to_string()).collect::<Vec<_>>(),
                        "time": format!("{:02}:{:02}", r.hour(), r.minute()),
                    })
                })
                .collect()
        };
        json!({
            "off": rules(&self.off),
            "on": rules(&self.on),
            "tz": self.tz.name(),
            "text": self.to_string(),
        })
    }
}

/// The canonical tag text: `off=[(M-F,19)];on=[(M-F,7)];tz=America/New_York`.
impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |rules: &[Rule]| rules.iter().map(Rule::text).collect::<Vec<_>>().join(",");
        let mut parts = Vec::new();
        if !self.off.is_empty() {
            parts.push(format!("off=[{}]", list(&self.off)));
        }
        if !self.on.is_empty() {
            parts.push(format!("on=[{}]", list(&self.on)));
        }
        parts.push(format!("tz={}", self.tz.name()));
        f.write_str(&parts.join(";"))
    }
}

#[cfg(test)]
mod tests;
