//! The `demo` source: a live trading bot's NautilusTrader log, generated, so the built-in
//! pipeline shows every part of Sluice with no external service. Lines go through the
//! real `nautilus` decoder, exactly as a tailed log file would.

pub mod generator;

use super::SourceContext;
use crate::decode::Decoding;
use crate::event::Batch;
use generator::{DemoConfig, Generator};
use std::sync::Arc;
use std::time::Duration;

/// The demo source's YAML is the generator's settings.
pub type DemoSourceConfig = DemoConfig;

/// Batches per second at most; lines generated in between are sent together.
const TICK: Duration = Duration::from_millis(100);

pub(crate) async fn run(config: DemoConfig, cx: SourceContext) -> anyhow::Result<()> {
    let mut generator = Generator::new(&config);
    let origin: Arc<str> = cx.name.as_str().into();
    let per_tick = if config.rate > 0.0 {
        (config.rate * TICK.as_secs_f64()).max(1.0) as u64
    } else {
        1024
    };
    let mut remaining = config.count.unwrap_or(u64::MAX);
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    cx.telemetry
        .set_status(crate::telemetry::Status::Running, None);
    while remaining > 0 {
        if config.rate > 0.0 {
            tokio::select! {
                _ = interval.tick() => {}
                _ = cx.shutdown.cancelled() => break,
            }
        } else if cx.shutdown.is_cancelled() {
            break;
        }
        let n = per_tick.min(remaining);
        remaining -= n;
        let mut records = Vec::with_capacity(n as usize);
        for _ in 0..n {
            // A planted silence (or restart) is a real pause in a paced stream, so
            // alerts that watch the wall clock see it.
            if let Some(until) = generator.pause_until(chrono::Utc::now()) {
                let wait = (until - chrono::Utc::now()).to_std().unwrap_or_default();
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = cx.shutdown.cancelled() => break,
                }
            }
            let line = generator.next_line(chrono::Utc::now()).line;
            records.push(Decoding::Nautilus.decode(line.as_bytes()));
        }
        cx.telemetry.received(records.len());
        cx.telemetry.sent("default", records.len());
        cx.out.send(Batch::new(origin.clone(), records, None)).await;
    }
    Ok(())
}
