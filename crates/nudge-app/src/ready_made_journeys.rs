//! Ready-made journeys: installable with one call (`POST
//! /api/v1/journeys/ready-made/{key}`, `nudge journeys install <key>`), each with the
//! templates it sends (from `nudge_messages::ready_made`) and the ready-made segments
//! it starts from. Installing creates ordinary objects to edit: templates and segments
//! that exist under the same name are reused, the journey is new.

use crate::error::{AppError, Result};
use nudge_core::Millis;
use nudge_core::journey::parse_journey;
use nudge_core::segment::ready_made as ready_segments_fn;
use nudge_messages::ready_made::ready_made_templates;
use nudge_store::{Journey, JourneyStatus, NewJourney, NewSegment, NewTemplate, Store};
use serde_json::{Value, json};

pub struct ReadyJourney {
    pub key: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    /// Templates it sends (keys of `ready_made_templates`).
    pub templates: &'static [&'static str],
    /// Ready-made segment it starts from, if any (its id replaces `"$segment"`).
    pub segment: Option<&'static str>,
    pub definition: Value,
}

/// The catalogue.
pub fn ready_made_journeys() -> Vec<ReadyJourney> {
    vec![
        ReadyJourney {
            key: "welcome",
            name: "Welcome series",
            description: "After a confirmed double opt-in (the welcome-confirm template, sent by POST /api/v1/subscriptions): welcome with a first-order code, day 2 favourites, week 2 feedback request.",
            templates: &["welcome-confirm", "welcome-day-0", "welcome-day-2", "welcome-week-2"],
            segment: None,
            definition: json!({
                "trigger": {"type": "event", "event": "Subscription Confirmed"},
                "start": "day-0",
                "steps": [
                    {"id": "day-0", "type": "send", "template": "welcome-day-0", "next": "wait-2d"},
                    {"id": "wait-2d", "type": "wait", "duration": {"days": 2}, "next": "day-2"},
                    {"id": "day-2", "type": "send", "template": "welcome-day-2", "next": "wait-12d"},
                    {"id": "wait-12d", "type": "wait", "duration": {"days": 12}, "next": "week-2"},
                    {"id": "week-2", "type": "send", "template": "welcome-week-2"}
                ],
                "settings": {"re_entry": {"type": "never"}, "quiet_hours": {"start": "21:00", "end": "08:00"}}
            }),
        },
        ReadyJourney {
            key: "abandoned_cart",
            name: "Abandoned cart",
            description: "A cart updated and no order for it within an hour: reminder; a day later, a recommendation and a code. An order for that cart ends the run at once.",
            templates: &["cart-reminder", "cart-recommendation"],
            segment: None,
            definition: json!({
                "trigger": {"type": "event", "event": "Cart Updated"},
                "start": "wait-order",
                "steps": [
                    {"id": "wait-order", "type": "wait_for_event", "event": "Order Completed", "match_key": "cart_id",
                     "timeout": {"hours": 1}, "on_event": "bought", "on_timeout": "reminder"},
                    {"id": "reminder", "type": "send", "template": "cart-reminder", "next": "wait-23h"},
                    {"id": "wait-23h", "type": "wait", "duration": {"hours": 23}, "next": "recommendation"},
                    {"id": "recommendation", "type": "send", "template": "cart-recommendation"},
                    {"id": "bought", "type": "goal", "name": "purchased"}
                ],
                "settings": {
                    "re_entry": {"type": "always"},
                    "max_concurrent_runs": 1,
                    "goal_event": {"event": "Order Completed", "match_key": "cart_id"},
                    "quiet_hours": {"start": "21:00", "end": "08:00"},
                    "priority": 10
                }
            }),
        },
        ReadyJourney {
            key: "browse_abandonment",
            name: "Browse abandonment",
            description: "A product viewed, not added to a cart within 4 hours: a reminder of that product (at most once a week).",
            templates: &["browse-reminder"],
            segment: None,
            definition: json!({
                "trigger": {"type": "event", "event": "Product Viewed"},
                "start": "wait-add",
                "steps": [
                    {"id": "wait-add", "type": "wait_for_event", "event": "Product Added", "match_key": "product_id",
                     "timeout": {"hours": 4}, "on_event": "added", "on_timeout": "reminder"},
                    {"id": "reminder", "type": "send", "template": "browse-reminder"},
                    {"id": "added", "type": "exit"}
                ],
                "settings": {"re_entry": {"type": "after", "days": 7}, "quiet_hours": {"start": "21:00", "end": "08:00"}}
            }),
        },
        ReadyJourney {
            key: "first_purchase_feedback",
            name: "First-purchase feedback",
            description: "Three days after a first order: an NPS question. An `NPS Submitted` event with a score of 6 or less goes to a webhook for a human to follow up.",
            templates: &["first-purchase-nps", "nps-detractor-alert"],
            segment: None,
            definition: json!({
                "trigger": {"type": "event", "event": "Order Completed"},
                "start": "wait-3d",
                "steps": [
                    {"id": "wait-3d", "type": "wait", "duration": {"days": 3}, "next": "ask"},
                    {"id": "ask", "type": "send", "template": "first-purchase-nps", "next": "wait-answer"},
                    {"id": "wait-answer", "type": "wait_for_event", "event": "NPS Submitted", "timeout": {"days": 14},
                     "on_event": "unhappy"},
                    {"id": "unhappy", "type": "branch",
                     "condition": {"type": "event", "event": "NPS Submitted", "where": [{"property": "score", "op": "less_than", "value": 7}],
                                   "window": {"last_days": 1}},
                     "yes": "alert"},
                    {"id": "alert", "type": "webhook", "template": "nps-detractor-alert"}
                ],
                "settings": {
                    "re_entry": {"type": "never"},
                    "entry_filter": {"type": "event", "event": "Order Completed", "count": {"op": "exactly", "value": 1}}
                }
            }),
        },
        ReadyJourney {
            key: "cross_sell",
            name: "Cross-sell after purchase",
            description: "Five days after an order: what goes well with it (at most once a month).",
            templates: &["cross-sell"],
            segment: None,
            definition: json!({
                "trigger": {"type": "event", "event": "Order Completed"},
                "start": "wait-5d",
                "steps": [
                    {"id": "wait-5d", "type": "wait", "duration": {"days": 5}, "next": "suggest"},
                    {"id": "suggest", "type": "send", "template": "cross-sell"}
                ],
                "settings": {"re_entry": {"type": "after", "days": 30}, "send_window": {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "18:00"}}
            }),
        },
        ReadyJourney {
            key: "vip",
            name: "Best customers",
            description: "Entering the high-value (RFM top) segment: a VIP welcome and the `vip` tag.",
            templates: &["vip-welcome"],
            segment: Some("high_value"),
            definition: json!({
                "trigger": {"type": "segment_entered", "segment_id": "$segment"},
                "start": "tag",
                "steps": [
                    {"id": "tag", "type": "update_contact", "add_tags": ["vip"], "next": "welcome"},
                    {"id": "welcome", "type": "send", "template": "vip-welcome"}
                ],
                "settings": {"re_entry": {"type": "after", "days": 365}}
            }),
        },
        ReadyJourney {
            key: "win_back",
            name: "Win-back",
            description: "Entering the at-risk segment (no order in 90 days): a come-back code; if no order within 14 days, the `lapsed` tag.",
            templates: &["win-back"],
            segment: Some("at_risk"),
            definition: json!({
                "trigger": {"type": "segment_entered", "segment_id": "$segment"},
                "start": "offer",
                "steps": [
                    {"id": "offer", "type": "send", "template": "win-back", "next": "wait-order"},
                    {"id": "wait-order", "type": "wait_for_event", "event": "Order Completed", "timeout": {"days": 14},
                     "on_event": "won-back", "on_timeout": "lapsed"},
                    {"id": "lapsed", "type": "update_contact", "add_tags": ["lapsed"]},
                    {"id": "won-back", "type": "goal", "name": "won back"}
                ],
                "settings": {"re_entry": {"type": "after", "days": 90}}
            }),
        },
        ReadyJourney {
            key: "email_then_sms",
            name: "Email, then SMS",
            description: "On an `Important Update` event: an email; if it is not opened within 48 hours, an SMS.",
            templates: &["fallback-email", "fallback-sms"],
            segment: None,
            definition: json!({
                "trigger": {"type": "event", "event": "Important Update"},
                "start": "email",
                "steps": [
                    {"id": "email", "type": "send", "template": "fallback-email", "next": "wait-48h"},
                    {"id": "wait-48h", "type": "wait", "duration": {"hours": 48}, "next": "opened"},
                    {"id": "opened", "type": "branch", "message": {"step": "email", "outcome": "opened"}, "no": "sms"},
                    {"id": "sms", "type": "send", "template": "fallback-sms"}
                ],
                "settings": {"re_entry": {"type": "always"}, "quiet_hours": {"start": "21:00", "end": "08:00"}}
            }),
        },
        ReadyJourney {
            key: "birthday",
            name: "Birthday with coupon",
            description: "Every year on the contact's `birthday` trait, at 09:00 in the contact's time zone: wishes and a coupon.",
            templates: &["birthday-coupon"],
            segment: None,
            definition: json!({
                "trigger": {"type": "date_trait", "trait": "birthday", "every_year": true, "time": "09:00"},
                "start": "wish",
                "steps": [{"id": "wish", "type": "send", "template": "birthday-coupon"}],
                "settings": {"re_entry": {"type": "after", "days": 300}}
            }),
        },
        ReadyJourney {
            key: "location_offer",
            name: "Location-based offer",
            description: "A `Store Nearby` event (from an app's geofence): the offer of the store near the contact (at most once a week).",
            templates: &["location-offer"],
            segment: None,
            definition: json!({
                "trigger": {"type": "event", "event": "Store Nearby"},
                "start": "offer",
                "steps": [{"id": "offer", "type": "send", "template": "location-offer"}],
                "settings": {"re_entry": {"type": "after", "days": 7}, "quiet_hours": {"start": "20:00", "end": "09:00"}}
            }),
        },
    ]
}

