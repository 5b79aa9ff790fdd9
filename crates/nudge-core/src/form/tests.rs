use super::*;
use serde_json::json;

fn def() -> FormDefinition {
    parse_definition(&json!({
        "fields": [
            {"name": "email", "type": "email", "label": "Email", "required": true},
            {"name": "first_name", "type": "text", "label": "First name"},
            {"name": "phone", "type": "phone", "label": "Phone"},
            {"name": "employees", "type": "number", "label": "Employees"},
            {"name": "birthday", "type": "date", "label": "Birthday"},
            {"name": "plan", "type": "select", "label": "Plan", "options": ["free", "pro"]},
            {"name": "terms", "type": "checkbox", "label": "I agree", "required": true},
            {"name": "utm_source", "type": "hidden", "query": "utm_source", "value": "direct"}
        ],
        "consents": [{"subscription": "email:newsletter", "label": "Send me the newsletter"}],
        "after_submit": {"message": "Thanks!"}
    }))
    .unwrap()
}

fn input(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn a_good_definition_has_no_problems() {
    assert_eq!(validate(&mut def()), vec![]);
}

#[test]
fn every_problem_of_a_definition_is_named_by_its_path() {
    let mut d = parse_definition(&json!({
        "fields": [
            {"name": "Email", "type": "email", "label": "Email"},
            {"name": "plan", "type": "select", "label": ""},
            {"name": "plan", "type": "text", "label": "Again", "options": ["x"]},
            {"name": "src", "type": "hidden", "required": true},
        ],
        "consents": [{"subscription": "fax:news", "label": "x"}],
        "double_opt_in": {"confirm_template": ""},
        "after_submit": {"redirect": "javascript:alert(1)"},
        "allowed_origins": ["https://Shop.example:443/", "shop.example"],
        "page": {"locale": "de", "image_url": "data:x"},
        "spam": {"min_fill_ms": -1, "proof_of_work": 30}
    }))
    .unwrap();
    let fields: Vec<String> = validate(&mut d).into_iter().map(|p| p.field).collect();
    for f in [
        "fields[0].name",
        "fields[0].required",
        "fields[1].label",
        "fields[1].options",
        "fields[2].name",
        "fields[2].options",
        "fields[3].required",
        "consents[0].subscription",
        "double_opt_in.confirm_template",
        "after_submit.redirect",
        "allowed_origins[1]",
        "page.locale",
        "page.image_url",
        "spam.min_fill_ms",
        "spam.proof_of_work",
    ] {
        assert!(fields.contains(&f.to_string()), "{f} missing from {fields:?}");
    }
    assert_eq!(d.allowed_origins[0], "https://shop.example", "normalised in place");
}

#[test]
fn a_form_needs_exactly_one_required_email_field() {
    let mut d = def();
    d.fields.remove(0);
    assert!(
        validate(&mut d)
            .iter()
            .any(|p| p.field == "fields" && p.message.contains("email"))
    );
    let mut d = def();
    d.fields.push(Field {
        name: "email2".into(),
        kind: FieldKind::Email,
        label: "Again".into(),
        trait_name: None,
        required: true,
        options: vec![],
        query: None,
        value: None,
    });
    assert!(validate(&mut d).iter().any(|p| p.message.contains("one email field")));
}

#[test]
fn shape_errors_name_their_path() {
    let e = parse_definition(&json!({"fields": [{"name": "x", "type": "colour"}]})).unwrap_err();
    assert_eq!(e.field, "fields[0].type");
    let e = parse_definition(&json!({"fields": [], "extra": 1})).unwrap_err();
    assert!(e.message.contains("extra"), "{e:?}");
}

#[test]
fn values_are_checked_and_normalised_into_traits() {
    let a = accept(
        &def(),
        &input(&[
            ("email", " Ada@Example.COM "),
            ("first_name", "Ada"),
            ("phone", "+44 (20) 7946-0000"),
            ("employees", "1,200"),
            ("birthday", "1990-12-10"),
            ("plan", "pro"),
            ("terms", "on"),
            ("consent:email:newsletter", "on"),
            ("unknown", "ignored"),
        ]),
    )
    .unwrap();
    assert_eq!(a.email, "ada@example.com");
    assert_eq!(
        Value::Object(a.traits.clone()),
        json!({"email": "ada@example.com", "first_name": "Ada", "phone": "+442079460000",
               "employees": 1200, "birthday": "1990-12-10", "plan": "pro", "terms": true,
               "utm_source": "direct"})
    );
    assert_eq!(a.consents, vec!["email:newsletter".to_string()]);
    assert_eq!(a.values.get("utm_source"), Some(&json!("direct")));
}

#[test]
fn a_hidden_field_takes_the_posted_value_over_its_fixed_one() {
    let a = accept(
        &def(),
        &input(&[("email", "a@b.co"), ("terms", "yes"), ("utm_source", "ads")]),
    )
    .unwrap();
    assert_eq!(a.traits["utm_source"], json!("ads"));
    assert!(a.consents.is_empty(), "an unchecked consent gives nothing");
}

#[test]
fn every_bad_value_is_named_by_its_input() {
    let e = accept(
        &def(),
        &input(&[
            ("email", "not-an-email"),
            ("phone", "call me"),
            ("employees", "many"),
            ("birthday", "10/12/1990"),
            ("plan", "enterprise"),
            ("first_name", &"x".repeat(MAX_TEXT + 1)),
        ]),
    )
    .unwrap_err();
    let fields: Vec<&str> = e.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        vec!["email", "first_name", "phone", "employees", "birthday", "plan", "terms"]
    );
    assert!(e[0].message.contains("not-an-email"));
}

