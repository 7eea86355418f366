//! What flows between components: batches of records, each batch carrying the
//! acknowledgement tokens of the source batches it came from.

use crate::ack::AckToken;
use serde_json::{Map, Value};
use std::sync::Arc;

/// One record: a map of fields. Host-only metadata lives on the [`Batch`], so plugins never
/// see it and cannot forge it.
pub type Record = Map<String, Value>;

#[derive(Debug, Clone)]
pub struct Batch {
    pub records: Vec<Record>,
    /// Released when every sink that received these records has written them (or they
    /// were dropped on purpose); the source then may checkpoint them.
    pub acks: Vec<AckToken>,
    /// The component that made the batch, for error records and taps.
    pub origin: Arc<str>,
}

impl Batch {
    pub fn new(origin: Arc<str>, records: Vec<Record>, ack: Option<AckToken>) -> Self {
        Self {
            records,
            acks: ack.into_iter().collect(),
            origin,
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// A batch of other records that answers for the same source data.
    pub fn with_records(&self, origin: Arc<str>, records: Vec<Record>) -> Self {
        Self {
            records,
            acks: self.acks.clone(),
            origin,
        }
    }

    /// Marks the source data as not delivered: its source will not checkpoint past it.
    pub fn fail(&self) {
        for ack in &self.acks {
            ack.fail();
        }
    }
}
