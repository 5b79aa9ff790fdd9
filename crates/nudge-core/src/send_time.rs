//! Send-time optimisation: when each contact is most likely to read (docs/send-time.md).
//!
//! # The profile
//! A contact's [`Profile`] is a decayed count of engagements per hour of the week
//! (UTC, Monday 00:00–01:00 is hour 0). What counts, and how much
//! ([`Engagement::weight`]): an e-mail open (1; an open within
//! [`MACHINE_OPEN_MS`] of the message leaving is a machine's prefetch — Apple Mail
//! Privacy Protection, a security scanner — and does not count), a click (1), a push
//! notification opened (1), and a site session (0.5: a page view after
//! [`SESSION_GAP_MS`] without one). Each weight halves every [`HALF_LIFE_MS`]; the
//! profile keeps its weights as of its last observation and is updated one
//! observation at a time ([`Profile::observe`]), so nothing ever re-reads a contact's
//! history. The workspace's profile is the sum of every contact's observations.
//!
//! # The estimate (a two-level Dirichlet posterior)
//! With `c(d,h)` the contact's decayed weight on day `d`, hour `h`, `c(h) = Σ_d c(d,h)`,
//! `n = Σ c`, and the workspace's distribution `w(d,h) = (W(d,h) + ε) / (ΣW + 168ε)`
//! (its decayed weights smoothed by [`WORKSPACE_SMOOTHING`] = ε, so an empty
//! workspace is uniform):
//!
//! - the hour of day: `θ(h) = (c(h) + κ_h·w(h)) / (n + κ_h)`, the posterior mean of a
//!   Dirichlet prior whose mean is the workspace's hour-of-day distribution `w(h)`
//!   with [`PRIOR_HOURS`] pseudo-observations;
//! - the day given the hour: `φ(d|h) = (c(d,h) + κ_d·w(d|h)) / (c(h) + κ_d)`, the same
//!   rule with [`PRIOR_DAYS`] pseudo-observations;
//! - `P(d,h) = θ(h)·φ(d|h)`, which sums to 1.
//!
//! A contact with no observations gets the workspace's profile; every observation moves
//! the estimate toward the contact's own. The hour of day is estimated first because
//! people keep their hours from day to day far more than their days: 5 engagements say
//! something about the hour, little about the hour of each of 7 days.
//! The confidence is `n / (n + κ_h)`: the share of the hour-of-day estimate that comes
//! from the contact's own (decayed) observations.
//!
//! # The choice
//! [`Estimate::choose`] takes the best hour slot within a horizon whose start a send
//! rule (quiet hours, a send window) allows, scoring each slot by its probability
//! smoothed with its neighbours (¼, ½, ¼), since a read near the peak is as good as
//! one at it and a single noisy hour should not win. Slots are taken in time order
//! and a later one replaces the best so far only when its score is more than
//! [`PATIENCE`] (2 %) higher: a slot as good as today's tomorrow is not worth the
//! wait, and ties go to the earliest.

use crate::Millis;
use crate::protocol::event_names;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Hours in a week: the profile's bins.
pub const HOURS_PER_WEEK: usize = 168;
pub const HOUR_MS: Millis = 3_600_000;
/// An engagement's weight halves in this time (60 days).
pub const HALF_LIFE_MS: Millis = 60 * 24 * HOUR_MS;
/// A page view this long after the contact's previous one starts a new site session.
pub const SESSION_GAP_MS: Millis = 30 * 60_000;
/// An open this soon after the message left is a machine's (a prefetch), not a person's.
pub const MACHINE_OPEN_MS: Millis = 60_000;
/// Pseudo-observations of the workspace's profile in a contact's hour of day (κ_h).
pub const PRIOR_HOURS: f64 = 4.0;
/// Pseudo-observations of the workspace's days in a contact's hour (κ_d).
pub const PRIOR_DAYS: f64 = 2.0;
/// Pseudo-observations added to each hour of the workspace's profile (ε).
pub const WORKSPACE_SMOOTHING: f64 = 0.1;
/// A later slot is chosen over an earlier one only when its score is higher by more
/// than this share: waiting a day for a slot as good as today's is not worth it.
pub const PATIENCE: f64 = 0.02;
/// Weights below this are dropped from a profile (they no longer matter).
const NEGLIGIBLE: f64 = 1e-4;

