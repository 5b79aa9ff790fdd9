use super::*;

/// Monday 2026-11-30 00:00 UTC.
const MONDAY: Millis = 1_795_996_800_000;
const DAY: Millis = 24 * HOUR_MS;

fn at(day: i64, hour: i64) -> Millis {
    MONDAY + day * DAY + hour * HOUR_MS
}

fn opens(hours: &[(i64, i64)]) -> Profile {
    let mut p = Profile::default();
    for &(d, h) in hours {
        assert!(p.observe(Engagement::EmailClick, at(d, h)));
    }
    p
}

#[test]
fn hours_of_the_week_start_on_monday_utc() {
    assert_eq!(hour_of_week(MONDAY), 0);
    assert_eq!(hour_of_week(MONDAY + 30 * 60_000), 0);
    assert_eq!(hour_of_week(at(0, 9)), 9);
    assert_eq!(hour_of_week(at(6, 23)), 167);
    assert_eq!(hour_of_week(at(7, 0)), 0);
    assert_eq!(hour_of_week(MONDAY - 1), 167);
}

#[test]
fn weights_halve_every_half_life() {
    let p = opens(&[(0, 9)]);
    let w = p.weights_at(at(0, 9) + HALF_LIFE_MS);
    assert!((w[9] - 0.5).abs() < 1e-12);
    // A later observation decays the earlier ones to its time.
    let mut q = p.clone();
    q.observe(Engagement::PushOpen, at(0, 9) + 2 * HALF_LIFE_MS);
    assert!((q.weights[&9] - 0.25).abs() < 1e-12);
    assert_eq!(q.engagements, 2);
    // A late-arriving observation is decayed to the profile's time.
    let mut r = opens(&[(0, 9)]);
    r.observe(Engagement::EmailClick, at(0, 9) - HALF_LIFE_MS);
    let total: f64 = r.weights.values().sum();
    assert!((total - 1.5).abs() < 1e-12, "{total}");
    assert!((r.weights[&(hour_of_week(at(0, 9) - HALF_LIFE_MS) as u8)] - 0.5).abs() < 1e-12);
    assert_eq!(r.as_of, at(0, 9));
}

#[test]
fn machine_opens_and_pages_within_a_session_do_not_count() {
    let mut p = Profile::default();
    let sent = at(0, 8);
    assert!(!p.observe(Engagement::EmailOpen { sent_at: Some(sent) }, sent + 2_000));
    assert!(p.observe(Engagement::EmailOpen { sent_at: Some(sent) }, sent + 5 * 60_000));
    assert!(p.observe(Engagement::EmailOpen { sent_at: None }, sent + 6 * 60_000));
    assert_eq!(p.engagements, 2);
    assert!(p.observe(Engagement::PageView, at(1, 20)));
    assert!(!p.observe(Engagement::PageView, at(1, 20) + 10 * 60_000));
    assert!(!p.observe(Engagement::PageView, at(1, 20) + 35 * 60_000)); // still the same session
    assert!(p.observe(Engagement::PageView, at(1, 22)));
    assert_eq!(p.engagements, 4);
    assert!((p.weights_at(at(1, 22))[24 + 20] - 0.5 * decay(2 * HOUR_MS)).abs() < 1e-12);
}

#[test]
fn without_history_the_workspace_decides() {
    let workspace = opens(&[(0, 18), (1, 18), (2, 18), (3, 18), (2, 7)]);
    let e = estimate(&Profile::default(), &workspace, at(4, 0));
    assert_eq!(e.observations, 0.0);
    assert_eq!(e.confidence, 0.0);
    assert_eq!(e.best_hours(1)[0].hour, 18);
    let sum: f64 = e.hour_of_week.iter().sum();
    assert!((sum - 1.0).abs() < 1e-9, "{sum}");
    // An empty workspace is uniform.
    let u = estimate(&Profile::default(), &Profile::default(), at(4, 0));
    assert!(u.hour_of_week.iter().all(|p| (p - 1.0 / 168.0).abs() < 1e-12));
}

