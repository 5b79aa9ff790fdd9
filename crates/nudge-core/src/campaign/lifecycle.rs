//! A campaign's status and the moves between them.
//!
//! ```text
//!  draft ──send──► scheduled ──(start reached)──► sending ──(all queued)──► completed
//!                      │  ▲                        │  ▲
//!                    pause│resume                pause│resume
//!                      ▼  │                        ▼  │
//!                     paused ◄─────────────────────┘
//!  cancel: from draft, scheduled, sending or paused ──► cancelled
//! ```
//!
//! What a person asks for is a [`Command`]; [`CampaignStatus::apply`] says what
//! follows or why it cannot. The engine's own moves (start reached, snapshot taken,
//! test ended, all queued) are recorded on the campaign's [`Progress`].

use super::definition::Schedule;
use crate::Millis;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    /// Being written; may be edited.
    Draft,
    /// Sent with a schedule whose start has not come.
    Scheduled,
    /// Taking the audience's snapshot, queueing messages, or waiting for the test.
    Sending,
    /// Stopped by a person; resumes where it was.
    Paused,
    /// Every recipient was queued or skipped.
    Completed,
    /// Stopped for good; nothing more is queued.
    Cancelled,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Draft => "draft",
            CampaignStatus::Scheduled => "scheduled",
            CampaignStatus::Sending => "sending",
            CampaignStatus::Paused => "paused",
            CampaignStatus::Completed => "completed",
            CampaignStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "draft" => CampaignStatus::Draft,
            "scheduled" => CampaignStatus::Scheduled,
            "sending" => CampaignStatus::Sending,
            "paused" => CampaignStatus::Paused,
            "completed" => CampaignStatus::Completed,
            "cancelled" => CampaignStatus::Cancelled,
            _ => return None,
        })
    }

    /// The engine works on it (or will once its start comes).
    pub fn is_active(self) -> bool {
        matches!(self, CampaignStatus::Scheduled | CampaignStatus::Sending)
    }

    /// What `command` leads to from this status at `now`, for a campaign whose sending
    /// starts at `start` (once sent).
    pub fn apply(self, command: &Command, now: Millis, start: Option<Millis>) -> Result<Self, LifecycleError> {
        use CampaignStatus::*;
        let waiting = |start: Millis| if start > now { Scheduled } else { Sending };
        match (self, command) {
            (Draft, Command::Send(schedule)) => Ok(waiting(schedule.start(now))),
            (Scheduled | Sending, Command::Pause) => Ok(Paused),
            (Paused, Command::Resume) => Ok(waiting(start.unwrap_or(now))),
            (Draft | Scheduled | Sending | Paused, Command::Cancel) => Ok(Cancelled),
            (s, c) => Err(LifecycleError {
                status: s,
                command: c.name(),
            }),
        }
    }
}

/// What a person asks of a campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Send(Schedule),
    Pause,
    Resume,
    Cancel,
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Send(_) => "send",
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::Cancel => "cancel",
        }
    }
}

/// A command the status does not allow (`409 Conflict` at the API).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {} campaign cannot {command}", status.as_str())]
pub struct LifecycleError {
    pub status: CampaignStatus,
    pub command: &'static str,
}

/// How far the engine got with a sent campaign (stored on its row).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Progress {
    /// When sending starts (from the schedule, fixed when sent).
    pub start_at: Option<Millis>,
    /// The audience snapshot is complete (every recipient stored).
    pub snapshot_done: bool,
    /// The contact id the snapshot has reached (it resumes after it).
    pub snapshot_cursor: i64,
    /// When the test's winner is chosen (set when the snapshot is complete).
    pub test_ends_at: Option<Millis>,
    /// The variant the remainder gets.
    pub winner: Option<u8>,
}

/// A campaign's throttle: a token bucket filled at `per_hour` messages an hour that
/// holds up to one minute's worth (at least one message), so messages are queued at
/// an even rate and a pause (quiet hours, time zones not reached yet) never banks a
/// burst larger than a minute's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttle {
    per_hour: u32,
    tokens: f64,
    at: Millis,
}

