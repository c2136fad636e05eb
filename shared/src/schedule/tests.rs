//! Unit tests of schedule resolution and window semantics.

use super::*;
use crate::policy::Offhours;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn policy() -> Offhours {
    Offhours::default()
}

fn sched(value: &str) -> Schedule {
    parse(value, &policy()).unwrap_or_else(|e| panic!("{value}: {e}"))
}

fn tags(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The action of a one-hour window ending at `at`.
fn hour_action(s: &Schedule, at: &str) -> Action {
    let end = utc(at);
    s.action(end - Duration::hours(1), end, &[])
}

#[test]
fn default_schedule_is_weekday_business_hours_in_utc() {
    let s = sched("");
    assert_eq!(s, sched("on"));
    assert_eq!(s.to_string(), "off=[(M-F,19)];on=[(M-F,7)];tz=UTC");
    // Friday 2026-11-20 19:05 UTC: stop. Monday 2026-11-23 07:05: start.
    assert_eq!(hour_action(&s, "2026-11-20T19:05:00Z"), Action::Stop);
    assert_eq!(hour_action(&s, "2026-11-23T07:05:00Z"), Action::Start);
    // Saturday: nothing, and it is off.
    assert_eq!(hour_action(&s, "2026-11-21T07:05:00Z"), Action::None);
    assert!(s.is_off_at(utc("2026-11-21T12:00:00Z"), &[]));
    assert!(!s.is_off_at(utc("2026-11-23T12:00:00Z"), &[]));
    assert_eq!(
        s.next_start(utc("2026-11-20T20:00:00Z"), &[]),
        Some(utc("2026-11-23T07:00:00Z"))
    );
    assert_eq!(
        s.next_stop(utc("2026-11-20T20:00:00Z"), &[]),
        Some(utc("2026-11-23T19:00:00Z"))
    );
}

#[test]
fn resolve_reads_steward_tag_before_custodian_tag() {
    let p = policy();
    let r = resolve(
        &tags(&[
            ("steward:offhours", "off=(M-F,20)"),
            ("maid_offhours", "off"),
        ]),
        &p,
    );
    let Resolution::Scheduled(s) = r else {
        panic!("{r:?}")
    };
    assert_eq!(s.off_rules()[0].hour(), 20);
    assert_eq!(
        resolve(&tags(&[("maid_offhours", "off")]), &p),
        Resolution::OptedOut
    );
    assert_eq!(
        resolve(&tags(&[("Maid_Offhours", "'OFF'")]), &p),
        Resolution::OptedOut
    );
    let r = resolve(&tags(&[("maid_offhours", "on=(M-F,8);tz=pt")]), &p);
    let Resolution::Scheduled(s) = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        s.to_string(),
        "off=[(M-F,19)];on=[(M-F,8)];tz=America/Los_Angeles"
    );
}

#[test]
fn resolve_applies_the_mode_when_untagged() {
    let mut p = policy();
    assert_eq!(
        resolve(&tags(&[("env", "dev")]), &p),
        Resolution::Scheduled(sched(""))
    );
    p.mode = ScheduleMode::OptIn;
    assert_eq!(
        resolve(&tags(&[("env", "dev")]), &p),
        Resolution::NotScheduled
    );
    assert_eq!(
        resolve(&tags(&[("steward:offhours", "")]), &p),
        Resolution::Scheduled(sched(""))
    );
}

