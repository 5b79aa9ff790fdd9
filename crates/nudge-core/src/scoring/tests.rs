use super::*;
use serde_json::json;

const T0: Millis = 1_800_000_000_000; // a Friday

fn rule(id: i64, v: Value) -> ScoringRule {
    ScoringRule {
        id,
        definition: parse_rule(&v).unwrap(),
    }
}

fn stages() -> ScoreDefinition {
    parse_score(&json!({
        "name": "lead_score", "half_life_days": 10,
        "stages": [{"name": "cold"}, {"name": "warm", "from": 20}, {"name": "hot", "from": 50}]
    }))
    .unwrap()
}

#[test]
fn rules_are_validated_with_paths() {
    let bad = [
        (
            json!({"name": "x", "points": 5, "trigger": {"type": "event"}, "frequency": {"type": "once"}}),
            "trigger",
        ),
        (
            json!({"name": "x", "points": 0, "trigger": {"type": "event", "event": "a"}, "frequency": {"type": "once"}}),
            "points",
        ),
        (
            json!({"name": "", "points": 1, "trigger": {"type": "event", "event": "a"}, "frequency": {"type": "once"}}),
            "name",
        ),
        (
            json!({"name": "x", "points": 1, "trigger": {"type": "event", "event": "a", "where": [{"property": "p", "op": "greater_than", "value": "z"}]}, "frequency": {"type": "once"}}),
            "trigger",
        ),
        (
            json!({"name": "x", "points": 1, "trigger": {"type": "page_view", "url": "*"}, "frequency": {"type": "once"}}),
            "trigger.url",
        ),
        (
            json!({"name": "x", "points": 1, "trigger": {"type": "email_opened", "template": -1}, "frequency": {"type": "once"}}),
            "trigger.template",
        ),
        (
            json!({"name": "x", "points": 1, "trigger": {"type": "event", "event": "a"}, "frequency": {"type": "repeat", "cap": {"max": 0, "per": "day"}}}),
            "frequency.cap.max",
        ),
        (
            json!({"name": "x", "points": 1, "trigger": {"type": "event", "event": "a"}, "frequency": {"type": "repeat", "cap": {"max": 2, "per": "month"}}}),
            "frequency",
        ),
        (
            json!({"name": "x", "points": 1, "score": "Bad Name", "trigger": {"type": "event", "event": "a"}, "frequency": {"type": "once"}}),
            "score",
        ),
        (
            json!({"name": "x", "points": 1, "trigger": {"type": "event", "event": "a"}, "frequency": {"type": "once"}, "extra": 1}),
            "extra",
        ),
    ];
    for (v, path) in bad {
        let e = parse_rule(&v).expect_err(&v.to_string());
        assert!(e.path.starts_with(path), "{v}: {e}");
    }
    let ok = parse_rule(&json!({"name": "pricing", "points": -3, "score": "engagement",
        "trigger": {"type": "page_view", "url": "/pricing*"},
        "frequency": {"type": "repeat", "cap": {"max": 2, "per": "week"}}}))
    .unwrap();
    assert_eq!(ok.score, "engagement");
    assert!(ok.enabled);
    // Round trip through JSON.
    assert_eq!(parse_rule(&serde_json::to_value(&ok).unwrap()).unwrap(), ok);
}

#[test]
fn scores_are_validated_with_paths() {
    let bad = [
        (json!({"name": "lead_score", "half_life_days": 0}), "half_life_days"),
        (
            json!({"name": "x", "stages": [{"name": "a", "from": 3}]}),
            "stages[0].from",
        ),
        (
            json!({"name": "x", "stages": [{"name": "a"}, {"name": "b"}]}),
            "stages[1].from",
        ),
        (
            json!({"name": "x", "stages": [{"name": "a"}, {"name": "b", "from": 5}, {"name": "c", "from": 5}]}),
            "stages[2].from",
        ),
        (
            json!({"name": "x", "stages": [{"name": "a"}, {"name": "a", "from": 5}]}),
            "stages[1].name",
        ),
        (json!({"name": "product_score"}), "name"),
        (json!({"name": "lead"}), "name"),
    ];
    for (v, path) in bad {
        let e = parse_score(&v).expect_err(&v.to_string());
        assert_eq!(e.path, path, "{v}: {e}");
    }
    assert_eq!(score_trait("lead_score"), "lead_score");
    assert_eq!(score_trait("engagement"), "engagement_score");
}

