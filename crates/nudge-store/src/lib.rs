//! Storage of Nudge behind one trait, [`Store`], with two real backends: embedded
//! SQLite (the default) and PostgreSQL. Each backend owns its migrations; the same
//! conformance stories (`tests/conformance.rs`) run against both.
//!
//! Architecture invariant: this crate knows nothing about HTTP or the Segment wire
//! format; it receives already-validated [`nudge_core::Call`]s. Identity resolution
//! *decisions* come from `nudge_core::resolve`; this crate only carries them out
//! atomically.

pub mod backup;
pub mod baseline;
mod campaigns;
mod codec;
pub mod copy;
mod exec;
mod forms;
mod group_commit;
mod journeys;
mod leases;
pub mod live;
mod messages;
mod plan;
mod postgres;
mod predictions;
mod recommendations;
pub mod retention;
mod scoring;
pub mod scratch;
pub mod search;
pub mod secrets;
pub mod segment_sql;
mod send_time;
mod shared;
mod sql;
mod sqlite;
mod types;

pub use campaigns::*;
pub use forms::*;
pub use group_commit::{IngestStats, Ingestor, IngestorConfig, SubmitError};
pub use journeys::*;
pub use leases::{Lease, LeaseStore};
pub use messages::*;
pub use postgres::PgStore;
pub use predictions::{PredictionStore, PurchaseHistory, StoredModel};
pub use recommendations::{ContactTouches, ProductPage, RecommendationModel, RecommendationStore};
pub use retention::{EventPartition, RetentionStep, RetentionStore};
pub use scoring::{ContactScore, ScoreChangeRecord, ScoringStore, StoredRule, StoredScore};
pub use send_time::{EngagementEvent, SendTimeState, SendTimeStore};
pub use sqlite::SqliteStore;
pub use types::*;

use async_trait::async_trait;

