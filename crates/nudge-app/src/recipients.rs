//! What a message's recipient does through the signed links in it, without signing
//! in: the open pixel, a tracked click, unsubscribing (the page's button or a mail
//! client's RFC 8058 one-click POST), the preference page and a double opt-in's
//! confirmation. Each takes the link's token; `Ok(None)` means the link is not valid
//! (a bad signature, no such message, or a message without what the link asks
//! about). A change of consent and its timeline event are one transaction
//! (`MessageStore::answer_message`).

use crate::{App, Result};
use nudge_core::Subscription;
use nudge_core::protocol::MessageEvent;
use nudge_messages::consent::topic_key;
use nudge_messages::links::Purpose;
use nudge_store::{Answer, ContactPatch, Message};
use std::collections::{BTreeMap, BTreeSet};

/// What an unsubscribe link offers: stopping the message's topic on its channel, or
/// the whole channel's marketing when the template has no topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribing {
    pub channel: String,
    pub topic: Option<String>,
    /// The preference page of the same message (a path: `/p/...`).
    pub preferences_path: String,
}

/// The preference page: the channel as a whole and each topic its marketing
/// templates name, with whether the contact receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    pub channel: String,
    pub all: bool,
    pub topics: Vec<(String, bool)>,
}

/// What became of a confirmation link followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// The pending subscription (`email`, `email:news`) is now subscribed.
    Confirmed(String),
    /// It was confirmed before.
    AlreadyConfirmed,
    /// It is no longer waiting for confirmation (unsubscribed since).
    NotPending,
}

impl App {
    /// The message a signed link is about, and the index it carries (a click's link).
    async fn linked_message(&self, purpose: Purpose, token: &str) -> Result<Option<(Message, u32)>> {
        let Some((id, index)) = self.messaging.as_ref().and_then(|d| d.signer().verify(purpose, token)) else {
            return Ok(None);
        };
        Ok(self.store.message(id).await?.map(|m| (m, index)))
    }

    /// The open pixel was fetched. Image proxies fetch it repeatedly: at most one
    /// open per message and minute counts. `false` when nothing was recorded.
    pub async fn record_open(&self, token: &str) -> Result<bool> {
        let Some((m, _)) = self.linked_message(Purpose::Open, token).await? else {
            return Ok(false);
        };
        let now = self.clock.now();
        let key = format!("open-{}-{}", m.id, now / 60_000);
        let recorded = self
            .store
            .record_message_event(m.id, &MessageEvent::Opened, key, now)
            .await?;
        if recorded {
            self.contacts_changed();
        }
        Ok(recorded)
    }

    /// A tracked link was followed: records the click and answers where it leads
    /// (`None`: not a valid link). A click whose recording fails still leads on: the
    /// error is logged, the recipient not stopped.
    pub async fn follow_click(&self, token: &str) -> Result<Option<String>> {
        let Some((m, index)) = self.linked_message(Purpose::Click, token).await? else {
            return Ok(None);
        };
        let Some(url) = m
            .rendered
            .as_ref()
            .and_then(|r| r.get("links"))
            .and_then(|l| l.get(index as usize))
            .and_then(|u| u.as_str())
            .map(str::to_string)
        else {
            return Ok(None);
        };
        let now = self.clock.now();
        let event = MessageEvent::Clicked {
            link: index,
            url: url.clone(),
        };
        match self
            .store
            .record_message_event(m.id, &event, format!("click-{}-{index}-{now}", m.id), now)
            .await
        {
            Ok(_) => self.contacts_changed(),
            Err(e) => tracing::warn!(error = %e, "recording a click failed"),
        }
        Ok(Some(url))
    }

    /// The subscription an unsubscribe through `m` stops: its template's topic on its
    /// channel, else the channel.
    async fn unsubscribed_key(&self, m: &Message) -> Result<(Option<String>, String)> {
        let topic = self.store.template(m.template_id).await?.and_then(|t| t.topic);
        let key = match &topic {
            Some(t) => topic_key(&m.channel, t),
            None => m.channel.clone(),
        };
        Ok((topic, key))
    }

    /// What the unsubscribe page offers.
    pub async fn unsubscribe_offer(&self, token: &str) -> Result<Option<Unsubscribing>> {
        let Some((m, _)) = self.linked_message(Purpose::Unsubscribe, token).await? else {
            return Ok(None);
        };
        let (topic, _) = self.unsubscribed_key(&m).await?;
        let preferences_path = self
            .messaging
            .as_ref()
            .map(|d| d.signer().url("", Purpose::Preferences, m.id, 0))
            .unwrap_or_default();
        Ok(Some(Unsubscribing {
            channel: m.channel,
            topic,
            preferences_path,
        }))
    }

