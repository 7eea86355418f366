//! What a plugin hands back for each record.

use crate::Record;

/// The records a plugin keeps or makes for one call; `push` as many as you like.
#[derive(Debug, Default)]
pub struct Output {
    pub(crate) records: Vec<Record>,
}

impl Output {
    pub fn push(&mut self, record: Record) {
        self.records.push(record);
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// What a `#[transform]` function may return: a record (kept), `None` (dropped), several
/// records (split), or a `Result` whose error fails the batch with that message.
pub trait IntoRecords {
    fn into_records(self, out: &mut Output) -> Result<(), String>;
}

impl IntoRecords for Record {
    fn into_records(self, out: &mut Output) -> Result<(), String> {
        out.push(self);
        Ok(())
    }
}

impl IntoRecords for Option<Record> {
    fn into_records(self, out: &mut Output) -> Result<(), String> {
        out.records.extend(self);
        Ok(())
    }
}

impl IntoRecords for Vec<Record> {
    fn into_records(self, out: &mut Output) -> Result<(), String> {
        out.records.extend(self);
        Ok(())
    }
}

impl IntoRecords for () {
    fn into_records(self, _out: &mut Output) -> Result<(), String> {
        Ok(())
    }
}

impl<T: IntoRecords, E: std::fmt::Display> IntoRecords for Result<T, E> {
    fn into_records(self, out: &mut Output) -> Result<(), String> {
        self.map_err(|e| e.to_string())?.into_records(out)
    }
}