/// Something a contact did that shows when they read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engagement {
    /// An e-mail's tracking pixel fetched: `sent_at` is when the message left (when
    /// known), to tell a machine's prefetch from a person.
    EmailOpen {
        sent_at: Option<Millis>,
    },
    EmailClick,
    PushOpen,
    /// A page view (a session starts after [`SESSION_GAP_MS`] without one).
    PageView,
}

impl Engagement {
    /// How much one counts.
    pub fn weight(self) -> f64 {
        match self {
            Engagement::EmailOpen { .. } | Engagement::EmailClick | Engagement::PushOpen => 1.0,
            Engagement::PageView => 0.5,
        }
    }

    /// A machine's open: within [`MACHINE_OPEN_MS`] of the message leaving.
    pub fn is_machine(self, at: Millis) -> bool {
        matches!(self, Engagement::EmailOpen { sent_at: Some(s) } if at >= s && at - s < MACHINE_OPEN_MS)
    }
}

/// The events (by name) that are engagements; with page and screen calls.
pub const ENGAGEMENT_EVENTS: [&str; 3] = [
    event_names::EMAIL_OPENED,
    event_names::EMAIL_LINK_CLICKED,
    event_names::PUSH_NOTIFICATION_TAPPED,
];

/// The engagement a stored event is, if any: its call type (`track`, `page`, ...),
/// its name, and for an open the time its message left.
pub fn engagement_of(call_type: &str, name: Option<&str>, message_sent_at: Option<Millis>) -> Option<Engagement> {
    match (call_type, name) {
        ("page" | "screen", _) => Some(Engagement::PageView),
        (_, Some(event_names::EMAIL_OPENED)) => Some(Engagement::EmailOpen {
            sent_at: message_sent_at,
        }),
        (_, Some(event_names::EMAIL_LINK_CLICKED)) => Some(Engagement::EmailClick),
        (_, Some(event_names::PUSH_NOTIFICATION_TAPPED)) => Some(Engagement::PushOpen),
        _ => None,
    }
}

/// Counts an engagement in the contact's profile and, when it counts, in the
/// workspace's. Whether it counted.
pub fn record(contact: &mut Profile, workspace: &mut Profile, what: Engagement, at: Millis) -> bool {
    let counted = contact.observe(what, at);
    if counted {
        workspace.add(hour_of_week(at), what.weight(), at);
        workspace.engagements += 1;
    }
    counted
}

/// The hour of the week of an instant (UTC; Monday 00:00 is 0).
pub fn hour_of_week(t: Millis) -> usize {
    // 1970-01-01 was a Thursday: 3 days after a Monday.
    (t.div_euclid(HOUR_MS) + 72).rem_euclid(HOURS_PER_WEEK as i64) as usize
}

/// `2^(−Δ/half-life)`.
fn decay(delta: Millis) -> f64 {
    (-(delta as f64) / HALF_LIFE_MS as f64).exp2()
}

/// A decayed engagement count per hour of the week (see the module's documentation).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Weight per hour of the week (absent: 0), as of `as_of`.
    pub weights: BTreeMap<u8, f64>,
    /// When the weights were last decayed to (the latest observation).
    pub as_of: Millis,
    /// Engagements counted, undecayed.
    pub engagements: u64,
    /// The latest page view (sessions are told apart by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_page_view: Option<Millis>,
}

impl Profile {
    /// Counts one engagement at `at`; `false` when it does not count (a machine's
    /// open, a page view within a session).
    pub fn observe(&mut self, what: Engagement, at: Millis) -> bool {
        if what.is_machine(at) {
            return false;
        }
        if what == Engagement::PageView {
            let previous = self.last_page_view;
            self.last_page_view = Some(previous.map_or(at, |p| p.max(at)));
            if previous.is_some_and(|p| (at - p).abs() < SESSION_GAP_MS) {
                return false;
            }
        }
        self.add(hour_of_week(at), what.weight(), at);
        self.engagements += 1;
        true
    }

    /// Adds `weight` observed at `at` to `hour`, decaying the rest to the later of
    /// `at` and `as_of`.
    fn add(&mut self, hour: usize, weight: f64, at: Millis) {
        if self.weights.is_empty() || at > self.as_of {
            self.decay_to(at);
        }
        let w = weight * decay(self.as_of - at);
        *self.weights.entry(hour as u8).or_default() += w;
    }

