//! Delivers one output's batches to every component that lists it in `inputs`.

use crate::event::Batch;
use crate::tap::TapPoint;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Batches in flight per edge; small, so a slow sink pushes back on its sources instead of
/// queueing memory.
pub const CHANNEL_CAPACITY: usize = 8;

#[derive(Clone, Default)]
pub struct Fanout {
    consumers: Vec<(Arc<str>, mpsc::Sender<Batch>)>,
    tap: Option<Arc<TapPoint>>,
}

impl Fanout {
    /// Shows what this output sends to anyone tapping it.
    pub fn tapped(mut self, tap: Arc<TapPoint>) -> Self {
        self.tap = Some(tap);
        self
    }

    pub fn add(&mut self, consumer: Arc<str>, sender: mpsc::Sender<Batch>) {
        self.consumers.push((consumer, sender));
    }

    pub fn is_empty(&self) -> bool {
        self.consumers.is_empty()
    }

    /// Sends to every consumer, waiting for room (backpressure). A consumer that has
    /// stopped cannot take the batch, so its source data is marked undelivered.
    pub async fn send(&self, batch: Batch) {
        if let Some(tap) = &self.tap {
            tap.publish(&batch.records);
        }
        let Some(((_, last), rest)) = self.consumers.split_last() else {
            return;
        };
        for (_, sender) in rest {
            if let Err(e) = sender.send(batch.clone()).await {
                e.0.fail();
            }
        }
        if let Err(e) = last.send(batch).await {
            e.0.fail();
        }
    }

    /// For plugin worker threads, which are not async.
    pub fn blocking_send(&self, batch: Batch) {
        if let Some(tap) = &self.tap {
            tap.publish(&batch.records);
        }
        let Some(((_, last), rest)) = self.consumers.split_last() else {
            return;
        };
        for (_, sender) in rest {
            if let Err(e) = sender.blocking_send(batch.clone()) {
                e.0.fail();
            }
        }
        if let Err(e) = last.blocking_send(batch) {
            e.0.fail();
        }
    }
}
