use super::*;
use serde_json::json;

fn email(mjml: Option<&str>, html: Option<&str>) -> Content {
    Content::Email(EmailContent {
        subject: "Hi {{ contact.traits.first_name | default: 'there' }}".into(),
        mjml: mjml.map(str::to_string),
        html: html.map(str::to_string),
        ..Default::default()
    })
}

fn data() -> RenderData {
    RenderData {
        contact: json!({"email": "ada@example.com", "traits": {"first_name": "Ada", "plan": "pro"}}),
        event: json!({"name": "Order Completed", "properties": {"total": 42.5, "items": [{"name": "Tea"}, {"name": "Cup"}]}}),
        ..Default::default()
    }
}

#[test]
fn missing_values_render_empty_at_any_depth() {
    let c = compile(&Content::Sms(SmsContent {
        body: "[{{ nope }}][{{ contact.traits.nope.deeper }}][{{ contact.nope | default: 'x' }}][{% if contact.traits.nope %}y{% endif %}]".into(),
    }))
    .unwrap();
    let Rendered::Sms { body } = c.render(&data()).unwrap() else {
        panic!()
    };
    assert_eq!(body, "[][][x][]");
}

#[test]
fn mjml_email_renders_with_personalisation_inlined_css_and_text() {
    let src = r#"<mjml><mj-head><mj-style inline="inline">.big { font-size: 30px; }</mj-style></mj-head>
<mj-body><mj-section><mj-column>
<mj-text css-class="big">Hello {{ contact.traits.first_name }}!</mj-text>
<mj-text>{% for item in event.properties.items %}<p class="big">{{ item.name }}</p>{% endfor %}</mj-text>
<mj-button href="https://shop.example/cart?id={{ contact.traits.plan }}">Open</mj-button>
</mj-column></mj-section></mj-body></mjml>"#;
    let c = compile(&email(Some(src), None)).unwrap();
    let Rendered::Email {
        subject, html, text, ..
    } = c.render(&data()).unwrap()
    else {
        panic!()
    };
    assert_eq!(subject, "Hi Ada");
    assert!(html.contains("Hello Ada!"), "{html}");
    assert!(html.contains("font-size: 30px;\">Tea</p>"), "{html}");
    assert!(html.contains("https://shop.example/cart?id=pro"), "{html}");
    assert!(text.contains("Hello Ada!"), "{text}");
    assert!(text.contains("Tea") && text.contains("Cup"), "{text}");
    assert!(text.contains("https://shop.example/cart?id=pro"), "{text}");
}

#[test]
fn contact_values_are_escaped_in_html_unless_raw() {
    let c = compile(&email(
        None,
        Some("<p>{{ contact.traits.first_name }}</p><p>{{ contact.traits.first_name | raw }}</p>"),
    ))
    .unwrap();
    let mut d = data();
    d.contact = json!({"traits": {"first_name": "<b>x</b>"}});
    let Rendered::Email { html, text, .. } = c.render(&d).unwrap() else {
        panic!()
    };
    assert!(html.contains("<p>&lt;b&gt;x&lt;/b&gt;</p><p><b>x</b></p>"), "{html}");
    assert!(text.contains("<b>x</b>"), "text is not HTML: {text}");
}

#[test]
fn preheader_is_hidden_and_first_in_body() {
    let mut content = email(None, Some("<html><body><p>Body</p></body></html>"));
    if let Content::Email(e) = &mut content {
        e.preheader = Some("Just for {{ contact.traits.first_name }}".into());
    }
    let Rendered::Email { html, text, .. } = compile(&content).unwrap().render(&data()).unwrap() else {
        panic!()
    };
    let body_at = html.find("<body").unwrap();
    let pre_at = html.find("Just for Ada").unwrap();
    assert!(pre_at > body_at && pre_at < html.find("Body").unwrap(), "{html}");
    assert!(!text.contains("Just for"), "{text}");
}

#[test]
fn errors_name_the_field_and_line() {
    let errs = compile(&email(
        None,
        Some("<p>ok</p>\n<p>{{ contact.email | nosuchfilter }}</p>"),
    ))
    .unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].field, "html");
    assert!(errs[0].message.contains("Unknown filter"), "{errs:?}");
    let errs = compile(&email(None, Some("<p>\n\n{% if x %}</p>"))).unwrap_err();
    assert_eq!((errs[0].field.as_str(), errs[0].line), ("html", Some(3)), "{errs:?}");
    let errs = compile(&email(
        Some("<mjml><mj-body><mj-section>\n<mj-column>\n<mj-nonsense></mj-column></mj-section></mj-body></mjml>"),
        None,
    ))
    .unwrap_err();
    assert_eq!(errs[0].field, "mjml", "{errs:?}");
    let errs = compile(&Content::Email(EmailContent::default())).unwrap_err();
    let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["subject", "html"]);
}

