//! Taps: `sluice tap COMPONENT` (and `GET /tap/COMPONENT` on the admin address) streams
//! the records leaving any output, live. A tap costs almost nothing until someone listens
//! (one uncontended lock per batch, to count listeners); a listener gets copies through a
//! bounded broadcast channel, so a slow terminal skips batches (and is told how many)
//! instead of slowing the pipeline.
//!
//! Tap points are kept by output name in [`Taps`], which outlives the topology, so a tap
//! keeps streaming across a reload. Outputs upstream of a transform marked
//! `redaction: true` carry records no redaction has checked yet; they cannot be tapped, so
//! a tap never shows what the pipeline would not ship.

use crate::event::Record;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Batches a listener may fall behind by before it skips some.
const TAP_BACKLOG: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TapError {
    #[error("no output `{output}` in the running pipeline; outputs: {}", known.join(", "))]
    Unknown { output: String, known: Vec<String> },
    #[error(
        "`{output}` is upstream of the redaction transform `{redaction}`: its records are not \
         redacted yet. Tap `{redaction}` or a component after it"
    )]
    Unredacted { output: String, redaction: String },
}

/// One output's tap.
pub struct TapPoint {
    tx: broadcast::Sender<Arc<Vec<Record>>>,
}

impl TapPoint {
    pub fn publish(&self, records: &[Record]) {
        if self.tx.receiver_count() > 0 && !records.is_empty() {
            let _ = self.tx.send(Arc::new(records.to_vec()));
        }
    }
}

#[derive(Clone, Default)]
pub struct Taps {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    points: HashMap<String, Arc<TapPoint>>,
    /// The running pipeline's outputs, and for each unredacted one the redaction it precedes.
    outputs: BTreeMap<String, Option<String>>,
}

impl Taps {
    /// The tap of `output`, the same one across reloads.
    pub fn point(&self, output: &str) -> Arc<TapPoint> {
        let mut inner = self.inner.lock().expect("taps lock");
        inner
            .points
            .entry(output.to_owned())
            .or_insert_with(|| {
                Arc::new(TapPoint {
                    tx: broadcast::channel(TAP_BACKLOG).0,
                })
            })
            .clone()
    }

    /// Records what the running pipeline has: every output, and for those upstream of a
    /// redaction transform, its name.
    pub fn set_outputs(&self, outputs: BTreeMap<String, Option<String>>) {
        self.inner.lock().expect("taps lock").outputs = outputs;
    }

    pub fn subscribe(
        &self,
        output: &str,
    ) -> Result<broadcast::Receiver<Arc<Vec<Record>>>, TapError> {
        let redaction = {
            let inner = self.inner.lock().expect("taps lock");
            match inner.outputs.get(output) {
                None => {
                    return Err(TapError::Unknown {
                        output: output.to_owned(),
                        known: inner.outputs.keys().cloned().collect(),
                    })
                }
                Some(r) => r.clone(),
            }
        };
        if let Some(redaction) = redaction {
            return Err(TapError::Unredacted {
                output: output.to_owned(),
                redaction,
            });
        }
        Ok(self.point(output).tx.subscribe())
    }
}

/// Every output of the pipeline (`NAME` for sources; `NAME`, `NAME.metrics`,
/// `NAME.alerts`, `NAME.dead_letter` for transforms), each with the redaction transform
/// whose check it has not passed, if any. `transforms` maps each transform to the outputs
/// it reads and whether it is a redaction.
pub fn outputs(
    sources: impl IntoIterator<Item = String>,
    transforms: &BTreeMap<String, (Vec<String>, bool)>,
) -> BTreeMap<String, Option<String>> {
    let component = |output: &str| output.split('.').next().unwrap_or(output).to_owned();
    // Walk upstream from each redaction transform, marking what it has not yet seen.
    let mut before: BTreeMap<String, String> = BTreeMap::new();
    for (name, (inputs, redacts)) in transforms {
        if !redacts {
            continue;
        }
        let mut stack: Vec<String> = inputs.iter().map(|o| component(o)).collect();
        let mut seen = BTreeSet::new();
        while let Some(c) = stack.pop() {
            if !seen.insert(c.clone()) {
                continue;
            }
            before.entry(c.clone()).or_insert_with(|| name.clone());
            if let Some((inputs, redacts)) = transforms.get(&c) {
                if !redacts {
                    stack.extend(inputs.iter().map(|o| component(o)));
                }
            }
        }
    }
    let mut all = BTreeMap::new();
    for source in sources {
        let r = before.get(&source).cloned();
        all.insert(source, r);
    }
    for (name, (_, redacts)) in transforms {
        let r = before.get(name).cloned();
        for suffix in ["", ".metrics", ".alerts", ".dead_letter"] {
            all.insert(format!("{name}{suffix}"), r.clone());
        }
        // What a redaction failed on leaves by its dead letter output, unredacted.
        if *redacts {
            all.insert(format!("{name}.dead_letter"), Some(name.clone()));
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pipeline() -> BTreeMap<String, Option<String>> {
        // bot -> enrich_raw -> redact -> enrich -> out ; host -> alerts ; enrich -> alerts
        let t =
            |inputs: &[&str], redacts| (inputs.iter().map(|s| s.to_string()).collect(), redacts);
        let transforms = BTreeMap::from([
            ("enrich_raw".to_owned(), t(&["bot"], false)),
            ("redact".to_owned(), t(&["enrich_raw"], true)),
            ("enrich".to_owned(), t(&["redact"], false)),
            ("alerts".to_owned(), t(&["enrich", "host"], false)),
        ]);
        outputs(["bot".to_owned(), "host".to_owned()], &transforms)
    }

    #[test]
    fn everything_upstream_of_a_redaction_is_refused_and_the_rest_is_not() {
        let taps = Taps::default();
        taps.set_outputs(pipeline());
        for output in [
            "bot",
            "enrich_raw",
            "enrich_raw.dead_letter",
            "redact.dead_letter",
        ] {
            assert_eq!(
                taps.subscribe(output).unwrap_err(),
                TapError::Unredacted {
                    output: output.into(),
                    redaction: "redact".into()
                }
            );
        }
        for output in ["redact", "enrich", "alerts.alerts", "host"] {
            taps.subscribe(output).unwrap();
        }
        let err = taps.subscribe("nope").unwrap_err().to_string();
        assert!(
            err.contains("no output `nope`") && err.contains("alerts.metrics"),
            "{err}"
        );
    }

    #[test]
    fn a_listener_gets_what_is_published_and_the_point_outlives_a_new_topology() {
        let taps = Taps::default();
        taps.set_outputs(pipeline());
        let point = taps.point("enrich");
        point.publish(&[json!({"n": 0}).as_object().unwrap().clone()]); // nobody listens: dropped
        let mut rx = taps.subscribe("enrich").unwrap();
        taps.set_outputs(pipeline()); // a reload
        taps.point("enrich")
            .publish(&[json!({"n": 1}).as_object().unwrap().clone()]);
        let got = rx.try_recv().unwrap();
        assert_eq!(got[0]["n"], 1);
        assert!(rx.try_recv().is_err());
    }
}