#[test]
fn stages_of_values() {
    let d = stages();
    assert_eq!(d.stage_of(-5.0), Some("cold"));
    assert_eq!(d.stage_of(19.99), Some("cold"));
    assert_eq!(d.stage_of(20.0), Some("warm"));
    assert_eq!(d.stage_of(50.0), Some("hot"));
    assert_eq!(ScoreDefinition::plain("x").stage_of(10.0), None);
}

#[test]
fn triggers_fire_on_what_they_name() {
    let props = json!({"plan": "pro", "amount": 30}).as_object().unwrap().clone();
    let ev = rule(
        1,
        json!({"name": "x", "points": 5, "trigger": {"type": "event", "event": "Order", "where": [{"property": "amount", "op": "greater_than", "value": 20}]}, "frequency": {"type": "once"}}),
    );
    assert!(ev.definition.trigger.fires(
        &Happening::Track {
            event: "Order",
            properties: &props
        },
        T0
    ));
    assert!(!ev.definition.trigger.fires(
        &Happening::Track {
            event: "Other",
            properties: &props
        },
        T0
    ));
    let small = json!({"amount": 10}).as_object().unwrap().clone();
    assert!(!ev.definition.trigger.fires(
        &Happening::Track {
            event: "Order",
            properties: &small
        },
        T0
    ));

    let page = rule(
        2,
        json!({"name": "x", "points": 5, "trigger": {"type": "page_view", "url": "/pricing*"}, "frequency": {"type": "once"}}),
    );
    assert!(page.definition.trigger.fires(
        &Happening::Page {
            url: Some("https://shop.test/pricing?x=1")
        },
        T0
    ));
    assert!(!page.definition.trigger.fires(
        &Happening::Page {
            url: Some("https://shop.test/blog/pricing")
        },
        T0
    ));
    assert!(!page.definition.trigger.fires(&Happening::Page { url: None }, T0));
    assert!(url_matches("https://*.test/*", "https://a.test/b"));
    assert!(glob("a*b*c", "aXXbYc") && !glob("a*b*c", "aXXbY"));

    let open = rule(
        3,
        json!({"name": "x", "points": 1, "trigger": {"type": "email_opened", "template": 7}, "frequency": {"type": "once"}}),
    );
    assert!(
        open.definition
            .trigger
            .fires(&Happening::EmailOpened { template: Some(7) }, T0)
    );
    assert!(
        !open
            .definition
            .trigger
            .fires(&Happening::EmailOpened { template: Some(8) }, T0)
    );
    assert!(
        !open
            .definition
            .trigger
            .fires(&Happening::EmailClicked { template: Some(7) }, T0)
    );

    let form = rule(
        4,
        json!({"name": "x", "points": 1, "trigger": {"type": "form_submitted", "form": "12"}, "frequency": {"type": "once"}}),
    );
    let submitted = json!({"form_id": 12, "form": "Demo"}).as_object().unwrap().clone();
    assert!(form.definition.trigger.fires(
        &Happening::Track {
            event: "Form Submitted",
            properties: &submitted
        },
        T0
    ));
    let other = json!({"form_id": 13}).as_object().unwrap().clone();
    assert!(!form.definition.trigger.fires(
        &Happening::Track {
            event: "Form Submitted",
            properties: &other
        },
        T0
    ));

    let tr = rule(
        5,
        json!({"name": "x", "points": 1, "trigger": {"type": "trait_changed", "trait": "plan", "test": {"op": "equals", "value": "pro"}}, "frequency": {"type": "once"}}),
    );
    assert!(
        tr.definition
            .trigger
            .fires(&Happening::TraitsChanged { traits: &props }, T0)
    );
    let free = json!({"plan": "free"}).as_object().unwrap().clone();
    assert!(
        !tr.definition
            .trigger
            .fires(&Happening::TraitsChanged { traits: &free }, T0)
    );

    let scoring = Scoring::new(vec![], vec![ev.clone(), page, open, form, tr]);
    let fired = scoring.fired(
        &Happening::Track {
            event: "Order",
            properties: &props,
        },
        T0,
    );
    assert_eq!(fired.iter().map(|r| r.id).collect::<Vec<_>>(), [1]);
    assert!(scoring.listens_to_event("Form Submitted"));
    let disabled = rule(
        9,
        json!({"name": "x", "points": 1, "enabled": false, "trigger": {"type": "event", "event": "Order"}, "frequency": {"type": "once"}}),
    );
    let scoring = Scoring::new(vec![], vec![disabled]);
    assert!(scoring.is_empty() && !scoring.listens_to_event("Order"));
}