#[test]
fn hostile_templates_stop_at_the_limits() {
    let run = |src: &str| {
        let c = compile(&Content::Sms(SmsContent { body: src.into() })).unwrap();
        c.render(&data()).unwrap_err().message
    };
    // A huge range is neither materialised nor run to the end.
    let e = run("{% for i in (1..1000000000000) %}{% endfor %}");
    assert!(e.contains("loops ran more than"), "{e}");
    let e = run("{% for a in (1..1000) %}{% for b in (1..1000) %}{% assign x = b %}{% endfor %}{% endfor %}");
    assert!(e.contains("loops ran more than"), "{e}");
    // Doubling a string without any loop.
    let doubling = format!(
        "{{% assign s = 'xxxxxxxxxxxxxxxx' %}}{}",
        "{% assign s = s | append: s %}".repeat(40)
    );
    let e = run(&doubling);
    assert!(e.contains("larger than"), "{e}");
    let e = run("{% for i in (1..90000) %}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx{% endfor %}");
    assert!(e.contains("output is larger than"), "{e}");
    // Nothing reads files.
    let errs = compile(&Content::Sms(SmsContent {
        body: "{% include '/etc/passwd' %}".into(),
    }))
    .unwrap_err();
    assert!(errs[0].message.contains("Unknown tag"), "{errs:?}");
}

#[test]
fn for_loop_options_match_liquid() {
    let c = compile(&Content::Sms(SmsContent {
        body: "{% for i in (1..10) limit: 3 offset: 2 %}{{ i }}{% if forloop.last %}.{% else %},{% endif %}{% endfor %}|{% for i in (1..3) reversed %}{{ i }}{% endfor %}|{% for x in event.properties.nope %}a{% else %}empty{% endfor %}|{% for i in (1..5) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}".into(),
    }))
    .unwrap();
    let Rendered::Sms { body } = c.render(&data()).unwrap() else {
        panic!()
    };
    assert_eq!(body, "3,4,5.|321|empty|13");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn liquidish() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("{{".to_string()),
            Just("}}".to_string()),
            Just("{%".to_string()),
            Just("%}".to_string()),
            Just(" contact.traits.first_name ".to_string()),
            Just(" event.properties.items ".to_string()),
            Just("| default: 'x' ".to_string()),
            Just("| upcase ".to_string()),
            Just("| size ".to_string()),
            Just("| split: ',' ".to_string()),
            Just(" for i in (1..5) ".to_string()),
            Just(" endfor ".to_string()),
            Just(" if ".to_string()),
            Just(" endif ".to_string()),
            Just(" raw ".to_string()),
            Just("<mj-text>".to_string()),
            r#"[a-z<>/"' .:|-]{0,8}"#,
        ];
        prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]
        /// Whatever a user types, compiling and rendering return a result or an
        /// error; they never panic.
        #[test]
        fn compile_and_render_never_panic(body in liquidish(), subject in liquidish()) {
            let sms = Content::Sms(SmsContent { body: body.clone() });
            if let Ok(c) = compile(&sms) {
                let _ = c.render(&data());
            }
            let mail = Content::Email(EmailContent {
                subject,
                html: Some(format!("<p>{body}</p>")),
                ..Default::default()
            });
            if let Ok(c) = compile(&mail) {
                let _ = c.render(&data());
            }
            let _ = render_liquid(&body, &data().contact);
        }
    }
}

#[test]
fn missing_values_are_nil_as_filter_arguments_too() {
    let data = json!({"items": [{"url": "u1"}, {}], "nothing": null});
    for (src, want) in [
        ("{{ a | default: data.x }}", ""),
        ("{{ a | default: data.x | default: 'z' }}", "z"),
        ("{{ a | default: nothing.x | default: 'z' }}", "z"),
        (
            "{% for p in items %}[{{ p.url | default: data.shop | default: 'd' }}]{% endfor %}",
            "[u1][d]",
        ),
        ("{% for p in items %}[{{ p.nope.deeper }}]{% endfor %}", "[][]"),
        ("{% for p in items reversed %}[{{ p.url }}]{% endfor %}", "[][u1]"),
    ] {
        assert_eq!(render_liquid(src, &data).unwrap(), want, "{src}");
    }
}

#[test]
fn json_filter_keeps_webhook_bodies_valid() {
    let data = json!({"name": "Ada \"the\" Countess\n", "n": 3, "items": [1, "two"], "nothing": null});
    let out = render_liquid(
        r#"{"name": {{ name | json }}, "n": {{ n | json }}, "items": {{ items | json }}, "missing": {{ nope | json }}, "nothing": {{ nothing | json }}}"#,
        &data,
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        v,
        json!({"name": "Ada \"the\" Countess\n", "n": 3, "items": [1, "two"], "missing": null, "nothing": null})
    );
}
