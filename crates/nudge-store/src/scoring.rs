//! Lead scoring as the store keeps it: the workspace's scores and rules, each
//! contact's scores, and the decay timers (docs/lead-scoring.md). The decisions are
//! `nudge_core::scoring`'s; what a score change writes is planned in `plan.rs`.

use crate::Result;
use async_trait::async_trait;
use nudge_core::scoring::{Counters, Reason, RuleDefinition, ScoreChange, ScoreDefinition, ScoreState};
use nudge_core::{ContactId, Millis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

/// A contact's scores as its own row keeps them (`contacts.scoring`, JSON, by score
/// name): everything scoring reads and writes for the contact, so that a scored event
/// reads one row and writes it back, with the score traits, in one statement.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct ScoreRows(pub BTreeMap<String, ScoreRow>);

/// One of a contact's scores in [`ScoreRows`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ScoreRow {
    /// The value at `anchor`, from which it decays.
    pub points: f64,
    pub anchor: Millis,
    /// The value last written to the score's trait.
    pub written: f64,
    /// The stage last recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// When decay next takes the score across a threshold someone reads (its durable
    /// timer; the row's `score_due_at` is the earliest of its scores').
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<Millis>,
    /// The counters of the score's rules that can still limit something,
    /// `(rule, period, count)` ([`nudge_core::scoring::Scoring::kept_counters`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counters: Vec<(i64, String, u32)>,
}

impl ScoreRows {
    /// The rows a `contacts.scoring` column holds (`NULL`: none).
    pub(crate) fn parse(column: Option<&str>) -> Result<Self> {
        match column {
            None | Some("") => Ok(Self::default()),
            Some(text) => {
                serde_json::from_str(text).map_err(|e| crate::StoreError::Corrupt(format!("a contact's scores: {e}")))
            }
        }
    }

    /// The column's value (`None`: no score).
    pub(crate) fn column(&self) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        serde_json::to_string(self).ok()
    }

    /// The earliest decay timer of the contact's scores (the row's `score_due_at`).
    pub(crate) fn due(&self) -> Option<Millis> {
        self.0.values().filter_map(|r| r.due).min()
    }

    /// The score states and rule counters the decisions read (the traits are the
    /// caller's to add): the larger count where two scores name the same counter (a
    /// rule since given to another score).
    pub(crate) fn decided(&self) -> (BTreeMap<String, ScoreState>, Counters) {
        let mut states = BTreeMap::new();
        let mut counters = Counters::new();
        for (name, row) in &self.0 {
            states.insert(
                name.clone(),
                ScoreState {
                    points: row.points,
                    anchor: row.anchor,
                    written: row.written,
                    stage: row.stage.clone(),
                },
            );
            for (rule, period, count) in &row.counters {
                let n = counters.entry((*rule, period.clone())).or_insert(0);
                *n = (*n).max(*count);
            }
        }
        (states, counters)
    }

    /// Keeps a change of one score: its new state, decay timer and counters.
    pub(crate) fn set(&mut self, change: &ScoreChange) {
        self.0.insert(
            change.score.clone(),
            ScoreRow {
                points: change.state.points,
                anchor: change.state.anchor,
                written: change.state.written,
                stage: change.state.stage.clone(),
                due: change.next_due,
                counters: change.counters.clone(),
            },
        );
    }
}

/// The counters the score rows of migration 0033 held (`contact_scores.counters`:
/// `rule:period=count`, comma-separated, `7:once=1,9:d20512=2`), as
/// `(rule, period, count)`; read once, by migration 0035's move into [`ScoreRows`].
pub(crate) fn counters_of(column: &str) -> Result<Vec<(i64, String, u32)>> {
    column
        .split(',')
        .filter(|e| !e.is_empty())
        .map(|entry| {
            entry
                .split_once(':')
                .and_then(|(rule, rest)| {
                    let (period, count) = rest.split_once('=')?;
                    Some((
                        rule.parse::<i64>().ok()?,
                        period.to_string(),
                        count.parse::<u32>().ok()?,
                    ))
                })
                .ok_or_else(|| crate::StoreError::Corrupt(format!("score counters: {column:?}")))
        })
        .collect()
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
    fn a_contacts_scores_round_trip_through_its_column() {
        let mut rows = ScoreRows::default();
        assert_eq!(rows.column(), None);
        assert_eq!(ScoreRows::parse(None).unwrap(), rows);
        rows.0.insert(
            "lead_score".into(),
            ScoreRow {
                points: 12.5,
                anchor: 1_000,
                written: 12.5,
                stage: Some("warm".into()),
                due: Some(9_000),
                counters: vec![(7, "once".into(), 1), (9, "d20512".into(), 2)],
            },
        );
        rows.0.insert(
            "engagement".into(),
            ScoreRow {
                points: 1.0,
                anchor: 2_000,
                written: 1.0,
                stage: None,
                due: Some(5_000),
                counters: vec![(7, "once".into(), 3)],
            },
        );
        let column = rows.column().unwrap();
        assert!(!column.contains("null"), "absent fields are left out: {column}");
        assert_eq!(ScoreRows::parse(Some(&column)).unwrap(), rows);
        assert_eq!(rows.due(), Some(5_000));
        let (states, counters) = rows.decided();
        assert_eq!(states["lead_score"].stage.as_deref(), Some("warm"));
        assert_eq!(
            counters[&(7, "once".to_string())],
            3,
            "the larger count of a counter named twice"
        );
        assert_eq!(counters[&(9, "d20512".to_string())], 2);
        assert!(ScoreRows::parse(Some("{\"x\": 1}")).is_err());
    }

    #[test]
    fn the_old_counters_column_reads() {
        assert_eq!(
            counters_of("7:once=1,9:d20512=2").unwrap(),
            vec![(7, "once".to_string(), 1), (9, "d20512".to_string(), 2)]
        );
        assert_eq!(counters_of("").unwrap(), vec![]);
        assert!(counters_of("7:once").is_err());
        assert!(counters_of("x:once=1").is_err());
    }
}