    fn decay_to(&mut self, t: Millis) {
        if t > self.as_of && !self.weights.is_empty() {
            let f = decay(t - self.as_of);
            self.weights.values_mut().for_each(|w| *w *= f);
            self.weights.retain(|_, w| *w >= NEGLIGIBLE);
        }
        self.as_of = self.as_of.max(t);
    }

    /// Adds another profile (a merged contact's, or a contact's to the workspace's).
    pub fn absorb(&mut self, other: &Profile) {
        let t = self.as_of.max(other.as_of);
        self.decay_to(t);
        let f = decay(t - other.as_of);
        for (&h, &w) in &other.weights {
            *self.weights.entry(h).or_default() += w * f;
        }
        self.engagements += other.engagements;
        self.last_page_view = match (self.last_page_view, other.last_page_view) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// The weights decayed to `now` (observations after `now` count as of `now`).
    pub fn weights_at(&self, now: Millis) -> [f64; HOURS_PER_WEEK] {
        let f = if now > self.as_of { decay(now - self.as_of) } else { 1.0 };
        let mut out = [0.0; HOURS_PER_WEEK];
        for (&h, &w) in &self.weights {
            if let Some(slot) = out.get_mut(h as usize) {
                *slot = w * f;
            }
        }
        out
    }
}

/// One hour's probability in an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HourShare {
    /// Hour of the day, UTC (0–23).
    pub hour: u8,
    pub probability: f64,
}

/// A contact's estimated engagement distribution (see the module's documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// `P(d,h)` per hour of the week (sums to 1).
    pub hour_of_week: [f64; HOURS_PER_WEEK],
    /// `θ(h)` per hour of the day, UTC (sums to 1).
    pub hour_of_day: [f64; 24],
    /// The contact's decayed observations `n`.
    pub observations: f64,
    /// `n / (n + κ_h)`.
    pub confidence: f64,
}

/// Blends a contact's profile with the workspace's as of `now` (the two-level
/// Dirichlet rule of the module's documentation).
pub fn estimate(contact: &Profile, workspace: &Profile, now: Millis) -> Estimate {
    let c = contact.weights_at(now);
    let ws = workspace.weights_at(now);
    let ws_total: f64 = ws.iter().sum();
    let w: Vec<f64> = ws
        .iter()
        .map(|x| (x + WORKSPACE_SMOOTHING) / (ws_total + WORKSPACE_SMOOTHING * HOURS_PER_WEEK as f64))
        .collect();
    let mut w_hour = [0.0; 24];
    let mut c_hour = [0.0; 24];
    for i in 0..HOURS_PER_WEEK {
        w_hour[i % 24] += w[i];
        c_hour[i % 24] += c[i];
    }
    let n: f64 = c_hour.iter().sum();
    let mut hour_of_day = [0.0; 24];
    for h in 0..24 {
        hour_of_day[h] = (c_hour[h] + PRIOR_HOURS * w_hour[h]) / (n + PRIOR_HOURS);
    }
    let mut hour_of_week = [0.0; HOURS_PER_WEEK];
    for i in 0..HOURS_PER_WEEK {
        let h = i % 24;
        let day_given_hour = (c[i] + PRIOR_DAYS * w[i] / w_hour[h]) / (c_hour[h] + PRIOR_DAYS);
        hour_of_week[i] = hour_of_day[h] * day_given_hour;
    }
    Estimate {
        hour_of_week,
        hour_of_day,
        observations: n,
        confidence: n / (n + PRIOR_HOURS),
    }
}

/// Where [`Estimate::choose`] sends, and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    pub at: Millis,
    /// The slot's hour of the week.
    pub hour_of_week: usize,
    /// The slot's smoothed probability.
    pub score: f64,
}

impl Estimate {
    /// A slot's score: its probability with its neighbours' (¼, ½, ¼).
    pub fn score(&self, hour_of_week: usize) -> f64 {
        let p = |i: usize| self.hour_of_week[i % HOURS_PER_WEEK];
        0.25 * p(hour_of_week + HOURS_PER_WEEK - 1) + 0.5 * p(hour_of_week) + 0.25 * p(hour_of_week + 1)
    }