/// A number no other call in this process returns: keeps ids of events Nudge records
/// itself unique when two happen in the same millisecond (or under a test's frozen
/// clock).
pub(crate) fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
use nudge_core::segment::{Condition, Facts};
use nudge_core::{Call, Contact, ContactId, Millis};
use std::path::Path;
use std::sync::Arc;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {}", with_causes(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("postgres pool: {0}")]
    Pool(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the storage writer has stopped")]
    Closed,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A secret that cannot be sealed or opened (a wrong master key, an altered
    /// value); the message names the setting and the key ids, never the secret.
    #[error("secrets: {0}")]
    Secret(String),
}

/// An error followed by its causes: tokio-postgres says only the kind of failure
/// ("db error", "error connecting to server"), what the server or the socket said
/// is its source (`FATAL: terminating connection due to administrator command`,
/// `Connection refused`), which an operator reading the log needs.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

impl StoreError {
    /// Whether this failure only follows an earlier one: PostgreSQL fails every
    /// statement of a transaction after the first failure ("in failed SQL
    /// transaction"), so among statements sent together that one is not the cause.
    pub(crate) fn follows_failure(&self) -> bool {
        matches!(self, StoreError::Postgres(e) if e.code() == Some(&tokio_postgres::error::SqlState::IN_FAILED_SQL_TRANSACTION))
    }
}

/// Everything Nudge keeps, behind one interface. All methods are atomic: they either
/// commit entirely or change nothing.
#[async_trait]
pub trait Store:
    SegmentStore
    + MessageStore
    + JourneyStore
    + CampaignStore
    + AccountStore
    + FormStore
    + ScoringStore
    + PredictionStore
    + SendTimeStore
    + RecommendationStore
    + LeaseStore
    + RetentionStore
    + Send
    + Sync
    + 'static
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Notices of configuration changes committed on this database by any process
    /// (this one too), as they commit: PostgreSQL's `LISTEN` on a connection of its
    /// own, reconnecting with backoff until the receiver is dropped. `None` where one
    /// process owns the database (SQLite). See [`live::watch`].
    fn config_notices(&self) -> Option<tokio::sync::mpsc::Receiver<live::ConfigNotice>> {
        None
    }

    /// Stores validated messages in one transaction: de-duplicates on `message_id`,
    /// resolves and merges identities, applies traits, records events. Returns one
    /// outcome per message, in order. When this returns `Ok`, everything is durable.
    async fn ingest(&self, messages: Vec<Call>, now: Millis) -> Result<Vec<IngestOutcome>>;

    /// A contact by id; the id of a contact merged into another resolves to the survivor.
    async fn contact(&self, id: ContactId) -> Result<Option<Contact>>;
    /// The contact's time zone (see [`nudge_core::contact::time_zone`]): from its
    /// traits, else from the `context.timezone` of its latest event that has one.
    async fn contact_time_zone(&self, id: ContactId) -> Result<Option<String>>;
    async fn find_contact(&self, lookup: &Lookup) -> Result<Option<Contact>>;
    /// Contacts in ascending id order, filtered, one page at a time.
    async fn list_contacts(&self, query: &ContactQuery) -> Result<Page<Contact>>;
    /// A contact's events, newest first.
    async fn contact_events(&self, id: ContactId, query: &EventQuery) -> Result<Page<StoredEvent>>;
    /// Applies a traits / subscription patch. `None` if there is no such contact.
    async fn update_contact(&self, id: ContactId, patch: &ContactPatch, now: Millis) -> Result<Option<Contact>>;
    /// Erases a contact with all its identities, events, messages and push
    /// subscriptions (GDPR). `false` if none.
    async fn delete_contact(&self, id: ContactId) -> Result<bool>;
    /// Creates or updates contacts matched by user id, then email. One transaction.
    async fn import_contacts(&self, rows: Vec<ContactImport>, now: Millis) -> Result<ImportReport>;

    async fn create_key(&self, key: NewApiKey, now: Millis) -> Result<ApiKey>;
    async fn list_keys(&self) -> Result<Vec<ApiKey>>;
    /// Revokes a key; `false` if there is no such key or it was already revoked.
    async fn revoke_key(&self, id: i64, now: Millis) -> Result<bool>;
    /// The active (not revoked) key with this hash.
    async fn find_key(&self, hash: &str) -> Result<Option<ApiKey>>;
    /// Sets how an active key may be used from browsers; `None` if there is no
    /// active key `id`.
    async fn set_key_browser(&self, id: i64, browser: BrowserAccess) -> Result<Option<ApiKey>>;
    /// Every origin an active write key allows (CORS preflights carry no key).
    async fn browser_origins(&self) -> Result<Vec<String>>;

    async fn stats(&self) -> Result<StoreStats>;
    /// How many contacts there are (merged contacts not counted).
    async fn contact_count(&self) -> Result<u64>;
    /// A contact's order totals as kept apart from the events (they survive event
    /// retention; docs/operations.md, "Aggregates that survive"); the id of a contact
    /// merged into another resolves to the survivor. `None` without an order.
    async fn order_totals(&self, id: ContactId) -> Result<Option<nudge_core::orders::OrderTotals>>;
    /// The workspace's hourly counts from the hour holding `since` on, oldest first.
    async fn hourly_stats(&self, since: Millis) -> Result<Vec<HourlyStat>>;
    /// Cheap check that the database answers.
    async fn ping(&self) -> Result<()>;
    /// Finishes pending writes and releases the database.
    async fn close(&self);
}

