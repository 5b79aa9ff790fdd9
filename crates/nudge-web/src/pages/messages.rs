//! Messages: the log, filtered by state, channel, template, contact and journey, paged
//! by cursor; and one message with its content as sent, its states and its events.

use crate::WebState;
use crate::auth::Viewer;
use crate::render::{self, Chrome};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use nudge_store::{EventQuery, MessageQuery, MessageState};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

const PAGE: usize = 50;

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct Filters {
    pub state: String,
    pub channel: String,
    pub template: String,
    pub contact: String,
    pub journey: String,
    pub before: String,
}

impl Filters {
    fn url(&self, before: Option<&str>) -> String {
        let pairs = [
            ("state", self.state.as_str()),
            ("channel", self.channel.as_str()),
            ("template", self.template.as_str()),
            ("contact", self.contact.as_str()),
            ("journey", self.journey.as_str()),
            ("before", before.unwrap_or("")),
        ];
        let kept: Vec<_> = pairs.iter().filter(|(_, v)| !v.is_empty()).collect();
        format!("/messages?{}", serde_urlencoded::to_string(kept).unwrap_or_default())
    }
}

pub struct Row {
    pub id: i64,
    pub contact: i64,
    pub channel: String,
    pub template: String,
    pub subject: String,
    pub state: MessageState,
    pub recipient: String,
    pub created: String,
    pub journey: String,
}