#[test]
fn points_once_and_caps_per_day_and_week() {
    let once = rule(
        1,
        json!({"name": "a", "points": 10, "trigger": {"type": "event", "event": "A"}, "frequency": {"type": "once"}}),
    );
    let daily = rule(
        2,
        json!({"name": "b", "points": 3, "trigger": {"type": "event", "event": "A"}, "frequency": {"type": "repeat", "cap": {"max": 2, "per": "day"}}}),
    );
    let weekly = rule(
        3,
        json!({"name": "c", "points": -1, "score": "engagement", "trigger": {"type": "event", "event": "A"}, "frequency": {"type": "repeat", "cap": {"max": 3, "per": "week"}}}),
    );
    let scoring = Scoring::new(vec![ScoreDefinition::plain("lead_score")], vec![once, daily, weekly]);
    let mut c = ContactScores::default();
    let empty = Map::new();
    let h = Happening::Track {
        event: "A",
        properties: &empty,
    };
    let mut lead = Vec::new();
    let mut engagement = Vec::new();
    // Friday, Friday, Saturday, Saturday, Saturday, next Monday (a new week).
    for t in [
        T0,
        T0 + 1000,
        T0 + DAY_MS,
        T0 + DAY_MS + 1,
        T0 + DAY_MS + 2,
        T0 + 3 * DAY_MS,
    ] {
        let fired = scoring.fired(&h, t);
        let out = score(&scoring, &mut c, &fired, t);
        for ch in &out.changes {
            if ch.score == "lead_score" {
                lead.push(ch.value);
            } else {
                engagement.push(ch.value);
            }
        }
    }
    // 10+3, +3, +3, +3, (capped), +3 on Monday.
    assert_eq!(lead, [13.0, 16.0, 19.0, 22.0, 25.0]);
    // three per week, then Monday starts a new week.
    assert_eq!(engagement, [-1.0, -2.0, -3.0, -4.0]);
    assert_eq!(c.counters[&(1, "once".to_string())], 1);
    assert_eq!(Frequency::Once.counter(T0).unwrap().1, 1);
    let week = |t| {
        Frequency::Repeat {
            cap: Some(Cap {
                max: 1,
                per: Period::Week,
            }),
        }
        .counter(t)
        .unwrap()
        .0
    };
    // Friday and Sunday share a week; Monday starts the next.
    assert_eq!(week(T0), week(T0 + 2 * DAY_MS));
    assert_ne!(week(T0), week(T0 + 3 * DAY_MS));
}

#[test]
fn a_change_records_its_rules_and_stage() {
    let r = rule(
        4,
        json!({"name": "a", "points": 25, "trigger": {"type": "event", "event": "A"}, "frequency": {"type": "repeat"}}),
    );
    let scoring = Scoring::new(vec![stages()], vec![r]);
    let mut c = ContactScores::default();
    let fired: Vec<&ScoringRule> = scoring.rules.iter().collect();
    let out = score(&scoring, &mut c, &fired, T0);
    let ch = &out.changes[0];
    assert_eq!((ch.previous, ch.value), (0.0, 25.0));
    assert_eq!(ch.stage, Some((Some("cold".into()), Some("warm".into()))));
    assert_eq!(ch.score_properties()["rule_ids"], json!([4]));
    assert_eq!(ch.stage_properties().unwrap()["to"], json!("warm"));
    assert!(out.counted.is_empty(), "an uncapped rule counts nothing");
    // Decay from 25 crosses 20 (the warm threshold) after 10·log2(25/20) days.
    let expected = T0 + (10.0 * DAY_MS as f64 * (25.0f64 / 20.0).log2()).floor() as Millis + 1;
    assert_eq!(ch.next_due, Some(expected));
    // At the same moment (no decay yet): 50 is hot; a millisecond later it would
    // have decayed just below.
    let out = score(&scoring, &mut c, &fired, T0);
    assert_eq!(out.changes[0].value, 50.0);
    assert_eq!(out.changes[0].stage, Some((Some("warm".into()), Some("hot".into()))));
}

