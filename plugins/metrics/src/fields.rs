//! Field lookups shared by all the rules a record meets.
//!
//! The default rules read `order.instrument_id` five times for one fill, and every
//! `order.*` path starts with the same `order` lookup. Records are B-tree maps, where each
//! lookup is a handful of string comparisons, so the compiler interns every path a rule
//! reads from the record root, prefixes included, and a per-record cache resolves each of
//! them at most once.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Not interned: looked up segment by segment (paths relative to a `for_each` item).
pub const UNINTERNED: u32 = u32::MAX;

/// Every interned root path: its parent prefix and its last segment.
#[derive(Debug, Default)]
pub struct PathTable {
    nodes: Vec<(u32, Box<str>)>,
    ids: HashMap<(u32, Box<str>), u32>,
}

impl PathTable {
    /// The id of `segments` as a path from the record root, interning its prefixes too.
    pub fn intern(&mut self, segments: &[Box<str>]) -> u32 {
        let mut parent = UNINTERNED;
        for segment in segments {
            let key = (parent, segment.clone());
            parent = match self.ids.get(&key) {
                Some(&id) => id,
                None => {
                    let id = self.nodes.len() as u32;
                    self.nodes.push((parent, segment.clone()));
                    self.ids.insert(key, id);
                    id
                }
            };
        }
        parent
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }
}

/// One record's fields, resolved lazily and remembered until the next record.
pub struct Fields<'a> {
    table: &'a PathTable,
    record: &'a Map<String, Value>,
    /// Per interned path: the record number it was resolved for, and its value.
    slots: Vec<(u32, Option<&'a Value>)>,
    generation: u32,
}

static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();

impl<'a> Fields<'a> {
    pub fn new(table: &'a PathTable) -> Self {
        Self {
            table,
            record: EMPTY.get_or_init(Map::new),
            slots: vec![(0, None); table.len()],
            generation: 0,
        }
    }

    /// Moves on to the next record; everything cached for the last one is forgotten.
    pub fn start(&mut self, record: &'a Map<String, Value>) {
        self.record = record;
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Once in 4 billion records: clear so a stale slot cannot pass for fresh.
            self.slots.iter_mut().for_each(|s| *s = (0, None));
            self.generation = 1;
        }
    }

    pub fn record(&self) -> &'a Map<String, Value> {
        self.record
    }

    /// The value at an interned path; null stays null here so it can be a prefix.
    fn node(&mut self, id: u32) -> Option<&'a Value> {
        let slot = self.slots[id as usize];
        if slot.0 == self.generation {
            return slot.1;
        }
        let table = self.table;
        let (parent, ref name) = table.nodes[id as usize];
        let value = if parent == UNINTERNED {
            self.record.get(&**name)
        } else {
            self.node(parent)
                .and_then(Value::as_object)
                .and_then(|m| m.get(&**name))
        };
        self.slots[id as usize] = (self.generation, value);
        value
    }

    /// The value at a root path; JSON null counts as missing.
    pub fn root(&mut self, id: u32, segments: &[Box<str>]) -> Option<&'a Value> {
        let value = if id == UNINTERNED {
            lookup(self.record, segments)
        } else {
            self.node(id)
        };
        value.filter(|v| !v.is_null())
    }
}

/// Walks `segments` down from `map`, without the cache.
pub fn lookup<'a>(map: &'a Map<String, Value>, segments: &[Box<str>]) -> Option<&'a Value> {
    let (first, rest) = segments.split_first()?;
    let mut current = map.get(&**first)?;
    for segment in rest {
        current = current.as_object()?.get(&**segment)?;
    }
    Some(current)
}

/// A multiply-rotate hasher (the Fx hash of rustc): keys here are short and not chosen
/// by an adversary who gains anything, since every metric's series count is capped.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let mut word = [0u8; 8];
            word[..tail.len()].copy_from_slice(tail);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn segs(path: &str) -> Vec<Box<str>> {
        path.split('.').map(Box::from).collect()
    }

    #[test]
    fn interning_shares_prefixes() {
        let mut t = PathTable::default();
        let a = t.intern(&segs("order.instrument_id"));
        let b = t.intern(&segs("order.side"));
        let c = t.intern(&segs("order.instrument_id"));
        let d = t.intern(&segs("side"));
        assert_eq!(a, c);
        assert_ne!(a, b);
        assert_ne!(b, d);
        assert_eq!(t.len(), 4, "order, order.instrument_id, order.side, side");
    }

    #[test]
    fn cached_values_follow_the_current_record() {
        let mut t = PathTable::default();
        let qty = t.intern(&segs("order.qty"));
        let gone = t.intern(&segs("order.qty.deeper"));
        let null = t.intern(&segs("n"));
        let one = json!({"order": {"qty": 1}, "n": null});
        let two = json!({"order": {"qty": 2}});
        let mut f = Fields::new(&t);
        f.start(one.as_object().unwrap());
        assert_eq!(f.root(qty, &[]), Some(&json!(1)));
        assert_eq!(f.root(qty, &[]), Some(&json!(1)));
        assert_eq!(f.root(gone, &[]), None);
        assert_eq!(f.root(null, &[]), None, "null counts as missing");
        f.start(two.as_object().unwrap());
        assert_eq!(f.root(qty, &[]), Some(&json!(2)));
        assert_eq!(f.root(UNINTERNED, &segs("order.qty")), Some(&json!(2)));
    }

    #[test]
    fn hasher_spreads_short_keys() {
        let hash = |b: &[u8]| {
            let mut h = FastHasher::default();
            h.write(b);
            h.finish()
        };
        assert_ne!(hash(b"a"), hash(b"b"));
        assert_ne!(hash(b"12345678a"), hash(b"12345678b"));
    }
}
