//! A person's whole record, unfiltered, as every view starts from it: from
//! Redis when cached for the current view version, else assembled from
//! PostgreSQL (once, however many requests miss together) and cached.
//!
//! The key carries the view version, which ingest, merges and consent
//! changes bump in PostgreSQL before they ack: a read after an acked update
//! reads the new version and so can never be served the old view. Redis
//! errors are misses; correctness never depends on Redis.
//!
//! Values are sealed ([`ViewCipher`]): Redis never holds record content in
//! clear, and a value that does not open is a miss, rebuilt and re-sealed.
//!
//! In front of Redis, each process keeps the records it recently served
//! ([`RecentViews`]), under the same (person, view version) key: a hot
//! record skips the Redis round trip, the decryption and the decoding, and
//! is never stale for the same reason the Redis copy is not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcr_proto::common::v1::Category;
use mcr_runtime::redis_cache::RedisCache;
use prost::Message;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::domain::StoredEntry;
use crate::domain::view::sort_newest_first;
use crate::error::AggregatorError;
use crate::store;
use crate::view_cipher::ViewCipher;

/// View cache lookups, by result (`memory`: this process still held it;
/// `hit`: from Redis; `miss`; `error`: Redis unavailable or the value unreadable).
pub const CACHE_METRIC: &str = "mcr_records_view_cache_total";
/// Views assembled from PostgreSQL (a miss, or Redis unavailable).
pub const BUILDS_METRIC: &str = "mcr_records_view_builds_total";
/// Cached values that did not open, by reason (`unknown_key`: sealed under
/// a key no longer configured; `forged`; `malformed`), each also a miss.
pub const UNOPENED_METRIC: &str = "mcr_records_view_cache_unopened_total";

/// A person's whole record at one view version.
#[derive(Debug)]
pub struct PersonRecord {
    pub view_version: u64,
    /// Newest first.
    pub entries: Vec<StoredEntry>,
    /// Roughly what the record occupies in memory, in bytes.
    weight: u64,
}

impl PersonRecord {
    pub fn new(view_version: u64, entries: Vec<StoredEntry>) -> Self {
        let text: usize = entries
            .iter()
            .map(|entry| {
                entry.display_summary.len()
                    + entry.resource_type.len()
                    + entry.organisation_code.len()
                    + entry.source_system.len()
                    + entry.local_entry_id.len()
                    + entry.group_key.len()
                    + entry.fhir_resource_json.len()
            })
            .sum();
        let weight = (text + entries.len() * std::mem::size_of::<StoredEntry>()) as u64;
        Self {
            view_version,
            entries,
            weight: weight.max(1),
        }
    }
}

/// Records recently served by this process, by (person, view version),
/// bounded by their approximate size. A bumped version is a new key, so
/// an entry is never stale; the outdated ones are simply evicted.
#[derive(Clone)]
pub struct RecentViews(Option<Arc<RecentCache>>);

type RecentCache = quick_cache::sync::Cache<(Uuid, u64), Arc<PersonRecord>, RecordWeight>;

impl RecentViews {
    /// Holds up to `capacity_bytes` of records; 0 keeps none.
    pub fn new(capacity_bytes: u64) -> Self {
        // Sized for records of ~100 KiB, the weight bound is what evicts.
        let estimated_records = usize::try_from(capacity_bytes / 100_000)
            .unwrap_or(usize::MAX)
            .max(16);
        Self((capacity_bytes > 0).then(|| {
            Arc::new(quick_cache::sync::Cache::with_weighter(
                estimated_records,
                capacity_bytes,
                RecordWeight,
            ))
        }))
    }

    fn get(&self, person: Uuid, version: u64) -> Option<Arc<PersonRecord>> {
        self.0.as_ref()?.get(&(person, version))
    }

    fn keep(&self, person: Uuid, record: &Arc<PersonRecord>) {
        if let Some(cache) = &self.0 {
            cache.insert((person, record.view_version), Arc::clone(record));
        }
    }
}

