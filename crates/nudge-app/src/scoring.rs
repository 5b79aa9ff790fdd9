//! Lead scoring's use cases: scoring rules and score definitions checked against what
//! is stored (the score a rule feeds is defined, the template it names exists, the
//! workspace's limits), and a contact's scores. The rules themselves are
//! `nudge_core::scoring`'s; the HTTP API and the web UI only parse and render.

use crate::{App, AppError, Result};
use nudge_core::scoring::{self, DEFAULT_SCORE, MAX_RULES, MAX_SCORES, RuleDefinition, ScoreDefinition, Trigger};
use nudge_core::{ContactId, segment::ConditionError};
use nudge_store::{ContactScore, ScoreChangeRecord, StoredRule, StoredScore};

/// How many of a contact's latest score changes the API answers with.
pub const SCORE_HISTORY: usize = 50;
use serde_json::Value;

fn invalid(prefix: &str, e: ConditionError) -> AppError {
    let path = e.path.trim_start_matches('$').trim_start_matches('.');
    let field = match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) => format!("{prefix}.{path}"),
    };
    AppError::invalid_field(field.clone(), format!("{field}: {}", e.message))
}

/// A rule's JSON, parsed and validated on its own; errors name the field under
/// `prefix` (`trigger.where[0].op`).
pub fn parse_rule(value: &Value, prefix: &str) -> Result<RuleDefinition> {
    scoring::parse_rule(value).map_err(|e| invalid(prefix, e))
}

/// A score definition's JSON, parsed and validated on its own.
pub fn parse_score(value: &Value, prefix: &str) -> Result<ScoreDefinition> {
    scoring::parse_score(value).map_err(|e| invalid(prefix, e))
}

impl App {
    /// What a rule must satisfy against what is stored: its score is `lead_score` or
    /// a defined score; the template it names exists.
    async fn check_rule(&self, rule: &RuleDefinition) -> Result<()> {
        if rule.score != DEFAULT_SCORE
            && !self
                .store
                .scores()
                .await?
                .iter()
                .any(|s| s.definition.name == rule.score)
        {
            return Err(AppError::invalid_field(
                "score",
                format!(
                    "score: no score named {:?}; define it first (or use {DEFAULT_SCORE})",
                    rule.score
                ),
            ));
        }
        if let Trigger::EmailOpened { template: Some(t) } | Trigger::EmailClicked { template: Some(t) } = &rule.trigger
            && self.store.template(*t).await?.is_none()
        {
            return Err(AppError::invalid_field(
                "trigger.template",
                format!("trigger.template: no template {t}"),
            ));
        }
        Ok(())
    }

    pub async fn create_scoring_rule(&self, rule: RuleDefinition) -> Result<StoredRule> {
        self.check_rule(&rule).await?;
        if self.store.scoring_rules().await?.len() >= MAX_RULES {
            return Err(AppError::Conflict(format!(
                "the workspace has {MAX_RULES} scoring rules, the most it keeps; delete one first"
            )));
        }
        Ok(self.store.create_scoring_rule(rule, self.clock.now()).await?)
    }

    pub async fn update_scoring_rule(&self, id: i64, rule: RuleDefinition) -> Result<StoredRule> {
        self.check_rule(&rule).await?;
        self.store
            .update_scoring_rule(id, rule, self.clock.now())
            .await?
            .ok_or_else(|| AppError::not_found(format!("no scoring rule {id}")))
    }

    pub async fn delete_scoring_rule(&self, id: i64) -> Result<()> {
        if !self.store.delete_scoring_rule(id).await? {
            return Err(AppError::not_found(format!("no scoring rule {id}")));
        }
        Ok(())
    }

    pub async fn scoring_rule(&self, id: i64) -> Result<StoredRule> {
        self.store
            .scoring_rule(id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("no scoring rule {id}")))
    }

    /// Creates or replaces a score (by name).
    pub async fn put_score(&self, score: ScoreDefinition) -> Result<StoredScore> {
        let scores = self.store.scores().await?;
        if !scores.iter().any(|s| s.definition.name == score.name) && scores.len() >= MAX_SCORES {
            return Err(AppError::Conflict(format!(
                "the workspace has {MAX_SCORES} scores, the most it keeps; delete one first"
            )));
        }
        Ok(self.store.put_score(score, self.clock.now()).await?)
    }

    /// Deletes a score's definition; refused while rules feed it.
    pub async fn delete_score(&self, name: &str) -> Result<()> {
        let users: Vec<String> = self
            .store
            .scoring_rules()
            .await?
            .into_iter()
            .filter(|r| r.definition.score == name)
            .map(|r| format!("{} ({})", r.definition.name, r.id))
            .collect();
        if !users.is_empty() && name != DEFAULT_SCORE {
            return Err(AppError::Conflict(format!(
                "scoring rules give points to {name:?}: {}; change or delete them first",
                users.join(", ")
            )));
        }
        if !self.store.delete_score(name).await? {
            return Err(AppError::not_found(format!("no score {name:?}")));
        }
        Ok(())
    }

    /// A contact's scores now and their latest [`SCORE_HISTORY`] changes, newest
    /// first (`None`: no such contact).
    pub async fn contact_scores(
        &self,
        contact: ContactId,
    ) -> Result<Option<(Vec<ContactScore>, Vec<ScoreChangeRecord>)>> {
        if self.store.contact(contact).await?.is_none() {
            return Ok(None);
        }
        let scores = self.store.contact_scores(contact, self.clock.now()).await?;
        let history = self.store.score_changes(contact, SCORE_HISTORY).await?;
        Ok(Some((scores, history)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn problems_name_their_field_under_the_prefix() {
        let e = parse_rule(
            &json!({"name": "x", "points": 0, "trigger": {"type": "event", "event": "A"}, "frequency": {"type": "once"}}),
            "",
        )
        .unwrap_err();
        assert!(
            matches!(&e, AppError::InvalidField { field, .. } if field == "points"),
            "{e:?}"
        );
        let e = parse_score(&json!({"name": "x", "stages": [{"name": "a"}, {"name": "b"}]}), "score").unwrap_err();
        assert!(
            matches!(&e, AppError::InvalidField { field, .. } if field == "score.stages[1].from"),
            "{e:?}"
        );
    }
}
