//! Lead scoring as the store keeps it: the workspace's scores and rules, each
//! contact's scores, and the decay timers (docs/lead-scoring.md). The decisions are
//! `nudge_core::scoring`'s; what a score change writes is planned in `plan.rs`.

use crate::Result;
use async_trait::async_trait;
use nudge_core::scoring::{Reason, RuleDefinition, ScoreDefinition};
use nudge_core::{ContactId, Millis};
use serde::Serialize;

/// A stored scoring rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredRule {
    pub id: i64,
    #[serde(flatten)]
    pub definition: RuleDefinition,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A stored score definition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredScore {
    #[serde(flatten)]
    pub definition: ScoreDefinition,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A contact's score as of a moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContactScore {
    pub score: String,
    /// The value at the moment asked (decayed).
    pub value: f64,
    /// The value in the contact's trait (last materialised).
    pub written: f64,
    /// The points at `anchor_at`, from which the value decays.
    pub points: f64,
    pub anchor_at: Millis,
    /// The stage of `value` (the score's stages as defined now).
    pub stage: Option<String>,
    /// When decay next crosses a threshold (its durable timer).
    pub next_decay_at: Option<Millis>,
    pub updated_at: Millis,
}

/// One change of a contact's score, from its history (`score_changes`).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreChangeRecord {
    pub score: String,
    pub at: Millis,
    pub previous: f64,
    pub value: f64,
    /// The rules that gave or took the points, or decay.
    pub reason: Reason,
}

/// How a change's reason is stored: `reason` is `rules` or `decay`, `rules` the
/// rules' `id:points` pairs, comma-separated (a narrow row: the history grows by one
/// per change).
pub(crate) fn reason_columns(reason: &Reason) -> (&'static str, String) {
    match reason {
        Reason::Rules(given) => (
            "rules",
            given
                .iter()
                .map(|(id, points)| format!("{id}:{points}"))
                .collect::<Vec<_>>()
                .join(","),
        ),
        Reason::Decay => ("decay", String::new()),
    }
}

/// The reason [`reason_columns`] stored.
pub(crate) fn reason_of(reason: &str, rules: &str) -> Result<Reason> {
    match reason {
        "decay" => Ok(Reason::Decay),
        "rules" => rules
            .split(',')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                pair.split_once(':')
                    .and_then(|(id, points)| Some((id.parse().ok()?, points.parse().ok()?)))
                    .ok_or_else(|| crate::StoreError::Corrupt(format!("score change rules: {rules:?}")))
            })
            .collect::<Result<Vec<_>>>()
            .map(Reason::Rules),
        other => Err(crate::StoreError::Corrupt(format!("score change reason: {other:?}"))),
    }
}

/// How a score's rule counters are stored (`contact_scores.counters`):
/// `rule:period=count`, comma-separated (`7:once=1,9:d20512=2`).
pub(crate) fn counters_column(counters: &[(i64, String, u32)]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for (rule, period, count) in counters {
        let _ = write!(out, "{}{rule}:{period}={count}", if out.is_empty() { "" } else { "," });
    }
    out
}

/// The counters [`counters_column`] stored, added to `into` (the larger count where
/// two rows name the same counter: a rule since given to another score).
pub(crate) fn counters_of(column: &str, into: &mut nudge_core::scoring::Counters) -> Result<()> {
    for entry in column.split(',').filter(|e| !e.is_empty()) {
        let parsed = entry.split_once(':').and_then(|(rule, rest)| {
            let (period, count) = rest.split_once('=')?;
            Some((rule.parse::<i64>().ok()?, period, count.parse::<u32>().ok()?))
        });
        let Some((rule, period, count)) = parsed else {
            return Err(crate::StoreError::Corrupt(format!("score counters: {column:?}")));
        };
        let n = into.entry((rule, period.to_string())).or_insert(0);
        *n = (*n).max(count);
    }
    Ok(())
}

/// The lead-scoring part of the storage contract.
#[async_trait]
pub trait ScoringStore: Send + Sync {
    async fn create_scoring_rule(&self, definition: RuleDefinition, now: Millis) -> Result<StoredRule>;
    /// `None`: no such rule.
    async fn update_scoring_rule(&self, id: i64, definition: RuleDefinition, now: Millis)
    -> Result<Option<StoredRule>>;
    async fn delete_scoring_rule(&self, id: i64) -> Result<bool>;
    async fn scoring_rules(&self) -> Result<Vec<StoredRule>>;
    async fn scoring_rule(&self, id: i64) -> Result<Option<StoredRule>>;
    /// Creates or replaces a score's definition (by name).
    async fn put_score(&self, definition: ScoreDefinition, now: Millis) -> Result<StoredScore>;
    async fn delete_score(&self, name: &str) -> Result<bool>;
    async fn scores(&self) -> Result<Vec<StoredScore>>;
    /// A contact's scores at `now` (a merged-away id reads its survivor's).
    async fn contact_scores(&self, contact: ContactId, now: Millis) -> Result<Vec<ContactScore>>;
    /// Materialises the decay of up to `limit` contacts' scores whose timer is due at
    /// `now` (trait, `Lead Score Changed`/`Lead Stage Changed`, segment marks, the
    /// next timer), in one transaction. How many timers were handled.
    async fn decay_due_scores(&self, now: Millis, limit: usize) -> Result<usize>;
    /// When the earliest decay timer is due.
    async fn next_score_timer(&self) -> Result<Option<Millis>>;
    /// A contact's latest `limit` score changes, newest first (a merged-away id reads
    /// its survivor's).
    async fn score_changes(&self, contact: ContactId, limit: usize) -> Result<Vec<ScoreChangeRecord>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_round_trip_through_their_column() {
        let counters = vec![(7, "once".to_string(), 1), (9, "d20512".to_string(), 2)];
        let column = counters_column(&counters);
        assert_eq!(column, "7:once=1,9:d20512=2");
        let mut read = nudge_core::scoring::Counters::new();
        counters_of(&column, &mut read).unwrap();
        counters_of("9:d20512=1", &mut read).unwrap();
        assert_eq!(
            read.into_iter().map(|((r, p), n)| (r, p, n)).collect::<Vec<_>>(),
            counters
        );
        assert_eq!(counters_column(&[]), "");
        assert!(counters_of("7:once", &mut Default::default()).is_err());
        assert!(counters_of("x:once=1", &mut Default::default()).is_err());
    }
}