/// Campaigns: drafts, sending (the audience snapshot, due recipients and what became
/// of them), the test's winner and the per-variant counters.
#[async_trait]
pub trait CampaignStore: Send + Sync {
    /// [`StoreError::Conflict`] when the name is taken.
    async fn create_campaign(&self, new: NewCampaign, now: Millis) -> Result<Campaign>;
    /// Edits a draft; [`StoreError::Conflict`] once sent or when the name is taken.
    async fn update_campaign(&self, id: i64, new: NewCampaign, now: Millis) -> Result<Option<Campaign>>;
    /// [`StoreError::Conflict`] while scheduled, sending or paused.
    async fn delete_campaign(&self, id: i64) -> Result<bool>;
    /// Newest first.
    async fn campaigns(&self) -> Result<Vec<Campaign>>;
    async fn campaign(&self, id: i64) -> Result<Option<Campaign>>;
    /// Scheduled or sending.
    async fn active_campaigns(&self) -> Result<Vec<Campaign>>;
    /// Moves the campaign from `from` to `to`; `None` if it is not in `from` (any more).
    async fn set_campaign_status(
        &self,
        id: i64,
        from: nudge_core::campaign::CampaignStatus,
        to: nudge_core::campaign::CampaignStatus,
        launch: Option<CampaignLaunch>,
        now: Millis,
    ) -> Result<Option<Campaign>>;
    /// Up to `limit` audience members with ids above `after`, in id order.
    async fn campaign_audience_page(
        &self,
        audience: nudge_core::campaign::Audience,
        after: ContactId,
        limit: usize,
        with_time_zones: bool,
    ) -> Result<AudiencePage>;
    /// Members of any of the audience's segments in none of its exclusions, now
    /// (each contact once).
    async fn campaign_audience_size(&self, audience: nudge_core::campaign::Audience) -> Result<u64>;
    /// Stores a page of the snapshot and moves its cursor; `done: Some(test_ends_at)`
    /// completes it.
    async fn add_campaign_recipients(
        &self,
        id: i64,
        rows: Vec<NewRecipient>,
        cursor: ContactId,
        done: Option<Option<Millis>>,
        now: Millis,
    ) -> Result<()>;
    /// Up to `limit` pending recipients due by `now` (the remainder only
    /// `with_remainder`), each saying whether it is still in `audience`.
    async fn due_campaign_recipients(
        &self,
        id: i64,
        audience: nudge_core::campaign::Audience,
        now: Millis,
        with_remainder: bool,
        limit: usize,
    ) -> Result<Vec<DueRecipient>>;
    async fn next_campaign_due(&self, id: i64, with_remainder: bool) -> Result<Option<Millis>>;
    /// One transaction: messages queued, recipients deferred or skipped, counts.
    async fn record_campaign_outcomes(&self, id: i64, outcomes: Vec<RecipientOutcome>, now: Millis) -> Result<()>;
    /// `false` if a winner was chosen already.
    async fn set_campaign_winner(&self, id: i64, winner: u8, decision: serde_json::Value, now: Millis) -> Result<bool>;
    async fn campaign_stats(&self, id: i64) -> Result<CampaignStats>;
    /// A campaign's clicks per link and variant, most clicked first.
    async fn campaign_links(&self, id: i64) -> Result<Vec<CampaignLink>>;
    /// Records a conversion event once, attributed by last touch to the message that
    /// touched the contact last (counted toward its campaign variant); `None` if the
    /// event was recorded before.
    async fn record_conversion(
        &self,
        conversion: NewConversion,
        settings: nudge_core::attribution::ConversionSettings,
        now: Millis,
    ) -> Result<Option<Conversion>>;
    /// One scope's hourly counters from hour `from` to hour `until` (hours since the
    /// epoch, inclusive): `(hour, counter, value)` in hour order.
    async fn report_series(
        &self,
        scope: ReportScope,
        from: i64,
        until: i64,
    ) -> Result<Vec<(i64, nudge_core::protocol::CampaignCounter, f64)>>;
    /// Every scope's counters summed over the hours `from..=until`.
    async fn report_totals(
        &self,
        from: i64,
        until: i64,
    ) -> Result<Vec<(ReportScope, nudge_core::protocol::CampaignCounter, f64)>>;
    /// A campaign's counters by recipient domain: `(domain, counter, value)`.
    async fn campaign_domains(
        &self,
        campaign: i64,
    ) -> Result<Vec<(String, nudge_core::protocol::CampaignCounter, f64)>>;
    /// A recipient: its variant, state, reason and message.
    async fn campaign_recipient(&self, id: i64, contact: ContactId) -> Result<Option<Recipient>>;
}

