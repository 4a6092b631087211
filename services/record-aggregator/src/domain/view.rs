//! Assembling what one viewer may see from a person's whole record: the
//! consent filter, the time window, grouping of the same fact from two
//! providers, counts and freshness — pure, so every rule is unit-tested.

use std::collections::{BTreeMap, HashMap, HashSet};

use mcr_proto::common::v1::Category;
use time::OffsetDateTime;

use super::entry::StoredEntry;

/// What the consent decision lets this viewer see.
#[derive(Debug, Clone, Default)]
pub struct AccessFilter {
    /// Categories permitted (a subset of those requested).
    pub permitted_categories: HashSet<Category>,
    /// Organisations whose entries the person asked to withhold.
    pub excluded_organisations: HashSet<String>,
    /// Entry ids the person asked to withhold.
    pub excluded_entry_ids: HashSet<String>,
}

impl AccessFilter {
    /// Whether the viewer may see `entry` at all.
    pub fn allows(&self, entry: &StoredEntry) -> bool {
        self.permitted_categories.contains(&entry.category)
            && !self
                .excluded_organisations
                .contains(&entry.organisation_code)
            && !self
                .excluded_entry_ids
                .contains(&entry.entry_id.to_string())
    }
}

/// Only entries effective in `[from, to)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeWindow {
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

impl TimeWindow {
    fn contains(&self, at: OffsetDateTime) -> bool {
        self.from.is_none_or(|from| at >= from) && self.to.is_none_or(|to| at < to)
    }
}

/// One item of the timeline: an entry, and the same fact from other sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineItem<'a> {
    pub entry: &'a StoredEntry,
    pub duplicates: Vec<&'a StoredEntry>,
}

/// The viewer's timeline over the whole filtered record (paging comes after).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline<'a> {
    /// Newest first.
    pub items: Vec<TimelineItem<'a>>,
    /// Items shown per category (within the window).
    pub category_counts: BTreeMap<i32, u32>,
    /// Latest update stored per organisation, over every visible entry
    /// (window ignored), so withheld entries leak no dates.
    pub freshness: BTreeMap<String, OffsetDateTime>,
}

/// Sorts a person's entries as every view shows them: newest effective
/// time first, then most recently updated, then by id for a stable order.
pub fn sort_newest_first(entries: &mut [StoredEntry]) {
    entries.sort_by(|a, b| {
        b.effective_time
            .cmp(&a.effective_time)
            .then(b.last_updated.cmp(&a.last_updated))
            .then(a.entry_id.cmp(&b.entry_id))
    });
}

/// The timeline `filter` and `window` allow over `entries` (sorted newest
/// first). Copies of one fact from different organisations are grouped
/// under the newest; copies within one organisation stay separate facts.
pub fn assemble<'a>(
    entries: &'a [StoredEntry],
    filter: &AccessFilter,
    window: TimeWindow,
) -> Timeline<'a> {
    let mut items: Vec<TimelineItem<'a>> = Vec::new();
    let mut group_index: HashMap<&str, usize> = HashMap::new();
    let mut category_counts = BTreeMap::new();
    let mut freshness: BTreeMap<String, OffsetDateTime> = BTreeMap::new();
    for entry in entries.iter().filter(|entry| filter.allows(entry)) {
        freshness
            .entry(entry.organisation_code.clone())
            .and_modify(|latest| *latest = (*latest).max(entry.last_updated))
            .or_insert(entry.last_updated);
        if !window.contains(entry.effective_time) {
            continue;
        }
        if let Some(&index) = group_index.get(entry.group_key.as_str()) {
            let item = &mut items[index];
            let same_organisation = std::iter::once(item.entry)
                .chain(item.duplicates.iter().copied())
                .any(|seen| seen.organisation_code == entry.organisation_code);
            if !same_organisation {
                item.duplicates.push(entry);
                continue;
            }
        }
        group_index.insert(&entry.group_key, items.len());
        *category_counts.entry(entry.category as i32).or_insert(0) += 1;
        items.push(TimelineItem {
            entry,
            duplicates: Vec::new(),
        });
    }
    Timeline {
        items,
        category_counts,
        freshness,
    }
}

