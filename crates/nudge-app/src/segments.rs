//! Segments: validating a definition, previewing a draft (how many, and who), saving,
//! deleting, installing a ready-made segment, and a segment's size over time. The
//! admin API and the web UI both call these.

use crate::{App, AppError, Result};
use nudge_core::segment::{Condition, DAY_MS, parse_condition, ready_made};
use nudge_core::{Contact, Millis};
use nudge_store::{NewSegment, Segment};
use serde_json::Value;

/// Most sample members a preview returns.
pub const PREVIEW_MAX_SAMPLE: usize = 100;

/// Who would be in a draft segment now.
#[derive(Debug, Clone)]
pub struct SegmentPreview {
    /// Members right now.
    pub count: usize,
    /// The first members (by contact id), at most the sample asked for.
    pub sample: Vec<Contact>,
}

/// Parses and validates a definition; an error names the node at fault in the
/// caller's terms, under `field` (`definition.conditions[2].window`).
pub fn parse_definition(value: &Value, field: &str) -> Result<Condition> {
    parse_condition(value).map_err(|e| {
        let at = format!("{field}{}", e.path.trim_start_matches('$'));
        AppError::invalid_field(at.clone(), format!("{at}: {}", e.message))
    })
}

/// The rules a segment about to be saved must follow on its own: a name of 1 to 200
/// characters; an administrative segment reads no other segment (every other
/// segment reads it: a cycle).
pub fn check_new_segment(new: &NewSegment) -> Result<()> {
    if new.name.trim().is_empty() || new.name.len() > 200 {
        return Err(AppError::invalid_field(
            "name",
            "name must be a non-empty string of at most 200 characters",
        ));
    }
    if new.administrative && !new.definition.segment_ids().is_empty() {
        return Err(AppError::invalid_field(
            "definition",
            "an administrative segment cannot read other segments (every segment reads it)",
        ));
    }
    Ok(())
}