/// Forms and their landing pages: definitions, views, submissions.
#[async_trait]
pub trait FormStore: Send + Sync {
    /// [`StoreError::Conflict`] when the name or the slug is taken.
    async fn create_form(&self, new: NewForm, now: Millis) -> Result<Form>;
    /// Replaces name, slug and definition; `None` if there is no such form.
    async fn update_form(&self, id: i64, new: NewForm, now: Millis) -> Result<Option<Form>>;
    /// Deletes the form and its submissions (contacts and events stay).
    async fn delete_form(&self, id: i64) -> Result<bool>;
    /// Newest first.
    async fn forms(&self) -> Result<Vec<Form>>;
    async fn form(&self, id: i64) -> Result<Option<Form>>;
    async fn form_by_slug(&self, slug: &str) -> Result<Option<Form>>;
    /// Counts a view of the form (its landing page or embed); `false` if none.
    async fn record_form_view(&self, id: i64) -> Result<bool>;
    /// Stores an accepted submission in one transaction: the contact found by email
    /// (created, or merged with the browser's anonymous visitor), traits and consents,
    /// the submission, the `Form Submitted` event and, under double opt-in, the
    /// confirmation messages. `None` if there is no such form.
    async fn submit_form(&self, new: NewSubmission, now: Millis) -> Result<Option<Submitted>>;
    /// A form's submissions, newest first, ids below `before`.
    async fn form_submissions(&self, form: i64, before: Option<i64>, limit: usize) -> Result<Page<FormSubmission>>;
}

/// People who sign in to the web UI ([`User`]) and their browser sessions ([`Session`]).
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// [`StoreError::Conflict`] when the e-mail address is taken.
    async fn create_user(&self, user: NewUser, now: Millis) -> Result<User>;
    async fn users(&self) -> Result<Vec<User>>;
    async fn user_count(&self) -> Result<u64>;
    async fn user(&self, id: i64) -> Result<Option<User>>;
    /// A user and its password hash, by normalised e-mail address.
    async fn user_credentials(&self, email: &str) -> Result<Option<(User, String)>>;
    /// Deletes a user and its sessions; `false` if there is none.
    async fn delete_user(&self, id: i64) -> Result<bool>;
    /// Replaces the password hash and ends every session of the user.
    async fn set_user_password(&self, id: i64, password_hash: String, now: Millis) -> Result<bool>;
    async fn set_user_role(&self, id: i64, role: nudge_core::access::Role) -> Result<bool>;
    async fn set_user_locale(&self, id: i64, locale: Option<String>) -> Result<bool>;
    async fn create_session(&self, session: NewSession, now: Millis) -> Result<()>;
    /// The session with this token hash, expired or not (the caller decides).
    async fn session(&self, token_hash: &str) -> Result<Option<Session>>;
    async fn touch_session(&self, token_hash: &str, now: Millis) -> Result<()>;
    async fn delete_session(&self, token_hash: &str) -> Result<()>;
    /// Forgets sessions past their absolute expiry or last seen before `idle_before`.
    async fn delete_stale_sessions(&self, now: Millis, idle_before: Millis) -> Result<u64>;
}

