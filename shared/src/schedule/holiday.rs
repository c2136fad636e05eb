//! A policy holiday: a date (`YYYY-MM-DD`, in the schedule's zone) on which
//! no start transition happens. Parsed once, when the policy is read; a value
//! that is not a date is a policy error at its line, never skipped later.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A date with no start transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Holiday(NaiveDate);

impl Holiday {
    pub fn new(date: NaiveDate) -> Holiday {
        Holiday(date)
    }

    pub fn date(self) -> NaiveDate {
        self.0
    }
}

/// Why a policy holiday is not a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotADate(pub String);

impl fmt::Display for NotADate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The policy loader reports the key between the leading backticks
        // as the offending key, with the rest as the message.
        write!(
            f,
            "`offhours.holidays`: \"{}\" is not a date (write YYYY-MM-DD)",
            self.0
        )
    }
}

impl std::error::Error for NotADate {}

impl FromStr for Holiday {
    type Err = NotADate;

    fn from_str(text: &str) -> Result<Holiday, NotADate> {
        NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .map(Holiday)
            .map_err(|_| NotADate(text.to_string()))
    }
}

impl fmt::Display for Holiday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl Serialize for Holiday {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Holiday {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Holiday, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_round_trips_and_anything_else_is_refused() {
        let day: Holiday = " 2026-12-25 ".parse().unwrap();
        assert_eq!(day.to_string(), "2026-12-25");
        assert_eq!(day.date(), NaiveDate::from_ymd_opt(2026, 12, 25).unwrap());
        for bad in ["xmas", "2026-02-30", "25/12/2026", ""] {
            let err = bad.parse::<Holiday>().unwrap_err();
            assert!(err.to_string().contains("YYYY-MM-DD"), "{err}");
        }
    }
}
