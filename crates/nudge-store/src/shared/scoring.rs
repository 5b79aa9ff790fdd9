//! Lead scoring, written once for both backends: the scores' and rules' rows, loading
//! them for [`Rules`], applying the rules to what contacts did (in the transaction
//! that stores it), materialising due decay, and reading a contact's scores.
//!
//! Which rules fire and what points result is `nudge_core::scoring`'s decision; what
//! a change writes is [`plan::score_ops`]'s; here the facts are read and the plan
//! carried out.

use crate::plan::{self, Rules};
use crate::scoring::{ContactScore, ScoreChangeRecord, StoredRule, StoredScore};
use crate::sql::{self, Arg, Db, SqlRow};
use crate::{Result, StoreError, exec};
use nudge_core::scoring::{
    ContactScores, Counters, Happening, RuleDefinition, ScoreDefinition, ScoreState, Scored, Scoring, ScoringRule,
};
use nudge_core::{ContactId, Millis};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

fn rule_from_row(r: &SqlRow) -> Result<StoredRule> {
    let definition: RuleDefinition =
        serde_json::from_value(r.json(1)?).map_err(|e| StoreError::Corrupt(format!("scoring rule: {e}")))?;
    Ok(StoredRule {
        id: r.i64(0)?,
        definition,
        created_at: r.i64(2)?,
        updated_at: r.i64(3)?,
    })
}

fn score_from_row(r: &SqlRow) -> Result<StoredScore> {
    let definition: ScoreDefinition =
        serde_json::from_value(r.json(0)?).map_err(|e| StoreError::Corrupt(format!("score: {e}")))?;
    Ok(StoredScore {
        definition,
        created_at: r.i64(1)?,
        updated_at: r.i64(2)?,
    })
}

async fn bump<D: Db>(db: &D) -> Result<()> {
    db.execute("UPDATE scoring_version SET version = version + 1 WHERE id = 1", &[])
        .await?;
    Ok(())
}

fn json_of<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) async fn create_rule<D: Db>(db: &D, definition: RuleDefinition, now: Millis) -> Result<StoredRule> {
    let json = json_of(&definition)?;
    let id = db
        .insert(
            "INSERT INTO scoring_rules (definition, created_at, updated_at) VALUES ($1, $2, $2)",
            &[Arg::Json(&json), Arg::I64(now)],
        )
        .await?
        .ok_or_else(|| StoreError::Corrupt("a new scoring rule has no id".into()))?;
    bump(db).await?;
    Ok(StoredRule {
        id,
        definition,
        created_at: now,
        updated_at: now,
    })
}

pub(crate) async fn update_rule<D: Db>(
    db: &D,
    id: i64,
    definition: RuleDefinition,
    now: Millis,
) -> Result<Option<StoredRule>> {
    let json = json_of(&definition)?;
    let n = db
        .execute(
            "UPDATE scoring_rules SET definition = $2, updated_at = $3 WHERE id = $1",
            &[Arg::I64(id), Arg::Json(&json), Arg::I64(now)],
        )
        .await?;
    if n == 0 {
        return Ok(None);
    }
    bump(db).await?;
    rule(db, id).await
}

pub(crate) async fn delete_rule<D: Db>(db: &D, id: i64) -> Result<bool> {
    let n = db
        .execute("DELETE FROM scoring_rules WHERE id = $1", &[Arg::I64(id)])
        .await?;
    if n == 0 {
        return Ok(false);
    }
    // Its counters go when each contact's score row is next written (a deleted rule's
    // id is never given again).
    bump(db).await?;
    Ok(true)
}

pub(crate) async fn rules<D: Db>(db: &D) -> Result<Vec<StoredRule>> {
    sql::all(
        db,
        "SELECT id, definition, created_at, updated_at FROM scoring_rules ORDER BY id",
        &[],
        rule_from_row,
    )
    .await
}