impl std::fmt::Debug for RecentViews {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(cache) => write!(formatter, "RecentViews({} records)", cache.len()),
            None => formatter.write_str("RecentViews(off)"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RecordWeight;

impl quick_cache::Weighter<(Uuid, u64), Arc<PersonRecord>> for RecordWeight {
    fn weight(&self, _key: &(Uuid, u64), record: &Arc<PersonRecord>) -> u64 {
        record.weight
    }
}

type Building = Arc<OnceCell<Arc<PersonRecord>>>;

/// Where views come from.
#[derive(Debug, Clone)]
pub struct Views {
    pub pool: PgPool,
    pub redis: Option<RedisCache>,
    pub ttl: Duration,
    /// Seals values before they reach Redis and opens them after.
    pub cipher: Arc<ViewCipher>,
    /// Views being assembled in this process, so concurrent misses for one
    /// person build it once.
    pub building: Arc<Mutex<HashMap<(Uuid, u64), Building>>>,
    /// Records this process served recently, checked before Redis.
    pub recent: RecentViews,
}

/// What the cache holds for a person at their current view version.
#[derive(Debug)]
pub enum Lookup {
    Cached(Arc<PersonRecord>),
    /// Not cached (or Redis unavailable): [`Views::build`] assembles it.
    Missing {
        version: u64,
    },
}

impl Views {
    /// The person's current view version and, when Redis holds it, the
    /// record at that version. Cheap: reads may start it before consent
    /// has answered, and build only once permitted.
    #[tracing::instrument(name = "records.lookup_view", skip(self), fields(view_version, cache))]
    pub async fn lookup(&self, person: Uuid) -> Result<Lookup, AggregatorError> {
        let version = store::view_version(&self.pool, person).await?;
        tracing::Span::current().record("view_version", version);
        if let Some(record) = self.recent.get(person, version) {
            metrics::counter!(CACHE_METRIC, "result" => "memory").increment(1);
            tracing::Span::current().record("cache", "memory");
            return Ok(Lookup::Cached(record));
        }
        let cached = self.cached(person, version).await;
        tracing::Span::current().record("cache", if cached.is_some() { "hit" } else { "miss" });
        Ok(cached.map_or(Lookup::Missing { version }, Lookup::Cached))
    }

    /// Assembles the person's record at `version` from PostgreSQL and caches
    /// it; concurrent builds of one view run once.
    #[tracing::instrument(name = "records.build_view", skip(self))]
    pub async fn build(
        &self,
        person: Uuid,
        version: u64,
    ) -> Result<Arc<PersonRecord>, AggregatorError> {
        let building = {
            let mut building = self
                .building
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            building.entry((person, version)).or_default().clone()
        };
        // A concurrent request may have built and cached it since this
        // one's lookup missed: look again before going to PostgreSQL.
        let result = building
            .get_or_try_init(|| async {
                match self.fetch(person, version).await {
                    Ok(record) => Ok(record),
                    Err(_) => self.assemble(person, version).await,
                }
            })
            .await
            .cloned();
        let mut map = self
            .building
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if map
            .get(&(person, version))
            .is_some_and(|current| Arc::ptr_eq(current, &building))
        {
            map.remove(&(person, version));
        }
        result
    }

    async fn assemble(
        &self,
        person: Uuid,
        version: u64,
    ) -> Result<Arc<PersonRecord>, AggregatorError> {
        metrics::counter!(BUILDS_METRIC).increment(1);
        let mut entries = store::entries_of(&self.pool, person).await?;
        sort_newest_first(&mut entries);
        let record = Arc::new(PersonRecord::new(version, entries));
        self.recent.keep(person, &record);
        self.store_in_cache(person, &record).await;
        Ok(record)
    }

    fn key(redis: &RedisCache, person: Uuid, version: u64) -> String {
        redis.key(&format!("view:{person}:{version}"))
    }

    /// The cached record, counted in the cache metrics.
    async fn cached(&self, person: Uuid, version: u64) -> Option<Arc<PersonRecord>> {
        match self.fetch(person, version).await {
            Ok(record) => {
                metrics::counter!(CACHE_METRIC, "result" => "hit").increment(1);
                Some(record)
            }
            Err(Miss::Absent) => {
                metrics::counter!(CACHE_METRIC, "result" => "miss").increment(1);
                None
            }
            Err(Miss::Unopened(reason)) => {
                tracing::debug!(
                    reason = reason.label(),
                    "a cached view that does not open is a miss"
                );
                metrics::counter!(UNOPENED_METRIC, "reason" => reason.label()).increment(1);
                metrics::counter!(CACHE_METRIC, "result" => "miss").increment(1);
                None
            }
            Err(Miss::Unreadable(error)) => {
                tracing::warn!(%error, "an unreadable cached view is ignored");
                metrics::counter!(CACHE_METRIC, "result" => "error").increment(1);
                None
            }
            Err(Miss::Unavailable(error)) => {
                tracing::debug!(%error, "redis unavailable; assembling from postgresql");
                metrics::counter!(CACHE_METRIC, "result" => "error").increment(1);
                None
            }
        }
    }

    #[tracing::instrument(name = "redis.get view", skip_all, fields(db.system = "redis"))]
    async fn fetch(&self, person: Uuid, version: u64) -> Result<Arc<PersonRecord>, Miss> {
        let redis = self.redis.as_ref().ok_or(Miss::Absent)?;
        let key = Self::key(redis, person, version);
        let mut connection = redis.connection();
        let sealed: Option<Vec<u8>> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .map_err(Miss::Unavailable)?;
        let bytes = self
            .cipher
            .open(&key, &sealed.ok_or(Miss::Absent)?)
            .map_err(Miss::Unopened)?;
        let view = CachedView::decode(bytes.as_slice()).map_err(Miss::Unreadable)?;
        let record = Arc::new(PersonRecord::new(
            version,
            view.entries
                .into_iter()
                .filter_map(CachedEntry::into_entry)
                .collect(),
        ));
        self.recent.keep(person, &record);
        Ok(record)
    }

    #[tracing::instrument(name = "redis.set view", skip_all, fields(db.system = "redis"))]
    async fn store_in_cache(&self, person: Uuid, record: &PersonRecord) {
        let Some(redis) = &self.redis else {
            return;
        };
        let view = CachedView {
            entries: record.entries.iter().map(CachedEntry::from_entry).collect(),
        };
        let key = Self::key(redis, person, record.view_version);
        let Some(sealed) = self.cipher.seal(&key, &view.encode_to_vec()) else {
            tracing::warn!("sealing a view failed; it is not cached");
            return;
        };
        let mut connection = redis.connection();
        let stored: Result<(), _> = redis::cmd("SET")
            .arg(&key)
            .arg(sealed)
            .arg("EX")
            .arg(self.ttl.as_secs().max(1))
            .query_async(&mut connection)
            .await;
        if let Err(error) = stored {
            tracing::debug!(%error, "caching a view failed; the next read assembles it again");
        }
    }
}

/// Why Redis did not give a view.
#[derive(Debug)]
enum Miss {
    Absent,
    Unopened(crate::view_cipher::OpenError),
    Unreadable(prost::DecodeError),
    Unavailable(redis::RedisError),
}

/// A person's record as cached in Redis (protobuf: compact and fast).
#[derive(Clone, PartialEq, prost::Message)]
struct CachedView {
    #[prost(message, repeated, tag = "1")]
    entries: Vec<CachedEntry>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct CachedEntry {
    #[prost(bytes = "vec", tag = "1")]
    entry_id: Vec<u8>,
    #[prost(int32, tag = "2")]
    category: i32,
    #[prost(int64, tag = "3")]
    effective_time_nanos: i64,
    #[prost(string, tag = "4")]
    display_summary: String,
    #[prost(string, tag = "5")]
    resource_type: String,
    #[prost(string, tag = "6")]
    organisation_code: String,
    #[prost(string, tag = "7")]
    source_system: String,
    #[prost(string, tag = "8")]
    local_entry_id: String,
    #[prost(uint64, tag = "9")]
    version: u64,
    #[prost(int64, tag = "10")]
    last_updated_nanos: i64,
    #[prost(string, tag = "11")]
    group_key: String,
    #[prost(string, tag = "12")]
    fhir_resource_json: String,
}

impl CachedEntry {
    fn from_entry(entry: &StoredEntry) -> Self {
        Self {
            entry_id: entry.entry_id.as_bytes().to_vec(),
            category: entry.category as i32,
            effective_time_nanos: nanos(entry.effective_time),
            display_summary: entry.display_summary.clone(),
            resource_type: entry.resource_type.clone(),
            organisation_code: entry.organisation_code.clone(),
            source_system: entry.source_system.clone(),
            local_entry_id: entry.local_entry_id.clone(),
            version: entry.version,
            last_updated_nanos: nanos(entry.last_updated),
            group_key: entry.group_key.clone(),
            fhir_resource_json: entry.fhir_resource_json.clone(),
        }
    }

    fn into_entry(self) -> Option<StoredEntry> {
        Some(StoredEntry {
            entry_id: Uuid::from_slice(&self.entry_id).ok()?,
            category: Category::try_from(self.category).ok()?,
            effective_time: from_nanos(self.effective_time_nanos)?,
            display_summary: self.display_summary,
            resource_type: self.resource_type,
            organisation_code: self.organisation_code,
            source_system: self.source_system,
            local_entry_id: self.local_entry_id,
            version: self.version,
            last_updated: from_nanos(self.last_updated_nanos)?,
            group_key: self.group_key,
            fhir_resource_json: self.fhir_resource_json,
        })
    }
}

fn nanos(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

fn from_nanos(nanos: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(version: u64, summary_bytes: usize) -> Arc<PersonRecord> {
        let entry = StoredEntry {
            entry_id: Uuid::now_v7(),
            category: Category::TestResults,
            effective_time: OffsetDateTime::UNIX_EPOCH,
            display_summary: "x".repeat(summary_bytes),
            resource_type: "Observation".to_owned(),
            organisation_code: "RQW".to_owned(),
            source_system: "EPR".to_owned(),
            local_entry_id: "obs-1".to_owned(),
            version: 1,
            last_updated: OffsetDateTime::UNIX_EPOCH,
            group_key: String::new(),
            fhir_resource_json: "{}".to_owned(),
        };
        Arc::new(PersonRecord::new(version, vec![entry]))
    }

    #[test]
    fn a_remembered_record_is_found_only_at_its_own_view_version() {
        let recent = RecentViews::new(1024 * 1024);
        let person = Uuid::now_v7();
        recent.keep(person, &record(7, 10));
        assert!(recent.get(person, 7).is_some());
        assert!(recent.get(person, 8).is_none(), "a newer version is a miss");
        assert!(recent.get(Uuid::now_v7(), 7).is_none());
    }

    #[test]
    fn memory_is_bounded_by_the_records_size_and_zero_keeps_nothing() {
        let recent = RecentViews::new(64 * 1024);
        let people: Vec<Uuid> = (0..8).map(|_| Uuid::now_v7()).collect();
        for person in &people {
            recent.keep(*person, &record(1, 20 * 1024));
        }
        let kept = people
            .iter()
            .filter(|person| recent.get(**person, 1).is_some())
            .count();
        assert!(
            (1..=3).contains(&kept),
            "64 KiB holds at most three 20 KiB records, held {kept}"
        );

        let off = RecentViews::new(0);
        off.keep(people[0], &record(1, 10));
        assert!(off.get(people[0], 1).is_none());
    }
}