/// Segments: definitions, computation in SQL, and live membership kept by the
/// engine's segment worker.
#[async_trait]
pub trait SegmentStore: Send + Sync {
    /// Who matches a (possibly unsaved) condition at `now`, computed in SQL, by id.
    async fn segment_members(&self, condition: &Condition, now: Millis) -> Result<Vec<ContactId>>;
    /// What segment conditions can read about one contact (`None`: no such contact).
    async fn contact_facts(&self, id: ContactId) -> Result<Option<Facts>>;
    /// Facts of several contacts at once, in order; `None` for contacts that are gone
    /// (erased, or merged into another). With `events`, only the events of those names
    /// are loaded (the ones the segments read), not the whole timeline.
    async fn contacts_facts(&self, ids: Vec<ContactId>, events: Option<Vec<String>>) -> Result<Vec<Option<Facts>>>;
    /// Saves a segment and computes its members.
    async fn create_segment(&self, new: NewSegment, now: Millis) -> Result<Segment>;
    /// Replaces name, description and definition; a new definition recomputes members.
    async fn update_segment(&self, id: i64, new: NewSegment, now: Millis) -> Result<Option<Segment>>;
    async fn delete_segment(&self, id: i64) -> Result<bool>;
    async fn segments(&self) -> Result<Vec<Segment>>;
    async fn segment(&self, id: i64) -> Result<Option<Segment>>;
    async fn segment_member_page(&self, id: i64, after: Option<ContactId>, limit: usize) -> Result<Page<ContactId>>;
    async fn segment_size(&self, id: i64) -> Result<u64>;
    /// Members at each instant, from the membership history.
    async fn segment_size_at(&self, id: i64, instants: Vec<Millis>) -> Result<Vec<(Millis, u64)>>;
    /// A contact's stays in segments, newest first.
    async fn contact_memberships(&self, contact: ContactId) -> Result<Vec<Membership>>;
    /// Contacts marked for re-evaluation, or with a segment timer due at `now`.
    async fn claim_segment_work(&self, now: Millis, limit: usize) -> Result<Vec<SegmentWork>>;
    async fn next_segment_timer(&self) -> Result<Option<Millis>>;
    /// Records evaluations in one transaction: joins and leaves (history, timeline
    /// events), timers, answered dirty marks.
    async fn apply_evaluations(&self, evals: Vec<ContactEvaluation>, now: Millis) -> Result<MembershipChanges>;
}

