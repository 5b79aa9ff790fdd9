//! Lead scoring, written once for both backends: the scores' and rules' rows, loading
//! them for [`Rules`], applying the rules to what contacts did (in the transaction
//! that stores it), materialising due decay, and reading a contact's scores.
//!
//! Which rules fire and what points result is `nudge_core::scoring`'s decision; what
//! a change writes is [`plan::score_ops`]'s; here the facts are read and the plan
//! carried out.

use crate::plan::{self, Rules};
use crate::scoring::{ContactScore, ScoreChangeRecord, ScoreRows, StoredRule, StoredScore};
use crate::sql::{self, Arg, Db, SqlRow};
use crate::{Result, StoreError, exec};
use nudge_core::scoring::{ContactScores, Happening, RuleDefinition, ScoreDefinition, Scored, Scoring, ScoringRule};
use nudge_core::{ContactId, Millis};
use serde_json::Value;
use std::collections::BTreeMap;

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
        // Without a definition the score no longer decays: its contacts' timers are
        // cleared when they come due (`decay_due` finds nothing to decay).
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

/// What the decisions read of a contact: its stored scores (`rows`) and the values
/// of its score traits (`traits`, by score name, as [`read_contact`] read them; a
/// score named or stored without one is at 0).
fn contact_state(
    rows: &ScoreRows,
    mut traits: BTreeMap<String, f64>,
    names: impl IntoIterator<Item = String>,
) -> ContactScores {
    let (states, counters) = rows.decided();
    for name in names.into_iter().chain(states.keys().cloned()) {
        traits.entry(name).or_insert(0.0);
    }
    ContactScores {
        traits,
        states,
        counters,
    }
}

/// The score traits to read for these scores: trait name → score name.
fn trait_names<'a>(scores: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, String> {
    scores
        .into_iter()
        .map(|s| (nudge_core::scoring::score_trait(s), s.to_string()))
        .collect()
}

/// A contact's row as scoring reads it, from the columns `traits` (at `i`) and
/// `scoring` (at `i + 1`): its stored scores, and the values of the score traits of
/// these scores and of those it has (by score name), without reading its other
/// traits.
fn read_contact(r: &SqlRow, i: usize, scores: &BTreeMap<String, String>) -> Result<(BTreeMap<String, f64>, ScoreRows)> {
    let rows = ScoreRows::parse(r.opt_string(i + 1)?.as_deref())?;
    let traits = if rows.0.keys().all(|s| scores.values().any(|n| n == s)) {
        r.numbers_of(i, scores)?
    } else {
        let mut all = scores.clone();
        all.extend(trait_names(rows.0.keys().map(String::as_str)));
        r.numbers_of(i, &all)?
    };
    Ok((traits, rows))
}

/// Rows a statement of the scoring reads names at most (a bound on the statement
/// text).
const ROWS_PER_STATEMENT: usize = 200;

/// These contacts' score traits (those of `scores` and of the scores they have) and
/// stored scores, by contact ([`read_contact`]), their rows locked until the
/// transaction ends where the backend locks (they are read, changed and written
/// back). A contact that is gone is missing.
async fn scored_contacts<D: Db>(
    db: &D,
    ids: &[ContactId],
    scores: &BTreeMap<String, String>,
) -> Result<BTreeMap<ContactId, (BTreeMap<String, f64>, ScoreRows)>> {
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
        let rows = db
            .query(
                &format!(
                    "SELECT id, traits, scoring FROM contacts WHERE id IN ({}) ORDER BY id{}",
                    list.join(", "),
                    db.for_update()
                ),
                &[],
            )
            .await?;
        for r in rows {
            out.insert(r.i64(0)?, read_contact(&r, 1, scores)?);
        }
    }
    Ok(out)
}

/// Scores what contacts did (`(contact, happening)`, in the order it happened) by the
/// enabled rules, in the caller's transaction: each scored contact's row is read once
/// (traits and scores, together for all of them) and written once
/// ([`plan::score_ops`]: its scores, decay timer and score traits), with the history
/// and the `Lead Score Changed`/`Lead Stage Changed` events ([`exec::execute`]).
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
    let names = trait_names(
        by_contact
            .values()
            .flatten()
            .flatten()
            .map(|r| r.definition.score.as_str()),
    );
    let mut contacts = scored_contacts(db, &ids, &names).await?;
    let mut ops = Vec::new();
    for (id, fired) in by_contact {
        // A contact gone since (merged away, erased) scores nothing.
        let Some((traits, rows)) = contacts.remove(&id) else {
            continue;
        };
        let names = fired.iter().flatten().map(|r| r.definition.score.clone());
        let mut cs = contact_state(&rows, traits, names);
        let scored: Vec<Scored> = fired
            .iter()
            .map(|f| nudge_core::scoring::score(scoring, &mut cs, f, now))
            .collect();
        ops.extend(plan::score_ops(rules, id, rows, &scored, now, crate::unique_suffix));
    }
    exec::execute(db, rules, &ops, now).await
}

