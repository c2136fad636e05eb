//! Off-hours schedules (work in progress).