#[derive(Template)]
#[template(path = "messages.html")]
struct ListPage {
    c: Chrome,
    f: Filters,
    states: [MessageState; 6],
    channels: [&'static str; 4],
    templates: Vec<(i64, String)>,
    journeys: Vec<(i64, String)>,
    rows: Vec<Row>,
    next: Option<String>,
    error: Option<String>,
}

fn int(field: &str, raw: &str, t: &crate::i18n::Tr) -> Result<Option<i64>, String> {
    let raw = raw.trim().trim_start_matches('#');
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse()
        .map(Some)
        .map_err(|_| t.args("messages-bad-filter", &[("field", &field), ("value", &raw)]))
}

/// What a message shows as its subject: the e-mail subject, the push title, or the
/// start of an SMS.
fn subject(m: &nudge_store::Message) -> String {
    let r = m.rendered.as_ref();
    let text = |k: &str| r.and_then(|r| r.get(k)).and_then(Value::as_str).map(str::to_owned);
    text("subject")
        .or_else(|| text("title"))
        .or_else(|| text("body").map(|b| b.chars().take(60).collect()))
        .unwrap_or_default()
}

/// `GET /messages`
pub async fn list(State(state): State<WebState>, viewer: Viewer, Query(f): Query<Filters>) -> Response {
    let t = &viewer.t;
    let store = &state.api.store;
    let mut error = None;
    let mut query = MessageQuery {
        limit: PAGE,
        ..Default::default()
    };
    match (
        int("contact", &f.contact, t),
        int("template", &f.template, t),
        int("journey", &f.journey, t),
        int("before", &f.before, t),
    ) {
        (Ok(c), Ok(tpl), Ok(j), Ok(b)) => {
            query.contact_id = c;
            query.template_id = tpl;
            query.journey_id = j;
            query.before = b;
        }
        (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => error = Some(e),
    }
    query.state = MessageState::ALL.into_iter().find(|s| s.as_str() == f.state);
    query.channel = Some(f.channel.clone()).filter(|c| !c.is_empty());
    let (page, templates, journeys) = match (
        store.list_messages(&query).await,
        store.templates().await,
        store.journeys().await,
    ) {
        (Ok(p), Ok(tpl), Ok(j)) => (p, tpl, j),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return render::app_error(t, e.into()),
    };
    let template_names: HashMap<i64, String> = templates.iter().map(|x| (x.id, x.name.clone())).collect();
    let journey_names: HashMap<i64, String> = journeys.iter().map(|x| (x.id, x.name.clone())).collect();
    let rows = page
        .items
        .iter()
        .map(|m| Row {
            id: m.id,
            contact: m.contact_id,
            channel: m.channel.clone(),
            template: template_names
                .get(&m.template_id)
                .cloned()
                .unwrap_or_else(|| format!("#{}", m.template_id)),
            subject: subject(m),
            state: m.state,
            recipient: m.recipient.clone().unwrap_or_default(),
            created: t.datetime(m.created_at),
            journey: m
                .origin
                .as_ref()
                .and_then(|o| o.journey_step())
                .map(|(j, step)| {
                    format!(
                        "{} › {step}",
                        journey_names.get(&j).cloned().unwrap_or_else(|| format!("#{j}"))
                    )
                })
                .unwrap_or_default(),
        })
        .collect();
    let next = page.next.as_deref().map(|n| f.url(Some(n)));
    render::page(&ListPage {
        c: viewer.chrome(
            "messages",
            f.url(Some(&f.before).filter(|b| !b.is_empty()).map(|s| s.as_str())),
        ),
        f,
        states: MessageState::ALL,
        channels: crate::pages::templates::CHANNELS,
        templates: templates.into_iter().map(|x| (x.id, x.name)).collect(),
        journeys: journeys.into_iter().map(|x| (x.id, x.name)).collect(),
        rows,
        next,
        error,
    })
}

pub struct EventRow {
    pub name: String,
    pub at: String,
    pub properties: String,
}

#[derive(Template)]
#[template(path = "message.html")]
struct DetailPage {
    c: Chrome,
    title: String,
    msg: nudge_store::Message,
    template: String,
    journey: String,
    created: String,
    sent: String,
    next_attempt: String,
    /// The content as sent, field by field (`subject`, `html`, `text`, `body`, ...).
    sent_fields: Vec<(String, String)>,
    events: Vec<EventRow>,
}

impl DetailPage {
    fn state_name(&self) -> String {
        self.c.t.get(&format!("message-state-{}", self.msg.state.as_str()))
    }
}

/// `GET /messages/{id}`
pub async fn detail(State(state): State<WebState>, viewer: Viewer, Path(id): Path<i64>) -> Response {
    let t = &viewer.t;
    let store = &state.api.store;
    let m = match store.message(id).await {
        Ok(Some(m)) => m,
        Ok(None) => return render::error(t, StatusCode::NOT_FOUND, t.arg("message-not-found", "id", id)),
        Err(e) => return render::app_error(t, e.into()),
    };
    let template = match store.template(m.template_id).await {
        Ok(Some(x)) => x.name,
        _ => format!("#{}", m.template_id),
    };
    let journey = match m.origin.as_ref().and_then(|o| o.journey_step()) {
        Some((j, step)) => match store.journey(j).await {
            Ok(Some(x)) => format!("{} › {step}", x.name),
            _ => format!("#{j} › {step}"),
        },
        None => String::new(),
    };
    // The message's own timeline events (its states, opens, clicks), from its
    // contact's recent timeline.
    let events = match store
        .contact_events(
            m.contact_id,
            &EventQuery {
                before: None,
                limit: 500,
            },
        )
        .await
    {
        Ok(page) => page
            .items
            .into_iter()
            .filter(|e| e.properties.get("message_id").and_then(Value::as_i64) == Some(m.id))
            .map(|e| EventRow {
                name: e.name.unwrap_or_default(),
                at: t.datetime(e.timestamp),
                properties: serde_json::to_string_pretty(&e.properties).unwrap_or_default(),
            })
            .collect(),
        Err(e) => return render::app_error(t, e.into()),
    };
    let sent_fields = match &m.rendered {
        Some(Value::Object(o)) => o
            .iter()
            .map(|(k, v)| (k.clone(), render::show_value(v, true)))
            .collect(),
        _ => Vec::new(),
    };
    render::page(&DetailPage {
        c: viewer.chrome("messages", format!("/messages/{id}")),
        title: t.arg("message-title", "id", id),
        template,
        journey,
        created: t.datetime(m.created_at),
        sent: m.sent_at.map(|s| t.datetime(s)).unwrap_or_default(),
        next_attempt: m.next_attempt_at.map(|s| t.datetime(s)).unwrap_or_default(),
        sent_fields,
        events,
        msg: m,
    })
}