    /// Unsubscribes the message's contact from what the link offers, with an
    /// `Unsubscribed` event counted toward what sent the message, in one transaction.
    /// `Some(())` once done (again: a repeat changes nothing more).
    pub async fn unsubscribe_through(&self, token: &str, one_click: bool) -> Result<Option<()>> {
        let Some((m, _)) = self.linked_message(Purpose::Unsubscribe, token).await? else {
            return Ok(None);
        };
        let (_, key) = self.unsubscribed_key(&m).await?;
        let event_key = format!("unsubscribe-{}-{key}", m.id);
        let event = MessageEvent::Unsubscribed {
            subscription: key,
            one_click,
        };
        let answer = self
            .store
            .answer_message(m.id, &event, event_key, self.clock.now())
            .await?;
        self.contacts_changed();
        Ok((answer != Answer::NoMessage).then_some(()))
    }

    /// The topics of the channel's marketing templates.
    async fn known_topics(&self, channel: &str) -> Result<BTreeSet<String>> {
        Ok(self
            .store
            .templates()
            .await?
            .into_iter()
            .filter(|t| t.channel == channel && !t.transactional)
            .filter_map(|t| t.topic)
            .collect())
    }

    /// The preference page of the message's contact.
    pub async fn preferences(&self, token: &str) -> Result<Option<Preferences>> {
        let Some((m, _)) = self.linked_message(Purpose::Preferences, token).await? else {
            return Ok(None);
        };
        let Some(contact) = self.store.contact(m.contact_id).await? else {
            return Ok(None);
        };
        let receives = |key: &str| {
            !matches!(
                contact.subscriptions.get(key),
                Some(Subscription::Unsubscribed | Subscription::Pending)
            )
        };
        let topics = self
            .known_topics(&m.channel)
            .await?
            .into_iter()
            .map(|t| {
                let on = receives(&topic_key(&m.channel, &t));
                (t, on)
            })
            .collect();
        Ok(Some(Preferences {
            all: receives(&m.channel),
            channel: m.channel,
            topics,
        }))
    }

    /// Saves the preference page: the channel as a whole, and each known topic on
    /// when it is among `topics` (unknown names are ignored).
    pub async fn save_preferences(&self, token: &str, all: bool, topics: &BTreeSet<String>) -> Result<Option<()>> {
        let Some((m, _)) = self.linked_message(Purpose::Preferences, token).await? else {
            return Ok(None);
        };
        let state_of = |on: bool| {
            if on {
                Subscription::Subscribed
            } else {
                Subscription::Unsubscribed
            }
        };
        let mut subscriptions = BTreeMap::from([(m.channel.clone(), state_of(all))]);
        for t in self.known_topics(&m.channel).await? {
            let on = topics.contains(&t);
            subscriptions.insert(topic_key(&m.channel, &t), state_of(on));
        }
        let patch = ContactPatch {
            subscriptions,
            ..Default::default()
        };
        let saved = self
            .store
            .update_contact(m.contact_id, &patch, self.clock.now())
            .await?;
        self.contacts_changed();
        Ok(saved.map(|_| ()))
    }

    /// The subscription a confirmation link asks about (`email`, `email:news`).
    pub async fn confirmation_offer(&self, token: &str) -> Result<Option<String>> {
        let Some((m, _)) = self.linked_message(Purpose::Confirm, token).await? else {
            return Ok(None);
        };
        Ok(confirmed_key(&m))
    }

    /// Confirms a double opt-in: a pending subscription becomes `subscribed`, with a
    /// `Subscription Confirmed` event, in one transaction; anything else changes
    /// nothing (`MessageEvent::consent` decides).
    pub async fn confirm_subscription(&self, token: &str) -> Result<Option<Confirmation>> {
        let Some((m, _)) = self.linked_message(Purpose::Confirm, token).await? else {
            return Ok(None);
        };
        let Some(key) = confirmed_key(&m) else {
            return Ok(None);
        };
        let event = MessageEvent::SubscriptionConfirmed {
            subscription: key.clone(),
        };
        let answer = self
            .store
            .answer_message(m.id, &event, format!("confirm-{}", m.id), self.clock.now())
            .await?;
        Ok(match answer {
            Answer::NoMessage => None,
            Answer::Recorded => {
                self.contacts_changed();
                Some(Confirmation::Confirmed(key))
            }
            Answer::Repeated | Answer::AlreadyConfirmed => Some(Confirmation::AlreadyConfirmed),
            Answer::NotPending => Some(Confirmation::NotPending),
        })
    }
}

/// The subscription a double opt-in confirmation message asks about.
fn confirmed_key(m: &Message) -> Option<String> {
    m.data.get("confirm").and_then(|v| v.as_str()).map(str::to_string)
}