    /// The best moment in `[from, from + horizon)`: each hour slot that starts (or is
    /// under way) in it is tried at the first moment `allowed` permits from its start
    /// (quiet hours, a send window: the earliest allowed moment at or after a time),
    /// which must stay in the slot and the horizon; in time order, a slot replaces the
    /// best so far when its score is more than [`PATIENCE`] higher (ties and near-ties
    /// go to the earliest). `None` when no slot is allowed.
    pub fn choose(&self, from: Millis, horizon: Millis, allowed: impl Fn(Millis) -> Millis) -> Option<Choice> {
        let end = from.saturating_add(horizon.max(1));
        let mut best: Option<Choice> = None;
        let mut slot = from.div_euclid(HOUR_MS) * HOUR_MS;
        while slot < end {
            let start = slot.max(from);
            let at = allowed(start);
            if at < slot + HOUR_MS && at < end && at >= start {
                let how = hour_of_week(slot);
                let score = self.score(how);
                if best.is_none_or(|b| score > b.score * (1.0 + PATIENCE)) {
                    best = Some(Choice {
                        at,
                        hour_of_week: how,
                        score,
                    });
                }
            }
            slot += HOUR_MS;
        }
        best
    }

    /// The `k` most likely hours of the day, best first.
    pub fn best_hours(&self, k: usize) -> Vec<HourShare> {
        let mut hours: Vec<HourShare> = (0..24)
            .map(|h| HourShare {
                hour: h as u8,
                probability: self.hour_of_day[h],
            })
            .collect();
        hours.sort_by(|a, b| b.probability.total_cmp(&a.probability).then(a.hour.cmp(&b.hour)));
        hours.truncate(k);
        hours
    }

    /// The most likely hour of the week (smoothed as [`Self::score`]).
    pub fn best_hour_of_week(&self) -> usize {
        (0..HOURS_PER_WEEK)
            .max_by(|&a, &b| self.score(a).total_cmp(&self.score(b)).then(b.cmp(&a)))
            .unwrap_or(0)
    }
}

/// What a marketer reads about a contact's send time (the API's answer, the profile
/// page).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The three most likely hours of the day (UTC), best first.
    pub best_hours: Vec<HourShare>,
    /// The most likely hour of the week: day (`monday`…) and hour (UTC).
    pub best_day: &'static str,
    pub best_day_hour: u8,
    /// The contact's decayed observations.
    pub observations: f64,
    /// Engagements counted, undecayed.
    pub engagements: u64,
    /// `observations / (observations + κ)`, 0 to 1: how much of the estimate is the
    /// contact's own rather than the workspace's.
    pub confidence: f64,
    /// `low` (under 0.5), `medium` (under 0.8) or `high`.
    pub confidence_band: &'static str,
    /// The workspace's decayed observations (what a contact without history gets).
    pub workspace_observations: f64,
    /// When the profile last counted something (`None`: never).
    pub last_engagement_at: Option<Millis>,
}

pub const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// The summary of a contact's profile as of `now`.
pub fn summarise(contact: &Profile, workspace: &Profile, now: Millis) -> Summary {
    let e = estimate(contact, workspace, now);
    let best = e.best_hour_of_week();
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    Summary {
        best_hours: e
            .best_hours(3)
            .into_iter()
            .map(|h| HourShare {
                hour: h.hour,
                probability: round(h.probability),
            })
            .collect(),
        best_day: DAYS[best / 24],
        best_day_hour: (best % 24) as u8,
        observations: round(e.observations),
        engagements: contact.engagements,
        confidence: round(e.confidence),
        confidence_band: if e.confidence < 0.5 {
            "low"
        } else if e.confidence < 0.8 {
            "medium"
        } else {
            "high"
        },
        workspace_observations: round(workspace.weights_at(now).iter().sum()),
        last_engagement_at: (contact.engagements > 0).then_some(contact.as_of),
    }
}

/// A journey send step's or a campaign's "at the contact's best time within the next
/// `within_hours` hours".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BestTime {
    pub within_hours: u32,
}

/// The longest horizon a best time may look ahead (a week: every hour of the week).
pub const MAX_WITHIN_HOURS: u32 = 168;

impl BestTime {
    /// What is wrong with it, if anything (for the `within_hours` field).
    pub fn problem(&self) -> Option<String> {
        (self.within_hours == 0 || self.within_hours > MAX_WITHIN_HOURS).then(|| {
            format!(
                "must be between 1 and {MAX_WITHIN_HOURS} hours, not {}",
                self.within_hours
            )
        })
    }

    pub fn horizon(&self) -> Millis {
        self.within_hours as Millis * HOUR_MS
    }
}

#[cfg(test)]
mod tests;
