//! Conversions, written once for both backends: the conversion recorded once per
//! event with the message it is attributed to by last touch
//! (`nudge_core::attribution`), and what the attribution adds to the counters of
//! the campaign variant that sent the message, in the same transaction.

use crate::Result;
use crate::campaigns::{Conversion, NewConversion};
use crate::exec;
use crate::messages::OriginColumns;
use crate::sql::{self, Arg, Db};
use nudge_core::attribution::{self, ConversionSettings, Touch, TouchKind};
use nudge_core::protocol::{CampaignCounter, MessageOrigin, StepCounter};
use nudge_core::{ContactId, Millis};

/// How many of a contact's latest messages attribution looks at.
const TOUCHES: i64 = 500;

/// Records a conversion and attributes it (nothing if the event was recorded before:
/// `None`).
pub(crate) async fn record<D: Db>(
    db: &D,
    c: &NewConversion,
    settings: &ConversionSettings,
    now: Millis,
) -> Result<Option<Conversion>> {
    let done = sql::first(
        db,
        "SELECT 1 FROM conversions WHERE event_id = $1",
        &[Arg::I64(c.event_id)],
    )
    .await?;
    if done.is_some() {
        return Ok(None);
    }
    let contact = db.current_id(c.contact_id).await?;
    let sql = format!(
        "SELECT id, sent_at, first_opened_at, first_clicked_at, attributed_revenue, channel, {} FROM messages
         WHERE contact_id = $1 AND (origin_campaign_id IS NOT NULL OR origin_journey_id IS NOT NULL)
         ORDER BY id DESC LIMIT $2",
        OriginColumns::NAMES
    );
    let rows = db.query(&sql, &[Arg::I64(contact), Arg::I64(TOUCHES)]).await?;
    let mut touches = Vec::with_capacity(rows.len());
    for r in &rows {
        touches.push(Touch {
            message_id: r.i64(0)?,
            sent_at: r.opt_i64(1)?,
            first_opened_at: r.opt_i64(2)?,
            first_clicked_at: r.opt_i64(3)?,
        });
    }
    let pick = attribution::last_touch(c.at, &touches, settings);
    let (message, origin, before, channel) = match pick {
        Some((id, _, _)) => {
            let i = touches.iter().position(|t| t.message_id == id).unwrap_or(0);
            let r = &rows[i];
            (
                Some(id),
                OriginColumns::read(r, 6)?.origin(),
                r.opt_f64(4)?.unwrap_or(0.0),
                r.string(5)?,
            )
        }
        None => (None, None, 0.0, String::new()),
    };
    let touch = pick.map(|(_, _, kind)| kind);
    let columns = OriginColumns::of(origin.as_ref());
    db.execute(
        "INSERT INTO conversions (event_id, contact_id, name, at, revenue, message_id, touch, campaign_id, variant,
         journey_id, step, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            Arg::I64(c.event_id),
            Arg::I64(contact),
            Arg::Str(&c.name),
            Arg::I64(c.at),
            Arg::OptF64(c.revenue),
            Arg::OptI64(message),
            Arg::OptStr(touch.map(touch_name)),
            Arg::OptI64(columns.campaign_id),
            Arg::OptI64(columns.variant.map(i64::from)),
            Arg::OptI64(columns.journey_id),
            Arg::OptStr(columns.step.as_deref()),
            Arg::I64(now),
        ],
    )
    .await?;
    if let Some(id) = message {
        let revenue = c.revenue.unwrap_or(0.0);
        let first = db
            .execute(
                "UPDATE messages SET first_converted_at = $2 WHERE id = $1 AND first_converted_at IS NULL",
                &[Arg::I64(id), Arg::I64(c.at)],
            )
            .await?
            > 0;
        db.execute(
            "UPDATE messages SET attributed_revenue = attributed_revenue + $2 WHERE id = $1",
            &[Arg::I64(id), Arg::OptF64(Some(revenue))],
        )
        .await?;
        if let Some(MessageOrigin::Journey { journey_id, step, .. }) = &origin {
            exec::count(db, *journey_id, step, StepCounter::Conversions, 1).await?;
            if first {
                exec::count(db, *journey_id, step, StepCounter::Converted, 1).await?;
            }
            db.execute(
                "UPDATE journey_step_stats SET conversion_revenue = conversion_revenue + $3
                 WHERE journey_id = $1 AND step = $2",
                &[Arg::I64(*journey_id), Arg::Str(step), Arg::OptF64(Some(revenue))],
            )
            .await?;
        }
        let mut counts = vec![(CampaignCounter::Conversions, 1.0)];
        if first {
            counts.push((CampaignCounter::Converted, 1.0));
        }
        if revenue != 0.0 {
            counts.push((CampaignCounter::Revenue, revenue));
            counts.push((
                CampaignCounter::RevenueSquares,
                attribution::revenue_square_delta(before, revenue),
            ));
        }
        // Counted at the conversion's time, toward the message's campaign variant and
        // report scopes.
        for (counter, amount) in counts {
            exec::count_message(db, &exec::Counted::of(origin.as_ref(), &channel), counter, amount, c.at).await?;
        }
    }
    count_holdouts(db, &[c.contact_id, contact], c, settings).await?;
    Ok(Some(Conversion {
        event_id: c.event_id,
        contact_id: contact,
        name: c.name.clone(),
        at: c.at,
        revenue: c.revenue,
        message_id: message,
        touch,
        origin,
    }))
}

