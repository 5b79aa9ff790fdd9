//! Time-triggered journeys: a date trait (birthdays, renewals) or a schedule of a
//! segment. What starts their runs is an **entry timer**, stored per journey and
//! contact and indexed by due time, like a run's timers — nothing scans contacts on a
//! clock:
//!
//! - Publishing (or resuming) a date-trait journey sets one timer per contact that has
//!   the trait, at its next occurrence in the contact's time zone; a schedule sets one
//!   timer for the journey itself (contact 0).
//! - A change of the trait (or of the contact's time zone) — by `identify`, the
//!   contacts API, an import or an `update_contact` step — queues
//!   [`TRAITS_CHANGED`] in the journey inbox in the same transaction, and the
//!   contact's timer is set again.
//! - When a timer fires, the occurrence is checked against the contact's current
//!   traits (a stale timer is moved, not fired), the run starts with an entry key
//!   naming the occurrence (so a timer fired twice after a crash starts one run), and
//!   the timer moves to the next occurrence (every year) or goes.

use super::*;
use nudge_store::{EntryTimer, TRAITS_CHANGED, trait_event_name};

/// The contact of a journey's own entry timer (schedules).
const JOURNEY_ITSELF: ContactId = 0;
/// Contacts (or members) handled per store call when setting timers or starting a
/// schedule's runs.
const PAGE: usize = 1000;
/// The earliest time zone: a schedule in each contact's time zone fires here first.
const EARLIEST_ZONE: &str = "Etc/GMT-14";

/// Whether runs of this trigger are started by entry timers.
pub(super) fn is_time_triggered(trigger: &Trigger) -> bool {
    matches!(trigger, Trigger::DateTrait { .. } | Trigger::Schedule { .. })
}

/// The inbox names a definition asks for besides events: a change of the date trait
/// or the time zone of a contact.
pub(super) fn trait_names(def: &JourneyDefinition) -> Vec<String> {
    match &def.trigger {
        Trigger::DateTrait { name, .. } => ["timezone", "time_zone", name.as_str()]
            .iter()
            .map(|t| trait_event_name(t))
            .collect(),
        _ => vec![],
    }
}

impl JourneyEngine {
    /// The time zone named `name` (a contact's), else the workspace's
    /// ([`JourneyEngineConfig::time_zone`]), else UTC: how every journey computation
    /// resolves a zone (also the dry-run API's, so it replays in the same zones).
    pub fn zone(&self, name: Option<&str>) -> jiff::tz::TimeZone {
        name.and_then(|z| jiff::tz::TimeZone::get(z).ok())
            .or_else(|| jiff::tz::TimeZone::get(&self.config.time_zone).ok())
            .unwrap_or(jiff::tz::TimeZone::UTC)
    }

    /// The zone a date trait comes round in: the contact's `timezone` trait, else the
    /// workspace's. The same everywhere the trigger is computed (setting the timers,
    /// a trait change, the check when one fires), so a timer is never judged stale
    /// for a zone it was not set in; a trait change is what moves it.
    fn trait_zone(&self, traits: &Map<String, Value>) -> jiff::tz::TimeZone {
        self.zone(nudge_core::contact::time_zone(traits, None).as_deref())
    }

    /// The time zone a schedule's own timer is computed in.
    fn schedule_zone(&self, trigger: &Trigger) -> jiff::tz::TimeZone {
        match trigger {
            Trigger::Schedule { every: Some(r), .. } if r.contact_time_zone => self.zone(Some(EARLIEST_ZONE)),
            _ => self.zone(None),
        }
    }

