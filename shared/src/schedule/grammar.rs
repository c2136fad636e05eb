//! The off-hours tag grammar: Cloud Custodian's `off=(M-F,19);on=(M-F,7);tz=pt`
//! with lists, wrapping day ranges and the escaped form, plus steward's
//! extensions (whitespace around separators, `hour:minute` times).
//!
//! This module turns a tag value into the parts it names; combining them with
//! the policy's default schedule happens in the parent module.

use chrono::Weekday;
use chrono_tz::Tz;

use super::zones;

/// One `(days,time)` pair: on these weekdays, at this local time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// First day of the range (Monday is 0).
    pub(crate) first: u8,
    /// Last day of the range; smaller than `first` when the range wraps (`S-M`).
    pub(crate) last: u8,
    pub(crate) hour: u8,
    pub(crate) minute: u8,
}

/// Day letters in Cloud Custodian's grammar, Monday first.
const DAY_LETTERS: [char; 7] = ['m', 't', 'w', 'h', 'f', 's', 'u'];

impl Rule {
    /// A rule for the days `first..=last` (wrapping past Sunday when `last < first`).
    pub fn new(first: Weekday, last: Weekday, hour: u8, minute: u8) -> Rule {
        Rule {
            first: first.num_days_from_monday() as u8,
            last: last.num_days_from_monday() as u8,
            hour,
            minute,
        }
    }

    /// Whether the rule applies on this weekday.
    pub fn applies_on(&self, day: Weekday) -> bool {
        let d = day.num_days_from_monday() as u8;
        if self.first <= self.last {
            self.first <= d && d <= self.last
        } else {
            d >= self.first || d <= self.last
        }
    }

    pub fn hour(&self) -> u8 {
        self.hour
    }

    pub fn minute(&self) -> u8 {
        self.minute
    }

    /// The weekdays the rule applies on, Monday first.
    pub fn days(&self) -> Vec<Weekday> {
        (0..7u8)
            .map(weekday_from_index)
            .filter(|d| self.applies_on(*d))
            .collect()
    }

    /// The days in the grammar's notation: `M-F`, `S-M`, `U`.
    pub fn days_text(&self) -> String {
        let first = DAY_LETTERS[self.first as usize].to_ascii_uppercase();
        let last = DAY_LETTERS[self.last as usize].to_ascii_uppercase();
        if self.first == self.last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        }
    }

    /// The time in the grammar's notation: `19`, or `18:30` when minutes are set.
    pub fn time_text(&self) -> String {
        if self.minute == 0 {
            self.hour.to_string()
        } else {
            format!("{}:{:02}", self.hour, self.minute)
        }
    }

    /// The rule in the grammar's notation: `(M-F,19)`.
    pub fn text(&self) -> String {
        format!("({},{})", self.days_text(), self.time_text())
    }
}

pub(crate) fn weekday_from_index(i: u8) -> Weekday {
    match i {
        0 => Weekday::Mon,
        1 => Weekday::Tue,
        2 => Weekday::Wed,
        3 => Weekday::Thu,
        4 => Weekday::Fri,
        5 => Weekday::Sat,
        _ => Weekday::Sun,
    }
}

/// What one tag value names; parts it leaves out come from the policy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parts {
    pub off: Option<Vec<Rule>>,
    pub on: Option<Vec<Rule>>,
    pub tz: Option<Tz>,
}

/// Escape codes for characters some services forbid in tag values
/// (`"u" + hex(ord(char))`, as Cloud Custodian defines them).
const ESCAPES: [(&str, char); 9] = [
    ("u28", '('),
    ("u29", ')'),
    ("u5b", '['),
    ("u5d", ']'),
    ("u2c", ','),
    ("u3b", ';'),
    ("u3d", '='),
    ("u2f", '/'),
    ("u2d", '-'),
];