#[test]
fn required_fields_and_consents_must_be_given() {
    let mut d = def();
    d.consents[0].required = true;
    let e = accept(&d, &input(&[("terms", "on")])).unwrap_err();
    let fields: Vec<&str> = e.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, vec!["email", "consent:email:newsletter"]);
}

#[test]
fn consent_under_double_opt_in_waits_unless_already_subscribed() {
    assert_eq!(consent_state(true, None), Some(Subscription::Pending));
    assert_eq!(
        consent_state(true, Some(Subscription::Unsubscribed)),
        Some(Subscription::Pending)
    );
    assert_eq!(consent_state(true, Some(Subscription::Subscribed)), None);
    assert_eq!(
        consent_state(false, Some(Subscription::Pending)),
        Some(Subscription::Subscribed)
    );
    assert_eq!(consent_state(false, Some(Subscription::Subscribed)), None);
}

#[test]
fn the_submitter_is_the_email_contact_merged_with_an_anonymous_visitor() {
    let known = |id| Submitter { id, known: true };
    let anon = |id| Submitter { id, known: false };
    use Resolution::*;
    // New email, new browser.
    assert_eq!(resolve_submitter(None, None, None), Create { with_anonymous: false });
    assert_eq!(
        resolve_submitter(None, Some("a"), None),
        Create { with_anonymous: true }
    );
    // The anonymous visitor becomes the person.
    assert_eq!(resolve_submitter(None, Some("a"), Some(&anon(2))), Attach(2));
    // Known by email: the anonymous history joins them.
    assert_eq!(
        resolve_submitter(Some(&known(1)), Some("a"), Some(&anon(2))),
        Merge { from: 2, into: 1 }
    );
    assert_eq!(resolve_submitter(Some(&known(1)), Some("a"), None), Attach(1));
    assert_eq!(resolve_submitter(Some(&known(1)), Some("a"), Some(&known(1))), Use(1));
    // A shared device: the browser belongs to someone else; nobody is merged.
    assert_eq!(resolve_submitter(Some(&known(1)), Some("a"), Some(&known(3))), Use(1));
    assert_eq!(
        resolve_submitter(None, Some("a"), Some(&known(3))),
        Create { with_anonymous: false }
    );
}

#[test]
fn spam_checks_refuse_honeypots_fast_forms_and_bad_stamps() {
    let rules = SpamRules::default();
    let now = 1_000_000_000;
    assert_eq!(check_spam(&rules, None, Some(now - 5_000), now), Ok(()));
    assert_eq!(check_spam(&rules, Some(""), Some(now - 5_000), now), Ok(()));
    assert_eq!(
        check_spam(&rules, Some("buy pills"), Some(now - 5_000), now),
        Err(Refusal::Honeypot)
    );
    assert_eq!(check_spam(&rules, None, Some(now - 500), now), Err(Refusal::TooFast));
    assert_eq!(check_spam(&rules, None, None, now), Err(Refusal::Stamp));
    assert_eq!(
        check_spam(&rules, None, Some(now - STAMP_MAX_AGE_MS - 1), now),
        Err(Refusal::Stamp)
    );
    let slow = SpamRules {
        min_fill_ms: 0,
        ..rules
    };
    assert_eq!(check_spam(&slow, None, Some(now), now), Ok(()));
}

#[test]
fn origins_are_normalised_and_matched() {
    assert_eq!(
        normalise_origin("HTTPS://Shop.Example:443/").unwrap(),
        "https://shop.example"
    );
    assert_eq!(
        normalise_origin("http://localhost:8080").unwrap(),
        "http://localhost:8080"
    );
    assert!(normalise_origin("https://shop.example/path").is_err());
    assert!(normalise_origin("ftp://x").is_err());
    let allowed = vec!["https://shop.example".to_string()];
    assert!(origin_allowed(&allowed, "https://shop.example"));
    assert!(!origin_allowed(&allowed, "https://evil.example"));
    assert!(origin_allowed(&["*".to_string()], "https://any.example"));
}

#[test]
fn slugs_and_names_are_checked() {
    assert!(check_slug("spring-sale-2026").is_ok());
    for bad in ["", "Spring", "-x", "x-", "a b", &"x".repeat(65)] {
        assert!(check_slug(bad).is_err(), "{bad:?}");
    }
    assert!(check_name("  ").is_err());
}

#[test]
fn markdown_is_a_safe_subset() {
    assert_eq!(
        markdown("# Join us\n\nWe send **good** news *weekly*.\nSee [our site](https://ex.com).\n\n- one\n- two"),
        "<h2>Join us</h2>\n<p>We send <strong>good</strong> news <em>weekly</em>. See <a href=\"https://ex.com\" rel=\"noopener noreferrer\">our site</a>.</p>\n<ul><li>one</li><li>two</li></ul>\n"
    );
    let evil = markdown("<script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=y>");
    assert!(!evil.contains("<script") && !evil.contains("<img") && !evil.contains("href=\"javascript"));
    assert!(evil.contains("&lt;script&gt;"));
}

#[test]
fn proof_of_work_counts_leading_zero_bits() {
    assert_eq!(leading_zero_bits(&[0, 0, 0x10, 0xff]), 19);
    assert_eq!(leading_zero_bits(&[0x80]), 0);
    assert_eq!(leading_zero_bits(&[0, 0]), 16);
}