#[test]
fn the_posterior_follows_the_dirichlet_rule() {
    // Workspace uniform: w(h) = 1/24. Contact: 3 clicks at 09:00, 1 at 10:00, today.
    let contact = opens(&[(0, 9), (1, 9), (2, 9), (2, 10)]);
    let now = at(2, 10);
    let e = estimate(&contact, &Profile::default(), now);
    let n: f64 = contact.weights_at(now).iter().sum();
    let c9: f64 = (0..7).map(|d| contact.weights_at(now)[d * 24 + 9]).sum();
    let expect9 = (c9 + PRIOR_HOURS / 24.0) / (n + PRIOR_HOURS);
    assert!((e.hour_of_day[9] - expect9).abs() < 1e-12);
    assert!((e.confidence - n / (n + PRIOR_HOURS)).abs() < 1e-12);
    let sum: f64 = e.hour_of_week.iter().sum();
    assert!((sum - 1.0).abs() < 1e-9);
    // Thursday 09:00 gets the hour's share spread by the prior over days, less than
    // the days observed.
    assert!(e.hour_of_week[3 * 24 + 9] > 0.0);
    assert!(e.hour_of_week[3 * 24 + 9] < e.hour_of_week[9]);
    assert_eq!(e.best_hours(1)[0].hour, 9);
}

#[test]
fn few_observations_lean_on_the_workspace_and_more_move_away() {
    let mut workspace = Profile::default();
    for d in 0..60 {
        workspace.observe(Engagement::EmailClick, at(d % 7, 18) - d * DAY);
    }
    let one = opens(&[(0, 7)]);
    let e1 = estimate(&one, &workspace, at(1, 0));
    assert_eq!(e1.best_hours(1)[0].hour, 18, "one open does not outweigh the workspace");
    let many = opens(&[(0, 7), (1, 7), (2, 7), (3, 7), (4, 7)]);
    let e5 = estimate(&many, &workspace, at(5, 0));
    assert_eq!(e5.best_hours(1)[0].hour, 7);
    assert!(e5.confidence > e1.confidence);
}

#[test]
fn choose_picks_the_best_allowed_slot_in_the_horizon() {
    let contact = opens(&[(0, 9), (1, 9), (2, 9), (3, 9), (4, 9), (0, 15)]);
    let e = estimate(&contact, &Profile::default(), at(5, 0));
    // From Saturday 06:30: 09:00 is the best slot.
    let from = at(5, 6) + 30 * 60_000;
    let c = e.choose(from, 24 * HOUR_MS, |t| t).unwrap();
    assert_eq!(c.at, at(5, 9));
    assert_eq!(c.hour_of_week, 5 * 24 + 9);
    // Within 2 hours: 09:00 is out of reach, the later slot is nearer the peak.
    let c = e.choose(from, 2 * HOUR_MS, |t| t).unwrap();
    assert_eq!(c.at, at(5, 8));
    // Under way: from 09:20 the current slot goes at once.
    let c = e.choose(at(5, 9) + 20 * 60_000, 24 * HOUR_MS, |t| t).unwrap();
    assert_eq!(c.at, at(5, 9) + 20 * 60_000);
    // Quiet until 10:00: the best allowed slot is 10:00.
    let quiet = |t: Millis| if t < at(5, 10) { at(5, 10) } else { t };
    let c = e.choose(from, 24 * HOUR_MS, quiet).unwrap();
    assert_eq!(c.at, at(5, 10));
    // Nothing allowed in the horizon.
    assert_eq!(e.choose(from, 2 * HOUR_MS, |_| at(9, 0)), None);
}

#[test]
fn ties_go_to_the_earliest_slot() {
    let e = estimate(&Profile::default(), &Profile::default(), at(0, 0));
    let from = at(0, 3) + 1;
    assert_eq!(e.choose(from, 48 * HOUR_MS, |t| t).unwrap().at, from);
}