#[test]
fn decay_math_and_crossings() {
    let h = Some(10 * DAY_MS);
    assert_eq!(value_at(80.0, T0, h, T0 + 10 * DAY_MS), 40.0);
    assert_eq!(value_at(80.0, T0, h, T0 + 20 * DAY_MS), 20.0);
    assert_eq!(value_at(80.0, T0, None, T0 + 20 * DAY_MS), 80.0);
    // 80 → 50 after 10·log2(1.6) days, → 20 after 20 days (+1 ms: strictly below).
    let first = next_crossing(80.0, T0, h, &[20.0, 50.0], T0).unwrap();
    assert!(value_at(80.0, T0, h, first) < 50.0 && value_at(80.0, T0, h, first - 1) >= 50.0);
    let second = next_crossing(80.0, T0, h, &[20.0, 50.0], first).unwrap();
    assert_eq!(second, T0 + 20 * DAY_MS + 1);
    assert_eq!(next_crossing(80.0, T0, h, &[20.0, 50.0], second), None);
    // Above the value, the other sign, or no decay: nothing to cross.
    assert_eq!(next_crossing(30.0, T0, h, &[50.0, -10.0], T0), None);
    assert_eq!(next_crossing(80.0, T0, None, &[50.0], T0), None);
    // Negative scores decay up toward 0.
    let up = next_crossing(-40.0, T0, h, &[-20.0], T0).unwrap();
    assert_eq!(up, T0 + 10 * DAY_MS + 1);
}

#[test]
fn decay_materialises_at_the_crossing_and_schedules_the_next() {
    let r = rule(
        1,
        json!({"name": "a", "points": 80, "trigger": {"type": "event", "event": "A"}, "frequency": {"type": "once"}}),
    );
    // Segments read "≥ 30" on the default score.
    let scoring = Scoring::new(vec![stages()], vec![r]).with_read_thresholds([("lead_score".to_string(), 30.0)]);
    let mut c = ContactScores::default();
    let fired: Vec<&ScoringRule> = scoring.rules.iter().collect();
    let first = score(&scoring, &mut c, &fired, T0).changes[0].clone();
    assert_eq!(first.stage, Some((Some("cold".into()), Some("hot".into()))));
    // 80 → 50: hot → warm.
    let due = first.next_due.unwrap();
    let d = decay(&scoring, &mut c, "lead_score", due).unwrap();
    assert!(d.value < 50.0 && d.value > 49.9, "{}", d.value);
    assert_eq!(d.stage, Some((Some("hot".into()), Some("warm".into()))));
    assert_eq!(d.reason, Reason::Decay);
    assert_eq!(c.traits["lead_score"], d.value);
    // Then the segment's 30, then 20.
    let due30 = d.next_due.unwrap();
    assert_eq!(due30, next_crossing(80.0, T0, Some(10 * DAY_MS), &[30.0], T0).unwrap());
    let d = decay(&scoring, &mut c, "lead_score", due30).unwrap();
    assert!(d.value < 30.0 && d.stage.is_none());
    let d = decay(&scoring, &mut c, "lead_score", d.next_due.unwrap()).unwrap();
    assert_eq!(d.stage, Some((Some("warm".into()), Some("cold".into()))));
    assert_eq!(d.next_due, None);
    // A later rule starts from the decayed value.
    let r2 = rule(
        2,
        json!({"name": "b", "points": 5, "trigger": {"type": "event", "event": "A"}, "frequency": {"type": "repeat"}}),
    );
    let scoring2 = Scoring::new(vec![stages()], vec![r2]);
    let fired: Vec<&ScoringRule> = scoring2.rules.iter().collect();
    let t = T0 + 30 * DAY_MS;
    let out = score(&scoring2, &mut c, &fired, t);
    assert_eq!(out.changes[0].previous, value_at(80.0, T0, Some(10 * DAY_MS), t));
}