/// Journeys: definitions and versions, runs, their timers and event waits.
#[async_trait]
pub trait JourneyStore: Send + Sync {
    /// A new journey in `draft` at version 1; `Conflict` if the name is taken.
    async fn create_journey(&self, new: NewJourney, now: Millis) -> Result<Journey>;
    /// Saves a new version (name, description, priority, definition); running and
    /// new runs keep the published version until the journey is published again.
    /// `None` if there is no such journey; `Conflict` if the name is taken.
    async fn update_journey(&self, id: i64, new: NewJourney, now: Millis) -> Result<Option<Journey>>;
    async fn journeys(&self) -> Result<Vec<Journey>>;
    async fn journey(&self, id: i64) -> Result<Option<Journey>>;
    async fn journey_version(&self, id: i64, version: i64) -> Result<Option<JourneyVersion>>;
    /// Changes the status; `publish` also makes the latest version the one new runs
    /// start on. `None` if there is no such journey.
    async fn set_journey_status(
        &self,
        id: i64,
        status: JourneyStatus,
        publish: bool,
        now: Millis,
    ) -> Result<Option<Journey>>;
    /// Starts a run and applies its first write (`first.run_id` is ignored) in one
    /// transaction. `None` if a run with the same entry key exists.
    async fn start_run(&self, new: NewRun, first: RunWrite, now: Millis) -> Result<Option<Run>> {
        Ok(self.start_runs(vec![(new, first)], now).await?.pop().flatten())
    }
    /// Starts several runs in one transaction, as `start_run` each: one result per
    /// run, in order.
    async fn start_runs(&self, runs: Vec<(NewRun, RunWrite)>, now: Millis) -> Result<Vec<Option<Run>>>;
    async fn run(&self, id: i64) -> Result<Option<Run>>;
    /// Several runs at once (unknown ids are left out), in id order.
    async fn runs(&self, ids: Vec<i64>) -> Result<Vec<Run>>;
    /// A page of a journey's active runs, by id after `after`.
    async fn active_runs(&self, journey: i64, after: i64, limit: usize) -> Result<Vec<Run>>;
    /// A contact's runs (of one journey, or all), oldest first.
    async fn contact_runs(&self, contact: ContactId, journey: Option<i64>) -> Result<Vec<Run>>;
    /// Sets a run aside for inspection (its state could not be read): it keeps its
    /// state, records `error`, loses its timers and waits, and no longer counts as
    /// active. `false` if there is no such active run.
    async fn set_run_aside(&self, run: i64, error: String, now: Millis) -> Result<bool>;
    /// Applies transitions, each atomically and all in one transaction. Writes to
    /// finished or unknown runs are skipped. Returns the runs whose write was stale
    /// (`expected_revision` older than the stored run's): not written; the caller
    /// hands their inputs in again.
    async fn write_runs(&self, writes: Vec<RunWrite>, now: Millis) -> Result<Vec<i64>>;
    /// Leases up to `limit` timers due at `now`, earliest first; a lease lasts
    /// `lease_ms` (a crashed worker's timers come back). The caller deletes them
    /// through `RunWrite::clear_timers`.
    async fn claim_timers(&self, now: Millis, limit: usize, lease_ms: i64) -> Result<Vec<DueTimer>>;
    /// When the earliest timer (of a run, or an entry timer) is due, if any.
    async fn next_timer_due(&self) -> Result<Option<Millis>>;
    /// The runs of a contact waiting for an event with this name.
    async fn waiting_runs(&self, contact: ContactId, event: &str) -> Result<Vec<Waiting>>;
    /// Active runs per step of a journey: `(step, count)`.
    async fn runs_per_step(&self, journey: i64) -> Result<Vec<(String, i64)>>;
    /// A journey's statistics: runs by outcome, and per step reached, waiting, sent,
    /// opened, clicked.
    async fn journey_stats(&self, journey: i64) -> Result<JourneyStats>;
    /// The event names journeys act on (triggers, awaited events, names their goals
    /// read). From now on every stored `track` event with one of these names (from
    /// ingestion, message tracking or segment changes) is queued in the journey inbox
    /// in the same transaction.
    async fn set_journey_event_names(&self, names: Vec<String>) -> Result<()>;
    /// Leases up to `limit` inbox events, oldest first (a crashed worker's lease runs
    /// out after `lease_ms`).
    async fn claim_journey_inbox(&self, now: Millis, limit: usize, lease_ms: i64) -> Result<Vec<InboxEvent>>;
    /// Removes handled inbox events.
    async fn ack_journey_inbox(&self, ids: Vec<i64>) -> Result<()>;
    /// Sets (`Some(due)`, lease cleared) or removes (`None`) entry timers of a
    /// time-triggered journey, per contact (contact 0: the journey itself).
    async fn set_entry_timers(&self, journey: i64, timers: Vec<(ContactId, Option<Millis>)>) -> Result<()>;
    /// Removes all entry timers of a journey and records that no version has them.
    async fn clear_entry_timers(&self, journey: i64) -> Result<()>;
    /// Records that the entry timers of this published version are set for all
    /// contacts (see [`Journey::entries_scheduled`]).
    async fn mark_entries_scheduled(&self, journey: i64, version: i64) -> Result<()>;
    /// Leases up to `limit` entry timers due at `now`, earliest first, for `lease_ms`.
    /// The caller replaces or removes them with `set_entry_timers`.
    async fn claim_entry_timers(&self, now: Millis, limit: usize, lease_ms: i64) -> Result<Vec<EntryTimer>>;
    /// A page of contacts (by id, after `after`) that have trait `name`, with their
    /// traits: for setting date-trait entry timers of every contact.
    async fn contacts_with_trait(
        &self,
        name: &str,
        after: ContactId,
        limit: usize,
    ) -> Result<Vec<(ContactId, serde_json::Map<String, serde_json::Value>)>>;
    /// Ends every journey timer and inbox lease (for the only process working on a
    /// database, at start: what a crashed run had claimed is due again at once).
    /// Returns how many leases ended.
    async fn release_journey_leases(&self) -> Result<u64>;
}