#[test]
fn malformed_tags_are_reported_with_tag_value_and_error() {
    let r = resolve(&tags(&[("steward:offhours", "off=(M-F,25)")]), &policy());
    let Resolution::Malformed { tag, value, error } = r else {
        panic!("{r:?}")
    };
    assert_eq!(tag, "steward:offhours");
    assert_eq!(value, "off=(M-F,25)");
    assert!(error.to_string().contains("`25` is not an hour"), "{error}");
    // A malformed default schedule is reported against the policy key.
    let mut p = policy();
    p.default_schedule = "off=(M-X,19)".into();
    let r = resolve(&tags(&[]), &p);
    let Resolution::Malformed { tag, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!(tag, "offhours.default_schedule");
    assert_eq!(policy_problems(&p).len(), 1);
    assert!(policy_problems(&policy()).is_empty());
}

#[test]
fn partial_values_take_the_rest_from_the_policy() {
    let mut p = policy();
    p.timezone = "cet".into();
    let s = parse("tz=pt", &p).unwrap();
    assert_eq!(
        s.to_string(),
        "off=[(M-F,19)];on=[(M-F,7)];tz=America/Los_Angeles"
    );
    let s = parse("off=(F,17)", &p).unwrap();
    assert_eq!(s.to_string(), "off=[(F,17)];on=[(M-F,7)];tz=Europe/Berlin");
    assert!(parse("off", &p).is_err());
}

#[test]
fn time_zone_shifts_the_instants() {
    // 19:00 in Los Angeles on Friday 2026-11-20 (PST, UTC-8) is 03:00 UTC Saturday.
    let s = sched("off=(M-F,19);on=(M-F,7);tz=pt");
    assert_eq!(hour_action(&s, "2026-11-21T03:00:00Z"), Action::Stop);
    assert_eq!(hour_action(&s, "2026-11-20T19:30:00Z"), Action::None);
}

#[test]
fn wrapping_day_ranges() {
    // Off Saturday to Monday at 01:00.
    let s = sched("off=(S-M,1);on=(T-F,6)");
    assert_eq!(hour_action(&s, "2026-11-21T01:00:00Z"), Action::Stop); // Saturday
    assert_eq!(hour_action(&s, "2026-11-22T01:00:00Z"), Action::Stop); // Sunday
    assert_eq!(hour_action(&s, "2026-11-23T01:00:00Z"), Action::Stop); // Monday
    assert_eq!(hour_action(&s, "2026-11-24T01:00:00Z"), Action::None); // Tuesday
    assert_eq!(hour_action(&s, "2026-11-24T06:00:00Z"), Action::Start);
}

#[test]
fn escaped_and_decorated_forms_equal_the_plain_form() {
    let plain = sched("off=[(M-F,18),(S,13)];tz=Australia/Sydney");
    assert_eq!(
        sched("offu3du5bu28M-Fu2c18u29u2cu28Su2c13u29u5du3btzu3dAustraliau2fSydney"),
        plain
    );
    assert_eq!(
        sched("\"OFF=[(m-f,18),(s,13)] ; TZ=australia/sydney;\""),
        plain
    );
}

#[test]
fn minutes_are_honoured() {
    let s = sched("off=(M-F,18:30);on=(M-F,7:45)");
    let end = utc("2026-11-20T18:30:00Z");
    assert_eq!(
        s.action(end - Duration::minutes(15), end, &[]),
        Action::Stop
    );
    assert_eq!(
        s.action(end, end + Duration::minutes(15), &[]),
        Action::None
    );
    assert_eq!(s.next_start(end, &[]), Some(utc("2026-11-23T07:45:00Z")));
}

#[test]
fn window_is_start_exclusive_end_inclusive() {
    let s = sched("");
    let stop = utc("2026-11-20T19:00:00Z");
    assert_eq!(
        s.action(stop - Duration::minutes(15), stop, &[]),
        Action::Stop
    );
    assert_eq!(
        s.action(stop, stop + Duration::minutes(15), &[]),
        Action::None
    );
    // A run late by up to one interval still acts.
    let late = stop + Duration::minutes(14);
    assert_eq!(
        s.action(late - Duration::minutes(15), late, &[]),
        Action::Stop
    );
    // An empty or inverted window does nothing.
    assert_eq!(s.action(stop, stop, &[]), Action::None);
    assert_eq!(s.action(stop, stop - Duration::hours(1), &[]), Action::None);
}

#[test]
fn latest_transition_in_the_window_wins_and_start_wins_ties() {
    let s = sched("off=(M-F,19);on=(M-F,20)");
    let end = utc("2026-11-20T20:30:00Z");
    assert_eq!(s.action(end - Duration::hours(2), end, &[]), Action::Start);
    let s = sched("off=(M-F,20);on=(M-F,19)");
    assert_eq!(s.action(end - Duration::hours(2), end, &[]), Action::Stop);
    let s = sched("off=(M-F,7);on=(M-F,7)");
    assert_eq!(hour_action(&s, "2026-11-20T07:10:00Z"), Action::Start);
    assert_eq!(s.next_stop(utc("2026-11-20T00:00:00Z"), &[]), None);
}

#[test]
fn holidays_suppress_starts_only() {
    let s = sched("");
    let monday = [date("2026-11-23")];
    assert_eq!(
        s.action(
            utc("2026-11-23T06:50:00Z"),
            utc("2026-11-23T07:05:00Z"),
            &monday
        ),
        Action::None
    );
    assert!(s.is_off_at(utc("2026-11-23T12:00:00Z"), &monday));
    assert_eq!(
        s.next_start(utc("2026-11-21T00:00:00Z"), &monday),
        Some(utc("2026-11-24T07:00:00Z"))
    );
    // The stop on a holiday still happens (nothing started by hand is stopped
    // early, but the evening stop stands).
    assert_eq!(
        s.action(
            utc("2026-11-23T18:50:00Z"),
            utc("2026-11-23T19:05:00Z"),
            &monday
        ),
        Action::Stop
    );
    // Holidays are dates in the schedule's zone: 07:00 Tokyo on Monday is
    // 22:00 UTC on Sunday.
    let tokyo = sched("tz=jst");
    assert_eq!(
        tokyo.action(
            utc("2026-11-22T21:50:00Z"),
            utc("2026-11-22T22:05:00Z"),
            &[]
        ),
        Action::Start
    );
    assert_eq!(
        tokyo.action(
            utc("2026-11-22T21:50:00Z"),
            utc("2026-11-22T22:05:00Z"),
            &monday
        ),
        Action::None
    );
}

#[test]
fn skipped_hour_acts_at_the_first_valid_instant_after() {
    // New York, Sunday 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
    let s = sched("off=(U,2:30);on=(U,3);tz=America/New_York");
    // Both land on 07:00 UTC: start wins, no stop that day.
    assert_eq!(
        s.next_stop(utc("2026-03-08T00:00:00Z"), &[]),
        Some(utc("2026-03-15T06:30:00Z"))
    );
    assert_eq!(hour_action(&s, "2026-03-08T07:00:00Z"), Action::Start);
    let s = sched("off=(U,2);tz=et");
    assert_eq!(
        s.next_stop(utc("2026-03-08T00:00:00Z"), &[]),
        Some(utc("2026-03-08T07:00:00Z"))
    );
    assert_eq!(
        s.action(
            utc("2026-03-08T06:45:00Z"),
            utc("2026-03-08T07:00:00Z"),
            &[]
        ),
        Action::Stop
    );
    // The week after, 02:00 EDT is 06:00 UTC.
    assert_eq!(
        s.next_stop(utc("2026-03-09T00:00:00Z"), &[]),
        Some(utc("2026-03-15T06:00:00Z"))
    );
}

#[test]
fn repeated_hour_acts_once() {
    // New York, Sunday 2026-11-01: 01:00-02:00 happens twice (05:00 and 06:00 UTC).
    let s = sched("off=(U,1);tz=et");
    assert_eq!(hour_action(&s, "2026-11-01T05:30:00Z"), Action::Stop);
    assert_eq!(hour_action(&s, "2026-11-01T06:30:00Z"), Action::None);
    assert_eq!(
        s.action(
            utc("2026-11-01T04:00:00Z"),
            utc("2026-11-01T08:00:00Z"),
            &[]
        ),
        Action::Stop
    );
    assert_eq!(
        s.next_stop(utc("2026-11-01T05:00:00Z"), &[]),
        Some(utc("2026-11-08T06:00:00Z"))
    );
}

#[test]
fn is_off_at_follows_the_last_transition() {
    let s = sched("");
    assert!(s.is_off_at(utc("2026-11-20T19:00:00Z"), &[]));
    assert!(!s.is_off_at(utc("2026-11-20T18:59:59Z"), &[]));
    assert!(s.is_off_at(utc("2026-11-23T06:59:00Z"), &[]));
    assert!(!s.is_off_at(utc("2026-11-23T07:00:00Z"), &[]));
    // A schedule with no stops is never off.
    let only_on = Schedule::new(Vec::new(), sched("").on_rules().to_vec(), Tz::UTC);
    assert!(!only_on.is_off_at(utc("2026-11-22T00:00:00Z"), &[]));
    assert_eq!(only_on.next_stop(utc("2026-11-22T00:00:00Z"), &[]), None);
}

#[test]
fn holidays_come_from_the_policy() {
    let mut p = policy();
    p.holidays = vec![
        "2026-12-25".parse().unwrap(),
        " 2027-01-01 ".parse().unwrap(),
    ];
    assert_eq!(
        holiday_dates(&p),
        vec![date("2026-12-25"), date("2027-01-01")]
    );
}

#[test]
fn json_names_rules_zone_and_text() {
    let j = sched("off=[(M-F,19),(S,13:30)];tz=cet").to_json();
    assert_eq!(j["tz"], "Europe/Berlin");
    assert_eq!(j["off"][1]["days"], "S");
    assert_eq!(j["off"][1]["time"], "13:30");
    assert_eq!(j["off"][0]["weekdays"].as_array().unwrap().len(), 5);
    assert_eq!(j["on"][0]["time"], "07:00");
    assert_eq!(
        j["text"],
        "off=[(M-F,19),(S,13:30)];on=[(M-F,7)];tz=Europe/Berlin"
    );
    // The canonical text parses back to the same schedule.
    assert_eq!(
        sched(j["text"].as_str().unwrap()),
        sched("off=[(M-F,19),(S,13:30)];tz=cet")
    );
}

/// xorshift64*, seeded, for the property tests below.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

const LETTERS: [char; 7] = ['M', 'T', 'W', 'H', 'F', 'S', 'U'];
const ZONES: [&str; 6] = [
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "America/St_Johns",
];

fn random_schedule(rng: &mut Rng) -> Schedule {
    let rules = |rng: &mut Rng| {
        (0..=rng.below(2))
            .map(|_| {
                let (a, b) = (
                    LETTERS[rng.below(7) as usize],
                    LETTERS[rng.below(7) as usize],
                );
                format!("({a}-{b},{}:{:02})", rng.below(24), rng.below(4) * 15)
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let value = format!(
        "off=[{}];on=[{}];tz={}",
        rules(rng),
        rules(rng),
        ZONES[rng.below(ZONES.len() as u64) as usize]
    );
    sched(&value)
}

/// Consecutive runs see the same history as one long window, and the window
/// actions agree with `is_off_at`, across daylight-saving changes.
#[test]
fn windows_compose_and_agree_with_is_off_at() {
    let mut rng = Rng(0x00ff_4042);
    // Around the 2026 changes in New York, Berlin and Lord Howe, and ordinary weeks.
    let anchors = [
        "2026-03-08T00:00:00Z",
        "2026-03-29T00:00:00Z",
        "2026-04-04T12:00:00Z",
        "2026-10-03T12:00:00Z",
        "2026-10-25T00:00:00Z",
        "2026-11-01T00:00:00Z",
        "2026-06-15T00:00:00Z",
    ];
    let holidays = [date("2026-03-09"), date("2026-10-26"), date("2026-11-02")];
    for _ in 0..60 {
        let s = random_schedule(&mut rng);
        let anchor = utc(anchors[rng.below(anchors.len() as u64) as usize]);
        let start = anchor + Duration::minutes(rng.below(3 * 24 * 4) as i64 * 15 - 36 * 60);
        let step = Duration::minutes(15);
        let mut last_seen = Action::None;
        let mut t = start;
        for _ in 0..(4 * 24 * 2) {
            let next = t + step;
            let a = s.action(t, next, &holidays);
            match a {
                Action::Stop => assert!(s.is_off_at(next, &holidays), "{s} {next}"),
                Action::Start => assert!(!s.is_off_at(next, &holidays), "{s} {next}"),
                Action::None => assert_eq!(
                    s.is_off_at(next, &holidays),
                    s.is_off_at(t, &holidays),
                    "{s} ({t}, {next}]"
                ),
            }
            if a != Action::None {
                last_seen = a;
            }
            t = next;
        }
        assert_eq!(
            s.action(start, t, &holidays),
            last_seen,
            "{s} ({start}, {t}]"
        );
        if let Some(n) = s.next_stop(start, &holidays) {
            assert_eq!(
                s.action(n - Duration::seconds(1), n, &holidays),
                Action::Stop,
                "{s} {n}"
            );
            assert_eq!(s.next_stop(n - Duration::seconds(1), &holidays), Some(n));
            assert!(s.is_off_at(n, &holidays));
        }
        if let Some(n) = s.next_start(start, &holidays) {
            assert_eq!(
                s.action(n - Duration::seconds(1), n, &holidays),
                Action::Start,
                "{s} {n}"
            );
            assert!(!s.is_off_at(n, &holidays));
        }
    }
}

/// In a week with a daylight-saving change, a daily time happens exactly once
/// a day, whatever the hour: skipped times move to the jump, repeated times
/// happen once.
#[test]
fn every_daily_time_happens_once_a_day_across_changes() {
    let weeks = [
        ("America/New_York", "2026-03-05T17:00:00Z"),
        ("America/New_York", "2026-10-29T16:00:00Z"),
        ("Europe/Berlin", "2026-03-26T11:00:00Z"),
        ("Europe/Berlin", "2026-10-22T10:00:00Z"),
        // Lord Howe moves its clock by 30 minutes.
        ("Australia/Lord_Howe", "2026-04-01T00:00:00Z"),
        ("Australia/Lord_Howe", "2026-09-30T00:00:00Z"),
    ];
    for (zone, from) in weeks {
        for time in [
            "0:00", "1:00", "1:30", "2:00", "2:15", "2:30", "2:45", "3:00",
        ] {
            let s = sched(&format!("off=(M-U,{time});on=(M-U,12);tz={zone}"));
            let start = utc(from);
            let minutes = 7 * 24 * 60;
            let stops = (0..minutes)
                .filter(|m| {
                    let t = start + Duration::minutes(*m);
                    s.action(t, t + Duration::minutes(1), &[]) == Action::Stop
                })
                .count();
            assert_eq!(stops, 7, "{zone} {time} from {from}");
        }
    }
}

/// Any text gives a schedule or an error naming the problem, never a panic.
#[test]
fn arbitrary_text_never_panics() {
    let alphabet: Vec<char> = "offnotz=;()[],-:MTWHFSUmtwhfsu0123456789 '\"ü€/u28u3bz_+"
        .chars()
        .collect();
    let mut rng = Rng(0x00c0_ffee);
    let p = policy();
    let at = utc("2026-11-20T19:00:00Z");
    for _ in 0..5000 {
        let len = rng.below(30) as usize;
        let text: String = (0..len)
            .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
            .collect();
        match parse(&text, &p) {
            Ok(s) => {
                let _ = s.action(at - Duration::hours(1), at, &[]);
                // The canonical text reads back as the same schedule.
                assert_eq!(parse(&s.to_string(), &p).as_ref(), Ok(&s), "{text:?}");
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}
