//! Ready-made templates: the messages of the ready-made journeys (welcome series with
//! double opt-in, abandoned cart, browse abandonment, first-purchase feedback,
//! birthday, cross-sell, VIP, win-back, email-then-SMS fallback, location-based
//! offer). Each is an ordinary template once installed, to be edited like any other.
//!
//! They read what the Segment e-commerce spec puts in events (`products` with `name`,
//! `price`, `quantity`, `url`, `image_url`; `cart_id`, `order_id`, `total`) and what
//! the journey passes in `data` (coupon codes, links); every value has a default so a
//! preview with sample data reads well.

use serde_json::{Value, json};

/// One ready-made template.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadyTemplate {
    /// Stable key (also the installed template's name).
    pub key: &'static str,
    pub description: &'static str,
    pub channel: &'static str,
    pub transactional: bool,
    /// The subscription topic of marketing templates.
    pub topic: Option<&'static str>,
    /// The template content (`{"channel": ..., ...}`).
    pub content: Value,
}

const SHOP: &str = r#"{{ data.shop_url | default: "https://shop.example" }}"#;
const FIRST_NAME: &str = r#"{{ contact.traits.first_name | default: "there" }}"#;

/// A one-column MJML email: header with the workspace name, the sections, footer.
fn email(sections: &str) -> String {
    format!(
        r##"<mjml>
  <mj-head>
    <mj-attributes>
      <mj-all font-family="Helvetica, Arial, sans-serif" />
      <mj-text font-size="16px" line-height="24px" color="#1f2933" />
      <mj-button background-color="#2f6fed" color="#ffffff" font-size="16px" border-radius="6px" />
    </mj-attributes>
    <mj-style inline="inline">.muted {{ color: #6b7280; font-size: 13px; }}</mj-style>
  </mj-head>
  <mj-body background-color="#f3f4f6">
    <mj-section padding="24px 0 8px">
      <mj-column><mj-text font-size="20px" font-weight="bold" align="center">{{{{ workspace.name }}}}</mj-text></mj-column>
    </mj-section>
    <mj-section background-color="#ffffff" border-radius="8px" padding="24px">
      <mj-column>
{sections}
      </mj-column>
    </mj-section>
    <mj-section padding="8px 0 24px">
      <mj-column><mj-text css-class="muted" align="center">You receive this because you are a customer of {{{{ workspace.name }}}}.</mj-text></mj-column>
    </mj-section>
  </mj-body>
</mjml>"##
    )
}

/// The products of the triggering event (cart, order, viewed product), one line each
/// (the loop stays inside one `mj-text`: MJML only keeps text inside its elements).
fn product_rows(limit: u32) -> String {
    format!(
        r#"        <mj-text>{{% for p in event.properties.products limit: {limit} %}}<p style="margin: 0 0 8px"><a href="{{{{ p.url | default: data.shop_url | default: 'https://shop.example' }}}}">{{{{ p.name | default: "An item" }}}}</a>{{% if p.quantity %}} × {{{{ p.quantity }}}}{{% endif %}}{{% if p.price %}} — {{{{ p.price }}}} {{{{ event.properties.currency | default: "EUR" }}}}{{% endif %}}</p>{{% endfor %}}</mj-text>"#
    )
}

/// Recommended products (`nudge_core::recommend::template_data`: `list` is
/// `recommendations.for_contact` or `recommendations.similar_to[...]`), one line each;
/// without any, a link to the best sellers named `fallback`.
fn recommended_rows(list: &str, limit: u32, fallback: &str) -> String {
    format!(
        r#"        <mj-text>{{% for p in {list} limit: {limit} %}}<p style="margin: 0 0 8px"><a href="{{{{ p.url | default: data.shop_url | default: 'https://shop.example' }}}}">{{{{ p.name | default: "An item" }}}}</a>{{% if p.price %}} — {{{{ p.price }}}} {{{{ event.properties.currency | default: "EUR" }}}}{{% endif %}}</p>{{% else %}}<p><a href="{{{{ data.recommendation_url | default: 'https://shop.example/bestsellers' }}}}">{{{{ data.recommendation | default: "{fallback}" }}}}</a></p>{{% endfor %}}</mj-text>"#
    )
}

fn mail(subject: &str, preheader: &str, sections: &str) -> Value {
    json!({
        "channel": "email",
        "subject": subject,
        "preheader": preheader,
        "mjml": email(sections),
    })
}

fn button(label: &str, href: &str) -> String {
    format!(r#"        <mj-button href="{href}">{label}</mj-button>"#)
}

fn text(body: &str) -> String {
    format!("        <mj-text>{body}</mj-text>")
}

/// The catalogue, in the order of the ready-made journeys.
pub fn ready_made_templates() -> Vec<ReadyTemplate> {
    let t = |key, description, transactional, topic, content| ReadyTemplate {
        key,
        description,
        channel: "email",
        transactional,
        topic,
        content,
    };
    let mut all = vec![
        // Welcome series with double opt-in.
        t(
            "welcome-confirm",
            "Double opt-in: asks a new subscriber to confirm (contains {{ confirm_url }}).",
            true,
            None,
            mail(
                "Please confirm your subscription",
                "One click and you are in",
                &[
                    text(&format!("Hi {FIRST_NAME},")),
                    text("Please confirm that you want to hear from us. If you did not sign up, ignore this email and nothing will happen."),
                    button("Yes, subscribe me", "{{ confirm_url }}"),
                ]
                .join("\n"),
            ),
        ),
        t(
            "welcome-day-0",
            "Welcome series, day 0: thanks and a first-order code.",
            false,
            Some("newsletter"),
            mail(
                &format!("Welcome to {{{{ workspace.name }}}}, {FIRST_NAME}!"),
                "Here is 10% off your first order",
                &[
                    text(&format!("Hi {FIRST_NAME}, thanks for joining us.")),
                    text(r#"Here is 10% off your first order: <strong>{{ data.coupon | default: "WELCOME10" }}</strong>"#),
                    button("Start shopping", SHOP),
                ]
                .join("\n"),
            ),
        ),
        t(
            "welcome-day-2",
            "Welcome series, day 2: what people love most.",
            false,
            Some("newsletter"),
            mail(
                "What our customers love most",
                "Three favourites to start with",
                &[
                    text(&format!("Hi {FIRST_NAME}, here is where most people start:")),
                    text("Our bestsellers, the new arrivals, and the guides our team writes every week."),
                    button("See the bestsellers", &format!("{SHOP}/bestsellers")),
                ]
                .join("\n"),
            ),
        ),
        t(
            "welcome-week-2",
            "Welcome series, week 2: asks for feedback.",
            false,
            Some("newsletter"),
            mail(
                "How are we doing?",
                "Two minutes, one question",
                &[
                    text(&format!("Hi {FIRST_NAME}, you have been with us for two weeks.")),
                    text("What would make us better for you? Reply to this email: a person reads every answer."),
                    button("Tell us", &format!("{SHOP}/feedback")),
                ]
                .join("\n"),
            ),
        ),
        // Abandoned cart.
        t(
            "cart-reminder",
            "Abandoned cart, 1 hour: the items left in the cart.",
            false,
            Some("offers"),
            mail(
                "You left something in your cart",
                "Your items are still waiting",
                &[
                    text(&format!("Hi {FIRST_NAME}, you left these in your cart:")),
                    product_rows(5),
                    button("Back to my cart", r#"{{ event.properties.cart_url | default: data.cart_url | default: "https://shop.example/cart" }}"#),
                ]
                .join("\n"),
            ),
        ),
        t(
            "cart-recommendation",
            "Abandoned cart, 24 hours: the cart again, with a recommendation and a code.",
            false,
            Some("offers"),
            mail(
                "Still thinking it over?",
                "A little something to help you decide",
                &[
                    text(&format!("Hi {FIRST_NAME}, your cart is saved:")),
                    product_rows(3),
                    text("Customers who chose these also liked:"),
                    recommended_rows("recommendations.for_contact", 3, "our bestsellers"),
                    text(r#"Use <strong>{{ data.coupon | default: "COMEBACK5" }}</strong> for 5% off, today only."#),
                    button("Complete my order", r#"{{ event.properties.cart_url | default: data.cart_url | default: "https://shop.example/cart" }}"#),
                ]
                .join("\n"),
            ),
        ),
        // Browse abandonment.
        t(
            "browse-reminder",
            "Browse abandonment: the product looked at, not bought.",
            false,
            Some("offers"),
            mail(
                r#"Still interested in {{ event.properties.name | default: "this" }}?"#,
                "It is still here",
                &[
                    text(&format!(
                        r#"Hi {FIRST_NAME}, you were looking at <strong>{{{{ event.properties.name | default: "one of our products" }}}}</strong>{{% if event.properties.price %}} ({{{{ event.properties.price }}}} {{{{ event.properties.currency | default: "EUR" }}}}){{% endif %}}."#
                    )),
                    button(
                        "Have another look",
                        r#"{{ event.properties.url | default: data.shop_url | default: "https://shop.example" }}"#,
                    ),
                ]
                .join("\n"),
            ),
        ),
        // First-purchase feedback.
        t(
            "first-purchase-nps",
            "First purchase: how likely are you to recommend us (0–10)?",
            false,
            Some("feedback"),
            mail(
                "How was your first order?",
                "One question, ten seconds",
                &[
                    text(&format!("Hi {FIRST_NAME}, thank you for your first order{{% if event.properties.order_id %}} ({{{{ event.properties.order_id }}}}){{% endif %}}.")),
                    text("How likely are you to recommend us to a friend? 0 is not at all, 10 is extremely likely."),
                    text(&format!(
                        "{{% for score in (0..10) %}}<a href=\"{SHOP}/nps?score={{{{ score }}}}&amp;order={{{{ event.properties.order_id | url_encode }}}}\">{{{{ score }}}}</a> {{% endfor %}}"
                    )),
                ]
                .join("\n"),
            ),
        ),
        // Birthday.
        t(
            "birthday-coupon",
            "Birthday: wishes and a coupon.",
            false,
            Some("offers"),
            mail(
                &format!("Happy birthday, {FIRST_NAME}!"),
                "A present from us",
                &[
                    text(&format!("Happy birthday, {FIRST_NAME}! Here is a present from all of us:")),
                    text(r#"<strong>{{ data.coupon | default: "BIRTHDAY15" }}</strong>: 15% off anything, for the next 7 days."#),
                    button("Treat yourself", SHOP),
                ]
                .join("\n"),
            ),
        ),
        // Cross-sell / upsell.
        t(
            "cross-sell",
            "After a purchase: what goes well with it.",
            false,
            Some("offers"),
            mail(
                "Made for what you just bought",
                "Complete the set",
                &[
                    text(&format!("Hi {FIRST_NAME}, we hope you enjoy your order:")),
                    product_rows(3),
                    text("People who bought these also chose:"),
                    recommended_rows("recommendations.for_contact", 4, "these favourites"),
                    button("Have a look", r#"{{ data.recommendation_url | default: "https://shop.example/bestsellers" }}"#),
                ]
                .join("\n"),
            ),
        ),
        // Best customers.
        t(
            "vip-welcome",
            "Best customers: welcome to the VIP club.",
            false,
            Some("newsletter"),
            mail(
                &format!("{FIRST_NAME}, you are now a VIP"),
                "Early access, free shipping, and more",
                &[
                    text(&format!("Hi {FIRST_NAME}, you are one of our very best customers, and we want to say thank you.")),
                    text("From today: free shipping on every order, early access to new collections, and a personal contact for anything you need."),
                    button("See your benefits", &format!("{SHOP}/vip")),
                ]
                .join("\n"),
            ),
        ),
        // Win-back.
        t(
            "win-back",
            "Win-back: inactive for 90 days.",
            false,
            Some("offers"),
            mail(
                &format!("We miss you, {FIRST_NAME}"),
                "It has been a while: here is 20% off",
                &[
                    text(&format!("Hi {FIRST_NAME}, it has been a while. A lot is new since your last visit.")),
                    text(r#"Come back with <strong>{{ data.coupon | default: "MISSYOU20" }}</strong> for 20% off your next order."#),
                    button("See what is new", &format!("{SHOP}/new")),
                ]
                .join("\n"),
            ),
        ),
        // Email then SMS fallback.
        t(
            "fallback-email",
            "Email-then-SMS fallback: the email (an SMS follows if it is not opened in 48 hours).",
            false,
            Some("offers"),
            mail(
                r#"{{ data.headline | default: "Something new for you" }}"#,
                r#"{{ data.preheader | default: "Open to see it" }}"#,
                &[
                    text(&format!(r#"Hi {FIRST_NAME}, {{{{ data.message | default: "we have something new we think you will like." }}}}"#)),
                    button(r#"{{ data.cta | default: "See it" }}"#, r#"{{ data.url | default: "https://shop.example" }}"#),
                ]
                .join("\n"),
            ),
        ),
        // Location-based offer.
        t(
            "location-offer",
            "Location-based offer: a store near the contact's city.",
            false,
            Some("offers"),
            mail(
                r#"Something special in {{ contact.traits.city | default: "your city" }}"#,
                "Only at our store near you",
                &[
                    text(&format!(
                        r#"Hi {FIRST_NAME}, our {{{{ data.store | default: "store" }}}} in {{{{ contact.traits.city | default: "your city" }}}} has an offer just for you this week: {{{{ data.offer | default: "10% off in store" }}}}."#
                    )),
                    button("Find the store", r#"{{ data.store_url | default: "https://shop.example/stores" }}"#),
                ]
                .join("\n"),
            ),
        ),
    ];
    all.push(ReadyTemplate {
        key: "fallback-sms",
        description: "Email-then-SMS fallback: the SMS sent when the email was not opened.",
        channel: "sms",
        transactional: false,
        topic: Some("offers"),
        content: json!({
            "channel": "sms",
            "body": format!(r#"{{{{ workspace.name }}}}: Hi {FIRST_NAME}, {{{{ data.sms | default: "we sent you something by email. See it here:" }}}} {{{{ data.url | default: "https://shop.example" }}}} Reply STOP to opt out."#),
        }),
    });
    all.push(ReadyTemplate {
        key: "nps-detractor-alert",
        description: "First-purchase feedback: an unhappy answer, sent to a webhook for a human to follow up.",
        channel: "webhook",
        transactional: true,
        topic: None,
        content: json!({
            "channel": "webhook",
            "method": "POST",
            "url": r#"{{ data.webhook_url | default: "https://hooks.example/nps" }}"#,
            "headers": {"Content-Type": "application/json"},
            "body": r#"{% capture text %}Unhappy customer: {{ contact.email | default: contact.user_id }} gave {{ event.properties.score | default: '?' }}/10 for order {{ event.properties.order_id | default: '?' }}{% endcapture %}{"text": {{ text | json }}, "contact_id": {{ contact.id | json }}}"#,
        }),
    });
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{Content, RenderData, Rendered, compile};

    fn sample() -> RenderData {
        RenderData {
            contact: json!({"id": 7, "email": "ada@example.com", "user_id": "u7",
                "traits": {"first_name": "Ada", "city": "Lisbon"}}),
            event: json!({"name": "Cart Updated", "properties": {
            "cart_id": "c-1", "order_id": "o-1", "currency": "EUR", "score": 4, "name": "Linen Shirt", "price": 49,
            "url": "https://shop.example/p/linen", "cart_url": "https://shop.example/cart/c-1",
            "products": [
                {"name": "Linen Shirt", "price": 49, "quantity": 1, "url": "https://shop.example/p/linen"},
                {"name": "Denim Jacket", "price": 89, "quantity": 2}
            ]}}),
            workspace: json!({"name": "Demo Shop"}),
            message: json!({"id": 1, "template": "x"}),
            extra: [("confirm_url".to_string(), json!("https://nudge.example/confirm/abc"))]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn every_ready_made_template_compiles_and_renders_personalised() {
        let all = ready_made_templates();
        let mut keys: Vec<&str> = all.iter().map(|t| t.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), all.len(), "keys are unique");
        for t in &all {
            let content: Content =
                serde_json::from_value(t.content.clone()).unwrap_or_else(|e| panic!("{}: {e}", t.key));
            let compiled = compile(&content).unwrap_or_else(|e| panic!("{}: {e:?}", t.key));
            let rendered = compiled.render(&sample()).unwrap_or_else(|e| panic!("{}: {e}", t.key));
            match rendered {
                Rendered::Email {
                    subject, html, text, ..
                } => {
                    assert!(
                        !subject.trim().is_empty() && !subject.contains("{{"),
                        "{}: {subject}",
                        t.key
                    );
                    assert!(html.contains("Demo Shop"), "{}", t.key);
                    assert!(
                        !html.contains("{{") && !html.contains("{%"),
                        "{}: Liquid left in the HTML",
                        t.key
                    );
                    assert!(
                        html.contains("Ada") || html.contains("Lisbon"),
                        "{}: not personalised",
                        t.key
                    );
                    assert!(text.len() > 40, "{}: text part {text:?}", t.key);
                }
                Rendered::Sms { body } => {
                    assert!(body.contains("Ada") && body.contains("STOP"), "{}: {body}", t.key);
                    assert!(body.chars().count() <= 320, "{}: two SMS at most", t.key);
                }
                Rendered::Webhook { body, .. } => {
                    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{}: {e}: {body}", t.key));
                    assert_eq!(v["contact_id"], 7);
                    assert!(v["text"].as_str().unwrap().contains("4/10"));
                }
                other => panic!("{}: unexpected {other:?}", t.key),
            }
            assert_eq!(
                t.transactional,
                t.topic.is_none(),
                "{}: marketing templates have a topic",
                t.key
            );
        }
    }

    #[test]
    fn cross_sell_and_the_carts_second_message_list_recommended_products() {
        let render = |key: &str, data: &RenderData| {
            let t = ready_made_templates().into_iter().find(|t| t.key == key).unwrap();
            assert!(crate::template::reads_recommendations(&t.content), "{key}");
            let content: Content = serde_json::from_value(t.content).unwrap();
            match compile(&content).unwrap().render(data).unwrap() {
                Rendered::Email { html, .. } => html,
                _ => unreachable!(),
            }
        };
        let mut data = sample();
        data.extra.insert(
            "recommendations".into(),
            json!({"for_contact": [
                {"id": "p9", "name": "Wool Scarf", "url": "https://shop.example/p/scarf", "price": 35},
                {"id": "p8", "name": "Leather Belt", "url": "https://shop.example/p/belt"}
            ], "similar_to": {}}),
        );
        for key in ["cross-sell", "cart-recommendation"] {
            let html = render(key, &data);
            assert!(
                html.contains("Wool Scarf")
                    && html.contains("https://shop.example/p/scarf")
                    && html.contains("Leather Belt"),
                "{key}: {html}"
            );
            assert!(html.contains("35 EUR"), "{key}");
            // Without recommendations (none refreshed yet): the best sellers' link.
            let html = render(key, &sample());
            assert!(
                html.contains("https://shop.example/bestsellers") && !html.contains("Wool Scarf"),
                "{key}"
            );
        }
    }

    #[test]
    fn carts_list_their_products_and_confirmations_link_to_confirm() {
        let render = |key: &str| {
            let t = ready_made_templates().into_iter().find(|t| t.key == key).unwrap();
            let content: Content = serde_json::from_value(t.content).unwrap();
            match compile(&content).unwrap().render(&sample()).unwrap() {
                Rendered::Email { html, .. } => html,
                _ => unreachable!(),
            }
        };
        let cart = render("cart-reminder");
        assert!(
            cart.contains("Linen Shirt") && cart.contains("Denim Jacket") && cart.contains("× 2"),
            "{cart}"
        );
        assert!(cart.contains("https://shop.example/cart/c-1"));
        assert!(render("welcome-confirm").contains("https://nudge.example/confirm/abc"));
        let nps = render("first-purchase-nps");
        assert!(nps.contains("score=0") && nps.contains("score=10"), "{nps}");
    }
}