/// Items `[offset, offset + size)` and the offset of the next page, if any.
pub fn page<T>(items: &[T], offset: usize, size: usize) -> (&[T], Option<usize>) {
    let start = offset.min(items.len());
    let end = start.saturating_add(size).min(items.len());
    let next = (end < items.len()).then_some(end);
    (&items[start..end], next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::entry::entry_id;
    use time::macros::datetime;

    fn entry(
        org: &str,
        id: &str,
        category: Category,
        at: OffsetDateTime,
        key: &str,
    ) -> StoredEntry {
        StoredEntry {
            entry_id: entry_id(org, "SYS", id),
            category,
            effective_time: at,
            display_summary: format!("summary {id}"),
            resource_type: "Observation".to_owned(),
            organisation_code: org.to_owned(),
            source_system: "SYS".to_owned(),
            local_entry_id: id.to_owned(),
            version: 1,
            last_updated: at + time::Duration::days(1),
            group_key: key.to_owned(),
            fhir_resource_json: "{}".to_owned(),
        }
    }

    fn all_categories() -> HashSet<Category> {
        (1..=10)
            .filter_map(|value| Category::try_from(value).ok())
            .collect()
    }

    fn record() -> Vec<StoredEntry> {
        let mut entries = vec![
            entry(
                "GP1",
                "m1",
                Category::Medications,
                datetime!(2026-01-10 9:00 UTC),
                "amox",
            ),
            entry(
                "RQW",
                "m9",
                Category::Medications,
                datetime!(2026-01-10 11:00 UTC),
                "amox",
            ),
            entry(
                "RQW",
                "t1",
                Category::TestResults,
                datetime!(2026-02-01 9:00 UTC),
                "hb",
            ),
            entry(
                "MHT",
                "h1",
                Category::MentalHealth,
                datetime!(2026-03-01 9:00 UTC),
                "mh",
            ),
            entry(
                "GP1",
                "t2",
                Category::TestResults,
                datetime!(2025-06-01 9:00 UTC),
                "hb-old",
            ),
        ];
        sort_newest_first(&mut entries);
        entries
    }

    #[test]
    fn entries_are_newest_first_and_two_providers_copies_are_one_item() {
        let entries = record();
        let filter = AccessFilter {
            permitted_categories: all_categories(),
            ..Default::default()
        };
        let timeline = assemble(&entries, &filter, TimeWindow::default());
        let ids: Vec<&str> = timeline
            .items
            .iter()
            .map(|item| item.entry.local_entry_id.as_str())
            .collect();
        assert_eq!(ids, ["h1", "t1", "m9", "t2"]);
        let grouped = &timeline.items[2];
        assert_eq!(grouped.duplicates.len(), 1);
        assert_eq!(grouped.duplicates[0].organisation_code, "GP1");
        assert_eq!(timeline.category_counts[&(Category::Medications as i32)], 1);
        assert_eq!(timeline.category_counts[&(Category::TestResults as i32)], 2);
    }

    #[test]
    fn copies_within_one_organisation_stay_separate_facts() {
        let mut entries = vec![
            entry(
                "GP1",
                "d1",
                Category::Medications,
                datetime!(2026-01-10 9:00 UTC),
                "dose",
            ),
            entry(
                "GP1",
                "d2",
                Category::Medications,
                datetime!(2026-01-10 21:00 UTC),
                "dose",
            ),
        ];
        sort_newest_first(&mut entries);
        let filter = AccessFilter {
            permitted_categories: all_categories(),
            ..Default::default()
        };
        assert_eq!(
            assemble(&entries, &filter, TimeWindow::default())
                .items
                .len(),
            2
        );
    }

    #[test]
    fn withheld_categories_organisations_and_entries_leave_no_trace() {
        let entries = record();
        let mut permitted = all_categories();
        permitted.remove(&Category::MentalHealth);
        let filter = AccessFilter {
            permitted_categories: permitted,
            excluded_organisations: HashSet::from(["GP1".to_owned()]),
            excluded_entry_ids: HashSet::from([entry_id("RQW", "SYS", "t1").to_string()]),
        };
        let timeline = assemble(&entries, &filter, TimeWindow::default());
        let ids: Vec<&str> = timeline
            .items
            .iter()
            .map(|item| item.entry.local_entry_id.as_str())
            .collect();
        assert_eq!(ids, ["m9"]);
        assert!(
            timeline.items[0].duplicates.is_empty(),
            "the GP's withheld copy is not shown"
        );
        assert_eq!(timeline.freshness.keys().collect::<Vec<_>>(), ["RQW"]);
        assert_eq!(
            timeline.freshness["RQW"],
            entries
                .iter()
                .find(|e| e.local_entry_id == "m9")
                .unwrap()
                .last_updated,
            "freshness comes from visible entries only"
        );
        assert!(
            !timeline
                .category_counts
                .contains_key(&(Category::MentalHealth as i32))
        );
    }

    #[test]
    fn the_window_bounds_items_and_counts_but_not_freshness() {
        let entries = record();
        let filter = AccessFilter {
            permitted_categories: all_categories(),
            ..Default::default()
        };
        let window = TimeWindow {
            from: Some(datetime!(2026-01-01 0:00 UTC)),
            to: Some(datetime!(2026-03-01 9:00 UTC)),
        };
        let timeline = assemble(&entries, &filter, window);
        let ids: Vec<&str> = timeline
            .items
            .iter()
            .map(|item| item.entry.local_entry_id.as_str())
            .collect();
        assert_eq!(ids, ["t1", "m9"], "from is inclusive, to exclusive");
        assert!(timeline.freshness.contains_key("MHT"));
    }

    #[test]
    fn pages_cover_every_item_once() {
        let items: Vec<u32> = (0..7).collect();
        assert_eq!(page(&items, 0, 3), (&items[0..3], Some(3)));
        assert_eq!(page(&items, 6, 3), (&items[6..7], None));
        assert_eq!(page(&items, 9, 3), (&items[7..7], None));
    }
}
