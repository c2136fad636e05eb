//! Time zones of off-hours schedules: Cloud Custodian's aliases (`pt`, `et`,
//! `cet`, ...) and every IANA name, matched without regard to case.

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono_tz::Tz;

/// Cloud Custodian's time zone aliases (c7n 0.9.x `Time.TZ_ALIASES`). Every
/// alias names a locality, so daylight saving time is honoured.
pub const ALIASES: [(&str, &str); 27] = [
    ("pdt", "America/Los_Angeles"),
    ("pt", "America/Los_Angeles"),
    ("pst", "America/Los_Angeles"),
    ("ast", "America/Phoenix"),
    ("at", "America/Phoenix"),
    ("est", "America/New_York"),
    ("edt", "America/New_York"),
    ("et", "America/New_York"),
    ("cst", "America/Chicago"),
    ("cdt", "America/Chicago"),
    ("ct", "America/Chicago"),
    ("mst", "America/Denver"),
    ("mdt", "America/Denver"),
    ("mt", "America/Denver"),
    ("gmt", "Etc/GMT"),
    ("gt", "Etc/GMT"),
    ("bst", "Europe/London"),
    ("ist", "Europe/Dublin"),
    ("cet", "Europe/Berlin"),
    ("it", "Asia/Kolkata"),
    ("jst", "Asia/Tokyo"),
    ("kst", "Asia/Seoul"),
    ("sgt", "Asia/Singapore"),
    ("aet", "Australia/Sydney"),
    ("brt", "America/Sao_Paulo"),
    ("nzst", "Pacific/Auckland"),
    // Cloud Custodian says Etc/UTC; the same zone, printed as UTC.
    ("utc", "UTC"),
];

/// Looks a time zone up by alias or IANA name, ignoring case and surrounding
/// whitespace. `None` when the name is neither.
pub fn lookup(name: &str) -> Option<Tz> {
    let key = name.trim().to_ascii_lowercase();
    if key.is_empty() {
        return None;
    }
    let table = by_lowercase_name();
    if let Some((_, iana)) = ALIASES.iter().find(|(alias, _)| *alias == key) {
        return table.get(&iana.to_ascii_lowercase()).copied();
    }
    table.get(&key).copied()
}

/// Every IANA zone name, lowercased, built once.
fn by_lowercase_name() -> &'static HashMap<String, Tz> {
    static TABLE: OnceLock<HashMap<String, Tz>> = OnceLock::new();
    TABLE.get_or_init(|| {
        chrono_tz::TZ_VARIANTS
            .iter()
            .map(|tz| (tz.name().to_ascii_lowercase(), *tz))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_to_localities() {
        assert_eq!(lookup("pt"), Some(Tz::America__Los_Angeles));
        assert_eq!(lookup("ET"), Some(Tz::America__New_York));
        assert_eq!(lookup("cet"), Some(Tz::Europe__Berlin));
        assert_eq!(lookup("it"), Some(Tz::Asia__Kolkata));
        assert_eq!(lookup("utc"), Some(Tz::UTC));
        for (alias, _) in ALIASES {
            assert!(lookup(alias).is_some(), "alias {alias} must resolve");
        }
    }

    #[test]
    fn iana_names_match_in_any_case() {
        assert_eq!(lookup("Europe/Berlin"), Some(Tz::Europe__Berlin));
        assert_eq!(lookup("europe/berlin"), Some(Tz::Europe__Berlin));
        assert_eq!(
            lookup("AMERICA/PORT-AU-PRINCE"),
            Some(Tz::America__PortauPrince)
        );
        assert_eq!(lookup("etc/gmt+5"), Some(Tz::Etc__GMTPlus5));
        assert_eq!(lookup("UTC"), Some(Tz::UTC));
    }

    #[test]
    fn unknown_names_are_none() {
        assert_eq!(lookup("mars/olympus"), None);
        assert_eq!(lookup(""), None);
        assert_eq!(lookup("xyz"), None);
    }
}
