//! Templates: checking a template before it is stored (name, topic, content that
//! compiles), and previews rendered as a contact or with sample data. The HTTP API and
//! the web UI's editor both go through here.

use crate::App;
use crate::error::{AppError, Result};
use crate::messages::Recipient;
use nudge_messages::delivery::contact_data;
use nudge_messages::template::{self, Content, RenderData, Rendered, TemplateError};
use nudge_store::NewTemplate;
use serde_json::{Map, Value, json};

/// What a template is made of, as a caller parsed it.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateInput {
    pub name: String,
    pub description: String,
    pub transactional: bool,
    pub topic: Option<String>,
    pub content: Content,
}

/// Why a template cannot be stored: a field of its own (`name`, `topic`), or its
/// content, with each problem located (`subject`, `mjml` line 12, ...).
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateRefusal {
    Field { field: &'static str, message: String },
    Content(Vec<TemplateError>),
}

impl std::fmt::Display for TemplateRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateRefusal::Field { message, .. } => f.write_str(message),
            TemplateRefusal::Content(errors) => {
                let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
                f.write_str(&all.join("; "))
            }
        }
    }
}

/// Checks a template and makes it storable: a name of 1–200 characters, a topic of
/// letters, digits, `-` and `_`, content that compiles (MJML, Liquid).
pub fn check(input: TemplateInput) -> std::result::Result<NewTemplate, TemplateRefusal> {
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(TemplateRefusal::Field {
            field: "name",
            message: "name must be a non-empty string of at most 200 characters".into(),
        });
    }
    let topic = input.topic.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    if let Some(t) = &topic
        && !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(TemplateRefusal::Field {
            field: "topic",
            message: "topic is letters, digits, '-' and '_'".into(),
        });
    }
    template::compile(&input.content).map_err(TemplateRefusal::Content)?;
    let content = serde_json::to_value(&input.content).map_err(|e| TemplateRefusal::Field {
        field: "content",
        message: e.to_string(),
    })?;
    Ok(NewTemplate {
        name,
        description: input.description,
        channel: input.content.channel().to_string(),
        transactional: input.transactional,
        topic,
        content,
    })
}

/// A rendered preview, or what kept it from rendering.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    pub rendered: Option<Rendered>,
    pub errors: Vec<TemplateError>,
}

/// Who a preview is rendered for.
#[derive(Debug, Clone, PartialEq)]
pub enum PreviewAs {
    /// A stored contact (`not_found` naming `to` if there is none).
    Contact(Recipient),
    /// Sample `contact` data (`{"traits": {"first_name": "Ada"}}`).
    Sample(Value),
}

impl App {
    /// Renders `content` as a contact or with sample data, without sending or saving
    /// anything. What does not compile or render is reported in `errors`.
    pub async fn preview_template(
        &self,
        content: &Content,
        who: PreviewAs,
        event: Value,
        data: Value,
    ) -> Result<Preview> {
        let (contact, contact_id) = match who {
            PreviewAs::Contact(to) => {
                let c = self
                    .find_recipient(&to)
                    .await?
                    .ok_or_else(|| AppError::not_found_field("to", "no such contact"))?;
                (contact_data(&c), Some(c.id))
            }
            PreviewAs::Sample(v) => (v, None),
        };
        // As a contact, the recommendations they would get; with sample data, the
        // best sellers (contact 0 has no product events).
        let recommendations = if serde_json::to_value(content).is_ok_and(|v| template::reads_recommendations(&v)) {
            Some(nudge_messages::delivery::recommendations_data(&*self.store, contact_id.unwrap_or(0), &event).await?)
        } else {
            None
        };
        let mut render = RenderData {
            contact,
            event,
            workspace: self
                .messaging
                .as_ref()
                .map(|m| m.config().workspace.clone())
                .unwrap_or(json!({})),
            message: json!({"id": 0}),
            extra: Map::new(),
        };
        render.extra.insert("data".into(), data);
        if let Some(r) = recommendations {
            render.extra.insert("recommendations".into(), r);
        }
        render
            .extra
            .insert("unsubscribe_url".into(), json!("https://example.invalid/unsubscribe"));
        render
            .extra
            .insert("preferences_url".into(), json!("https://example.invalid/preferences"));
        let compiled = match template::compile(content) {
            Ok(c) => c,
            Err(errors) => return Ok(Preview { rendered: None, errors }),
        };
        Ok(match compiled.render(&render) {
            Ok(r) => Preview {
                rendered: Some(r),
                errors: Vec::new(),
            },
            Err(e) => Preview {
                rendered: None,
                errors: vec![e],
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nudge_messages::template::{EmailContent, SmsContent};

    fn input(name: &str, content: Content) -> TemplateInput {
        TemplateInput {
            name: name.into(),
            description: String::new(),
            transactional: false,
            topic: None,
            content,
        }
    }

    #[test]
    fn a_good_template_becomes_storable() {
        let t = check(input(
            " Welcome ",
            Content::Sms(SmsContent {
                body: "Hi {{ contact.traits.first_name }}".into(),
            }),
        ))
        .unwrap();
        assert_eq!((t.name.as_str(), t.channel.as_str()), ("Welcome", "sms"));
    }

    #[test]
    fn refusals_name_the_field_or_locate_the_problem() {
        let sms = Content::Sms(SmsContent { body: "hi".into() });
        assert!(matches!(
            check(input("  ", sms.clone())),
            Err(TemplateRefusal::Field { field: "name", .. })
        ));
        let mut bad_topic = input("x", sms);
        bad_topic.topic = Some("news letter".into());
        assert!(matches!(
            check(bad_topic),
            Err(TemplateRefusal::Field { field: "topic", .. })
        ));
        let broken = Content::Email(EmailContent {
            subject: "Hi {{ contact.email".into(),
            html: Some("<p>ok</p>".into()),
            ..Default::default()
        });
        match check(input("x", broken)) {
            Err(TemplateRefusal::Content(errors)) => assert_eq!(errors[0].field, "subject"),
            other => panic!("{other:?}"),
        }
    }
}