/// Lowercases, replaces escape codes, and removes surrounding whitespace and quotes.
pub fn normalize(raw: &str) -> String {
    let lower = raw.trim().to_lowercase();
    let mut out = String::with_capacity(lower.len());
    let mut rest = lower.as_str();
    while let Some(c) = rest.chars().next() {
        if c == 'u' {
            if let Some((code, replacement)) =
                ESCAPES.iter().find(|(code, _)| rest.starts_with(code))
            {
                out.push(*replacement);
                rest = &rest[code.len()..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out.trim_matches(|c: char| c == '\'' || c == '"' || c.is_whitespace())
        .to_string()
}

/// Parses a normalized tag value (see [`normalize`]) into the parts it names.
/// The value must not be empty, `on` or `off`; the caller handles those.
pub fn parse_parts(value: &str) -> Result<Parts, String> {
    let mut parts = Parts::default();
    let mut seen_tz = false;
    for segment in value.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((key, body)) = segment.split_once('=') else {
            return Err(format!(
                "`{segment}` is not key=value; expected off=(days,hour), on=(days,hour) or tz=zone"
            ));
        };
        let (key, body) = (key.trim(), body.trim());
        if body.contains('=') {
            return Err(format!(
                "`{segment}` has more than one `=`; separate parts with `;`"
            ));
        }
        match key {
            "off" | "on" => {
                let rules = parse_rules(body).map_err(|e| format!("{key}: {e}"))?;
                let slot = if key == "off" {
                    &mut parts.off
                } else {
                    &mut parts.on
                };
                if slot.is_some() {
                    return Err(format!("`{key}` is given twice; put several times in one list: {key}=[(M-F,19),(S,13)]"));
                }
                *slot = Some(rules);
            }
            "tz" => {
                if seen_tz {
                    return Err("`tz` is given twice".to_string());
                }
                seen_tz = true;
                if !body.is_empty() {
                    parts.tz = Some(zones::lookup(body).ok_or_else(|| {
                        format!(
                            "tz: unknown time zone `{body}`; use an IANA name such as Europe/Berlin or an alias such as pt, et, cet, utc"
                        )
                    })?);
                }
            }
            other => {
                return Err(format!(
                    "unknown key `{other}`; the keys are off, on and tz"
                ));
            }
        }
    }
    if parts.off.is_none() && parts.on.is_none() && !seen_tz {
        return Err("names no off, on or tz".to_string());
    }
    Ok(parts)
}

/// Parses `(days,time)` or a list `[(days,time),(days,time)]` (brackets optional).
fn parse_rules(body: &str) -> Result<Vec<Rule>, String> {
    let inner = match (body.starts_with('['), body.ends_with(']')) {
        (true, true) => &body[1..body.len() - 1],
        (false, false) => body,
        _ => return Err(format!("unbalanced brackets in `{body}`")),
    };
    let mut rules = Vec::new();
    let mut rest = inner.trim();
    if rest.is_empty() {
        return Err("needs at least one (days,hour), for example (M-F,19)".to_string());
    }
    loop {
        let Some(after_open) = rest.strip_prefix('(') else {
            return Err(format!(
                "expected `(` at `{rest}`; write (days,hour), for example (M-F,19)"
            ));
        };
        let Some(close) = after_open.find(')') else {
            return Err(format!("missing `)` in `{rest}`"));
        };
        rules.push(parse_rule(&after_open[..close])?);
        rest = after_open[close + 1..].trim_start();
        if rest.is_empty() {
            return Ok(rules);
        }
        let Some(next) = rest.strip_prefix(',') else {
            return Err(format!("expected `,` between times at `{rest}`"));
        };
        rest = next.trim_start();
    }
}

/// Parses the inside of `(days,time)`.
fn parse_rule(inside: &str) -> Result<Rule, String> {
    let fields: Vec<&str> = inside.split(',').map(str::trim).collect();
    let [days, time] = fields.as_slice() else {
        return Err(format!(
            "`({inside})` must be (days,hour), for example (M-F,19)"
        ));
    };
    let (first, last) = parse_days(days)?;
    let (hour, minute) = parse_time(time)?;
    Ok(Rule {
        first,
        last,
        hour,
        minute,
    })
}

fn day_index(text: &str) -> Option<u8> {
    let mut chars = text.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return None;
    };
    DAY_LETTERS.iter().position(|d| *d == c).map(|i| i as u8)
}

fn parse_days(text: &str) -> Result<(u8, u8), String> {
    let bad = || {
        format!("`{text}` is not a day or day range; days are M T W H F S U, ranges look like M-F or S-M")
    };
    match text.split_once('-') {
        None => day_index(text).map(|d| (d, d)).ok_or_else(bad),
        Some((a, b)) => match (day_index(a.trim()), day_index(b.trim())) {
            (Some(a), Some(b)) => Ok((a, b)),
            _ => Err(bad()),
        },
    }
}

fn parse_time(text: &str) -> Result<(u8, u8), String> {
    let bad = || format!("`{text}` is not an hour (0-23) or hour:minute (for example 18:30)");
    let (hour, minute) = match text.split_once(':') {
        None => (text, None),
        Some((h, m)) => (h, Some(m)),
    };
    let digits = |s: &str, max_len: usize| {
        !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(hour, 2) {
        return Err(bad());
    }
    let hour: u8 = hour.parse().map_err(|_| bad())?;
    let minute: u8 = match minute {
        None => 0,
        Some(m) if m.len() == 2 && digits(m, 2) => m.parse().map_err(|_| bad())?,
        Some(_) => return Err(bad()),
    };
    if hour > 23 || minute > 59 {
        return Err(bad());
    }
    Ok((hour, minute))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(first: u8, last: u8, hour: u8, minute: u8) -> Rule {
        Rule {
            first,
            last,
            hour,
            minute,
        }
    }

    #[test]
    fn parses_the_classic_form() {
        let p = parse_parts(&normalize("off=(M-F,19);on=(M-F,7);tz=pt")).unwrap();
        assert_eq!(p.off, Some(vec![rule(0, 4, 19, 0)]));
        assert_eq!(p.on, Some(vec![rule(0, 4, 7, 0)]));
        assert_eq!(p.tz, Some(Tz::America__Los_Angeles));
    }

    #[test]
    fn parses_lists_with_and_without_brackets() {
        let p = parse_parts("off=[(m-f,21),(u,18)];on=[(m-f,6),(u,10)]").unwrap();
        assert_eq!(p.off, Some(vec![rule(0, 4, 21, 0), rule(6, 6, 18, 0)]));
        assert_eq!(p.on, Some(vec![rule(0, 4, 6, 0), rule(6, 6, 10, 0)]));
        let q = parse_parts("off=(m-f,21),(u,18)").unwrap();
        assert_eq!(q.off, p.off);
    }

    #[test]
    fn wrapping_ranges_cover_the_weekend() {
        let p = parse_parts("off=(s-m,1)").unwrap();
        let r = p.off.unwrap()[0];
        assert_eq!(r.days(), vec![Weekday::Mon, Weekday::Sat, Weekday::Sun]);
        let all = parse_parts("on=(u-s,8)").unwrap().on.unwrap()[0];
        assert_eq!(all.days().len(), 7);
        let f_m = parse_parts("on=(f-m,8)").unwrap().on.unwrap()[0];
        assert_eq!(
            f_m.days(),
            vec![Weekday::Mon, Weekday::Fri, Weekday::Sat, Weekday::Sun]
        );
        assert_eq!(f_m.days_text(), "F-M");
    }

    #[test]
    fn escaped_form_is_the_same_schedule() {
        let escaped = normalize("offu3du28M-Fu2c18u29u3btzu3dAustraliau2fSydney");
        assert_eq!(escaped, "off=(m-f,18);tz=australia/sydney");
        let list = normalize("off=u5bu28M-Fu2c18u29u2cu28Su2c13u29u5d");
        assert_eq!(list, "off=[(m-f,18),(s,13)]");
        // Sunday followed by an escaped comma.
        assert_eq!(normalize("onu3du28Uu2c10u29"), "on=(u,10)");
        let p = parse_parts(&escaped).unwrap();
        assert_eq!(p.tz, Some(Tz::Australia__Sydney));
    }

    #[test]
    fn case_quotes_and_whitespace() {
        assert_eq!(
            normalize("  \"OFF=(M-F,19);ON=(M-F,7)\" "),
            "off=(m-f,19);on=(m-f,7)"
        );
        assert_eq!(normalize("'off'"), "off");
        let p = parse_parts(&normalize(
            "off=(M-F,19) ; on = [ (M-F, 7) , (S,9) ] ;tz = ET;",
        ))
        .unwrap();
        assert_eq!(p.off, Some(vec![rule(0, 4, 19, 0)]));
        assert_eq!(p.on, Some(vec![rule(0, 4, 7, 0), rule(5, 5, 9, 0)]));
        assert_eq!(p.tz, Some(Tz::America__New_York));
    }

    #[test]
    fn minutes_are_accepted() {
        let p = parse_parts("off=(m-f,18:30);on=(m-f,07:05)").unwrap();
        assert_eq!(p.off, Some(vec![rule(0, 4, 18, 30)]));
        assert_eq!(p.on, Some(vec![rule(0, 4, 7, 5)]));
        assert_eq!(p.off.unwrap()[0].text(), "(M-F,18:30)");
    }

    #[test]
    fn partial_values_name_only_what_they_set() {
        let p = parse_parts("tz=cet").unwrap();
        assert_eq!(
            p,
            Parts {
                off: None,
                on: None,
                tz: Some(Tz::Europe__Berlin)
            }
        );
        let p = parse_parts("on=(m-f,8)").unwrap();
        assert!(p.off.is_none() && p.tz.is_none());
        // An empty tz takes the default, as in Cloud Custodian.
        assert_eq!(parse_parts("off=(m-f,19);tz=").unwrap().tz, None);
    }

    #[test]
    fn malformed_values_say_what_is_wrong() {
        let cases = [
            ("off=(m-f,24)", "`24` is not an hour"),
            ("off=(m-f,18:60)", "`18:60` is not an hour"),
            ("off=(m-f,7pm)", "`7pm` is not an hour"),
            ("off=(x-f,19)", "`x-f` is not a day"),
            ("off=(mf,19)", "`mf` is not a day"),
            ("off=(m-f-s,19)", "`m-f-s` is not a day"),
            ("off=(,19)", "`` is not a day"),
            ("off=(m-f)", "must be (days,hour)"),
            ("off=(m-f,19", "missing `)`"),
            ("off=[(m-f,19)", "unbalanced brackets"),
            ("off=m-f,19", "expected `(`"),
            ("off=", "needs at least one"),
            ("off=(m-f,19)(s,3)", "expected `,`"),
            ("of=(m-f,19)", "unknown key `of`"),
            ("off=(m-f,19);tz=mars/base", "unknown time zone `mars/base`"),
            ("off=(m-f,19);off=(s,3)", "given twice"),
            ("off=(m-f,19)=", "more than one `=`"),
            ("foo", "is not key=value"),
        ];
        for (value, expected) in cases {
            let err = parse_parts(value).expect_err(value);
            assert!(err.contains(expected), "{value}: {err}");
        }
    }
}