/// Materialises the due decay timers of up to `limit` contacts (see
/// [`crate::ScoringStore::decay_due_scores`]): each contact's row read once and
/// written once, with its due scores decayed (or their timers cleared where decay
/// has nothing to change any more). How many timers were handled.
pub(crate) async fn decay_due<D: Db>(db: &D, now: Millis, limit: usize) -> Result<usize> {
    let sql = format!(
        "SELECT id, traits, scoring FROM contacts WHERE score_due_at <= $1 ORDER BY score_due_at, id LIMIT $2{}",
        db.for_update()
    );
    let due: Vec<(ContactId, BTreeMap<String, f64>, ScoreRows)> =
        sql::all(db, &sql, &[Arg::I64(now), Arg::I64(limit as i64)], |r| {
            let (traits, rows) = read_contact(r, 1, &BTreeMap::new())?;
            Ok((r.i64(0)?, traits, rows))
        })
        .await?;
    if due.is_empty() {
        return Ok(0);
    }
    let rules = db.rules().await?;
    let mut handled = 0;
    let mut ops = Vec::new();
    for (id, traits, mut rows) in due {
        let due_scores: Vec<String> = rows
            .0
            .iter()
            .filter(|(_, r)| r.due.is_some_and(|d| d <= now))
            .map(|(name, _)| name.clone())
            .collect();
        handled += due_scores.len();
        // Each due timer is handled: decay sets the next one, if any.
        for name in &due_scores {
            if let Some(row) = rows.0.get_mut(name) {
                row.due = None;
            }
        }
        let mut cs = contact_state(&rows, traits, due_scores.iter().cloned());
        let scored: Vec<Scored> = due_scores
            .iter()
            .filter_map(|s| nudge_core::scoring::decay(&rules.scoring, &mut cs, s, now))
            .map(|change| Scored {
                changes: vec![change],
                counted: Vec::new(),
            })
            .collect();
        let mut planned = plan::score_ops(&rules, id, rows.clone(), &scored, now, crate::unique_suffix);
        if !planned.iter().any(|op| matches!(op, plan::Op::SetScores { .. })) {
            // Nothing decayed: the cleared timers alone.
            planned.push(plan::Op::SetScores {
                contact: id,
                scores: rows,
                patch: None,
                at: now,
            });
        }
        ops.extend(planned);
    }
    exec::execute(db, &rules, &ops, now).await?;
    Ok(handled)
}

/// Migration 0035's step: the score rows of migration 0033's `contact_scores`
/// moved into their contacts' rows ([`ScoreRows`], `score_due_at`), some hundreds of
/// contacts at a time. How many contacts had scores.
pub(crate) async fn move_score_rows<D: Db>(db: &D) -> Result<usize> {
    let mut moved = 0;
    let mut after: ContactId = i64::MIN;
    loop {
        let ids: Vec<ContactId> = sql::all(
            db,
            "SELECT DISTINCT contact_id FROM contact_scores WHERE contact_id > $1 ORDER BY contact_id LIMIT $2",
            &[Arg::I64(after), Arg::I64(ROWS_PER_STATEMENT as i64)],
            |r| r.i64(0),
        )
        .await?;
        let Some(&last) = ids.last() else {
            return Ok(moved);
        };
        let rows = sql::all(
            db,
            "SELECT contact_id, score, points, anchor_at, written, stage, due_at, counters FROM contact_scores
             WHERE contact_id >= $1 AND contact_id <= $2",
            &[Arg::I64(ids[0]), Arg::I64(last)],
            |r| {
                Ok((
                    r.i64(0)?,
                    r.string(1)?,
                    crate::scoring::ScoreRow {
                        points: r.opt_f64(2)?.unwrap_or(0.0),
                        anchor: r.i64(3)?,
                        written: r.opt_f64(4)?.unwrap_or(0.0),
                        stage: r.opt_string(5)?,
                        due: r.opt_i64(6)?,
                        counters: crate::scoring::counters_of(&r.string(7)?)?,
                    },
                ))
            },
        )
        .await?;
        let mut by_contact: BTreeMap<ContactId, ScoreRows> = BTreeMap::new();
        for (contact, score, row) in rows {
            by_contact.entry(contact).or_default().0.insert(score, row);
        }
        let writes: Vec<crate::sql::ScoresRow<'_>> = by_contact
            .iter()
            .map(|(contact, rows)| crate::sql::ScoresRow {
                contact: *contact,
                scores: rows.column(),
                due: rows.due(),
                patch: None,
                at: 0,
            })
            .collect();
        db.set_scores(&writes).await?;
        moved += by_contact.len();
        after = last;
    }
}

pub(crate) async fn next_timer<D: Db>(db: &D) -> Result<Option<Millis>> {
    Ok(sql::first(
        db,
        "SELECT min(score_due_at) FROM contacts WHERE score_due_at IS NOT NULL",
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
    let Some(row) = sql::first(
        db,
        "SELECT traits, scoring, updated_at FROM contacts WHERE id = $1",
        &[Arg::I64(id)],
    )
    .await?
    else {
        return Ok(Vec::new());
    };
    let defined: Vec<ScoreDefinition> = scores(db).await?.into_iter().map(|s| s.definition).collect();
    let mut names: Vec<String> = defined.iter().map(|d| d.name.clone()).collect();
    if !names.iter().any(|n| n == nudge_core::scoring::DEFAULT_SCORE) {
        names.push(nudge_core::scoring::DEFAULT_SCORE.to_string());
    }
    let (traits, rows) = read_contact(&row, 0, &trait_names(names.iter().map(String::as_str)))?;
    let updated_at = row.i64(2)?;
    let cs = contact_state(&rows, traits, names);
    let mut out = Vec::new();
    for name in cs.traits.keys() {
        let def = defined
            .iter()
            .find(|d| &d.name == name)
            .cloned()
            .unwrap_or_else(|| ScoreDefinition::plain(name));
        let value = cs.current(&def, now);
        let state = cs.states.get(name);
        out.push(ContactScore {
            score: name.clone(),
            value,
            written: cs.traits[name],
            points: state.map_or(value, |s| s.points),
            anchor_at: state.map_or(updated_at, |s| s.anchor),
            stage: def.stage_of(value).map(str::to_string),
            next_decay_at: rows.0.get(name).and_then(|r| r.due),
            updated_at: state.map_or(updated_at, |s| s.anchor),
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
