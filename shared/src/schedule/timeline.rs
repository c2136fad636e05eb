//! Turns a schedule's rules into instants: local times on local dates,
//! resolved through the time zone with steward's daylight-saving rules
//! (a time in a skipped hour happens at the first valid instant after it; a
//! time in a repeated hour happens once, at its first occurrence).

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::grammar::Rule;
use super::Action;

/// One effective transition: at this instant the schedule stops or starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub at: DateTime<Utc>,
    pub action: Action,
}

/// The instant a local wall-clock time happens in `tz`.
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => {
            // Skipped by a forward change: the first wall-clock minute after it
            // that exists is the instant the change happened. Gaps are at most
            // a day long (Samoa, 2011); look two days ahead.
            let mut probe = local;
            for _ in 0..(2 * 24 * 60) {
                probe += Duration::minutes(1);
                match tz.from_local_datetime(&probe) {
                    LocalResult::Single(t) => return t.with_timezone(&Utc),
                    LocalResult::Ambiguous(a, b) => return a.min(b).with_timezone(&Utc),
                    LocalResult::None => {}
                }
            }
            // Not reachable with the IANA database; fall back to reading the
            // time as UTC so the schedule still acts.
            local.and_utc()
        }
    }
}

/// The local date of an instant in `tz`.
pub fn local_date(tz: Tz, at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

/// All effective transitions of the rules on local dates `first..=last`,
/// sorted by instant, one per instant (`Start` wins when a stop and a start
/// happen at the same instant). Holidays suppress start transitions on them.
pub fn transitions(
    tz: Tz,
    off: &[Rule],
    on: &[Rule],
    first: NaiveDate,
    last: NaiveDate,
    holidays: &[NaiveDate],
) -> Vec<Transition> {
    let mut out: Vec<Transition> = Vec::new();
    let mut date = first;
    while date <= last {
        let weekday = date.weekday();
        let holiday = holidays.contains(&date);
        let rules = off
            .iter()
            .map(|r| (r, Action::Stop))
            .chain(on.iter().filter(|_| !holiday).map(|r| (r, Action::Start)));
        for (rule, action) in rules {
            if !rule.applies_on(weekday) {
                continue;
            }
            let Some(local) = date.and_hms_opt(u32::from(rule.hour()), u32::from(rule.minute()), 0)
            else {
                continue;
            };
            out.push(Transition {
                at: resolve_local(tz, local),
                action,
            });
        }
        match date.succ_opt() {
            Some(next) => date = next,
            None => break,
        }
    }
    // Sort by instant with starts before stops, then keep the first per instant.
    out.sort_by_key(|t| (t.at, t.action != Action::Start));
    out.dedup_by_key(|t| t.at);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn skipped_time_happens_when_the_clock_jumps() {
        // 2026-03-08: New York jumps from 02:00 EST to 03:00 EDT (07:00 UTC).
        let t = resolve_local(Tz::America__New_York, local("2026-03-08 02:30"));
        assert_eq!(t, utc("2026-03-08T07:00:00Z"));
        // 2026-03-29: Berlin jumps from 02:00 CET to 03:00 CEST (01:00 UTC).
        let t = resolve_local(Tz::Europe__Berlin, local("2026-03-29 02:00"));
        assert_eq!(t, utc("2026-03-29T01:00:00Z"));
    }

    #[test]
    fn repeated_time_happens_at_its_first_occurrence() {
        // 2026-11-01: New York repeats 01:00-02:00 (EDT first, then EST).
        let t = resolve_local(Tz::America__New_York, local("2026-11-01 01:30"));
        assert_eq!(t, utc("2026-11-01T05:30:00Z"));
    }

    #[test]
    fn stop_and_start_at_one_instant_is_a_start() {
        let r = Rule::new(chrono::Weekday::Mon, chrono::Weekday::Sun, 7, 0);
        let d = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let ts = transitions(Tz::UTC, &[r], &[r], d, d, &[]);
        assert_eq!(
            ts,
            vec![Transition {
                at: utc("2026-11-23T07:00:00Z"),
                action: Action::Start
            }]
        );
        // On a holiday the start is suppressed and the stop stands.
        let ts = transitions(Tz::UTC, &[r], &[r], d, d, &[d]);
        assert_eq!(
            ts,
            vec![Transition {
                at: utc("2026-11-23T07:00:00Z"),
                action: Action::Stop
            }]
        );
    }
}
