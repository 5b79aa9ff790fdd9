use super::*;
use crate::i18n::{ArabicCalendar, Lang};
use serde_json::json;

fn tr(lang: Lang) -> Tr {
    Tr::new(lang, jiff::tz::TimeZone::UTC, ArabicCalendar::Gregorian)
}

/// Text without Fluent's isolation marks.
fn plain(s: &str) -> String {
    s.replace(['\u{2068}', '\u{2069}'], "")
}

fn definition() -> Value {
    json!({
        "trigger": {"type": "event", "event": "Signed Up"},
        "start": "wait",
        "steps": [
            {"id": "wait", "type": "wait_for_event", "event": "Order Completed", "timeout": {"days": 1},
             "on_event": "won", "on_timeout": "hello"},
            {"id": "hello", "type": "send", "template": "welcome"},
            {"id": "won", "type": "goal"}
        ]
    })
}

#[test]
fn a_draft_that_does_not_parse_is_still_drawn() {
    let raw = json!({
        "trigger": {"type": "nonsense"},
        "start": "a",
        "steps": [
            {"id": "a", "type": "wait", "duration": {"days": 1}, "next": "b"},
            {"id": "b", "type": "no-such-type"}
        ]
    });
    let def = drawable(&raw);
    assert!(matches!(def.trigger, Trigger::Api));
    assert_eq!(def.steps.len(), 1, "the step that does not read is left out");
    let svg = diagram(
        &tr(Lang::En),
        &def,
        BTreeMap::new(),
        BTreeSet::from(["a".to_owned()]),
        "t",
        "x".into(),
    );
    assert!(svg.contains(r#"class="step wait problem" data-step="a""#), "{svg}");
    assert!(svg.contains("step missing"), "b is drawn as missing: {svg}");
    assert_eq!(drawable(&json!(null)).steps.len(), 0);
}

#[test]
fn step_numbers_depend_on_the_step() {
    let t = tr(Lang::En);
    let def = drawable(&definition());
    let mut stats = JourneyStats {
        revenue: 12.5,
        conversions: 4,
        ..Default::default()
    };
    stats.steps.insert(
        "wait".into(),
        StepStats {
            reached: 10,
            active: 3,
            exits: BTreeMap::from([("on_event".into(), 4), ("on_timeout".into(), 3)]),
            ..Default::default()
        },
    );
    stats.steps.insert(
        "hello".into(),
        StepStats {
            reached: 3,
            sent: 3,
            opened: 2,
            clicked: 1,
            ..Default::default()
        },
    );
    stats.steps.insert(
        "won".into(),
        StepStats {
            reached: 4,
            ..Default::default()
        },
    );
    let lines: BTreeMap<String, Vec<String>> = live_lines(&t, &def, &stats)
        .into_iter()
        .map(|(k, v)| (k, v.iter().map(|l| plain(l)).collect()))
        .collect();
    assert_eq!(
        lines["wait"],
        ["reached 10 · waiting 3", "event came: 4", "timed out: 3"]
    );
    assert_eq!(
        lines["hello"],
        ["reached 3 · waiting 0", "sent 3 · opened 2", "clicked 1"]
    );
    assert_eq!(
        lines["won"],
        ["reached 4 · waiting 0", "conversions 4", "revenue 12.50"]
    );
    // Conversions that did not come through the step (a goal event in the
    // settings) leave the journey's revenue off the step.
    stats.conversions = 5;
    let won = plain(&live_lines(&t, &def, &stats)["won"].join("|"));
    assert_eq!(won, "reached 4 · waiting 0|conversions 4");
}

#[test]
fn numbers_are_in_the_languages_digits_and_the_diagram_mirrors() {
    let t = tr(Lang::Fa);
    let def = drawable(&definition());
    let stats = JourneyStats::default();
    let lines = live_lines(&t, &def, &stats);
    assert!(lines["wait"][0].contains('۰'), "{:?}", lines["wait"]);
    let rtl = diagram(&t, &def, lines.clone(), BTreeSet::new(), "j", "x".into());
    let ltr = diagram(&tr(Lang::En), &def, lines, BTreeSet::new(), "j", "x".into());
    assert_ne!(rtl, ltr, "the right-to-left drawing is mirrored");
}

#[test]
fn exit_labels() {
    let t = tr(Lang::En);
    let split: Step = serde_json::from_value(json!({"id": "s", "type": "split", "variants": [
        {"name": "A", "percent": 50, "next": "x"}, {"percent": 50, "next": "y"}]}))
    .unwrap();
    assert_eq!(exit_label(&t, &split.kind, "variants[0].next"), "A");
    assert_eq!(exit_label(&t, &split.kind, "variants[1].next"), "50%");
    assert_eq!(plain(&exit_label(&t, &split.kind, "cases[2].next")), "case 3");
    assert_eq!(exit_label(&t, &split.kind, "yes"), "yes");
    assert_eq!(exit_label(&t, &split.kind, "strange"), "strange");
}

#[test]
fn the_publish_form_maps_old_steps_to_new_ones() {
    let fields = vec![
        ("_csrf".to_owned(), "x".to_owned()),
        ("move:old-wait".to_owned(), "wait".to_owned()),
        ("move:gone".to_owned(), String::new()),
        ("move:<b>".to_owned(), "hello".to_owned()),
    ];
    assert_eq!(
        move_runs_of(&fields),
        BTreeMap::from([
            ("old-wait".to_owned(), "wait".to_owned()),
            ("<b>".to_owned(), "hello".to_owned())
        ])
    );
}

#[test]
fn step_ids_are_percent_encoded_in_links() {
    assert_eq!(enc("a b&c/<d>"), "a+b%26c%2F%3Cd%3E");
    assert_eq!(enc("wait-2d"), "wait-2d");
}

#[test]
fn the_inspector_shows_a_step_and_escapes_it() {
    let t = tr(Lang::En);
    let raw = json!({
        "trigger": {"type": "event", "event": "Signed Up"},
        "start": "<script>alert(1)</script>",
        "steps": [{"id": "<script>alert(1)</script>", "type": "send", "template": "welcome"}]
    });
    let j = Journey {
        id: 7,
        name: "J".into(),
        description: String::new(),
        status: JourneyStatus::Live,
        version: 1,
        published_version: Some(1),
        priority: 0,
        definition: raw.clone(),
        created_at: 0,
        updated_at: 0,
        entries_scheduled: None,
    };
    let stats = JourneyStats::default();
    let html = inspector_of(&t, &j, None, &raw, Some("<script>alert(1)</script>"), &stats)
        .render()
        .unwrap();
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"),
        "{html}"
    );
    assert!(html.contains("Send a message"), "{html}");
    let list = inspector_of(&t, &j, None, &raw, None, &stats).render().unwrap();
    assert!(list.contains("step=%3Cscript%3Ealert%281%29%3C%2Fscript%3E"), "{list}");
    let missing = inspector_of(&t, &j, None, &raw, Some("nope"), &stats).render().unwrap();
    assert!(missing.contains("error-text"), "{missing}");
}