/// Templates, the delivery outbox, suppressions and push subscriptions.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Saves a template as version 1. `Conflict` if the name is taken.
    async fn create_template(&self, new: NewTemplate, now: Millis) -> Result<Template>;
    /// Saves new content as the next version (earlier versions stay readable).
    async fn update_template(&self, id: i64, new: NewTemplate, now: Millis) -> Result<Option<Template>>;
    /// `Conflict` while messages of the template wait in the outbox.
    async fn delete_template(&self, id: i64) -> Result<bool>;
    async fn templates(&self) -> Result<Vec<Template>>;
    async fn template(&self, id: i64) -> Result<Option<Template>>;
    async fn template_by_name(&self, name: &str) -> Result<Option<Template>>;
    async fn template_versions(&self, id: i64) -> Result<Vec<TemplateVersion>>;
    async fn template_version(&self, id: i64, version: i64) -> Result<Option<TemplateVersion>>;

    /// Stores a message in the outbox, due now, with a `Message Queued` event. If a
    /// message with the same idempotency key exists, returns it instead (`false`).
    async fn enqueue_message(&self, new: NewMessage, now: Millis) -> Result<(Message, bool)>;
    /// [`enqueue_message`](Self::enqueue_message) for many, in one transaction (a
    /// campaign's or a journey batch's sends): one result per message, in order.
    async fn enqueue_messages(&self, new: Vec<NewMessage>, now: Millis) -> Result<Vec<(Message, bool)>>;
    /// Takes up to `limit` due messages, oldest due first, and leases them for
    /// `lease_ms`: until then no other claim returns them. A lease that runs out
    /// (the worker died) makes the message due again; recording an outcome ends it.
    async fn claim_messages(&self, now: Millis, limit: usize, lease_ms: i64) -> Result<Vec<Message>>;
    /// Records attempt outcomes (state, error, what was sent) with one timeline event
    /// per state change, and suppressions. One transaction.
    async fn update_messages(&self, updates: Vec<MessageUpdate>, now: Millis) -> Result<()>;
    /// Applies a provider's delivery receipt to the message it names by provider id
    /// (see [`receipt_applies`]), with a timeline event; a bounce suppresses the
    /// recipient. `None` if no message has that provider id.
    async fn record_receipt(&self, receipt: Receipt, now: Millis) -> Result<Option<Message>>;
    async fn message(&self, id: i64) -> Result<Option<Message>>;
    async fn list_messages(&self, query: &MessageQuery) -> Result<Page<Message>>;
    /// Ends every lease, making claimed messages due again. Only for a process that
    /// knows no other process delivers from this database (SQLite at start-up).
    async fn release_leases(&self) -> Result<u64>;
    /// When the earliest queued message is due.
    async fn next_message_due(&self) -> Result<Option<Millis>>;
    /// Adds an event about a message (opened, clicked, unsubscribed, complained) to
    /// its contact's timeline and counts it toward what sent the message: the journey
    /// step or campaign variant, the report scopes and, for a click, the link.
    /// `key` makes it idempotent: `false` if an event with this key exists (or the
    /// message does not).
    async fn record_message_event(
        &self,
        message: i64,
        event: &nudge_core::protocol::MessageEvent,
        key: String,
        now: Millis,
    ) -> Result<bool>;

    /// A recipient's answer through a message's link — an unsubscribe, a double
    /// opt-in confirmation: the consent change the event implies
    /// (`MessageEvent::consent`) and the event (as `record_message_event` records
    /// it), in one transaction. A refused confirmation changes nothing.
    async fn answer_message(
        &self,
        message: i64,
        event: &nudge_core::protocol::MessageEvent,
        key: String,
        now: Millis,
    ) -> Result<Answer>;

    async fn add_suppression(&self, s: Suppression) -> Result<()>;
    async fn remove_suppression(&self, channel: &str, address: &str) -> Result<bool>;
    async fn suppressions(&self, channel: Option<&str>) -> Result<Vec<Suppression>>;
    async fn suppression(&self, channel: &str, address: &str) -> Result<Option<Suppression>>;

    /// Saves a push subscription for a contact (a merged-away id stands for its
    /// survivor). An endpoint already stored is updated and re-pointed to this
    /// contact: a browser belongs to whoever subscribed with it last. `None` if there
    /// is no such contact.
    async fn add_push_subscription(&self, new: NewPushSubscription, now: Millis) -> Result<Option<PushSubscription>>;
    /// A contact's push subscriptions, oldest first.
    async fn push_subscriptions(&self, contact: ContactId) -> Result<Vec<PushSubscription>>;
    /// Forgets an endpoint (the browser unsubscribed, or the push service said it is
    /// gone). `false` if it was not stored.
    async fn remove_push_subscription(&self, endpoint: &str) -> Result<bool>;
    /// Records that the push service accepted a message for this endpoint.
    async fn push_subscription_used(&self, endpoint: &str, now: Millis) -> Result<()>;

    /// The stored value of a workspace setting, storing `value` first if there is
    /// none (so concurrent first starts agree on one value).
    async fn setting_or_init(&self, key: &str, value: &str) -> Result<String>;
    /// The stored value of a workspace setting, if any.
    async fn setting(&self, key: &str) -> Result<Option<String>>;
    /// Stores (`Some`) or removes (`None`) a workspace setting.
    async fn put_setting(&self, key: &str, value: Option<&str>) -> Result<()>;
    /// The version of each kind of configuration processes keep in memory
    /// ([`live`]); moved by the writes that change it.
    async fn config_versions(&self) -> Result<live::ConfigVersions>;
    /// Seals every secret setting with `ring`'s current key (opening them with any
    /// key of the ring) in one transaction, then seals and opens with that key alone
    /// from now on. Returns how many values were rewritten. `nudge secrets rotate`.
    async fn reseal_secrets(&self, ring: secrets::Keyring) -> Result<usize>;
}

