//! The trait a stateful plugin implements. Stateless plugins use `#[transform]` instead,
//! which implements this trait for them.

use crate::{Output, Record};
use serde::de::DeserializeOwned;
use std::fmt;

/// A plugin failure shown to the operator. Any `Display` error converts into it, so `?`
/// works on whatever a plugin calls.
pub struct Error(pub String);

impl<E: fmt::Display> From<E> for Error {
    fn from(e: E) -> Self {
        Error(e.to_string())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub trait Plugin: Sized + 'static {
    /// The transform's YAML `config:` block. When the block is absent the plugin receives
    /// an empty map (or `()`), so `#[serde(default)]` structs need no config at all.
    type Config: DeserializeOwned;

    /// Called once per instance; an error here refuses the plugin with this message.
    fn new(config: Self::Config) -> Result<Self, Error>;

    /// Called for each record of a batch; push what to keep or make into `out`.
    /// An error fails the whole batch, and the transform's `on_error` policy applies.
    fn process(&mut self, record: Record, out: &mut Output) -> Result<(), Error>;

    /// Override to work on the whole batch at once (e.g. to sort or aggregate).
    fn process_batch(&mut self, batch: Vec<Record>, out: &mut Output) -> Result<(), Error> {
        for record in batch {
            self.process(record, out)?;
        }
        Ok(())
    }

    /// Called periodically with the host's time in nanoseconds since the Unix epoch, so a
    /// plugin can act on the absence of data (a silent bot).
    fn tick(&mut self, _now_ns: i64, _out: &mut Output) -> Result<(), Error> {
        Ok(())
    }

    /// State to hand to the next version on hot reload; `None` means stateless.
    fn snapshot(&self) -> Option<Vec<u8>> {
        None
    }

    fn restore(&mut self, _state: &[u8]) -> Result<(), Error> {
        Ok(())
    }
}
