//! Messages on PostgreSQL: templates, the outbox (claimed with `FOR UPDATE SKIP
//! LOCKED`, so several processes can deliver from one database), suppressions, push
//! subscriptions.

use super::db;
use super::*;

use crate::exec::MESSAGE_COLUMNS;

fn message_from_row(r: &tokio_postgres::Row) -> Result<Message> {
    crate::exec::message_from_row(&db::cells(r)?)
}

#[async_trait]
impl MessageStore for PgStore {
    async fn create_template(&self, new: NewTemplate, now: Millis) -> Result<Template> {
        pg_write!(self, |db| shared::messages::create_template(db, &new, now))
    }

    async fn update_template(&self, id: i64, new: NewTemplate, now: Millis) -> Result<Option<Template>> {
        pg_write!(self, |db| shared::messages::update_template(db, id, &new, now))
    }

    async fn delete_template(&self, id: i64) -> Result<bool> {
        pg_write!(self, |db| shared::messages::delete_template(db, id))
    }

    async fn templates(&self) -> Result<Vec<Template>> {
        pg_read!(self, |db| shared::messages::templates(db))
    }

    async fn template(&self, id: i64) -> Result<Option<Template>> {
        pg_read!(self, |db| shared::messages::template(db, id))
    }

    async fn template_by_name(&self, name: &str) -> Result<Option<Template>> {
        pg_read!(self, |db| shared::messages::template_by_name(db, name))
    }

    async fn template_versions(&self, id: i64) -> Result<Vec<TemplateVersion>> {
        pg_read!(self, |db| shared::messages::template_versions(db, id))
    }

    async fn template_version(&self, id: i64, version: i64) -> Result<Option<TemplateVersion>> {
        pg_read!(self, |db| shared::messages::template_version(db, id, version))
    }

    async fn enqueue_messages(&self, new: Vec<NewMessage>, now: Millis) -> Result<Vec<(Message, bool)>> {
        pg_write!(self, |db| shared::messages::enqueue_messages(db, &new, now))
    }

    async fn enqueue_message(&self, new: NewMessage, now: Millis) -> Result<(Message, bool)> {
        pg_write!(self, |db| shared::messages::enqueue_message(db, &new, now))
    }

    async fn claim_messages(&self, now: Millis, limit: usize, lease_ms: i64) -> Result<Vec<Message>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "UPDATE messages SET leased_until = $1 + $2 WHERE id IN (
                         SELECT id FROM messages WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= $1
                           AND (leased_until IS NULL OR leased_until <= $1)
                         ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
                     RETURNING {MESSAGE_COLUMNS}"
                ),
                &[&now, &lease_ms, &(limit as i64)],
            )
            .await?;
        let mut claimed = rows.iter().map(message_from_row).collect::<Result<Vec<_>>>()?;
        claimed.sort_by_key(|m| m.id);
        Ok(claimed)
    }

    async fn update_messages(&self, updates: Vec<MessageUpdate>, now: Millis) -> Result<()> {
        pg_write!(self, |db| shared::messages::update_messages(db, &updates, now))
    }

    async fn record_receipt(&self, receipt: Receipt, now: Millis) -> Result<Option<Message>> {
        pg_write!(self, |db| shared::messages::record_receipt(db, &receipt, now))
    }

    async fn message(&self, id: i64) -> Result<Option<Message>> {
        pg_read!(self, |db| crate::exec::load_message(db, id))
    }

    async fn list_messages(&self, query: &MessageQuery) -> Result<Page<Message>> {
        pg_read!(self, |db| shared::messages::list_messages(db, query))
    }

    async fn next_message_due(&self) -> Result<Option<Millis>> {
        pg_read!(self, |db| shared::messages::next_message_due(db))
    }

    async fn release_leases(&self) -> Result<u64> {
        pg_write!(self, |db| shared::messages::release_leases(db))
    }

    async fn record_message_event(
        &self,
        message: i64,
        name: &str,
        properties: Value,
        key: String,
        now: Millis,
    ) -> Result<bool> {
        pg_write!(self, |db| crate::exec::message_event(
            db, message, name, properties, key, now
        ))
    }

    async fn add_suppression(&self, s: Suppression) -> Result<()> {
        pg_write!(self, |db| shared::messages::add_suppression(db, &s))
    }

    async fn remove_suppression(&self, channel: &str, address: &str) -> Result<bool> {
        pg_write!(self, |db| shared::messages::remove_suppression(db, channel, address))
    }

    async fn suppressions(&self, channel: Option<&str>) -> Result<Vec<Suppression>> {
        pg_read!(self, |db| shared::messages::suppressions(db, channel))
    }

    async fn setting_or_init(&self, key: &str, value: &str) -> Result<String> {
        pg_write!(self, |db| shared::messages::setting_or_init(db, key, value))
    }

    async fn setting(&self, key: &str) -> Result<Option<String>> {
        pg_read!(self, |db| shared::messages::setting(db, key))
    }

    async fn put_setting(&self, key: &str, value: Option<&str>) -> Result<()> {
        pg_write!(self, |db| shared::messages::put_setting(db, key, value))
    }

    async fn add_push_subscription(&self, new: NewPushSubscription, now: Millis) -> Result<Option<PushSubscription>> {
        pg_write!(self, |db| shared::messages::add_push_subscription(db, &new, now))
    }

    async fn push_subscriptions(&self, contact: ContactId) -> Result<Vec<PushSubscription>> {
        pg_read!(self, |db| shared::messages::push_subscriptions(db, contact))
    }

    async fn remove_push_subscription(&self, endpoint: &str) -> Result<bool> {
        pg_write!(self, |db| shared::messages::remove_push_subscription(db, endpoint))
    }

    async fn push_subscription_used(&self, endpoint: &str, now: Millis) -> Result<()> {
        pg_write!(self, |db| shared::messages::push_subscription_used(db, endpoint, now))
    }

    async fn suppression(&self, channel: &str, address: &str) -> Result<Option<Suppression>> {
        pg_read!(self, |db| shared::messages::suppression(db, channel, address))
    }
}