impl Throttle {
    /// A full bucket at `now`.
    pub fn new(per_hour: u32, now: Millis) -> Self {
        let per_hour = per_hour.max(1);
        Throttle {
            per_hour,
            tokens: Self::capacity(per_hour),
            at: now,
        }
    }

    fn capacity(per_hour: u32) -> f64 {
        (per_hour as f64 / 60.0).max(1.0)
    }

    /// How many messages may be queued at `now`.
    pub fn available(&mut self, now: Millis) -> u64 {
        let elapsed = (now - self.at).max(0) as f64;
        self.tokens = (self.tokens + elapsed * self.per_hour as f64 / 3_600_000.0).min(Self::capacity(self.per_hour));
        self.at = self.at.max(now);
        // A hair of rounding must not hold a whole message back.
        (self.tokens + 1e-9).floor() as u64
    }

    /// `n` messages were queued.
    pub fn take(&mut self, n: u64) {
        self.tokens = (self.tokens - n as f64).max(0.0);
    }

    /// When the next message may be queued (after `available` said none).
    pub fn next_at(&self) -> Millis {
        let missing = (1.0 - self.tokens).max(0.0);
        self.at + (missing * 3_600_000.0 / self.per_hour as f64).ceil() as Millis
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CampaignStatus::*;

    #[test]
    fn sending_now_or_later() {
        assert_eq!(Draft.apply(&Command::Send(Schedule::Now), 10, None), Ok(Sending));
        assert_eq!(
            Draft.apply(&Command::Send(Schedule::At { at: 20 }), 10, None),
            Ok(Scheduled)
        );
        assert_eq!(
            Draft.apply(&Command::Send(Schedule::At { at: 5 }), 10, None),
            Ok(Sending)
        );
    }

    #[test]
    fn pause_resume_and_cancel() {
        assert_eq!(Sending.apply(&Command::Pause, 10, Some(0)), Ok(Paused));
        assert_eq!(Scheduled.apply(&Command::Pause, 10, Some(50)), Ok(Paused));
        assert_eq!(Paused.apply(&Command::Resume, 10, Some(50)), Ok(Scheduled));
        assert_eq!(Paused.apply(&Command::Resume, 60, Some(50)), Ok(Sending));
        for s in [Draft, Scheduled, Sending, Paused] {
            assert_eq!(s.apply(&Command::Cancel, 0, None), Ok(Cancelled));
        }
    }

    #[test]
    fn what_a_status_refuses() {
        let e = Sending.apply(&Command::Send(Schedule::Now), 0, None).unwrap_err();
        assert_eq!(e.to_string(), "a sending campaign cannot send");
        assert!(Completed.apply(&Command::Cancel, 0, None).is_err());
        assert!(Cancelled.apply(&Command::Resume, 0, None).is_err());
        assert!(Draft.apply(&Command::Pause, 0, None).is_err());
        assert!(Sending.apply(&Command::Resume, 0, None).is_err());
    }

    #[test]
    fn statuses_read_back() {
        for s in [Draft, Scheduled, Sending, Paused, Completed, Cancelled] {
            assert_eq!(CampaignStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(CampaignStatus::parse("done"), None);
    }

    #[test]
    fn the_throttle_spreads_evenly() {
        // 3,600 an hour: 60 at once, then one a second.
        let mut t = Throttle::new(3600, 0);
        assert_eq!(t.available(0), 60);
        t.take(60);
        assert_eq!(t.available(0), 0);
        assert_eq!(t.next_at(), 1_000);
        assert_eq!(t.available(10_000), 10);
        t.take(10);
        // An idle hour banks a minute's worth, not an hour's.
        assert_eq!(t.available(3_610_000), 60);
        let mut slow = Throttle::new(10, 0);
        assert_eq!(slow.available(0), 1, "at least one at once");
        slow.take(1);
        assert_eq!(slow.next_at(), 360_000);
        assert_eq!(slow.available(359_999), 0);
        assert_eq!(slow.available(360_000), 1);
    }
}