    /// Keeps entry timers in step with the journeys: sets them for every contact when
    /// a time-triggered version goes live, removes them when a journey stops being
    /// live (they are set again on resume).
    pub(super) async fn schedule_entries(&self, journeys: &[Journey], now: Millis) -> nudge_store::Result<()> {
        for j in journeys {
            let live = if j.status == JourneyStatus::Live {
                j.published_version
            } else {
                None
            };
            match live {
                Some(v) if j.entries_scheduled != Some(v) => {
                    let Some(def) = self.definition(j.id, v).await? else {
                        continue;
                    };
                    if is_time_triggered(&def.trigger) {
                        self.fill_entries(j.id, &def, now).await?;
                    } else if j.entries_scheduled.is_some() {
                        self.store.clear_entry_timers(j.id).await?;
                    }
                    self.store.mark_entries_scheduled(j.id, v).await?;
                }
                None if j.entries_scheduled.is_some() => self.store.clear_entry_timers(j.id).await?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Sets the entry timers of a time-triggered journey for every contact.
    async fn fill_entries(&self, journey: i64, def: &JourneyDefinition, now: Millis) -> nudge_store::Result<()> {
        match &def.trigger {
            Trigger::DateTrait { name, .. } => {
                let mut after = 0;
                loop {
                    let page = self.store.contacts_with_trait(name, after, PAGE).await?;
                    let Some(&(last, _)) = page.last() else { break };
                    after = last;
                    let timers = page
                        .iter()
                        .map(|(id, traits)| (*id, def.trigger.next_occurrence(traits, now, &self.trait_zone(traits))))
                        .collect();
                    self.store.set_entry_timers(journey, timers).await?;
                    if page.len() < PAGE {
                        break;
                    }
                }
                tracing::info!(journey, "date-trait entry timers set");
            }
            Trigger::Schedule { .. } => {
                let next = def
                    .trigger
                    .next_occurrence(&Map::new(), now, &self.schedule_zone(&def.trigger));
                self.store
                    .set_entry_timers(journey, vec![(JOURNEY_ITSELF, next)])
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// [`TRAITS_CHANGED`] from the inbox: sets the contact's timers of the live
    /// date-trait journeys again.
    pub(super) async fn on_traits_changed(
        &self,
        journeys: &[Journey],
        contact: ContactId,
        now: Millis,
    ) -> nudge_store::Result<()> {
        let mut loaded = None;
        for j in journeys.iter().filter(|j| j.status == JourneyStatus::Live) {
            let Some(v) = j.published_version else { continue };
            let Some(def) = self.definition(j.id, v).await? else {
                continue;
            };
            if !matches!(def.trigger, Trigger::DateTrait { .. }) {
                continue;
            }
            if loaded.is_none() {
                let Some(c) = self.store.contact(contact).await? else {
                    return Ok(());
                };
                let tz = self.trait_zone(&c.traits);
                loaded = Some((c, tz));
            }
            let (c, tz) = loaded.as_ref().expect("loaded above");
            let next = def.trigger.next_occurrence(&c.traits, now, tz);
            self.store.set_entry_timers(j.id, vec![(c.id, next)]).await?;
        }
        Ok(())
    }

    /// Claims due entry timers and starts their runs. Returns how many fired.
    pub(super) async fn entry_timers(
        &self,
        journeys: &[Journey],
        now: Millis,
        round: &mut Round,
    ) -> nudge_store::Result<usize> {
        let timers = self
            .store
            .claim_entry_timers(now, self.config.batch, self.config.lease_ms)
            .await?;
        // Where each timer goes next is written once the runs it started are stored
        // (a crash in between fires it again; its entry key starts no second run).
        let mut next: HashMap<i64, Vec<(ContactId, Option<Millis>)>> = HashMap::new();
        for t in &timers {
            self.on_entry_timer(journeys, t, now, round, &mut next).await?;
        }
        self.flush_starts(now, round).await?;
        for (journey, timers) in next {
            self.store.set_entry_timers(journey, timers).await?;
        }
        Ok(timers.len())
    }

    async fn on_entry_timer(
        &self,
        journeys: &[Journey],
        t: &EntryTimer,
        now: Millis,
        round: &mut Round,
        next_timers: &mut HashMap<i64, Vec<(ContactId, Option<Millis>)>>,
    ) -> nudge_store::Result<()> {
        let remove = vec![(t.contact_id, None)];
        let live = journeys
            .iter()
            .find(|j| j.id == t.journey_id)
            .filter(|j| j.status == JourneyStatus::Live)
            .and_then(|j| j.published_version);
        let Some(version) = live else {
            // Not live: no entries (timers are set again when it is resumed).
            return self.store.set_entry_timers(t.journey_id, remove).await;
        };
        let Some(def) = self.definition(t.journey_id, version).await? else {
            return self.store.set_entry_timers(t.journey_id, remove).await;
        };
        if t.contact_id == JOURNEY_ITSELF {
            return self.fire_schedule(t, version, &def, now, round).await;
        }
        let Trigger::DateTrait { name, .. } = &def.trigger else {
            return self.store.set_entry_timers(t.journey_id, remove).await;
        };
        let Some(contact) = self.store.contact(t.contact_id).await? else {
            return self.store.set_entry_timers(t.journey_id, remove).await;
        };
        let tz = self.trait_zone(&contact.traits);
        let next = if def.trigger.next_occurrence(&contact.traits, t.due_at, &tz) == Some(t.due_at) {
            let mut properties = Map::new();
            properties.insert("trait".into(), Value::String(name.clone()));
            if let Some(value) = contact.traits.get(name) {
                properties.insert("value".into(), value.clone());
            }
            let key = format!("date-{}-{}-{}", t.journey_id, contact.id, t.due_at);
            self.start(t.journey_id, version, &def, contact.id, properties, key, now, round)
                .await?;
            def.trigger.next_occurrence(&contact.traits, t.due_at + 1, &tz)
        } else {
            // The trait or time zone changed since the timer was set.
            def.trigger.next_occurrence(&contact.traits, now, &tz)
        };
        // A timer with the id the contact had (merged away) is replaced by one on the
        // surviving contact.
        let later = next_timers.entry(t.journey_id).or_default();
        if contact.id != t.contact_id {
            later.push((t.contact_id, None));
        }
        later.push((contact.id, next));
        Ok(())
    }

    /// A schedule came due: a run for every member of its segment (each at the
    /// schedule's time in the member's own time zone with `contact_time_zone`), then
    /// the timer moves to the next occurrence.
    async fn fire_schedule(
        &self,
        t: &EntryTimer,
        version: i64,
        def: &JourneyDefinition,
        now: Millis,
        round: &mut Round,
    ) -> nudge_store::Result<()> {
        let Trigger::Schedule { segment_id, every, .. } = &def.trigger else {
            return self
                .store
                .set_entry_timers(t.journey_id, vec![(JOURNEY_ITSELF, None)])
                .await;
        };
        let local = every.as_ref().filter(|r| r.contact_time_zone);
        let mut after = None;
        loop {
            let page = self.store.segment_member_page(*segment_id, after, PAGE).await?;
            for &contact in &page.items {
                match local {
                    Some(r) => {
                        let tz = self.zone(self.store.contact_time_zone(contact).await?.as_deref());
                        let at = journey::next_local_time(t.due_at, &tz, &r.time, &r.days);
                        let day = jiff::Timestamp::from_millisecond(at)
                            .map(|ts| ts.to_zoned(tz.clone()).date().to_string())
                            .unwrap_or_default();
                        let key = format!("schedule-{}-{contact}-{day}", t.journey_id);
                        self.start_at(t.journey_id, version, def, contact, Map::new(), key, at, now, round)
                            .await?;
                    }
                    None => {
                        let key = format!("schedule-{}-{contact}-{}", t.journey_id, t.due_at);
                        self.start(t.journey_id, version, def, contact, Map::new(), key, now, round)
                            .await?;
                    }
                }
            }
            // Large segments: write as we go, so a round holds one page of transitions.
            self.flush_starts(now, round).await?;
            if !round.writes.is_empty() {
                self.store.write_runs(std::mem::take(&mut round.writes), now).await?;
            }
            after = page.items.last().copied();
            if page.next.is_none() || page.items.is_empty() {
                break;
            }
        }
        // After downtime the missed occurrence fires once, late; those before it are
        // not repeated in a burst.
        let next = def
            .trigger
            .next_occurrence(&Map::new(), (t.due_at + 1).max(now), &self.schedule_zone(&def.trigger));
        self.store
            .set_entry_timers(t.journey_id, vec![(JOURNEY_ITSELF, next)])
            .await
    }
}

/// Whether an inbox event is a trait change (not an event runs hear).
pub(super) fn is_traits_changed(e: &InboxEvent) -> bool {
    e.name == TRAITS_CHANGED
}
