//! What the team reads about a restore drill: one `steward.snapshot.drill`
//! notification per drill (de-duplicated on the drill id), INFO when the
//! copy restored, verified and was deleted within the RTO, HIGH when the
//! restore failed, did not match its copy or took longer than the RTO. The
//! CLI prints the same lines.

use steward_shared::notify::{Category, Notification, Severity};

use crate::drill::{self, DrillRecord, RestoreRequest};

fn every(seconds: i64) -> String {
    if seconds >= 60 && seconds % 60 == 0 {
        format!("{} min", seconds / 60)
    } else {
        format!("{seconds} s")
    }
}

/// The time to restore as one sentence, saying how accurate it is.
pub fn time_line(record: &DrillRecord, rto_minutes: u32) -> Option<String> {
    let t = drill::timing(record, rto_minutes)?;
    Some(format!(
        "Time to restore: {} min from the restore call to the first check that saw it available (it became available between {} and {} min after the call; checked every {}, so accurate to that interval); RTO {} min: {}.",
        t.minutes,
        t.earliest_minutes,
        t.minutes,
        every(record.check_every_seconds),
        t.rto_minutes,
        if t.within_rto { "within" } else { "EXCEEDED" }
    ))
}

/// The one-line verdict.
pub fn summary(record: &DrillRecord, rto_minutes: u32) -> String {
    let db = &record.database.id;
    if record.failed {
        return format!("DR drill of {db} FAILED; drill database deleted");
    }
    match drill::timing(record, rto_minutes) {
        Some(t) if t.within_rto => format!(
            "DR drill {db}: restored in {} min, RTO {} min, verified, deleted",
            t.minutes, t.rto_minutes
        ),
        Some(t) => format!(
            "DR drill of {db}: restore took {} min, over the {} min RTO",
            t.minutes, t.rto_minutes
        ),
        None => format!("DR drill of {db}: no time to restore measured"),
    }
}

/// The report lines (notification details, CLI output).
pub fn lines(record: &DrillRecord, rto_minutes: u32) -> Vec<String> {
    let mut lines = vec![format!(
        "Drill {} restored DR copy {} of {} into {} in {} at {}.",
        record.drill_id,
        record.copy.id,
        record.database,
        record.identifiers().join(" + "),
        record.dr_region,
        record
            .restore_called
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )];
    lines.extend(time_line(record, rto_minutes));
    if record.failed {
        lines.extend(record.problems.iter().map(|p| format!("Problem: {p}.")));
    } else if record.available_at.is_some() {
        lines.push(format!(
            "Verified against the copy: engine {} {}, storage {} GiB, encrypted={}; not publicly accessible.",
            record.copy.engine,
            record.copy.engine_version,
            record.copy.allocated_storage,
            record.copy.encrypted
        ));
    }
    if record.state == drill::DrillState::Reported {
        lines.push("The drill database is deleted.".into());
    }
    lines
}

/// The drill's notification: INFO when it passed, HIGH otherwise.
pub fn notice(record: &DrillRecord, rto_minutes: u32) -> Notification {
    let passed = drill::passed(record, rto_minutes);
    let severity = if passed {
        Severity::Info
    } else {
        Severity::High
    };
    let mut n = Notification::new(
        severity,
        Category::Snapshot,
        "drill",
        summary(record, rto_minutes),
    );
    n.details = lines(record, rto_minutes);
    if !passed {
        n.next_steps.push(if record.failed {
            format!(
                "Read the problems above: the DR copies of {} may not restore when needed. Fix the cause, then run `steward dr drill {}`.",
                record.database.id, record.database.id
            )
        } else {
            format!(
                "The restore is slower than the RTO: check the instance class (snapshots.drill_instance_class), the size of {}, or agree a longer RTO (snapshots.drill_rto_minutes).",
                record.database.id
            )
        });
    }
    n.account = record.database.account.clone();
    n.region = record.dr_region.clone();
    n.related_resources.push(record.copy.arn.clone());
    n.thread_id = record.copy.arn.clone();
    n.dedupe_key = format!("drill#{}", record.drill_id);
    n.facts.insert("drillId".into(), record.drill_id.clone());
    n.facts
        .insert("database".into(), record.database.to_string());
    n.facts.insert("drRegion".into(), record.dr_region.clone());
    n.facts
        .insert("restoredIdentifier".into(), record.restored_id.clone());
    n.facts.insert("drCopy".into(), record.copy.id.clone());
    n.facts.insert("rtoMinutes".into(), rto_minutes.to_string());
    n.facts.insert(
        "checkEverySeconds".into(),
        record.check_every_seconds.to_string(),
    );
    n.facts.insert("passed".into(), passed.to_string());
    if let Some(t) = drill::timing(record, rto_minutes) {
        n.facts
            .insert("timeToRestoreMinutes".into(), t.minutes.to_string());
    }
    n
}

