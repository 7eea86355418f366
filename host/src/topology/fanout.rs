//! Delivers one output's batches to every component that lists it in `inputs`.
//!
//! The list of consumers is shared between the producer and the topology, so a reload can
//! connect a new consumer or disconnect a removed one while the producer keeps running.

use crate::event::Batch;
use crate::tap::TapPoint;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Batches in flight per edge; small, so a slow sink pushes back on its sources instead of
/// queueing memory.
pub const CHANNEL_CAPACITY: usize = 8;

type Consumers = Arc<Vec<(Arc<str>, mpsc::Sender<Batch>)>>;

#[derive(Clone, Default)]
pub struct Fanout {
    /// Copied on write: a send takes the current list once per batch and never holds the
    /// lock while it waits for room.
    consumers: Arc<Mutex<Consumers>>,
    tap: Option<Arc<TapPoint>>,
}

impl Fanout {
    /// Shows what this output sends to anyone tapping it.
    pub fn tapped(mut self, tap: Arc<TapPoint>) -> Self {
        self.tap = Some(tap);
        self
    }

    /// Sends to `consumer` too, replacing its earlier sender if it had one.
    pub fn add(&self, consumer: Arc<str>, sender: mpsc::Sender<Batch>) {
        let mut consumers = self.consumers.lock().expect("fanout lock");
        let mut next: Vec<_> = consumers
            .iter()
            .filter(|(name, _)| *name != consumer)
            .cloned()
            .collect();
        next.push((consumer, sender));
        *consumers = Arc::new(next);
    }

    /// Stops sending to `consumer`; a batch already on its way still arrives.
    pub fn remove(&self, consumer: &str) {
        let mut consumers = self.consumers.lock().expect("fanout lock");
        if consumers.iter().any(|(name, _)| &**name == consumer) {
            *consumers = Arc::new(
                consumers
                    .iter()
                    .filter(|(name, _)| &**name != consumer)
                    .cloned()
                    .collect(),
            );
        }
    }

    fn current(&self) -> Consumers {
        self.consumers.lock().expect("fanout lock").clone()
    }

    /// Sends to every consumer, waiting for room (backpressure). A consumer that has
    /// stopped cannot take the batch, so its source data is marked undelivered.
    pub async fn send(&self, batch: Batch) {
        if let Some(tap) = &self.tap {
            tap.publish(&batch.records);
        }
        let consumers = self.current();
        let Some(((_, last), rest)) = consumers.split_last() else {
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
        let consumers = self.current();
        let Some(((_, last), rest)) = consumers.split_last() else {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize) -> Batch {
        Batch::new("t".into(), vec![Default::default(); n], None)
    }

    #[tokio::test]
    async fn consumers_change_while_a_producer_holds_the_fanout() {
        let registry = Fanout::default();
        let producer = registry.clone();
        let (a_tx, mut a) = mpsc::channel(4);
        let (b_tx, mut b) = mpsc::channel(4);
        registry.add("a".into(), a_tx);
        producer.send(batch(1)).await;
        registry.add("b".into(), b_tx);
        registry.remove("a");
        producer.send(batch(2)).await;
        assert_eq!(a.recv().await.map(|b| b.len()), Some(1));
        // `a` was disconnected: once the registry and producer let go, its channel closes.
        drop((registry, producer));
        assert!(a.recv().await.is_none());
        assert_eq!(b.recv().await.map(|b| b.len()), Some(2));
        assert!(b.recv().await.is_none());
    }
}