impl App {
    /// A segment, or [`AppError::NotFound`].
    pub async fn segment(&self, id: i64) -> Result<Segment> {
        self.store
            .segment(id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("no segment {id}")))
    }

    fn segments_changed(&self) {
        if let Some(s) = &self.segments {
            s.wake();
        }
    }

    /// Segments a definition reads must exist and must not lead back to `id`.
    async fn check_segment_references(&self, id: Option<i64>, definition: &Condition) -> Result<()> {
        if definition.segment_ids().is_empty() {
            return Ok(());
        }
        let all = self.store.segments().await?;
        let existing: Vec<(i64, &Condition)> = all.iter().map(|s| (s.id, &s.definition)).collect();
        nudge_core::segment::check_references(id, definition, &existing)
            .map_err(|e| AppError::invalid_field("definition", format!("definition: {}", e.message)))
    }

    /// Saves a new segment and computes its members.
    pub async fn create_segment(&self, new: NewSegment) -> Result<Segment> {
        check_new_segment(&new)?;
        self.check_segment_references(None, &new.definition).await?;
        let s = self.store.create_segment(new, self.clock.now()).await?;
        self.segments_changed();
        Ok(s)
    }

    /// Replaces a segment's name, description and definition; a changed definition
    /// recomputes membership.
    pub async fn update_segment(&self, id: i64, new: NewSegment) -> Result<Segment> {
        check_new_segment(&new)?;
        self.check_segment_references(Some(id), &new.definition).await?;
        let s = self
            .store
            .update_segment(id, new, self.clock.now())
            .await?
            .ok_or_else(|| AppError::not_found(format!("no segment {id}")))?;
        self.segments_changed();
        Ok(s)
    }

    /// Deletes a segment no other segment reads.
    pub async fn delete_segment(&self, id: i64) -> Result<()> {
        if let Some(user) = self
            .store
            .segments()
            .await?
            .iter()
            .find(|s| s.definition.segment_ids().contains(&id))
        {
            return Err(AppError::invalid_request(
                "id",
                format!(
                    "segment {id} is read by segment {} ({}); change that one first",
                    user.id, user.name
                ),
            ));
        }
        self.refuse_if_campaign_uses(crate::campaigns::CampaignUse::Segment(id))
            .await?;
        if self.store.delete_segment(id).await? {
            Ok(())
        } else {
            Err(AppError::not_found(format!("no segment {id}")))
        }
    }

    /// Who would be in a draft segment right now, without saving it: the count and
    /// the first `sample` members. Like a saved segment, a draft leaves out the
    /// administrative segments' members.
    pub async fn preview_segment(&self, definition: &Condition, sample: usize) -> Result<SegmentPreview> {
        let sample = sample.min(PREVIEW_MAX_SAMPLE);
        let excluded = nudge_store::administrative_ids(&self.store.segments().await?);
        let members = self
            .store
            .segment_members(&definition.excluding(&excluded), self.clock.now())
            .await?;
        let mut contacts = Vec::new();
        for id in members.iter().take(sample) {
            if let Some(c) = self.store.contact(*id).await? {
                contacts.push(c);
            }
        }
        Ok(SegmentPreview {
            count: members.len(),
            sample: contacts,
        })
    }

    /// Creates the ready-made segment `key` (see [`ready_made`]).
    pub async fn install_ready_made_segment(&self, key: &str) -> Result<Segment> {
        let r = ready_made().into_iter().find(|r| r.key == key).ok_or_else(|| {
            AppError::not_found(format!(
                "no ready-made segment {key:?}; one of {}",
                ready_made().iter().map(|r| r.key).collect::<Vec<_>>().join(", ")
            ))
        })?;
        let s = self
            .store
            .create_segment(
                NewSegment {
                    name: r.name.into(),
                    description: r.description.into(),
                    definition: r.definition,
                    administrative: r.administrative,
                },
                self.clock.now(),
            )
            .await?;
        self.segments_changed();
        Ok(s)
    }

    /// A segment's members at the end of each of the last `days` days (UTC), oldest
    /// first, and now; `every` > 1 keeps every `every`-th day (counting back from
    /// today), for a sparkline.
    pub async fn segment_sizes(&self, id: i64, days: i64, every: i64) -> Result<Vec<(Millis, u64)>> {
        let now = self.clock.now();
        let today = now - now.rem_euclid(DAY_MS);
        let every = every.max(1);
        let instants: Vec<Millis> = (0..days)
            .rev()
            .filter(|d| d % every == 0)
            .map(|d| today - d * DAY_MS - 1)
            .collect();
        // A size at a past instant is read from membership history, which only grows
        // at its end: once computed for a version of the segment it is kept (in this
        // process), so a list of segments reads history once a day, not on every view.
        let version = self.store.segment(id).await?.map(|s| s.version).unwrap_or(0);
        let mut known = Vec::new();
        let mut missing = Vec::new();
        {
            let cache = PAST_SIZES.lock().unwrap_or_else(|e| e.into_inner());
            for at in &instants {
                match cache.get(&(id, version, *at)) {
                    Some(n) if *at < today => known.push((*at, *n)),
                    _ => missing.push(*at),
                }
            }
        }
        let fresh = if missing.is_empty() {
            Vec::new()
        } else {
            self.store.segment_size_at(id, missing).await?
        };
        {
            let mut cache = PAST_SIZES.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() > 100_000 {
                cache.clear();
            }
            for (at, n) in fresh.iter().filter(|(at, _)| *at < today) {
                cache.insert((id, version, *at), *n);
            }
        }
        known.extend(fresh);
        known.sort_by_key(|(at, _)| *at);
        // Now: the current members, counted on their own table (cheaper than history).
        known.push((now, self.store.segment_size(id).await?));
        Ok(known)
    }
}

/// Sizes of segments at past instants: (segment id, version, instant) → size.
static PAST_SIZES: std::sync::Mutex<std::collections::BTreeMap<(i64, i64, Millis), u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());