pub(crate) async fn rule<D: Db>(db: &D, id: i64) -> Result<Option<StoredRule>> {
    sql::one(
        db,
        "SELECT id, definition, created_at, updated_at FROM scoring_rules WHERE id = $1",
        &[Arg::I64(id)],
        rule_from_row,
    )
    .await
}

pub(crate) async fn put_score<D: Db>(db: &D, definition: ScoreDefinition, now: Millis) -> Result<StoredScore> {
    let json = json_of(&definition)?;
    db.execute(
        "INSERT INTO scores (name, definition, created_at, updated_at) VALUES ($1, $2, $3, $3)
         ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at",
        &[Arg::Str(&definition.name), Arg::Json(&json), Arg::I64(now)],
    )
    .await?;
    bump(db).await?;
    sql::one(
        db,
        "SELECT definition, created_at, updated_at FROM scores WHERE name = $1",
        &[Arg::Str(&definition.name)],
        score_from_row,
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt("a saved score is missing".into()))
}

pub(crate) async fn delete_score<D: Db>(db: &D, name: &str) -> Result<bool> {
    let n = db
        .execute("DELETE FROM scores WHERE name = $1", &[Arg::Str(name)])
        .await?;
    if n > 0 {
        // Without a definition the score no longer decays.
        db.execute(
            "UPDATE contact_scores SET due_at = NULL WHERE score = $1 AND due_at IS NOT NULL",
            &[Arg::Str(name)],
        )
        .await?;
        bump(db).await?;
    }
    Ok(n > 0)
}

pub(crate) async fn scores<D: Db>(db: &D) -> Result<Vec<StoredScore>> {
    sql::all(
        db,
        "SELECT definition, created_at, updated_at FROM scores ORDER BY name",
        &[],
        score_from_row,
    )
    .await
}

/// The scores and enabled rules as the write path reads them, with the thresholds
/// the segments test scores against.
pub(crate) async fn load<D: Db>(db: &D, segments: &plan::SegmentIndex) -> Result<Scoring> {
    let scores = scores(db).await?.into_iter().map(|s| s.definition).collect();
    let rules = rules(db)
        .await?
        .into_iter()
        .map(|r| ScoringRule {
            id: r.id,
            definition: r.definition,
        })
        .collect();
    Ok(Scoring::new(scores, rules).with_read_thresholds(segments.score_thresholds.iter().cloned()))
}

/// A contact's stored score states and, for every score named, its trait's value.
async fn contact_state<D: Db>(
    db: &D,
    contact: &nudge_core::Contact,
    names: impl IntoIterator<Item = String>,
) -> Result<ContactScores> {
    let stored = stored_of(db, &[contact.id])
        .await?
        .remove(&contact.id)
        .unwrap_or_default();
    let names: BTreeSet<String> = names.into_iter().chain(stored.states.keys().cloned()).collect();
    Ok(ContactScores {
        traits: score_traits(&contact.traits, names),
        states: stored.states,
        counters: stored.counters,
    })
}

/// The values of these scores' traits on the contact (0 where it has none).
fn score_traits(
    traits: &serde_json::Map<String, Value>,
    names: impl IntoIterator<Item = String>,
) -> BTreeMap<String, f64> {
    names
        .into_iter()
        .map(|name| {
            let value = traits
                .get(&nudge_core::scoring::score_trait(&name))
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            (name, value)
        })
        .collect()
}

/// Rows a statement of the scoring writes and reads names at most (a bound on its
/// placeholders and on the statement text).
const ROWS_PER_STATEMENT: usize = 200;

/// A contact's stored scores: their states, their rules' counters and their decay
/// timers.
#[derive(Default)]
struct Stored {
    states: BTreeMap<String, ScoreState>,
    counters: Counters,
    due: BTreeMap<String, Millis>,
}