/// The campaign variant number the holdout's counters are kept under in
/// `campaign_stats` (variants are numbered from 0).
pub(crate) const HOLDOUT_VARIANT: i64 = -1;

/// Counts a conversion toward the holdout of every campaign that held the contact out
/// and started within the window (`attribution::counts_for_holdout`): conversions,
/// converted (the contact's first), revenue and its squares per recipient. The
/// contact is looked up under the id the event named and the one it resolves to.
async fn count_holdouts<D: Db>(
    db: &D,
    contacts: &[ContactId],
    c: &NewConversion,
    settings: &ConversionSettings,
) -> Result<()> {
    let ids: Vec<String> = contacts.iter().map(i64::to_string).collect();
    let rows = sql::all(
        db,
        &format!(
            "SELECT r.campaign_id, r.contact_id, r.converted_at, r.revenue, k.sent_at FROM campaign_recipients r
             JOIN campaigns k ON k.id = r.campaign_id
             WHERE r.contact_id IN ({}) AND r.state = 'held_out'",
            ids.join(", ")
        ),
        &[],
        |r| Ok((r.i64(0)?, r.i64(1)?, r.opt_i64(2)?, r.opt_f64(3)?, r.opt_i64(4)?)),
    )
    .await?;
    for (campaign, contact, converted_at, before, started) in rows {
        if !started.is_some_and(|s| attribution::counts_for_holdout(c.at, s, settings)) {
            continue;
        }
        let revenue = c.revenue.unwrap_or(0.0);
        db.execute(
            "UPDATE campaign_recipients SET converted_at = coalesce(converted_at, $3),
             revenue = coalesce(revenue, 0) + $4 WHERE campaign_id = $1 AND contact_id = $2",
            &[
                Arg::I64(campaign),
                Arg::I64(contact),
                Arg::I64(c.at),
                Arg::OptF64(Some(revenue)),
            ],
        )
        .await?;
        let mut counts = vec![(CampaignCounter::Conversions, 1.0)];
        if converted_at.is_none() {
            counts.push((CampaignCounter::Converted, 1.0));
        }
        if revenue != 0.0 {
            counts.push((CampaignCounter::Revenue, revenue));
            counts.push((
                CampaignCounter::RevenueSquares,
                attribution::revenue_square_delta(before.unwrap_or(0.0), revenue),
            ));
        }
        for (counter, amount) in counts {
            db.execute(
                "INSERT INTO campaign_stats (campaign_id, variant, counter, value) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (campaign_id, variant, counter) DO UPDATE SET value = campaign_stats.value + excluded.value",
                &[
                    Arg::I64(campaign),
                    Arg::I64(HOLDOUT_VARIANT),
                    Arg::Str(counter.as_str()),
                    Arg::OptF64(Some(amount)),
                ],
            )
            .await?;
        }
    }
    Ok(())
}

fn touch_name(t: TouchKind) -> &'static str {
    match t {
        TouchKind::Clicked => "clicked",
        TouchKind::Opened => "opened",
        TouchKind::Delivered => "delivered",
    }
}

/// The hourly counters of one scope from hour `from` to hour `until` (inclusive):
/// `(hour, counter, value)`, in hour order.
pub(crate) async fn report_series<D: Db>(
    db: &D,
    scope: &crate::ReportScope,
    from: i64,
    until: i64,
) -> Result<Vec<(i64, CampaignCounter, f64)>> {
    let rows = sql::all(
        db,
        "SELECT hour, counter, value FROM report_hourly WHERE scope = $1 AND hour BETWEEN $2 AND $3
         ORDER BY hour, counter",
        &[Arg::Str(&scope.key()), Arg::I64(from), Arg::I64(until)],
        |r| Ok((r.i64(0)?, r.string(1)?, r.opt_f64(2)?.unwrap_or(0.0))),
    )
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(hour, counter, value)| Some((hour, CampaignCounter::parse(&counter)?, value)))
        .collect())
}

/// Every scope's counters summed from hour `from` to hour `until` (inclusive):
/// `(scope, counter, value)`.
pub(crate) async fn report_totals<D: Db>(
    db: &D,
    from: i64,
    until: i64,
) -> Result<Vec<(crate::ReportScope, CampaignCounter, f64)>> {
    let rows = sql::all(
        db,
        "SELECT scope, counter, sum(value) FROM report_hourly WHERE hour BETWEEN $1 AND $2
         GROUP BY scope, counter ORDER BY scope, counter",
        &[Arg::I64(from), Arg::I64(until)],
        |r| Ok((r.string(0)?, r.string(1)?, r.opt_f64(2)?.unwrap_or(0.0))),
    )
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(scope, counter, value)| {
            Some((
                crate::ReportScope::parse(&scope)?,
                CampaignCounter::parse(&counter)?,
                value,
            ))
        })
        .collect())
}

/// A campaign's counters by recipient domain: `(domain, counter, value)`.
pub(crate) async fn campaign_domains<D: Db>(db: &D, campaign: i64) -> Result<Vec<(String, CampaignCounter, f64)>> {
    let rows = sql::all(
        db,
        "SELECT domain, counter, value FROM campaign_domains WHERE campaign_id = $1 ORDER BY domain, counter",
        &[Arg::I64(campaign)],
        |r| Ok((r.string(0)?, r.string(1)?, r.opt_f64(2)?.unwrap_or(0.0))),
    )
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(domain, counter, value)| Some((domain, CampaignCounter::parse(&counter)?, value)))
        .collect())
}
