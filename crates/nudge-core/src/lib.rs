//! Pure domain of Nudge: contacts, events and the parsing of Segment-compatible
//! messages. Nothing in this crate performs I/O, reads the clock or draws random
//! numbers on its own: callers pass the time and id generators in, so every rule here
//! can be unit-tested deterministically.

pub mod access;
pub mod attribution;
pub mod call;
pub mod campaign;
pub mod clock;
pub mod contact;
pub mod form;
pub mod journey;
pub mod orders;
pub mod predict;
pub mod protocol;
pub mod recommend;
pub mod retention;
pub mod scoring;
pub mod segment;
pub mod send_time;
mod shape;

pub use call::{Call, CallKind, ParseError, Parsed, Received, parse_batch, parse_single};
pub use clock::{Clock, ManualClock, SystemClock};
pub use contact::{
    Contact, ContactId, Identity, IdentityKind, Known, Resolution, Subscription, merge_traits, resolve, resolve_alias,
};
pub use shape::{ShapeError, read_shape};

/// Milliseconds since the Unix epoch, UTC. The one representation of an instant that
/// crosses crate boundaries and storage backends.
pub type Millis = i64;

/// Formats an instant as RFC 3339 with millisecond precision (`2026-11-23T16:15:00.123Z`).
pub fn format_millis(ms: Millis) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => format!("{ts:.3}"),
        Err(_) => ms.to_string(),
    }
}

/// Parses an ISO 8601 / RFC 3339 instant. Dates without a time (`2026-11-23`) are read
/// as midnight UTC, and date-times without an offset are read as UTC, as Segment does.
pub fn parse_instant(s: &str) -> Option<Millis> {
    let s = s.trim();
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Some(ts.as_millisecond());
    }
    if let Ok(dt) = s.parse::<jiff::civil::DateTime>() {
        return dt
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp().as_millisecond());
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        return d
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp().as_millisecond());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip() {
        let ms = parse_instant("2026-11-23T16:15:00.123Z").unwrap();
        assert_eq!(format_millis(ms), "2026-11-23T16:15:00.123Z");
        assert_eq!(
            parse_instant("2026-11-23T18:15:00.123+02:00"),
            Some(ms),
            "offsets are honoured"
        );
        assert_eq!(
            parse_instant("2026-11-23T16:15:00.123"),
            Some(ms),
            "no offset means UTC"
        );
        assert_eq!(parse_instant("2026-11-23"), parse_instant("2026-11-23T00:00:00Z"));
        assert_eq!(parse_instant("yesterday"), None);
        assert_eq!(parse_instant(""), None);
    }
}
