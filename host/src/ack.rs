//! End-to-end acknowledgements. A source attaches one [`AckToken`] per batch; tokens are
//! cloned as the batch fans out to several consumers and travel with whatever records a
//! plugin makes from it. When the last clone is dropped, the source's callback runs with
//! the outcome: delivered, unless some holder called [`AckToken::fail`].

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckStatus {
    Delivered,
    Failed,
}

type Callback = Box<dyn FnOnce(AckStatus) + Send>;

struct Entry {
    failed: AtomicBool,
    callback: Mutex<Option<Callback>>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        let status = if self.failed.load(Ordering::Acquire) {
            AckStatus::Failed
        } else {
            AckStatus::Delivered
        };
        if let Some(callback) = self.callback.get_mut().ok().and_then(Option::take) {
            callback(status);
        }
    }
}

#[derive(Clone)]
pub struct AckToken(Arc<Entry>);

impl fmt::Debug for AckToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AckToken")
    }
}

impl AckToken {
    pub fn new(callback: impl FnOnce(AckStatus) + Send + 'static) -> Self {
        Self(Arc::new(Entry {
            failed: AtomicBool::new(false),
            callback: Mutex::new(Some(Box::new(callback))),
        }))
    }

    pub fn fail(&self) {
        self.0.failed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn fires_once_when_the_last_clone_drops() {
        let (tx, rx) = mpsc::channel();
        let token = AckToken::new(move |s| tx.send(s).unwrap());
        let copies: Vec<_> = (0..3).map(|_| token.clone()).collect();
        drop(token);
        assert!(rx.try_recv().is_err());
        drop(copies);
        assert_eq!(rx.try_recv(), Ok(AckStatus::Delivered));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn one_failure_fails_the_whole_batch() {
        let (tx, rx) = mpsc::channel();
        let token = AckToken::new(move |s| tx.send(s).unwrap());
        let other = token.clone();
        other.fail();
        drop((token, other));
        assert_eq!(rx.recv(), Ok(AckStatus::Failed));
    }
}