/// The stored scores of these contacts, by contact (one row per contact and score).
async fn stored_of<D: Db>(db: &D, ids: &[ContactId]) -> Result<BTreeMap<ContactId, Stored>> {
    let mut out: BTreeMap<ContactId, Stored> = BTreeMap::new();
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
        let rows = db
            .query(
                &format!(
                    "SELECT contact_id, score, points, anchor_at, written, stage, due_at, counters FROM contact_scores
                     WHERE contact_id IN ({})",
                    list.join(", ")
                ),
                &[],
            )
            .await?;
        for r in rows {
            let stored = out.entry(r.i64(0)?).or_default();
            let score = r.string(1)?;
            if let Some(due) = r.opt_i64(6)? {
                stored.due.insert(score.clone(), due);
            }
            crate::scoring::counters_of(&r.string(7)?, &mut stored.counters)?;
            stored.states.insert(
                score,
                ScoreState {
                    points: r.opt_f64(2)?.unwrap_or(0.0),
                    anchor: r.i64(3)?,
                    written: r.opt_f64(4)?.unwrap_or(0.0),
                    stage: r.opt_string(5)?,
                },
            );
        }
    }
    Ok(out)
}

/// These contacts' traits, by contact, their rows locked until the transaction ends
/// where the backend locks (the score states are read, changed and written back).
async fn traits_of<D: Db>(db: &D, ids: &[ContactId]) -> Result<BTreeMap<ContactId, serde_json::Map<String, Value>>> {
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
        let rows = db
            .query(
                &format!(
                    "SELECT id, traits FROM contacts WHERE id IN ({}) ORDER BY id{}",
                    list.join(", "),
                    db.for_update()
                ),
                &[],
            )
            .await?;
        for r in rows {
            let traits = r.traits(1)?;
            out.insert(r.i64(0)?, traits);
        }
    }
    Ok(out)
}