#[test]
fn absorbing_adds_decayed_weights() {
    let mut a = opens(&[(0, 9)]);
    let b = opens(&[(0, 10)]);
    let later = {
        let mut p = Profile::default();
        p.observe(Engagement::EmailClick, at(0, 9) + HALF_LIFE_MS);
        p
    };
    a.absorb(&b);
    assert_eq!(a.engagements, 2);
    a.absorb(&later);
    assert_eq!(a.as_of, at(0, 9) + HALF_LIFE_MS);
    let w = a.weights_at(a.as_of);
    assert!((w[9] - 0.5).abs() < 1e-9, "{}", w[9]);
    assert!((w[hour_of_week(at(0, 9) + HALF_LIFE_MS)] - 1.0).abs() < 1e-9);
    assert!((w[10] - 0.5 * decay(-HOUR_MS)).abs() < 1e-9);
}

#[test]
fn a_profile_survives_json() {
    let mut p = opens(&[(0, 9), (3, 21)]);
    p.observe(Engagement::PageView, at(4, 1));
    let back: Profile = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(
        (back.as_of, back.engagements, back.last_page_view),
        (p.as_of, p.engagements, p.last_page_view)
    );
    assert_eq!(
        back.weights.keys().collect::<Vec<_>>(),
        p.weights.keys().collect::<Vec<_>>()
    );
    assert!(
        back.weights
            .values()
            .zip(p.weights.values())
            .all(|(a, b)| (a - b).abs() < 1e-12)
    );
}

#[test]
fn summaries_name_the_best_hours_and_the_confidence() {
    let contact = opens(&[(1, 7), (2, 7), (3, 7), (3, 8), (4, 7), (1, 7), (2, 7), (4, 7)]);
    let s = summarise(&contact, &Profile::default(), at(4, 8));
    assert_eq!(s.best_hours[0].hour, 7);
    assert_eq!(s.best_hours.len(), 3);
    assert_eq!(s.engagements, 8);
    assert_eq!(s.confidence_band, "medium");
    assert_eq!(s.last_engagement_at, Some(at(4, 7)));
    let none = summarise(&Profile::default(), &Profile::default(), at(4, 8));
    assert_eq!(none.confidence_band, "low");
    assert_eq!(none.last_engagement_at, None);
}

#[test]
fn best_time_checks_its_horizon() {
    assert!(BestTime { within_hours: 0 }.problem().is_some());
    assert!(BestTime { within_hours: 169 }.problem().is_some());
    assert_eq!(BestTime { within_hours: 24 }.problem(), None);
    assert_eq!(BestTime { within_hours: 2 }.horizon(), 2 * HOUR_MS);
}

#[test]
fn events_are_engagements_by_type_and_name() {
    assert_eq!(engagement_of("page", Some("Home"), None), Some(Engagement::PageView));
    assert_eq!(engagement_of("screen", None, None), Some(Engagement::PageView));
    assert_eq!(
        engagement_of("track", Some("Email Opened"), Some(5)),
        Some(Engagement::EmailOpen { sent_at: Some(5) })
    );
    assert_eq!(
        engagement_of("track", Some("Email Link Clicked"), None),
        Some(Engagement::EmailClick)
    );
    assert_eq!(
        engagement_of("track", Some("Push Notification Tapped"), None),
        Some(Engagement::PushOpen)
    );
    assert_eq!(engagement_of("track", Some("Order Completed"), None), None);
    assert_eq!(engagement_of("identify", None, None), None);
}

#[test]
fn recording_counts_in_the_workspace_only_what_counts_for_the_contact() {
    let (mut a, mut b, mut ws) = (Profile::default(), Profile::default(), Profile::default());
    assert!(record(&mut a, &mut ws, Engagement::PageView, at(0, 9)));
    assert!(!record(&mut a, &mut ws, Engagement::PageView, at(0, 9) + 60_000));
    assert!(record(&mut b, &mut ws, Engagement::PageView, at(0, 9) + 60_000));
    let sent = at(0, 10);
    assert!(!record(
        &mut b,
        &mut ws,
        Engagement::EmailOpen { sent_at: Some(sent) },
        sent + 1
    ));
    assert_eq!(ws.engagements, 2);
    assert!((ws.weights_at(at(0, 10))[9] - 0.5 * decay(HOUR_MS - 60_000) - 0.5 * decay(HOUR_MS)).abs() < 1e-9);
}