/// Installs ready-made journey `key`: its templates and segment (reused when one of
/// that name exists), then the journey (named after the catalogue, with a number if
/// taken), published when `publish`. An unknown key is [`AppError::NotFound`]; a
/// catalogue entry that does not parse (a bug, caught by the tests) is
/// [`AppError::Internal`].
pub async fn install(store: &dyn Store, key: &str, publish: bool, now: Millis) -> Result<Journey> {
    let all = ready_made_journeys();
    let Some(r) = all.iter().find(|r| r.key == key) else {
        return Err(AppError::not_found(format!(
            "no ready-made journey {key:?}; one of {}",
            all.iter().map(|r| r.key).collect::<Vec<_>>().join(", ")
        )));
    };
    let templates = ready_made_templates();
    for name in r.templates {
        let t = templates
            .iter()
            .find(|t| t.key == *name)
            .ok_or_else(|| AppError::Internal(format!("{key}: no template {name}")))?;
        if store.template_by_name(name).await?.is_none() {
            store
                .create_template(
                    NewTemplate {
                        name: t.key.into(),
                        description: t.description.into(),
                        channel: t.channel.into(),
                        transactional: t.transactional,
                        topic: t.topic.map(str::to_string),
                        content: t.content.clone(),
                    },
                    now,
                )
                .await?;
        }
    }
    let mut definition = r.definition.clone();
    if let Some(seg_key) = r.segment {
        let ready = ready_segments_fn()
            .into_iter()
            .find(|s| s.key == seg_key)
            .ok_or_else(|| AppError::Internal(format!("{key}: no ready-made segment {seg_key}")))?;
        let existing = store.segments().await?.into_iter().find(|s| s.name == ready.name);
        let id = match existing {
            Some(s) => s.id,
            None => {
                store
                    .create_segment(
                        NewSegment {
                            name: ready.name.into(),
                            description: ready.description.into(),
                            definition: ready.definition,
                            administrative: ready.administrative,
                        },
                        now,
                    )
                    .await?
                    .id
            }
        };
        definition["trigger"]["segment_id"] = json!(id);
    }
    parse_journey(&definition).map_err(|e| AppError::Internal(format!("{key}: {e:?}")))?;
    let taken: Vec<String> = store.journeys().await?.into_iter().map(|j| j.name).collect();
    let mut name = r.name.to_string();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{} {n}", r.name);
        n += 1;
    }
    let j = store
        .create_journey(
            NewJourney {
                name,
                description: r.description.into(),
                priority: if key == "abandoned_cart" { 10 } else { 0 },
                definition,
            },
            now,
        )
        .await?;
    if publish {
        return Ok(store
            .set_journey_status(j.id, JourneyStatus::Live, true, now)
            .await?
            .unwrap_or(j));
    }
    Ok(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ready_made_journey_is_valid_and_its_templates_exist() {
        let templates = ready_made_templates();
        for r in ready_made_journeys() {
            let mut def = r.definition.clone();
            if r.segment.is_some() {
                def["trigger"]["segment_id"] = json!(1);
            }
            parse_journey(&def).unwrap_or_else(|e| panic!("{}: {e:?}", r.key));
            for t in r.templates {
                assert!(templates.iter().any(|x| x.key == *t), "{}: template {t}", r.key);
            }
            let text = def.to_string();
            for t in templates.iter().filter(|t| text.contains(&format!("\"{}\"", t.key))) {
                assert!(
                    r.templates.contains(&t.key),
                    "{} sends {} but does not install it",
                    r.key,
                    t.key
                );
            }
        }
    }
}