/// Scores what contacts did (`(contact, happening)`, in the order it happened) by the
/// enabled rules, in the caller's transaction: each changed score's row (state, decay
/// timer, rule counters), its history, `Lead Score Changed`/`Lead Stage Changed` events and score traits. The facts of
/// every contact scored are read together, and the writes go out in batches
/// ([`exec::execute`]).
pub(crate) async fn apply<D: Db>(
    db: &D,
    rules: &Rules,
    happenings: &[(ContactId, Happening<'_>)],
    now: Millis,
) -> Result<()> {
    let scoring = &rules.scoring;
    if scoring.is_empty() {
        return Ok(());
    }
    // The rules each happening fires, by contact (ascending: the lock order).
    let mut by_contact: BTreeMap<ContactId, Vec<Vec<&ScoringRule>>> = BTreeMap::new();
    for (contact, h) in happenings {
        let fired = scoring.fired(h, now);
        if !fired.is_empty() {
            by_contact.entry(*contact).or_default().push(fired);
        }
    }
    if by_contact.is_empty() {
        return Ok(());
    }
    let ids: Vec<ContactId> = by_contact.keys().copied().collect();
    let mut stored = stored_of(db, &ids).await?;
    let mut traits = traits_of(db, &ids).await?;
    let mut ops = Vec::new();
    for (id, fired) in by_contact {
        // A contact gone since (merged away, erased) scores nothing.
        let Some(traits) = traits.remove(&id) else {
            continue;
        };
        let Stored { states, counters, .. } = stored.remove(&id).unwrap_or_default();
        let mut cs = ContactScores {
            states,
            counters,
            ..Default::default()
        };
        let names = fired.iter().flatten().map(|r| r.definition.score.clone());
        cs.traits = score_traits(&traits, names.chain(cs.states.keys().cloned()));
        let scored: Vec<Scored> = fired
            .iter()
            .map(|f| nudge_core::scoring::score(scoring, &mut cs, f, now))
            .collect();
        ops.extend(plan::score_ops(rules, id, traits, &scored, now, crate::unique_suffix));
    }
    exec::execute(db, rules, &ops, now).await
}

/// Materialises up to `limit` due decay timers (see
/// [`crate::ScoringStore::decay_due_scores`]).
pub(crate) async fn decay_due<D: Db>(db: &D, now: Millis, limit: usize) -> Result<usize> {
    let sql = format!(
        "SELECT contact_id, score FROM contact_scores WHERE due_at <= $1 ORDER BY due_at, contact_id LIMIT $2{}",
        db.for_update()
    );
    let due: Vec<(ContactId, String)> = sql::all(db, &sql, &[Arg::I64(now), Arg::I64(limit as i64)], |r| {
        Ok((r.i64(0)?, r.string(1)?))
    })
    .await?;
    if due.is_empty() {
        return Ok(0);
    }
    let rules = db.rules().await?;
    let mut by_contact: BTreeMap<ContactId, Vec<String>> = BTreeMap::new();
    for (c, s) in &due {
        by_contact.entry(*c).or_default().push(s.clone());
    }
    for (id, due_scores) in by_contact {
        let cleared: Vec<plan::Op> = due_scores
            .iter()
            .map(|s| plan::Op::ScoreTimer {
                contact: id,
                score: s.clone(),
                due: None,
            })
            .collect();
        exec::execute(db, &rules, &cleared, now).await?;
        let Some(contact) = db.load_contact(id).await? else {
            continue;
        };
        let mut cs = contact_state(db, &contact, due_scores.iter().cloned()).await?;
        let scored: Vec<Scored> = due_scores
            .iter()
            .filter_map(|s| nudge_core::scoring::decay(&rules.scoring, &mut cs, s, now))
            .map(|change| Scored {
                changes: vec![change],
                counted: Vec::new(),
            })
            .collect();
        let ops = plan::score_ops(&rules, id, contact.traits, &scored, now, crate::unique_suffix);
        exec::execute(db, &rules, &ops, now).await?;
    }
    Ok(due.len())
}

pub(crate) async fn next_timer<D: Db>(db: &D) -> Result<Option<Millis>> {
    Ok(sql::first(
        db,
        "SELECT min(due_at) FROM contact_scores WHERE due_at IS NOT NULL",
        &[],
    )
    .await?
    .map(|r| r.opt_i64(0))
    .transpose()?
    .flatten())
}

/// A contact's latest `limit` score changes, newest first.
pub(crate) async fn changes<D: Db>(db: &D, contact: ContactId, limit: usize) -> Result<Vec<ScoreChangeRecord>> {
    let id = db.current_id(contact).await?;
    sql::all(
        db,
        "SELECT score, at, previous, value, reason, rules FROM score_changes WHERE contact_id = $1
         ORDER BY at DESC, id DESC LIMIT $2",
        &[Arg::I64(id), Arg::I64(limit.min(i64::MAX as usize) as i64)],
        |r| {
            Ok(ScoreChangeRecord {
                score: r.string(0)?,
                at: r.i64(1)?,
                previous: r.opt_f64(2)?.unwrap_or(0.0),
                value: r.opt_f64(3)?.unwrap_or(0.0),
                reason: crate::scoring::reason_of(&r.string(4)?, &r.string(5)?)?,
            })
        },
    )
    .await
}

/// A contact's scores at `now`: every defined score and every score it has.
pub(crate) async fn contact_scores<D: Db>(db: &D, contact: ContactId, now: Millis) -> Result<Vec<ContactScore>> {
    let id = db.current_id(contact).await?;
    let Some(contact) = db.load_contact(id).await? else {
        return Ok(Vec::new());
    };
    let defined: Vec<ScoreDefinition> = scores(db).await?.into_iter().map(|s| s.definition).collect();
    let mut names: Vec<String> = defined.iter().map(|d| d.name.clone()).collect();
    if !names.iter().any(|n| n == nudge_core::scoring::DEFAULT_SCORE) {
        names.push(nudge_core::scoring::DEFAULT_SCORE.to_string());
    }
    let stored = stored_of(db, &[id]).await?.remove(&id).unwrap_or_default();
    let names: BTreeSet<String> = names.into_iter().chain(stored.states.keys().cloned()).collect();
    let cs = ContactScores {
        traits: score_traits(&contact.traits, names),
        states: stored.states,
        counters: stored.counters,
    };
    let mut out = Vec::new();
    for name in cs.traits.keys() {
        let def = defined
            .iter()
            .find(|d| &d.name == name)
            .cloned()
            .unwrap_or_else(|| ScoreDefinition::plain(name));
        let value = cs.current(&def, now);
        let state = cs.states.get(name);
        let next = stored.due.get(name).copied();
        out.push(ContactScore {
            score: name.clone(),
            value,
            written: cs.traits[name],
            points: state.map_or(value, |s| s.points),
            anchor_at: state.map_or(contact.updated_at, |s| s.anchor),
            stage: def.stage_of(value).map(str::to_string),
            next_decay_at: next,
            updated_at: state.map_or(contact.updated_at, |s| s.anchor),
        });
    }
    Ok(out)
}

macro_rules! impl_scoring_store {
    ($store:ty, $write:ident, $read:ident) => {
        #[async_trait::async_trait]
        impl $crate::ScoringStore for $store {
            async fn create_scoring_rule(
                &self,
                definition: nudge_core::scoring::RuleDefinition,
                now: nudge_core::Millis,
            ) -> $crate::Result<$crate::StoredRule> {
                $write!(self, |db| $crate::shared::scoring::create_rule(
                    db, definition, now
                ))
            }
            async fn update_scoring_rule(
                &self,
                id: i64,
                definition: nudge_core::scoring::RuleDefinition,
                now: nudge_core::Millis,
            ) -> $crate::Result<Option<$crate::StoredRule>> {
                $write!(self, |db| $crate::shared::scoring::update_rule(
                    db, id, definition, now
                ))
            }
            async fn delete_scoring_rule(&self, id: i64) -> $crate::Result<bool> {
                $write!(self, |db| $crate::shared::scoring::delete_rule(db, id))
            }
            async fn scoring_rules(&self) -> $crate::Result<Vec<$crate::StoredRule>> {
                $read!(self, |db| $crate::shared::scoring::rules(db))
            }
            async fn scoring_rule(&self, id: i64) -> $crate::Result<Option<$crate::StoredRule>> {
                $read!(self, |db| $crate::shared::scoring::rule(db, id))
            }
            async fn put_score(
                &self,
                definition: nudge_core::scoring::ScoreDefinition,
                now: nudge_core::Millis,
            ) -> $crate::Result<$crate::StoredScore> {
                $write!(self, |db| $crate::shared::scoring::put_score(db, definition, now))
            }
            async fn delete_score(&self, name: &str) -> $crate::Result<bool> {
                let name = name.to_owned();
                $write!(self, |db| async move {
                    $crate::shared::scoring::delete_score(db, &name).await
                })
            }
            async fn scores(&self) -> $crate::Result<Vec<$crate::StoredScore>> {
                $read!(self, |db| $crate::shared::scoring::scores(db))
            }
            async fn contact_scores(
                &self,
                contact: nudge_core::ContactId,
                now: nudge_core::Millis,
            ) -> $crate::Result<Vec<$crate::ContactScore>> {
                $read!(self, |db| $crate::shared::scoring::contact_scores(
                    db, contact, now
                ))
            }
            async fn decay_due_scores(&self, now: nudge_core::Millis, limit: usize) -> $crate::Result<usize> {
                $write!(self, |db| $crate::shared::scoring::decay_due(db, now, limit))
            }
            async fn next_score_timer(&self) -> $crate::Result<Option<nudge_core::Millis>> {
                $read!(self, |db| $crate::shared::scoring::next_timer(db))
            }
            async fn score_changes(
                &self,
                contact: nudge_core::ContactId,
                limit: usize,
            ) -> $crate::Result<Vec<$crate::ScoreChangeRecord>> {
                $read!(self, |db| $crate::shared::scoring::changes(db, contact, limit))
            }
        }
    };
}
pub(crate) use impl_scoring_store;