#[test]
fn a_trait_changed_elsewhere_is_the_new_starting_point() {
    let r = rule(
        1,
        json!({"name": "a", "points": 5, "trigger": {"type": "event", "event": "A"}, "frequency": {"type": "repeat"}}),
    );
    let scoring = Scoring::new(vec![], vec![r]);
    let mut c = ContactScores::default();
    let fired: Vec<&ScoringRule> = scoring.rules.iter().collect();
    score(&scoring, &mut c, &fired, T0);
    // A journey step added 10 to the trait.
    c.traits.insert("lead_score".into(), 15.0);
    let out = score(&scoring, &mut c, &fired, T0 + 1);
    assert_eq!((out.changes[0].previous, out.changes[0].value), (15.0, 20.0));
}

#[test]
fn a_change_keeps_only_its_scores_counters_of_the_current_period() {
    let once = rule(
        1,
        json!({"name": "a", "points": 10, "trigger": {"type": "event", "event": "A"}, "frequency": {"type": "once"}}),
    );
    let daily = rule(
        2,
        json!({"name": "b", "points": 3, "trigger": {"type": "event", "event": "A"}, "frequency": {"type": "repeat", "cap": {"max": 2, "per": "day"}}}),
    );
    let other = rule(
        3,
        json!({"name": "c", "points": 1, "score": "engagement", "trigger": {"type": "event", "event": "A"}, "frequency": {"type": "once"}}),
    );
    let mut disabled = rule(
        4,
        json!({"name": "d", "points": 1, "trigger": {"type": "event", "event": "B"}, "frequency": {"type": "once"}}),
    );
    disabled.definition.enabled = false;
    let scoring = Scoring::new(vec![], vec![once, daily, other, disabled]);
    let today = Frequency::Repeat {
        cap: Some(Cap {
            max: 2,
            per: Period::Day,
        }),
    }
    .counter(T0)
    .unwrap()
    .0;
    let yesterday = format!("d{}", T0.div_euclid(DAY_MS) - 1);
    let mut c = ContactScores::default();
    for (key, n) in [
        ((1, "once".to_string()), 1),
        ((2, yesterday), 2),
        ((3, "once".to_string()), 1),
        ((4, "once".to_string()), 1),
        // rule 9 was deleted
        ((9, "once".to_string()), 1),
    ] {
        c.counters.insert(key, n);
    }
    let empty = Map::new();
    let h = Happening::Track {
        event: "A",
        properties: &empty,
    };
    let fired = scoring.fired(&h, T0);
    let out = score(&scoring, &mut c, &fired, T0);
    // The once rules are at their limit: only the daily rule gives points today.
    assert_eq!(out.changes.len(), 1);
    let lead = &out.changes[0];
    assert_eq!(lead.score, "lead_score");
    assert_eq!(
        lead.counters,
        vec![(1, "once".to_string(), 1), (2, today, 1), (4, "once".to_string(), 1)]
    );
    assert_eq!(
        scoring.kept_counters(&c.counters, "engagement", T0),
        vec![(3, "once".to_string(), 1)]
    );
}

#[test]
fn a_period_counts_in_exactly_the_counter_named_for_now() {
    let day = Frequency::Repeat {
        cap: Some(Cap {
            max: 1,
            per: Period::Day,
        }),
    };
    let week = Frequency::Repeat {
        cap: Some(Cap {
            max: 1,
            per: Period::Week,
        }),
    };
    let uncapped = Frequency::Repeat { cap: None };
    for t in [T0, T0 + DAY_MS - 1, T0 + 3 * DAY_MS, -DAY_MS - 5] {
        for f in [&Frequency::Once, &day, &week] {
            let (period, _) = f.counter(t).unwrap();
            assert!(f.counts_in(&period, t), "{f:?} {period} at {t}");
            assert!(!f.counts_in(&period, t + 8 * DAY_MS) || *f == Frequency::Once);
        }
        assert!(!uncapped.counts_in("once", t));
    }
    assert!(!day.counts_in("w2976", T0));
    assert!(!day.counts_in("dx", T0));
    assert!(!Frequency::Once.counts_in("d20833", T0));
}