/// Where the data lives: `postgres://...` for PostgreSQL, otherwise SQLite in
/// `data_dir/nudge.db` ([`sqlite_path`]). Runs migrations, then seals secret settings
/// still in clear and checks that `ring` opens the sealed ones, before returning.
pub async fn open(database_url: Option<&str>, data_dir: &Path, ring: secrets::Keyring) -> Result<Arc<dyn Store>> {
    match sqlite_path(database_url, data_dir)? {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            Ok(Arc::new(SqliteStore::open_with(&path, ring).await?))
        }
        None => Ok(Arc::new(
            PgStore::connect_with(database_url.unwrap_or_default(), ring).await?,
        )),
    }
}

/// The SQLite database file a workspace uses (`sqlite:///path`, or `data_dir/nudge.db`
/// when there is no URL), or `None` for PostgreSQL (`postgres://...`).
pub fn sqlite_path(database_url: Option<&str>, data_dir: &Path) -> Result<Option<std::path::PathBuf>> {
    match database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Ok(None),
        Some(url) if url.starts_with("sqlite://") => Ok(Some(url.trim_start_matches("sqlite://").into())),
        Some(other) => Err(StoreError::Conflict(format!(
            "unsupported database URL {other:?}: use postgres://... or sqlite:///path/to/nudge.db"
        ))),
        None => Ok(Some(data_dir.join("nudge.db"))),
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_postgres_error_says_what_the_server_or_the_socket_said() {
        // Nothing listens on port 1: the connection is refused.
        let e = match crate::PgStore::connect("postgres://nudge@127.0.0.1:1/nudge").await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("connected to port 1"),
        };
        assert!(e.starts_with("postgres: error connecting to server: "), "{e}");
        assert!(e.to_lowercase().contains("connection refused"), "{e}");
    }
}