/// Dry-run and the kill switch: the drill that would start.
pub fn would_start(record: &DrillRecord, request: &RestoreRequest) -> Notification {
    let mut n = Notification::new(
        Severity::Info,
        Category::Snapshot,
        "drill",
        format!(
            "DR drill of {} would restore {} (nothing changed)",
            record.database.id, record.copy.id
        ),
    );
    n.details.push(format!(
        "Would restore DR copy {} into {} ({}, not public) in {}, tagged steward:drill={}.",
        record.copy.id,
        request.identifier,
        request.instance_class,
        record.dr_region,
        record.drill_id
    ));
    n.account = record.database.account.clone();
    n.region = record.dr_region.clone();
    n.thread_id = record.copy.arn.clone();
    n.dedupe_key = format!("drill#{}", record.drill_id);
    n.facts.insert("drillId".into(), record.drill_id.clone());
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::{plan_drill, step, CopyFacts, Restored, Seen};
    use crate::model::{DatabaseKey, Kind};
    use chrono::{DateTime, Utc};
    use steward_shared::policy::Snapshots;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn drilled(available: &str) -> DrillRecord {
        let cfg = Snapshots {
            dr_region: "us-west-2".into(),
            ..Snapshots::default()
        };
        let copy = CopyFacts {
            kind: Kind::Instance,
            id: "dr-orders".into(),
            arn: "arn:aws:rds:us-west-2:123456789012:snapshot:dr-orders".into(),
            engine: "postgres".into(),
            engine_version: "16.3".into(),
            allocated_storage: 20,
            encrypted: true,
        };
        let db = DatabaseKey {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            kind: Kind::Instance,
            id: "orders".into(),
        };
        let (mut r, _) = plan_drill(
            &db,
            copy,
            "202612011200-abc",
            &cfg,
            900,
            at("2026-12-01T12:00:00Z"),
        );
        let seen = Seen {
            primary: Some(Restored {
                status: "available".into(),
                engine: "postgres".into(),
                engine_version: "16.3".into(),
                allocated_storage: 20,
                encrypted: true,
                publicly_accessible: false,
            }),
            member: None,
        };
        step(&mut r, &seen, at(available));
        step(&mut r, &Seen::default(), at(available));
        r
    }

    #[test]
    fn a_pass_is_info_and_names_time_rto_and_accuracy() {
        let n = notice(&drilled("2026-12-01T12:15:00Z"), 60);
        assert_eq!(n.severity, Severity::Info);
        assert_eq!(n.event_type(), "steward.snapshot.drill");
        assert!(
            n.summary.contains("15 min") && n.summary.contains("RTO 60"),
            "{}",
            n.summary
        );
        assert!(n
            .details
            .iter()
            .any(|l| l.contains("accurate to that interval")));
        assert_eq!(n.dedupe_key, "drill#202612011200-abc");
    }

    #[test]
    fn over_the_rto_is_high() {
        let n = notice(&drilled("2026-12-01T13:30:00Z"), 60);
        assert_eq!(n.severity, Severity::High);
        assert!(n.summary.contains("over the 60 min RTO"), "{}", n.summary);
    }
}
