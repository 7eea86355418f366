//! Synthetic NautilusTrader live-trading log stream for demos, soak tests and
//! alert tests.
//!
//! Sluice has to be shown and load-tested without a live Binance account, and a
//! parser, redactor or latency metric tuned on toy lines tells us nothing about
//! real logs. So this module simulates the small part of a NautilusTrader node
//! that produces log lines for a Binance USDT-M hedge-grid bot (strategy, order
//! lifecycle, positions, account, REST and WebSocket clients) and renders each
//! line in NautilusTrader's PLAIN format. Event shapes are copied from a real
//! NautilusTrader 1.221.0 log (`tests/fixtures/nautilus/sample.log`); the REST,
//! WebSocket and rate-limit lines, which backtests never write, follow what the
//! live Binance adapter logs.
//!
//! Because it is a simulation rather than independent random lines, the
//! cross-line invariants a pipeline test may rely on hold: an order is filled
//! only after it was submitted and accepted, venue latency shows both in the
//! `ts_event` nanoseconds and in the spacing of line timestamps, and positions
//! and balances add up. Everything random comes from one seeded RNG, so a seed
//! and a sequence of `now` values always give the same lines.
//!
//! # Calm by default, incidents on purpose
//!
//! Alert rules need two tests: a planted condition fires once and resolves, and
//! a healthy stream fires nothing at all. So with no [`Incident`] configured the
//! stream is a healthy bot, and the properties below are enforced, not merely
//! likely: no 418, 429 or 5xx and no connection errors; WebSocket drops at most
//! six per hour, each back within 1.5 s; no two order rejections less than 64 s
//! apart in three (so never three in a minute); polling kept under 55% of the
//! request-weight budget and new orders paused at 50% of the order-count limits;
//! venue round trips of 5-80 ms; a position event only right after a fill of
//! its instrument; and a reported balance that moves only when a fill line has
//! been written. Everything alarming comes from `incidents`, each clearly over
//! its alert's threshold for its whole window and back to calm after it;
//! [`DemoStats::incidents`] says when each really started and ended.
//!
//! # Time
//!
//! Lines are stamped by the generator's clock. With `rate` > 0 that clock is the
//! `now` the caller passes (the wall clock, so line `n` comes about `n / rate`
//! seconds in); with `rate` 0 it is simulated at 200 lines per second (line `n`
//! about `n / 200` seconds in) and runs ahead of the wall clock. `at_seconds`
//! counts on this clock from the first line's stamp. Above 200 lines/s the bot
//! is fast-forwarded (order lifetimes and Binance's rate-limit windows shrink
//! by `rate / 200`), but incident windows stay in stamp seconds.

use std::borrow::Cow;
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Deserializer};

/// Settings of the `demo` source, as written in the pipeline config.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// Lines per second (0 = as fast as possible).
    pub rate: f64,
    /// Stop after this many lines (None = run forever).
    pub count: Option<u64>,
    pub seed: u64,
    pub trader_id: String,
    /// Fraction of lines that carry a planted secret (API key, signature, listen key) so redaction has work.
    pub secret_ratio: f64,
    /// Fraction of orders the venue rejects in calm traffic. Rejections are
    /// also kept at least 64 s apart in threes, so that chance never adds up
    /// to a burst: plant a `rejection_burst` for that.
    pub reject_ratio: f64,
    /// Alert conditions to plant, each `{kind, at_seconds, duration_seconds}`
    /// (see [`Incident`]). Two incidents of the same kind may not overlap.
    #[serde(deserialize_with = "checked_incidents")]
    pub incidents: Vec<Incident>,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            rate: 200.0,
            count: None,
            seed: 42,
            trader_id: "TRADER-001".to_string(),
            secret_ratio: 0.02,
            reject_ratio: 0.003,
            incidents: Vec::new(),
        }
    }
}

impl DemoConfig {
    /// Pause between two lines, for the caller that paces the source; `None`
    /// means "do not wait" (rate 0, or a rate too odd to turn into a pause).
    pub fn interval(&self) -> Option<Duration> {
        if self.rate.is_finite() && self.rate > 0.0 {
            Duration::try_from_secs_f64(1.0 / self.rate).ok()
        } else {
            None
        }
    }
}

/// What goes wrong in a planted [`Incident`], named as in the YAML. Each is
/// over its alert's threshold from start to end and gone right after (the
/// tail, if any, is given); [`IncidentStats`] has the exact times.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// The BTCUSDT market-data stream drops: WARN `BinanceWebSocketClient:
    /// Disconnected from wss://...: code=1006 (abnormal closure), reconnecting
    /// in 1.0s`, then a failed reconnect attempt 1 s, 3 s, 7 s in and every
    /// 5 s after, each an ERROR `DataClient-BINANCE: Error connecting to
    /// exchange: <url>: <TimeoutError|ClientConnectorError>, retrying in 5.0s
    /// (attempt n)`, and at the end INFO `Reconnected to <url>`. Calm drops
    /// are back within 1.5 s.
    WsOutage,
    /// Every new opening order is rejected: a `POST /fapi/v1/order 400 ...
    /// code=-2019` line and a WARN `OrderRejected(..., reason='Margin is
    /// insufficient.', ...)` 5-80 ms later; at 200 lines/s that is over 60
    /// a minute (calm: never 3). Tail: the last order's round trip (< 0.1 s).
    RejectionBurst,
    /// Every new order fails before reaching Binance, alternately: WARN
    /// `RiskEngine: SubmitOrder for <id> DENIED: Exceeded MAX_ORDER_SUBMIT_RATE`
    /// then WARN `<--[EVT] OrderDenied(instrument_id=..., client_order_id=...,
    /// reason='Exceeded MAX_ORDER_SUBMIT_RATE')`; or ERROR `ExecEngine: Cannot
    /// execute command: no execution client configured for BINANCE ...,
    /// SubmitOrder(instrument_id=..., client_order_id=..., position_id=...)`.
    /// No order is submitted meanwhile.
    ExecutionFailure,
    /// Every order submitted in the window is accepted 1-3 s later (by
    /// `ts_event`, and its `POST` line shows the same latency); calm p99 is
    /// under 70 ms. Tail: up to 3 s, for orders sent just before the end.
    LatencySpike,
    /// At the start of every 1-minute weight window, a burst of `GET
    /// /fapi/v1/ticker/24hr` calls (weight 40) takes `x-mbx-used-weight-1m`
    /// to 2100/2400 (87.5%) within ~0.1 s; polling may add up to 2200, and
    /// `Rate limit usage: REQUEST_WEIGHT=...` lines turn WARN. Calm stays
    /// under 48%. Tail: until the window it ended in is over (Binance's
    /// counter drops only then), which is when `end_ns` is set.
    RateLimitPressure,
    /// 90% of polled REST calls answer 502/503/504 (ERROR, with Binance's
    /// `code=-1001`/`-1007` messages) or now and then 418; an ERROR
    /// `ExecClient-BINANCE: Error connecting to exchange: ...` every 1-3 s;
    /// and the grid places no new orders. Calm has no 418, 429 or 5xx.
    ExchangeErrors,
    /// No line at all: the next stamp is at the end of the window. See
    /// [`Generator::pause_until`] for what a paced caller should do.
    Silence,
    /// A quarter of all lines are ERRORs from the strategy (`Error on
    /// handling QuoteTick(...): ZeroDivisionError(...)` and the like, nothing
    /// about the exchange); calm has none.
    ErrorSpike,
    /// A single event: the Portfolio's `net_position` line and a
    /// `PositionChanged` that grows a position by at least a maximum order
    /// size. The grid places no order on that instrument for the 80 s
    /// before, so no fill of it falls in the 30 s before the jump. Planted in
    /// the first 80 s, when nothing is open yet, it is a `PositionOpened`.
    PositionJump,
    /// A single event: two `AccountState` lines in a row, the second with a
    /// total 8% lower, as after a transfer out; later states carry on from it.
    BalanceJump,
    /// The node stops (`TradingNode: STOPPING` ... `STOPPED` ... `DISPOSED`),
    /// logs nothing for the duration, then starts again: the `NAUTILUS
    /// TRADER` banner, `Building system kernel`, `STARTING`, components
    /// `RUNNING`, `TradingNode: RUNNING`, the WebSocket connections and an
    /// account state. Orders that were in flight are logged after it. A
    /// restart longer than a silence alert's threshold trips that too.
    Restart,
}

impl IncidentKind {
    pub const COUNT: usize = 11;
    pub const ALL: [IncidentKind; IncidentKind::COUNT] = [
        IncidentKind::WsOutage,
        IncidentKind::RejectionBurst,
        IncidentKind::ExecutionFailure,
        IncidentKind::LatencySpike,
        IncidentKind::RateLimitPressure,
        IncidentKind::ExchangeErrors,
        IncidentKind::Silence,
        IncidentKind::ErrorSpike,
        IncidentKind::PositionJump,
        IncidentKind::BalanceJump,
        IncidentKind::Restart,
    ];

    /// The YAML name.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::WsOutage => "ws_outage",
            IncidentKind::RejectionBurst => "rejection_burst",
            IncidentKind::ExecutionFailure => "execution_failure",
            IncidentKind::LatencySpike => "latency_spike",
            IncidentKind::RateLimitPressure => "rate_limit_pressure",
            IncidentKind::ExchangeErrors => "exchange_errors",
            IncidentKind::Silence => "silence",
            IncidentKind::ErrorSpike => "error_spike",
            IncidentKind::PositionJump => "position_jump",
            IncidentKind::BalanceJump => "balance_jump",
            IncidentKind::Restart => "restart",
        }
    }

    /// Single events happen at `at_seconds` and take no duration; the other
    /// kinds last `duration_seconds`.
    pub fn is_single_event(self) -> bool {
        matches!(self, IncidentKind::PositionJump | IncidentKind::BalanceJump)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// An alert condition planted in the stream on purpose.
///
/// ```yaml
/// incidents:
///   - {kind: ws_outage, at_seconds: 120, duration_seconds: 90}
///   - {kind: balance_jump, at_seconds: 300}
/// ```
///
/// Times are seconds of the stamp clock from the first line (see the module
/// docs): at `rate: 50` the outage above begins around line 6,000, at `rate: 0`
/// around line 24,000.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "IncidentSpec")]
#[schemars(with = "IncidentSpec")]
pub struct Incident {
    pub kind: IncidentKind,
    /// Start, in seconds after the first line's stamp.
    pub at_seconds: f64,
    /// Length in seconds: required and > 0 for every kind but the single
    /// events `position_jump` and `balance_jump`, which take none (0).
    pub duration_seconds: f64,
}

/// The YAML form of an [`Incident`], checked before it becomes one.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct IncidentSpec {
    kind: IncidentKind,
    /// Start, in seconds after the first line's stamp.
    at_seconds: f64,
    /// Length in seconds, > 0; left out for the single events `position_jump` and
    /// `balance_jump`.
    #[serde(default)]
    duration_seconds: Option<f64>,
}

impl TryFrom<IncidentSpec> for Incident {
    type Error = String;

    fn try_from(spec: IncidentSpec) -> Result<Self, String> {
        let incident = Incident {
            kind: spec.kind,
            at_seconds: spec.at_seconds,
            duration_seconds: spec.duration_seconds.unwrap_or(0.0),
        };
        incident.check()?;
        Ok(incident)
    }
}

/// Far beyond any test or demo (about three years), and small enough that
/// stamps plus every planted gap can never overflow.
const MAX_INCIDENT_SECONDS: f64 = 1e8;
/// More would only slow the config check down; no test needs as many.
pub const MAX_INCIDENTS: usize = 1_000;

impl Incident {
    pub fn new(kind: IncidentKind, at_seconds: f64, duration_seconds: f64) -> Self {
        Self {
            kind,
            at_seconds,
            duration_seconds,
        }
    }

    /// Why this incident cannot be planted, naming the key at fault.
    pub fn check(&self) -> Result<(), String> {
        let range = 0.0..=MAX_INCIDENT_SECONDS;
        if !range.contains(&self.at_seconds) {
            return Err(format!(
                "at_seconds: must be between 0 and {MAX_INCIDENT_SECONDS:e} seconds, got {}",
                self.at_seconds
            ));
        }
        if !range.contains(&self.duration_seconds) {
            return Err(format!(
                "duration_seconds: must be between 0 and {MAX_INCIDENT_SECONDS:e} seconds, got {}",
                self.duration_seconds
            ));
        }
        let kind = self.kind.as_str();
        if self.kind.is_single_event() && self.duration_seconds != 0.0 {
            return Err(format!(
                "duration_seconds: {kind} is a single event and takes no duration"
            ));
        }
        if !self.kind.is_single_event() && self.duration_seconds <= 0.0 {
            return Err(format!(
                "duration_seconds: {kind} needs a duration above 0 seconds"
            ));
        }
        Ok(())
    }

    fn window_seconds(&self) -> (f64, f64) {
        (self.at_seconds, self.at_seconds + self.duration_seconds)
    }
}

/// Checks a whole incident list: each incident, their number, and that two of
/// the same kind never overlap (their effects would not add up to anything a
/// test could state).
pub fn check_incidents(incidents: &[Incident]) -> Result<(), String> {
    if incidents.len() > MAX_INCIDENTS {
        return Err(format!(
            "at most {MAX_INCIDENTS} incidents, got {}",
            incidents.len()
        ));
    }
    for (i, incident) in incidents.iter().enumerate() {
        incident.check().map_err(|e| format!("[{i}].{e}"))?;
        if let Some(j) = overlapping(&incidents[..i], incident) {
            return Err(format!(
                "[{i}] overlaps [{j}]: two {} incidents cannot be active at once",
                incident.kind.as_str()
            ));
        }
    }
    Ok(())
}

fn overlapping(earlier: &[Incident], incident: &Incident) -> Option<usize> {
    if incident.kind.is_single_event() {
        return None;
    }
    let (s, e) = incident.window_seconds();
    earlier.iter().position(|other| {
        let (os, oe) = other.window_seconds();
        other.kind == incident.kind && s < oe && os < e
    })
}

fn checked_incidents<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Incident>, D::Error> {
    let incidents = Vec::<Incident>::deserialize(d)?;
    check_incidents(&incidents).map_err(serde::de::Error::custom)?;
    Ok(incidents)
}

/// What a line is about, so tests can compare a pipeline's counts with the source's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LineKind {
    OrderSubmitted,
    OrderAccepted,
    OrderFilled,
    OrderPartiallyFilled,
    OrderCanceled,
    OrderRejected,
    OrderDenied,
    SubmitCommand,
    RestCall,
    RateLimit,
    WebSocketConnected,
    WebSocketDisconnected,
    WebSocketReconnected,
    Balance,
    Position,
    /// ERROR-level lines other than REST responses.
    Error,
    /// WARN-level lines that need no action (cancel races, skipped grid updates, risk denials).
    Warning,
    /// Node start and stop lines (`NAUTILUS TRADER` banner, `RUNNING`, `STOPPED`...).
    Lifecycle,
    Heartbeat,
    Secret,
}

impl LineKind {
    pub const COUNT: usize = 20;
    pub const ALL: [LineKind; LineKind::COUNT] = [
        LineKind::OrderSubmitted,
        LineKind::OrderAccepted,
        LineKind::OrderFilled,
        LineKind::OrderPartiallyFilled,
        LineKind::OrderCanceled,
        LineKind::OrderRejected,
        LineKind::OrderDenied,
        LineKind::SubmitCommand,
        LineKind::RestCall,
        LineKind::RateLimit,
        LineKind::WebSocketConnected,
        LineKind::WebSocketDisconnected,
        LineKind::WebSocketReconnected,
        LineKind::Balance,
        LineKind::Position,
        LineKind::Error,
        LineKind::Warning,
        LineKind::Lifecycle,
        LineKind::Heartbeat,
        LineKind::Secret,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// One generated line. `planted_secret` is set exactly when `kind` is
/// [`LineKind::Secret`], so a redaction test can check the secret is gone
/// downstream without re-deriving where it sits in the line; `incident` names
/// the planted incident the line belongs to, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoLine {
    pub line: String,
    pub kind: LineKind,
    pub planted_secret: Option<String>,
    pub incident: Option<IncidentKind>,
}

/// Orders counted by the lines already emitted (not by what is scheduled), so
/// the numbers match what a downstream consumer can have seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderCounts {
    pub submitted: u64,
    pub accepted: u64,
    pub filled: u64,
    pub canceled: u64,
    pub rejected: u64,
    /// `OrderDenied` events: orders stopped before they were submitted.
    pub denied: u64,
}

impl OrderCounts {
    /// Orders submitted but without a final status yet (cut off by `count`).
    pub fn open(&self) -> u64 {
        self.submitted - self.filled - self.canceled - self.rejected
    }
}

/// What one planted incident did, in stamp nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentStats {
    pub kind: IncidentKind,
    /// When the generator began it (its `at_seconds`, or the first line after
    /// that if the clock skipped over it); `None` if the stream has not got there.
    pub start_ns: Option<i64>,
    /// When the generator ended it and calm returned; the same as `start_ns`
    /// for single events. For `rate_limit_pressure` this is the end of the
    /// 1-minute weight window the incident ended in, since Binance's counter
    /// only drops then; for `silence` and `restart` the first stamp after the
    /// gap.
    pub end_ns: Option<i64>,
    /// Lines the incident wrote or marked (0 for `silence`).
    pub lines: u64,
}

/// Ground truth for pipeline tests (e.g. latency histograms must hold one
/// sample per accepted order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoStats {
    pub lines: u64,
    per_kind: [u64; LineKind::COUNT],
    pub orders: OrderCounts,
    /// Client order ids in the order their `OrderAccepted` line was emitted.
    /// Kept to the first [`MAX_TRACKED_IDS`] so a source left running forever
    /// does not grow without bound; `orders.accepted` stays exact.
    pub accepted_ids: Vec<String>,
    /// Client order ids in the order their final `OrderFilled` line was
    /// emitted; bounded like `accepted_ids`.
    pub filled_ids: Vec<String>,
    /// One entry per planted incident, in config order.
    pub incidents: Vec<IncidentStats>,
}

impl DemoStats {
    pub fn lines_of(&self, kind: LineKind) -> u64 {
        self.per_kind[kind.index()]
    }

    /// The first planted incident of `kind`.
    pub fn incident(&self, kind: IncidentKind) -> Option<&IncidentStats> {
        self.incidents.iter().find(|i| i.kind == kind)
    }
}

/// Bound on the id lists in [`DemoStats`]: about 1.3 million lines' worth at
/// the default mix, far beyond any test run, yet a few MiB at most.
pub const MAX_TRACKED_IDS: usize = 100_000;

const ACCOUNT_ID: &str = "BINANCE-001";
const STRATEGY: &str = "HedgeGrid";
const STRATEGY_TAG: &str = "001";
const C_PORTFOLIO: &str = "Portfolio";
const C_EXEC: &str = "ExecClient-BINANCE";
const C_DATA: &str = "DataClient-BINANCE";
const C_ENGINE: &str = "ExecEngine";
const C_RISK: &str = "RiskEngine";
const C_NODE: &str = "TradingNode";
const C_HTTP: &str = "BinanceFuturesHttpClient";
const C_WS: &str = "BinanceWebSocketClient";

const US: i64 = 1_000;
const MS: i64 = 1_000_000;
const SEC: i64 = 1_000_000_000;
/// Money is kept in units of 1e-8 USDT (Nautilus' USDT precision), so sums are
/// exact and print like Nautilus' `Money`.
const MONEY_SCALE: i64 = 100_000_000;
const START_BALANCE: i64 = 10_000 * MONEY_SCALE;
const LEVERAGE: i64 = 20;
/// Binance's maintenance margin rate for the first notional bracket (0.4%).
const MAINT_MARGIN_PER_MILLE: i64 = 4;
const MAKER_BPS: i64 = 2;
const TAKER_BPS: i64 = 5;
const WEIGHT_LIMIT: u32 = 2400;
const ORDERS_10S_LIMIT: u32 = 300;
const ORDERS_1M_LIMIT: u32 = 1200;
/// Calm polling stops at 48% of the weight budget, so order cancels (weight 1,
/// never skipped, at most ~200 a minute under the order caps) cannot lift it
/// to the 60% a healthy bot stays under. Normal polling uses about 40%.
const CALM_WEIGHT_CAP: u32 = WEIGHT_LIMIT * 48 / 100;
/// Calm trading pauses at half the order-count limits; the margin covers
/// orders already on their way when the counter is read.
const CALM_ORDERS_10S_CAP: u32 = ORDERS_10S_LIMIT / 2;
const CALM_ORDERS_1M_CAP: u32 = ORDERS_1M_LIMIT / 2;
/// `rate_limit_pressure` drives the weight to 87.5% at the start of every
/// window and lets polling take it to 91.7%, leaving room for cancels, so it
/// stays clearly above an 80-85% alert without a single 429.
const PRESSURE_WEIGHT_TARGET: u32 = 2100;
const PRESSURE_WEIGHT_CAP: u32 = 2200;
/// Weight at which a `Rate limit usage:` line turns WARN.
const HOT_WEIGHT: u32 = WEIGHT_LIMIT * 4 / 5;
/// Calm rejections: a third one must come this long after the first of the
/// two before it. 64 s rather than 60 s covers the up to 3 s a rejection can
/// take to come back during a latency spike.
const REJECT_SPACING: i64 = 64 * SEC;
/// Calm WebSocket drops come at least this far apart (so at most six an hour)
/// plus an exponential wait with mean [`WS_DROP_MEAN_WAIT`]: three an hour on
/// average. The first one needs only the wait.
const WS_DROP_MIN_GAP: i64 = 600 * SEC;
const WS_DROP_MEAN_WAIT: f64 = 600.0 * SEC as f64;
/// A position jump needs no fill of its instrument in the 30 s before it; new
/// orders on it stop this long before, which outlasts any order's life
/// (at most ~36 s from submission to last partial fill, +3 s in a latency spike).
const QUIET_LEAD: i64 = 80 * SEC;
/// Share of lines that are ERRORs during an `error_spike`.
const ERROR_SPIKE_SHARE: f64 = 0.25;
/// Share of REST calls that fail during `exchange_errors`.
const EXCHANGE_FAILURE_SHARE: f64 = 0.9;
/// `balance_jump` moves the reported balance by this many per mille.
const BALANCE_JUMP_PER_MILLE: i64 = -80;
/// A grid has a bounded number of resting levels; beyond this the bot waits
/// instead of placing more orders, which also bounds this module's memory.
const MAX_OPEN_ORDERS: usize = 40;
/// Line density simulated when `rate` is 0: without it consecutive lines would
/// be 1 ns apart and every venue latency would look like a stall.
const VIRTUAL_RATE: f64 = 200.0;
struct Instrument {
    id: &'static str,
    symbol: &'static str,
    stream: &'static str,
    price_precision: u32,
    /// Long-run price in ticks; the simulated mid reverts to it.
    anchor_ticks: f64,
    /// Price noise in ticks per sqrt(second).
    vol_ticks: f64,
    grid_step_ticks: i64,
    /// Order sizes in lots of 0.001, as `min..=max` times `lot_multiple`.
    min_size: i64,
    max_size: i64,
    lot_multiple: i64,
    max_position_lots: i64,
    /// 1e-8 USDT per (tick x lot): 10^(8 - price_precision - 3).
    notional_per_tick_lot: i64,
}

const INSTRUMENTS: [Instrument; 2] = [
    Instrument {
        id: "BTCUSDT-PERP.BINANCE",
        symbol: "BTCUSDT",
        stream: "btcusdt",
        price_precision: 1,
        anchor_ticks: 675_000.0,
        vol_ticks: 150.0,
        grid_step_ticks: 100,
        min_size: 2,
        max_size: 20,
        lot_multiple: 1,
        max_position_lots: 200,
        notional_per_tick_lot: 10_000,
    },
    Instrument {
        id: "ETHUSDT-PERP.BINANCE",
        symbol: "ETHUSDT",
        stream: "ethusdt",
        price_precision: 2,
        anchor_ticks: 350_000.0,
        vol_ticks: 100.0,
        grid_step_ticks: 75,
        min_size: 3,
        max_size: 30,
        lot_multiple: 10,
        max_position_lots: 3_000,
        notional_per_tick_lot: 1_000,
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Buy,
    Sell,
}

impl Side {
    fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }
}

/// Binance hedge mode keeps a LONG and a SHORT position per instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PosSide {
    Long,
    Short,
}

impl PosSide {
    fn as_str(self) -> &'static str {
        match self {
            PosSide::Long => "LONG",
            PosSide::Short => "SHORT",
        }
    }

    fn index(self) -> usize {
        match self {
            PosSide::Long => 0,
            PosSide::Short => 1,
        }
    }

    fn sign(self) -> i64 {
        match self {
            PosSide::Long => 1,
            PosSide::Short => -1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrdType {
    Limit,
    Market,
    StopMarket,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reject {
    code: i32,
    msg: &'static str,
    due_post_only: bool,
}

const REJECT_MARGIN: Reject = Reject {
    code: -2019,
    msg: "Margin is insufficient.",
    due_post_only: false,
};
const REJECT_TRIGGER: Reject = Reject {
    code: -2021,
    msg: "Order would immediately trigger.",
    due_post_only: false,
};
const REJECT_REDUCE_ONLY: Reject = Reject {
    code: -2022,
    msg: "ReduceOnly Order is rejected.",
    due_post_only: false,
};
const REJECT_POST_ONLY: Reject = Reject {
    code: -5022,
    msg: "Due to the order could not be executed as maker, the Post Only order will be rejected.",
    due_post_only: true,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Fill,
    Cancel,
    Reject(Reject),
    /// Stopped before Binance sees it (`execution_failure`).
    Deny,
}

fn position_id(inst: usize, side: PosSide) -> String {
    format!("{}-{}", INSTRUMENTS[inst].id, side.as_str())
}

#[derive(Default)]
struct Position {
    lots: i64,
    /// Lots that pending reduce orders may still take, so they never close
    /// more than is open.
    reserved: i64,
    /// Lots pending opening orders may still add, to respect the size cap.
    pending_open: i64,
    avg_open: f64,
    avg_close: f64,
    closed_lots: i64,
    realized: i64,
    peak: i64,
    opening_order: String,
    closing_order: Option<String>,
    ts_opened: i64,
}

/// Fixed-window counter, like Binance's used-weight and order-count headers.
struct Window {
    period: i64,
    bucket: i64,
    used: u32,
}

impl Window {
    fn new(period: i64, speed: f64) -> Self {
        Self {
            period: ((period as f64 / speed) as i64).max(1),
            bucket: i64::MIN,
            used: 0,
        }
    }

    /// Whole seconds (of the real stamps) until the window resets.
    fn seconds_left(&self, t: i64) -> u32 {
        let left = self.period - t.rem_euclid(self.period);
        ((left + SEC - 1) / SEC).max(1) as u32
    }

    fn at(&mut self, t: i64) -> &mut u32 {
        let bucket = t.div_euclid(self.period);
        if bucket != self.bucket {
            self.bucket = bucket;
            self.used = 0;
        }
        &mut self.used
    }
}

impl Window {
    /// End of the window that `t` falls in (or `t` itself on a boundary).
    fn end_of(&self, t: i64) -> i64 {
        if t.rem_euclid(self.period) == 0 {
            t
        } else {
            (t.div_euclid(self.period) + 1) * self.period
        }
    }
}

struct Order {
    client_id: String,
    inst: usize,
    pos_side: PosSide,
    side: Side,
    reduce: bool,
    ord_type: OrdType,
    /// Limit price or stop trigger, in ticks (unused for market orders).
    price_ticks: i64,
    lots: i64,
    filled: i64,
    /// Sizes of the fills still to come; several means partial fills.
    fills: VecDeque<i64>,
    fate: Fate,
    /// Strategy tries to cancel just as the order fills: Binance answers
    /// "Unknown order sent." after the fill, a classic live-trading race.
    cancel_race: bool,
    venue_id: u64,
    /// Binance's millisecond event time of the acceptance, known once the
    /// round trip is drawn and printed when the accepted event is logged.
    venue_accept_ts: i64,
    accepted: bool,
    /// The planted incident that shapes this order's lines, if any.
    incident: Option<u16>,
}

impl Order {
    fn remaining(&self) -> i64 {
        self.lots - self.filled
    }

    fn position_id(&self) -> String {
        position_id(self.inst, self.pos_side)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WsState {
    Idle,
    Connected,
    /// Dropped, with a reconnect already scheduled.
    Reconnecting,
    /// Held down by a `ws_outage`: reconnect attempts fail until it ends.
    Down,
}

struct Stream {
    url: String,
    /// Market-data streams the bot opens first; the others follow shortly after.
    core: bool,
    state: WsState,
}

/// Which counter a line moves in [`DemoStats`], applied only when the line is
/// actually emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Effect {
    None,
    Submitted,
    Accepted(String),
    Filled(String),
    Canceled,
    Rejected,
    Denied,
}

struct Draft {
    kind: LineKind,
    level: Level,
    component: Cow<'static, str>,
    message: String,
    secret: Option<String>,
    effect: Effect,
    /// Index of the planted incident this line belongs to.
    incident: Option<u16>,
    /// Change of the wallet that Binance reports once this line (a fill) is
    /// out: `AccountState` lines show the wallet as of the fills already
    /// logged, so a balance never moves ahead of the fill that moved it.
    wallet_delta: i64,
}

impl Draft {
    fn new(kind: LineKind, level: Level, component: &'static str, message: String) -> Self {
        Self {
            kind,
            level,
            component: Cow::Borrowed(component),
            message,
            secret: None,
            effect: Effect::None,
            incident: None,
            wallet_delta: 0,
        }
    }

    fn with_effect(mut self, effect: Effect) -> Self {
        self.effect = effect;
        self
    }

    fn tagged(mut self, incident: Option<u16>) -> Self {
        if incident.is_some() {
            self.incident = incident;
        }
        self
    }

    fn secret(level: Level, component: &'static str, message: String, secret: String) -> Self {
        Self {
            secret: Some(secret),
            ..Draft::new(LineKind::Secret, level, component, message)
        }
    }
}

struct HttpCall {
    method: &'static str,
    path: &'static str,
    status: u16,
    latency_ns: i64,
    weight: u32,
    counts_as_order: bool,
    retry_after_s: Option<u32>,
    error: Option<(i32, String)>,
    /// A `rate_limit_pressure` call: dropped once the weight is high enough.
    ramp: bool,
    incident: Option<u16>,
}

impl HttpCall {
    fn ok(method: &'static str, path: &'static str, latency_ns: i64, weight: u32) -> Self {
        Self {
            method,
            path,
            status: 200,
            latency_ns,
            weight,
            counts_as_order: false,
            retry_after_s: None,
            error: None,
            ramp: false,
            incident: None,
        }
    }
}

enum Event {
    Submitted(u64),
    Accepted(u64),
    Rejected(u64),
    Denied(u64),
    Fill {
        order: u64,
        venue_ts: i64,
    },
    Canceled {
        order: u64,
        venue_ts: i64,
    },
    Http(HttpCall),
    Connect(usize),
    Reconnected(usize),
    /// The venue's account update, rendered when logged (see [`Draft::wallet_delta`]).
    AccountState,
    /// A failed reconnect during a `ws_outage` (incident index, stream, attempt).
    WsAttempt {
        incident: usize,
        stream: usize,
        attempt: u32,
    },
    /// A failed connection to the REST API during `exchange_errors`.
    ExchangeError {
        incident: usize,
    },
    Line(Draft),
}

struct Scheduled {
    due: i64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// Lines an incident must write next, in this order and before anything else
/// (a restart's stop sequence, gap and banner cannot interleave with fills).
enum Script {
    /// A line, stamped no earlier than its due time.
    Line(i64, Draft),
    /// Nothing is logged until `until`: the clock jumps there if it is not
    /// there yet (`silence`, a restart's downtime).
    Gap { until: i64, incident: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `position_jump` stops trading its instrument [`QUIET_LEAD`] early.
    Prepare,
    Start,
    End,
}

/// Per-incident working state.
#[derive(Debug, Clone, Copy, Default)]
struct IncidentState {
    /// Nominal window in stamp nanoseconds.
    start: i64,
    end: i64,
    /// `position_jump`: the instrument kept quiet and the side to grow.
    jump: Option<(usize, Option<PosSide>)>,
}

/// What a line slot not taken by a due follow-up event is used for. Every
/// order brings about eleven follow-up lines, so these weights give a stream
/// that is about half order flow (in real Nautilus logs the Portfolio and
/// strategy events dominate) and 40% heartbeats, while order counts and
/// request weight stay at 35-47% of Binance's limits by themselves (the calm
/// caps only trim the peaks).
#[derive(Debug, Clone, Copy)]
enum Spontaneous {
    NewOrder,
    Rest,
    RateLimit,
    Warning,
    Heartbeat,
}

const SPONTANEOUS: [(Spontaneous, f64); 5] = [
    (Spontaneous::NewOrder, 0.090),
    (Spontaneous::Rest, 0.075),
    (Spontaneous::RateLimit, 0.020),
    (Spontaneous::Warning, 0.006),
    (Spontaneous::Heartbeat, 0.809),
];

/// Polled endpoints with their Binance request weight and how often the bot
/// calls them. Placing an order weighs 0 on the IP limit (it counts against
/// the order limits instead).
const POLLS: [(&str, &str, u32, u32); 8] = [
    ("GET", "/fapi/v1/premiumIndex", 1, 25),
    ("GET", "/fapi/v1/openOrders", 1, 20),
    ("GET", "/fapi/v1/ticker/bookTicker", 2, 15),
    ("GET", "/fapi/v2/account", 5, 12),
    ("GET", "/fapi/v1/time", 1, 10),
    ("GET", "/fapi/v2/positionRisk", 5, 8),
    ("GET", "/fapi/v1/order", 1, 5),
    ("PUT", "/fapi/v1/listenKey", 1, 5),
];

/// `exchange_errors`: the REST API is unreachable.
const EXCHANGE_ERRORS: [&str; 3] = [
    "Error connecting to exchange: ClientConnectorError: Cannot connect to host fapi.binance.com:443 ssl:default [Connection reset by peer]",
    "Error connecting to exchange: ServerDisconnectedError: Server disconnected",
    "Error connecting to exchange: TimeoutError: request GET /fapi/v2/account timed out after 10.0s",
];

/// `ws_outage`: why each reconnect attempt fails.
const WS_FAILURES: [&str; 2] = [
    "TimeoutError: WebSocket handshake timed out after 10.0s",
    "ClientConnectorError: Cannot connect to host fstream.binance.com:443 ssl:default [Connect call failed]",
];

/// `error_spike`: strategy bugs, nothing about the exchange or order
/// submission, so only an error-rate alert has reason to fire.
const SPIKE_ERRORS: [(&str, &str); 3] = [
    (
        STRATEGY,
        "Error on handling QuoteTick(BTCUSDT-PERP.BINANCE): ZeroDivisionError('float division by zero')",
    ),
    (
        STRATEGY,
        "Error on handling Bar(ETHUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL): IndexError('list index out of range')",
    ),
    (
        STRATEGY,
        "Error on handling QuoteTick(ETHUSDT-PERP.BINANCE): KeyError('ETHUSDT-PERP.BINANCE-SHORT')",
    ),
];

/// The NautilusTrader banner as a live node logs it (copied from the sample,
/// blank lines left out since a PLAIN line always has a message).
const BANNER_LOGO: [&str; 11] = [
    "⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⣠⣴⣶⡟⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀",
    "⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⣰⣾⣿⣿⣿⠀⢸⣿⣿⣿⣿⣶⣶⣤⣀⠀⠀⠀⠀⠀",
    "⠀⠀⠀⠀⠀⠀⢀⣴⡇⢀⣾⣿⣿⣿⣿⣿⠀⣾⣿⣿⣿⣿⣿⣿⣿⠿⠓⠀⠀⠀⠀",
    "⠀⠀⠀⠀⠀⣰⣿⣿⡀⢸⣿⣿⣿⣿⣿⣿⠀⣿⣿⣿⣿⣿⣿⠟⠁⣠⣄⠀⠀⠀⠀",
    "⠀⠀⠀⠀⢠⣿⣿⣿⣇⠀⢿⣿⣿⣿⣿⣿⠀⢻⣿⣿⣿⡿⢃⣠⣾⣿⣿⣧⡀⠀⠀",
    "⠀⠀⠀⠠⣾⣿⣿⣿⣿⣿⣧⠈⠋⢀⣴⣧⠀⣿⡏⢠⡀⢸⣿⣿⣿⣿⣿⣿⣿⡇⠀",
    "⠀⠀⠀⣀⠙⢿⣿⣿⣿⣿⣿⠇⢠⣿⣿⣿⡄⠹⠃⠼⠃⠈⠉⠛⠛⠛⠛⠛⠻⠇⠀",
    "⠀⠀⢸⡟⢠⣤⠉⠛⠿⢿⣿⠀⢸⣿⡿⠋⣠⣤⣄⠀⣾⣿⣿⣶⣶⣶⣦⡄⠀⠀⠀",
    "⠀⠀⠸⠀⣾⠏⣸⣷⠂⣠⣤⠀⠘⢁⣴⣾⣿⣿⣿⡆⠘⣿⣿⣿⣿⣿⣿⠀⠀⠀⠀",
    "⠀⠀⠀⠀⠛⠀⣿⡟⠀⢻⣿⡄⠸⣿⣿⣿⣿⣿⣿⣿⡀⠘⣿⣿⣿⣿⠟⠀⠀⠀⠀",
    "⠀⠀⠀⠀⠀⠀⣿⠇⠀⠀⢻⡿⠀⠈⠻⣿⣿⣿⣿⣿⡇⠀⢹⣿⠿⠋⠀⠀⠀⠀⠀",
];
const RULE: &str = "=================================================================";

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &[u8] = b"0123456789abcdef";

/// The simulated trading node. Each call to [`Generator::next_line`] emits the
/// earliest follow-up that is due (an order answer, a fill, a reconnect...) or,
/// if none is, starts something new; so latencies are real time differences
/// between lines rather than labels.
pub struct Generator {
    rng: StdRng,
    trader_id: String,
    /// `<trader tag>-<strategy tag>` of client order ids; Nautilus takes the
    /// trader tag from the part of the trader id after its last hyphen.
    order_id_tags: String,
    secret_ratio: f64,
    reject_ratio: f64,
    count: Option<u64>,
    /// Whether stamps follow the caller's `now` (`rate` > 0).
    paced: bool,
    /// Mean gap between lines when `rate` is 0 (see [`VIRTUAL_RATE`]).
    virtual_gap_ns: Option<f64>,
    /// Above [`VIRTUAL_RATE`] lines/s the bot is fast-forwarded by
    /// `rate / VIRTUAL_RATE`: resting times and Binance's rate-limit windows
    /// shrink by that factor while network latencies stay real. Without it a
    /// faster stream would hit the grid's order cap and the request-weight
    /// limit, and turn into heartbeats and 429s.
    speed: f64,
    last_ns: Option<i64>,
    clock: i64,
    /// Added to the caller's `now` once a planted gap made the clock jump
    /// while paced (see [`Generator::pause_until`]).
    offset: i64,
    /// No line is stamped before this (the end of the last planted gap).
    floor: i64,
    market_ns: i64,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    script: VecDeque<Script>,
    orders: BTreeMap<u64, Order>,
    next_order_no: u64,
    next_venue_id: [u64; 2],
    next_trade_id: [u64; 2],
    mids: [f64; 2],
    positions: [[Position; 2]; 2],
    /// The true wallet, moved when a fill is booked.
    wallet: i64,
    /// The wallet as of the fill lines already logged (what `AccountState` shows).
    reported_wallet: i64,
    weight_1m: Window,
    orders_10s: Window,
    orders_1m: Window,
    streams: Vec<Stream>,
    api_key: String,
    listen_key: String,
    /// Decision times of the last two rejections, oldest first.
    recent_rejects: [i64; 2],
    next_ws_drop: i64,
    /// Instruments the strategy must not trade (count of pending `position_jump`s).
    quiet: [u8; 2],
    /// Alternates the two ways an `execution_failure` order fails.
    deny_toggle: bool,
    incidents: Vec<Incident>,
    incident_state: Vec<IncidentState>,
    /// (time, incident, phase), sorted; the front is the next to happen.
    timeline: VecDeque<(i64, usize, Phase)>,
    next_incident_ns: i64,
    /// The incident of each kind that is running now.
    active: [Option<u16>; IncidentKind::COUNT],
    /// Weight window in which `rate_limit_pressure` last ramped up.
    pressure_bucket: i64,
    /// Until the weight window a pressure incident ended in is over, polling
    /// keeps the pressure cap (Binance's counter has not dropped yet).
    pressure_tail_until: i64,
    stats: DemoStats,
    stamp_cache: SecondStamp,
}

impl Generator {
    /// Incidents that fail [`Incident::check`], or overlap an earlier one of
    /// the same kind, are left out: the config check refuses them with a
    /// message, and a config built in code must not make this panic.
    pub fn new(config: &DemoConfig) -> Self {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let trader_tag = config
            .trader_id
            .rsplit('-')
            .next()
            .filter(|tag| !tag.is_empty())
            .unwrap_or("000");
        let api_key = random_string(&mut rng, ALNUM, 64);
        let listen_len = rng.random_range(60..=64);
        let listen_key = random_string(&mut rng, ALNUM, listen_len);
        let next_venue_id = [
            rng.random_range(4_000_000_000..4_100_000_000),
            rng.random_range(8_300_000_000..8_400_000_000),
        ];
        let next_trade_id = [
            rng.random_range(5_200_000_000..5_300_000_000),
            rng.random_range(3_100_000_000..3_200_000_000),
        ];
        let mut streams = Vec::new();
        for inst in &INSTRUMENTS {
            streams.push(Stream {
                url: format!(
                    "wss://fstream.binance.com/stream?streams={0}@bookTicker/{0}@aggTrade",
                    inst.stream
                ),
                core: true,
                state: WsState::Idle,
            });
        }
        for inst in &INSTRUMENTS {
            streams.push(Stream {
                url: format!("wss://fstream.binance.com/ws/{}@markPrice@1s", inst.stream),
                core: false,
                state: WsState::Idle,
            });
        }
        streams.push(Stream {
            url: "wss://fstream.binance.com/ws/btcusdt@depth20@100ms".to_string(),
            core: false,
            state: WsState::Idle,
        });
        let paced = config.rate.is_finite() && config.rate > 0.0;
        let virtual_gap_ns = (!paced).then_some(SEC as f64 / VIRTUAL_RATE);
        let speed = if paced {
            (config.rate / VIRTUAL_RATE).max(1.0)
        } else {
            1.0
        };
        let mut incidents: Vec<Incident> = Vec::new();
        for incident in config.incidents.iter().take(MAX_INCIDENTS) {
            if incident.check().is_ok() && overlapping(&incidents, incident).is_none() {
                incidents.push(*incident);
            }
        }
        let stats = DemoStats {
            incidents: incidents
                .iter()
                .map(|i| IncidentStats {
                    kind: i.kind,
                    start_ns: None,
                    end_ns: None,
                    lines: 0,
                })
                .collect(),
            ..DemoStats::default()
        };
        Self {
            rng,
            trader_id: config.trader_id.clone(),
            order_id_tags: format!("{trader_tag}-{STRATEGY_TAG}"),
            secret_ratio: unit_interval(config.secret_ratio),
            reject_ratio: unit_interval(config.reject_ratio),
            count: config.count,
            paced,
            virtual_gap_ns,
            last_ns: None,
            clock: 0,
            offset: 0,
            floor: 0,
            market_ns: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            script: VecDeque::new(),
            orders: BTreeMap::new(),
            next_order_no: 1,
            next_venue_id,
            next_trade_id,
            mids: [INSTRUMENTS[0].anchor_ticks, INSTRUMENTS[1].anchor_ticks],
            positions: Default::default(),
            wallet: START_BALANCE,
            reported_wallet: START_BALANCE,
            speed,
            weight_1m: Window::new(60 * SEC, speed),
            orders_10s: Window::new(10 * SEC, speed),
            orders_1m: Window::new(60 * SEC, speed),
            streams,
            api_key,
            listen_key,
            recent_rejects: [i64::MIN / 2; 2],
            next_ws_drop: i64::MAX,
            quiet: [0; 2],
            deny_toggle: false,
            incident_state: vec![IncidentState::default(); incidents.len()],
            incidents,
            timeline: VecDeque::new(),
            next_incident_ns: i64::MAX,
            active: [None; IncidentKind::COUNT],
            pressure_bucket: i64::MIN,
            pressure_tail_until: i64::MIN,
            stats,
            stamp_cache: SecondStamp::default(),
        }
    }

    pub fn stats(&self) -> &DemoStats {
        &self.stats
    }

    /// Whether `count` lines have been produced; `next_line` itself never
    /// refuses, so the caller decides how to stop.
    pub fn is_exhausted(&self) -> bool {
        self.count.is_some_and(|count| self.stats.lines >= count)
    }

    /// For a paced caller (`rate` > 0): while a planted `silence` or a
    /// `restart`'s downtime covers `now`, the wall-clock time to wait for
    /// before asking for the next line. A caller that waits gets a real pause
    /// (what a "bot went silent" alert watches for); one that calls
    /// [`Generator::next_line`] anyway still gets the gap in the stamps, but
    /// the clock jumps over it and from then on runs ahead of `now` by the
    /// gap's length. Always `None` at rate 0, where the clock is simulated and
    /// simply jumps.
    pub fn pause_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.paced || self.last_ns.is_none() {
            return None;
        }
        let shifted = to_ns(now).saturating_add(self.offset);
        let until = match self.script.front() {
            Some(Script::Gap { until, .. }) => Some(*until),
            Some(Script::Line(..)) => None,
            None => self
                .timeline
                .iter()
                .take_while(|(time, _, _)| *time <= shifted)
                .filter(|(_, i, phase)| {
                    *phase == Phase::Start && self.incidents[*i].kind == IncidentKind::Silence
                })
                .map(|(_, i, _)| self.incident_state[*i].end)
                .max(),
        }?;
        (until > shifted).then(|| DateTime::from_timestamp_nanos(until - self.offset))
    }

    /// Next line (no trailing newline) and what it planted. `now` is the wall-clock time to stamp on it.
    ///
    /// The stamp is `now` unless that would not move forward: stamps strictly
    /// increase, follow-up events keep their simulated due time (at most
    /// `now`), and with `rate` 0 the stream runs on a simulated 200 lines/s
    /// clock, so its stamps can run ahead of the wall clock. Planted gaps move
    /// the clock forward (see [`Generator::pause_until`]).
    pub fn next_line(&mut self, now: DateTime<Utc>) -> DemoLine {
        let now_ns = to_ns(now);
        let mut vnow = self.virtual_now(now_ns);
        if self.last_ns.is_none() {
            self.start(vnow);
        }
        loop {
            if vnow >= self.next_incident_ns {
                self.run_timeline(vnow);
            }
            let Some(Script::Gap { until, incident }) = self.script.front() else {
                break;
            };
            let (until, incident) = (*until, *incident);
            self.script.pop_front();
            vnow = self.open_gap(until, incident, vnow, now_ns);
        }
        if let Some(Script::Line(..)) = self.script.front() {
            let Some(Script::Line(due, draft)) = self.script.pop_front() else {
                unreachable!("peeked a line")
            };
            self.advance_market(vnow);
            let t = self.stamp(due);
            return self.emit(t, draft);
        }
        if let Some(incident) = self.active[IncidentKind::RateLimitPressure.index()] {
            self.pressure_tick(vnow, incident);
        }
        self.advance_market(vnow);
        let next_due = self.queue.peek().map(|Reverse(s)| s.due);
        // The secret decision comes first and on every line so that
        // `secret_ratio` is the fraction of all lines, not of idle slots.
        let plant = self.secret_ratio > 0.0 && self.rng.random_bool(self.secret_ratio);
        let spike = self.active[IncidentKind::ErrorSpike.index()];
        let (t, draft) = if plant {
            let t = self.stamp(next_due.map_or(vnow, |due| due.min(vnow)));
            (t, self.secret_line(t))
        } else if spike.is_some() && self.rng.random_bool(ERROR_SPIKE_SHARE) {
            let t = self.stamp(next_due.map_or(vnow, |due| due.min(vnow)));
            let (component, message) = SPIKE_ERRORS[self.rng.random_range(0..SPIKE_ERRORS.len())];
            let draft = Draft::new(
                LineKind::Error,
                Level::Error,
                component,
                message.to_string(),
            );
            (t, draft.tagged(spike))
        } else if next_due.is_some_and(|due| due <= vnow) {
            let Some(Reverse(scheduled)) = self.queue.pop() else {
                unreachable!("peeked an event")
            };
            let t = self.stamp(scheduled.due);
            (t, self.handle(scheduled.event, t))
        } else {
            let t = self.stamp(vnow);
            (t, self.spontaneous(t))
        };
        self.emit(t, draft)
    }

    /// The simulated clock moves with `now`, or on its own when `rate` is 0;
    /// it is kept apart from the last stamp because follow-up events are
    /// stamped at their (earlier) due time and must not slow it down.
    fn virtual_now(&mut self, now_ns: i64) -> i64 {
        let shifted = now_ns.saturating_add(self.offset);
        let Some(last) = self.last_ns else {
            self.clock = shifted;
            return shifted;
        };
        if let Some(mean) = self.virtual_gap_ns {
            let u: f64 = self.rng.random();
            self.clock += ((-(1.0 - u).ln() * mean) as i64).max(1);
        }
        self.clock = self.clock.max(shifted);
        self.clock.max(last + 1)
    }

    fn stamp(&self, target: i64) -> i64 {
        let target = target.max(self.floor);
        match self.last_ns {
            Some(last) => target.max(last + 1),
            None => target,
        }
    }

    /// Nothing is logged before `until`; the clock jumps there if it is behind.
    fn open_gap(&mut self, until: i64, incident: usize, vnow: i64, now_ns: i64) -> i64 {
        let mut vnow = vnow;
        if until > vnow {
            if self.paced {
                let shifted = now_ns.saturating_add(self.offset);
                self.offset += until - shifted.min(until);
            }
            self.clock = self.clock.max(until);
            vnow = until;
        }
        self.floor = self.floor.max(until);
        self.stats.incidents[incident].end_ns = Some(self.stamp(vnow));
        let kind = self.incidents[incident].kind;
        if self.active[kind.index()] == Some(incident as u16) {
            self.active[kind.index()] = None;
        }
        vnow
    }

    fn schedule(&mut self, due: i64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            due,
            seq: self.seq,
            event,
        }));
    }

    /// A node logs its account and market-data connections right after start;
    /// opening with them makes the first seconds of a demo look like a real run.
    fn start(&mut self, t: i64) {
        self.market_ns = t;
        self.floor = t;
        self.schedule(t, Event::AccountState);
        for i in 0..self.streams.len() {
            let due = if self.streams[i].core {
                t
            } else {
                t + self.uniform_us(200_000, 2_000_000)
            };
            self.schedule(due, Event::Connect(i));
        }
        self.next_ws_drop = t + self.ws_drop_wait();
        self.build_timeline(t);
    }

    fn emit(&mut self, t: i64, draft: Draft) -> DemoLine {
        let mut line = String::with_capacity(64 + self.trader_id.len() + draft.message.len());
        self.stamp_cache.push(&mut line, t);
        line.push_str(" [");
        line.push_str(draft.level.as_str());
        line.push_str("] ");
        line.push_str(&self.trader_id);
        line.push('.');
        line.push_str(&draft.component);
        line.push_str(": ");
        line.push_str(&draft.message);

        self.reported_wallet += draft.wallet_delta;
        let stats = &mut self.stats;
        stats.lines += 1;
        stats.per_kind[draft.kind.index()] += 1;
        match draft.effect {
            Effect::None => {}
            Effect::Submitted => stats.orders.submitted += 1,
            Effect::Accepted(id) => {
                stats.orders.accepted += 1;
                if stats.accepted_ids.len() < MAX_TRACKED_IDS {
                    stats.accepted_ids.push(id);
                }
            }
            Effect::Filled(id) => {
                stats.orders.filled += 1;
                if stats.filled_ids.len() < MAX_TRACKED_IDS {
                    stats.filled_ids.push(id);
                }
            }
            Effect::Canceled => stats.orders.canceled += 1,
            Effect::Rejected => stats.orders.rejected += 1,
            Effect::Denied => stats.orders.denied += 1,
        }
        let incident = draft.incident.map(|i| {
            let entry = &mut stats.incidents[i as usize];
            entry.lines += 1;
            entry.kind
        });
        self.last_ns = Some(t);
        DemoLine {
            line,
            kind: draft.kind,
            planted_secret: draft.secret,
            incident,
        }
    }

    // ----- randomness ---------------------------------------------------

    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.rng.random::<f64>();
        let u2: f64 = self.rng.random();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Latencies and lifetimes are right-skewed with rare long tails, which a
    /// clamped lognormal reproduces well enough for histograms to look real.
    fn lognormal_ns(&mut self, median_ms: f64, sigma: f64, lo_ms: f64, hi_ms: f64) -> i64 {
        let ms = median_ms * (sigma * self.normal()).exp();
        (ms.clamp(lo_ms, hi_ms) * MS as f64) as i64
    }

    fn uniform_us(&mut self, lo_us: i64, hi_us: i64) -> i64 {
        self.rng.random_range(lo_us * US..hi_us * US)
    }

    /// How long an order rests before the market or the strategy acts on it;
    /// shortened when fast-forwarding (see [`Generator::speed`]).
    fn resting_ns(&mut self, median_ms: f64, sigma: f64, lo_ms: f64, hi_ms: f64) -> i64 {
        let ns = self.lognormal_ns(median_ms, sigma, lo_ms, hi_ms);
        ((ns as f64 / self.speed) as i64).max(MS)
    }

    /// Order round trip to Binance: 5-80 ms, median ~18 ms.
    fn venue_latency(&mut self) -> i64 {
        self.lognormal_ns(18.0, 0.55, 5.0, 80.0)
    }

    fn uuid4(&mut self) -> String {
        let mut b = [0u8; 16];
        self.rng.fill(&mut b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let mut s = String::with_capacity(36);
        for (i, byte) in b.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                s.push('-');
            }
            let _ = write!(s, "{byte:02x}");
        }
        s
    }

    /// Prices follow a mean-reverting random walk, stepped at most every
    /// 50 ms: a Brownian path sampled more coarsely is the same path, and two
    /// normal draws per line would be a good part of the generator's cost.
    fn advance_market(&mut self, t: i64) {
        if t < self.market_ns + 50 * MS {
            return;
        }
        let dt = (t - self.market_ns) as f64 / SEC as f64;
        self.market_ns = t;
        for (i, inst) in INSTRUMENTS.iter().enumerate() {
            let reversion = (inst.anchor_ticks - self.mids[i]) * (dt / 600.0).min(1.0);
            self.mids[i] += reversion + inst.vol_ticks * dt.sqrt() * self.normal();
        }
    }

    fn mid_ticks(&self, inst: usize) -> i64 {
        self.mids[inst].round() as i64
    }

    // ----- dispatch -----------------------------------------------------

    fn handle(&mut self, event: Event, t: i64) -> Draft {
        match event {
            Event::Submitted(key) => self.on_submitted(key, t),
            Event::Accepted(key) => self.on_accepted(key, t),
            Event::Rejected(key) => self.on_rejected(key, t),
            Event::Denied(key) => self.on_denied(key, t),
            Event::Fill { order, venue_ts } => self.on_fill(order, venue_ts, t),
            Event::Canceled { order, venue_ts } => self.on_canceled(order, venue_ts, t),
            Event::Http(call) => self.on_http(call, t),
            Event::Connect(i) => {
                self.streams[i].state = WsState::Connected;
                let message = format!("Connected to {}", self.streams[i].url);
                Draft::new(LineKind::WebSocketConnected, Level::Info, C_WS, message)
            }
            Event::Reconnected(i) => {
                if self.streams[i].state != WsState::Reconnecting {
                    // An outage or restart took the stream over meanwhile.
                    return self.heartbeat();
                }
                self.streams[i].state = WsState::Connected;
                let message = format!("Reconnected to {}", self.streams[i].url);
                Draft::new(LineKind::WebSocketReconnected, Level::Info, C_WS, message)
            }
            Event::AccountState => self.account_state(),
            Event::WsAttempt {
                incident,
                stream,
                attempt,
            } => self.ws_attempt(incident, stream, attempt, t),
            Event::ExchangeError { incident } => self.exchange_error(incident, t),
            Event::Line(draft) => draft,
        }
    }

    fn spontaneous(&mut self, t: i64) -> Draft {
        if t >= self.next_ws_drop {
            self.next_ws_drop = t + WS_DROP_MIN_GAP + self.ws_drop_wait();
            if let Some(draft) = self.ws_drop(t) {
                return draft;
            }
        }
        let total: f64 = SPONTANEOUS.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.random::<f64>() * total;
        let mut choice = Spontaneous::Heartbeat;
        for (kind, weight) in SPONTANEOUS {
            if roll < weight {
                choice = kind;
                break;
            }
            roll -= weight;
        }
        match choice {
            Spontaneous::NewOrder => match self.start_order(t) {
                Some(draft) => draft,
                None => self.heartbeat(),
            },
            Spontaneous::Rest => self.rest_poll(t),
            Spontaneous::RateLimit => self.rate_limit_line(t),
            Spontaneous::Warning => self.benign_warning(),
            Spontaneous::Heartbeat => self.heartbeat(),
        }
    }

    // ----- order lifecycle ----------------------------------------------

    fn start_order(&mut self, t: i64) -> Option<Draft> {
        // With the REST API failing, the grid stops placing orders (and the
        // failures are most of what the HTTP client logs).
        if self.orders.len() >= MAX_OPEN_ORDERS
            || self.active[IncidentKind::ExchangeErrors.index()].is_some()
            || *self.orders_10s.at(t) >= CALM_ORDERS_10S_CAP
            || *self.orders_1m.at(t) >= CALM_ORDERS_1M_CAP
        {
            return None;
        }
        let mut inst = if self.rng.random_bool(0.6) { 0 } else { 1 };
        if self.quiet[inst] > 0 {
            inst = 1 - inst;
            if self.quiet[inst] > 0 {
                return None;
            }
        }
        let spec = &INSTRUMENTS[inst];
        let pos_side = if self.rng.random_bool(0.5) {
            PosSide::Long
        } else {
            PosSide::Short
        };
        let roll: f64 = self.rng.random();
        let mut lots = self.rng.random_range(spec.min_size..=spec.max_size) * spec.lot_multiple;
        let pos = &self.positions[inst][pos_side.index()];
        let available = pos.lots - pos.reserved;
        let room = spec.max_position_lots - pos.lots - pos.pending_open;

        let (ord_type, reduce) = if roll < 0.05 && pos.lots > 0 {
            // Protective stop for the whole position; stops are never filled
            // here, so they reserve nothing.
            lots = pos.lots;
            (OrdType::StopMarket, true)
        } else {
            let ord_type = if roll < 0.17 {
                OrdType::Market
            } else {
                OrdType::Limit
            };
            let can_reduce = available >= spec.lot_multiple;
            let can_open = room >= lots;
            let reduce = match (can_open, can_reduce) {
                (true, true) => self.rng.random_bool(0.5),
                (false, true) => true,
                (true, false) => false,
                (false, false) => return None,
            };
            if reduce {
                lots = lots.min(available);
            }
            (ord_type, reduce)
        };
        let side = match (pos_side, reduce) {
            (PosSide::Long, false) | (PosSide::Short, true) => Side::Buy,
            (PosSide::Long, true) | (PosSide::Short, false) => Side::Sell,
        };
        let level = self.rng.random_range(1..=6);
        let mid = self.mid_ticks(inst);
        let price_ticks = match (ord_type, side) {
            (OrdType::Market, _) => 0,
            (OrdType::Limit, Side::Buy) => mid - level * spec.grid_step_ticks,
            (OrdType::Limit, Side::Sell) => mid + level * spec.grid_step_ticks,
            (OrdType::StopMarket, Side::Sell) => mid - 3 * level * spec.grid_step_ticks,
            (OrdType::StopMarket, Side::Buy) => mid + 3 * level * spec.grid_step_ticks,
        };
        // Drawn on every order so the calm cap does not shift the RNG.
        let by_chance = self.rng.random_bool(self.reject_ratio);
        let burst = self.active[IncidentKind::RejectionBurst.index()].filter(|_| !reduce);
        let failure = self.active[IncidentKind::ExecutionFailure.index()];
        let mut incident = None;
        let fate = if failure.is_some() {
            incident = failure;
            Fate::Deny
        } else if burst.is_some() {
            incident = burst;
            self.note_rejection(t);
            Fate::Reject(REJECT_MARGIN)
        } else if by_chance && self.rejection_allowed(t) {
            self.note_rejection(t);
            Fate::Reject(match ord_type {
                OrdType::StopMarket => REJECT_TRIGGER,
                OrdType::Market if reduce => REJECT_REDUCE_ONLY,
                OrdType::Market => REJECT_MARGIN,
                OrdType::Limit if self.rng.random_bool(0.4) => REJECT_POST_ONLY,
                OrdType::Limit if reduce => REJECT_REDUCE_ONLY,
                OrdType::Limit => REJECT_MARGIN,
            })
        } else {
            match ord_type {
                OrdType::Market => Fate::Fill,
                OrdType::StopMarket => Fate::Cancel,
                OrdType::Limit if self.rng.random_bool(0.7) => Fate::Fill,
                OrdType::Limit => Fate::Cancel,
            }
        };
        let mut fills = VecDeque::new();
        if fate == Fate::Fill {
            let units = lots / spec.lot_multiple;
            let pieces = match ord_type {
                OrdType::Market if units >= 2 && self.rng.random_bool(0.3) => 2,
                OrdType::Limit if units >= 2 && self.rng.random_bool(0.35) => {
                    self.rng.random_range(2..=units.min(4))
                }
                _ => 1,
            };
            let mut left = units;
            for piece in (1..=pieces).rev() {
                let take = if piece == 1 {
                    left
                } else {
                    self.rng.random_range(1..=left - (piece - 1))
                };
                fills.push_back(take * spec.lot_multiple);
                left -= take;
            }
        }
        let cancel_race =
            fate == Fate::Fill && ord_type == OrdType::Limit && self.rng.random_bool(0.04);

        let number = self.next_order_no;
        self.next_order_no += 1;
        let client_id = client_order_id(t, &self.order_id_tags, number);
        let pos = &mut self.positions[inst][pos_side.index()];
        match (ord_type, reduce) {
            (OrdType::StopMarket, _) => {}
            (_, true) => pos.reserved += lots,
            (_, false) => pos.pending_open += lots,
        }
        let order = Order {
            client_id,
            inst,
            pos_side,
            side,
            reduce,
            ord_type,
            price_ticks,
            lots,
            filled: 0,
            fills,
            fate,
            cancel_race,
            venue_id: 0,
            venue_accept_ts: 0,
            accepted: false,
            incident,
        };
        let message = format!(
            "[CMD]--> [Risk] SubmitOrder(order={}, position_id={})",
            order_repr(&order),
            if reduce {
                order.position_id()
            } else {
                "None".to_string()
            },
        );
        self.orders.insert(number, order);
        if fate == Fate::Deny {
            let due = t + self.uniform_us(20, 80);
            self.schedule(due, Event::Denied(number));
        } else {
            let due = t + self.uniform_us(40, 300);
            self.schedule(due, Event::Submitted(number));
        }
        Some(Draft::new(LineKind::SubmitCommand, Level::Info, STRATEGY, message).tagged(incident))
    }

    /// Calm rejections: a third must come [`REJECT_SPACING`] after the first
    /// of the two before it, so chance never makes a burst.
    fn rejection_allowed(&self, t: i64) -> bool {
        t - self.recent_rejects[0] >= REJECT_SPACING
    }

    fn note_rejection(&mut self, t: i64) {
        self.recent_rejects = [self.recent_rejects[1], t];
    }

    fn on_submitted(&mut self, key: u64, t: i64) -> Draft {
        let spike = self.active[IncidentKind::LatencySpike.index()];
        let latency = if spike.is_some() {
            // 1.01-2.99 s, so the millisecond venue stamp stays within 1-3 s.
            self.rng.random_range(1_010 * MS..2_990 * MS)
        } else {
            self.venue_latency()
        };
        let Some(order) = self.orders.get_mut(&key) else {
            return self.heartbeat();
        };
        if order.incident.is_none() {
            order.incident = spike;
        }
        let incident = order.incident;
        let message = format!(
            "<--[EVT] OrderSubmitted(instrument_id={}, client_order_id={}, account_id={ACCOUNT_ID}, ts_event={t})",
            INSTRUMENTS[order.inst].id, order.client_id,
        );
        let fate = order.fate;
        match fate {
            Fate::Reject(reject) => {
                let mut call = HttpCall::ok("POST", "/fapi/v1/order", latency, 0);
                call.status = 400;
                call.counts_as_order = true;
                call.error = Some((reject.code, reject.msg.to_string()));
                call.incident = incident;
                self.schedule(t + latency, Event::Http(call));
                let due = t + latency + self.uniform_us(30, 250);
                self.schedule(due, Event::Rejected(key));
            }
            Fate::Fill | Fate::Cancel => {
                let venue_ts = floor_ms(t + latency);
                let due = t + latency + self.uniform_us(300, 2_500);
                self.schedule(due, Event::Accepted(key));
                let http_latency = latency + self.uniform_us(200, 3_000);
                let mut call = HttpCall::ok("POST", "/fapi/v1/order", http_latency, 0);
                call.counts_as_order = true;
                call.incident = incident;
                self.schedule(t + http_latency, Event::Http(call));
                // Binance stamps its events in whole milliseconds.
                if let Some(order) = self.orders.get_mut(&key) {
                    order.venue_accept_ts = venue_ts;
                }
            }
            Fate::Deny => unreachable!("denied orders are never submitted"),
        }
        Draft::new(LineKind::OrderSubmitted, Level::Info, STRATEGY, message)
            .with_effect(Effect::Submitted)
            .tagged(incident)
    }

    fn on_accepted(&mut self, key: u64, t: i64) -> Draft {
        let inst = match self.orders.get(&key) {
            Some(order) => order.inst,
            None => return self.heartbeat(),
        };
        self.next_venue_id[inst] += self.rng.random_range(1..=4_000);
        let venue_id = self.next_venue_id[inst];
        let rest_fill = self.resting_ns(600.0, 1.0, 40.0, 20_000.0);
        let rest_cancel = self.resting_ns(1_500.0, 0.8, 100.0, 30_000.0);
        let stop_cancel = self.resting_ns(6_000.0, 0.6, 500.0, 60_000.0);
        let taker_delay = self.uniform_us(60, 1_200);
        let taker_venue_step = self.rng.random_range(0..=1) * MS;
        let delivery = self.uniform_us(300, 2_500);
        let cancel_rtt = self.venue_latency();
        let cancel_delivery = self.uniform_us(300, 2_500);

        let Some(order) = self.orders.get_mut(&key) else {
            return self.heartbeat();
        };
        let venue_accept_ts = order.venue_accept_ts;
        order.venue_id = venue_id;
        order.accepted = true;
        let message = format!(
            "<--[EVT] OrderAccepted(instrument_id={}, client_order_id={}, venue_order_id={venue_id}, account_id={ACCOUNT_ID}, ts_event={venue_accept_ts})",
            INSTRUMENTS[inst].id, order.client_id,
        );
        let id = order.client_id.clone();
        let (fate, ord_type, incident) = (order.fate, order.ord_type, order.incident);
        match (fate, ord_type) {
            (Fate::Fill, OrdType::Market) => {
                // A market order trades in the same or the next millisecond
                // as it is accepted; the fill only has to reach us.
                self.schedule(
                    t + taker_delay,
                    Event::Fill {
                        order: key,
                        venue_ts: (venue_accept_ts + taker_venue_step).min(floor_ms(t)),
                    },
                );
            }
            (Fate::Fill, _) => {
                let venue_ts = floor_ms(t + rest_fill);
                self.schedule(
                    venue_ts + delivery,
                    Event::Fill {
                        order: key,
                        venue_ts,
                    },
                );
            }
            (Fate::Cancel, _) => {
                let sent = t + if ord_type == OrdType::StopMarket {
                    stop_cancel
                } else {
                    rest_cancel
                };
                let venue_ts = floor_ms(sent + cancel_rtt / 2);
                self.schedule(
                    venue_ts + cancel_delivery,
                    Event::Canceled {
                        order: key,
                        venue_ts,
                    },
                );
                self.schedule(
                    sent + cancel_rtt,
                    Event::Http(HttpCall::ok("DELETE", "/fapi/v1/order", cancel_rtt, 1)),
                );
            }
            (Fate::Reject(_) | Fate::Deny, _) => {}
        }
        let accepted = Draft::new(LineKind::OrderAccepted, Level::Info, STRATEGY, message)
            .with_effect(Effect::Accepted(id))
            .tagged(incident);
        self.after_margin_update(inst, t, accepted)
    }

    /// The Portfolio re-margins an instrument before the strategy sees the
    /// order event, so (as in the sample) `margin_init` comes first and the
    /// event line a few microseconds later.
    fn after_margin_update(&mut self, inst: usize, t: i64, event: Draft) -> Draft {
        let due = t + self.uniform_us(10, 40);
        self.schedule(due, Event::Line(event));
        self.margin_init_line(inst)
    }

    fn margin_init_line(&self, inst: usize) -> Draft {
        let margin: i64 = self
            .orders
            .values()
            .filter(|o| o.inst == inst && o.accepted && o.ord_type != OrdType::StopMarket)
            .map(|o| self.order_notional(o) / LEVERAGE)
            .sum();
        let message = format!(
            "{} margin_init={} USDT",
            INSTRUMENTS[inst].id,
            fmt_fixed(margin, 8)
        );
        Draft::new(LineKind::Balance, Level::Info, C_PORTFOLIO, message)
    }

    fn margin_maint_line(&self, inst: usize) -> Draft {
        let margin: i64 = self.positions[inst]
            .iter()
            .map(|pos| self.position_notional(inst, pos) * MAINT_MARGIN_PER_MILLE / 1_000)
            .sum();
        let message = format!(
            "{} margin_maint={} USDT",
            INSTRUMENTS[inst].id,
            fmt_fixed(margin, 8)
        );
        Draft::new(LineKind::Balance, Level::Info, C_PORTFOLIO, message)
    }

    /// Unfilled notional of an order, in 1e-8 USDT.
    fn order_notional(&self, order: &Order) -> i64 {
        let px = match order.ord_type {
            OrdType::Market => self.mid_ticks(order.inst),
            _ => order.price_ticks,
        };
        px * order.remaining() * INSTRUMENTS[order.inst].notional_per_tick_lot
    }

    /// Open notional of a position at its average entry, in 1e-8 USDT.
    fn position_notional(&self, inst: usize, pos: &Position) -> i64 {
        let spec = &INSTRUMENTS[inst];
        let ticks = pos.avg_open * 10f64.powi(spec.price_precision as i32);
        (ticks * pos.lots as f64 * spec.notional_per_tick_lot as f64).round() as i64
    }

    fn on_rejected(&mut self, key: u64, t: i64) -> Draft {
        let Some(order) = self.orders.remove(&key) else {
            return self.heartbeat();
        };
        self.release(&order);
        let Fate::Reject(reject) = order.fate else {
            unreachable!("only orders fated to be rejected get a Rejected event")
        };
        let message = format!(
            "<--[EVT] OrderRejected(instrument_id={}, client_order_id={}, account_id={ACCOUNT_ID}, reason='{}', due_post_only={}, ts_event={t})",
            INSTRUMENTS[order.inst].id,
            order.client_id,
            reject.msg,
            if reject.due_post_only { "True" } else { "False" },
        );
        Draft::new(LineKind::OrderRejected, Level::Warn, STRATEGY, message)
            .with_effect(Effect::Rejected)
            .tagged(order.incident)
    }

    /// `execution_failure` fails orders in the two ways a live node does:
    /// the RiskEngine denies them (`OrderDenied`), or the ExecEngine cannot
    /// route them and logs an ERROR.
    fn on_denied(&mut self, key: u64, t: i64) -> Draft {
        let Some(order) = self.orders.remove(&key) else {
            return self.heartbeat();
        };
        self.release(&order);
        let inst = INSTRUMENTS[order.inst].id;
        let id = &order.client_id;
        self.deny_toggle = !self.deny_toggle;
        if self.deny_toggle {
            let reason = "Exceeded MAX_ORDER_SUBMIT_RATE";
            let event = format!(
                "<--[EVT] OrderDenied(instrument_id={inst}, client_order_id={id}, reason='{reason}')"
            );
            let event = Draft::new(LineKind::OrderDenied, Level::Warn, STRATEGY, event)
                .with_effect(Effect::Denied)
                .tagged(order.incident);
            let due = t + self.uniform_us(20, 200);
            self.schedule(due, Event::Line(event));
            let message = format!("SubmitOrder for {id} DENIED: {reason}");
            Draft::new(LineKind::Warning, Level::Warn, C_RISK, message).tagged(order.incident)
        } else {
            let message = format!(
                "Cannot execute command: no execution client configured for BINANCE or `client_id` None, SubmitOrder(instrument_id={inst}, client_order_id={id}, position_id={})",
                if order.reduce {
                    order.position_id()
                } else {
                    "None".to_string()
                },
            );
            Draft::new(LineKind::Error, Level::Error, C_ENGINE, message).tagged(order.incident)
        }
    }

    fn on_canceled(&mut self, key: u64, venue_ts: i64, t: i64) -> Draft {
        let Some(order) = self.orders.remove(&key) else {
            return self.heartbeat();
        };
        self.release(&order);
        let message = format!(
            "<--[EVT] OrderCanceled(instrument_id={}, client_order_id={}, venue_order_id={}, account_id={ACCOUNT_ID}, ts_event={venue_ts})",
            INSTRUMENTS[order.inst].id, order.client_id, order.venue_id,
        );
        let canceled = Draft::new(LineKind::OrderCanceled, Level::Info, STRATEGY, message)
            .with_effect(Effect::Canceled);
        self.after_margin_update(order.inst, t, canceled)
    }

    /// Gives back the position room an order held but will no longer use.
    fn release(&mut self, order: &Order) {
        let pos = &mut self.positions[order.inst][order.pos_side.index()];
        match (order.ord_type, order.reduce) {
            (OrdType::StopMarket, _) => {}
            (_, true) => pos.reserved -= order.remaining(),
            (_, false) => pos.pending_open -= order.remaining(),
        }
    }

    /// A fill is logged the way Nautilus does it: the Portfolio's margin and
    /// net position lines first, then the strategy's `OrderFilled` and
    /// position event, and the venue's account update a little later.
    fn on_fill(&mut self, key: u64, venue_ts: i64, t: i64) -> Draft {
        let net_line_at = t + self.uniform_us(5, 15);
        let maint_line_at = t + self.uniform_us(16, 30);
        let fill_line_at = t + self.uniform_us(31, 60);
        let position_line_at = t + self.uniform_us(70, 150);
        let account_line_at = t + self.uniform_us(400, 4_000);
        let next_fill_gap = self.resting_ns(300.0, 0.9, 20.0, 5_000.0);
        let taker_next = self.uniform_us(200, 1_500);
        let race_at = t + self.uniform_us(2_000, 8_000);
        let race_warn_at = race_at + self.uniform_us(50, 300);
        let race_latency = self.venue_latency();
        let trade_step = self.rng.random_range(1..=300);

        let Some(order) = self.orders.get_mut(&key) else {
            return self.heartbeat();
        };
        let Some(lots) = order.fills.pop_front() else {
            return self.heartbeat();
        };
        let inst = order.inst;
        let spec = &INSTRUMENTS[inst];
        let mid = self.mids[inst].round() as i64;
        let (px, bps, liquidity) = match order.ord_type {
            OrdType::Market => {
                let slip = (order.filled > 0) as i64;
                let px = match order.side {
                    Side::Buy => mid + 1 + slip,
                    Side::Sell => mid - 1 - slip,
                };
                (px, TAKER_BPS, "TAKER")
            }
            _ => (order.price_ticks, MAKER_BPS, "MAKER"),
        };
        order.filled += lots;
        let finished = order.fills.is_empty();
        self.next_trade_id[inst] += trade_step;
        let trade_id = self.next_trade_id[inst];
        let notional = px * lots * spec.notional_per_tick_lot;
        let commission = (notional * bps + 5_000) / 10_000;

        let order = &self.orders[&key];
        let fill_message = format!(
            "<--[EVT] OrderFilled(instrument_id={}, client_order_id={}, venue_order_id={}, account_id={ACCOUNT_ID}, trade_id={trade_id}, position_id={}, order_side={}, order_type={}, last_qty={}, last_px={} USDT, commission={} USDT, liquidity_side={liquidity}, ts_event={venue_ts})",
            spec.id,
            order.client_id,
            order.venue_id,
            order.position_id(),
            order.side.as_str(),
            match order.ord_type {
                OrdType::Limit => "LIMIT",
                OrdType::Market => "MARKET",
                OrdType::StopMarket => "STOP_MARKET",
            },
            fmt_fixed(lots, 3),
            fmt_fixed(px, spec.price_precision),
            fmt_fixed(commission, 8),
        );
        let (client_id, pos_side, reduce) = (order.client_id.clone(), order.pos_side, order.reduce);
        let (cancel_race, venue_id, ord_type) = (order.cancel_race, order.venue_id, order.ord_type);

        let wallet_before = self.wallet;
        let position_message = self.apply_fill(
            inst, pos_side, reduce, &client_id, lots, px, commission, venue_ts,
        );
        let wallet_delta = self.wallet - wallet_before;
        let net_message = self.net_position(inst);
        let maint = self.margin_maint_line(inst);
        self.schedule(
            net_line_at,
            Event::Line(Draft::new(
                LineKind::Position,
                Level::Info,
                C_PORTFOLIO,
                net_message,
            )),
        );
        self.schedule(maint_line_at, Event::Line(maint));

        let (kind, effect) = if finished {
            (LineKind::OrderFilled, Effect::Filled(client_id.clone()))
        } else {
            (LineKind::OrderPartiallyFilled, Effect::None)
        };
        let mut fill = Draft::new(kind, Level::Info, STRATEGY, fill_message).with_effect(effect);
        fill.wallet_delta = wallet_delta;
        self.schedule(fill_line_at, Event::Line(fill));
        self.schedule(
            position_line_at,
            Event::Line(Draft::new(
                LineKind::Position,
                Level::Info,
                STRATEGY,
                position_message,
            )),
        );
        self.schedule(account_line_at, Event::AccountState);

        if finished {
            if let Some(order) = self.orders.remove(&key) {
                self.release(&order);
            }
            if cancel_race {
                let mut call = HttpCall::ok("DELETE", "/fapi/v1/order", race_latency, 1);
                call.status = 400;
                call.error = Some((-2011, "Unknown order sent.".to_string()));
                self.schedule(race_at, Event::Http(call));
                // The Binance adapter treats -2011 as a rejected cancel, not an error.
                let message = format!(
                    "Cancel rejected for {client_id} (venue_order_id={venue_id}): {{'code': -2011, 'msg': 'Unknown order sent.'}}"
                );
                self.schedule(
                    race_warn_at,
                    Event::Line(Draft::new(LineKind::Warning, Level::Warn, C_EXEC, message)),
                );
            }
        } else {
            let (next_venue, due) = if ord_type == OrdType::Market {
                (venue_ts, t + taker_next)
            } else {
                let venue = floor_ms(venue_ts + next_fill_gap);
                (venue, venue + (t - venue_ts))
            };
            self.schedule(
                due.max(position_line_at + 1),
                Event::Fill {
                    order: key,
                    venue_ts: next_venue,
                },
            );
        }
        self.margin_init_line(inst)
    }

    /// Books a fill on the hedge-mode position and renders the resulting
    /// position event with Nautilus' field order and float formatting.
    #[allow(clippy::too_many_arguments)]
    fn apply_fill(
        &mut self,
        inst: usize,
        side: PosSide,
        reduce: bool,
        client_id: &str,
        lots: i64,
        px_ticks: i64,
        commission: i64,
        ts: i64,
    ) -> String {
        let spec = &INSTRUMENTS[inst];
        let scale = 10f64.powi(spec.price_precision as i32);
        let px = px_ticks as f64 / scale;
        let sign = side.sign();
        let pos = &mut self.positions[inst][side.index()];
        let event = if reduce {
            let pnl = (px - pos.avg_open) * sign as f64 * lots as f64 / 1_000.0;
            let pnl_units = (pnl * MONEY_SCALE as f64).round() as i64;
            pos.avg_close = (pos.avg_close * pos.closed_lots as f64 + px * lots as f64)
                / (pos.closed_lots + lots) as f64;
            pos.closed_lots += lots;
            pos.realized += pnl_units - commission;
            pos.lots -= lots;
            pos.reserved -= lots;
            pos.closing_order = Some(client_id.to_string());
            self.wallet += pnl_units - commission;
            if pos.lots == 0 {
                "PositionClosed"
            } else {
                "PositionChanged"
            }
        } else {
            pos.pending_open -= lots;
            self.wallet -= commission;
            if pos.lots == 0 {
                *pos = Position {
                    reserved: pos.reserved,
                    pending_open: pos.pending_open,
                    avg_open: px,
                    realized: -commission,
                    peak: lots,
                    lots,
                    opening_order: client_id.to_string(),
                    ts_opened: ts,
                    ..Position::default()
                };
                "PositionOpened"
            } else {
                pos.avg_open =
                    (pos.avg_open * pos.lots as f64 + px * lots as f64) / (pos.lots + lots) as f64;
                pos.lots += lots;
                pos.peak = pos.peak.max(pos.lots);
                pos.realized -= commission;
                "PositionChanged"
            }
        };
        self.position_message(inst, side, event, ts)
    }

    fn position_message(&self, inst: usize, side: PosSide, event: &str, ts: i64) -> String {
        let spec = &INSTRUMENTS[inst];
        let scale = 10f64.powi(spec.price_precision as i32);
        let sign = side.sign();
        let mid = self.mids[inst] / scale;
        let pos = &self.positions[inst][side.index()];
        let closed = pos.lots == 0;
        let realized_return = if pos.closed_lots > 0 && pos.avg_open > 0.0 {
            sign as f64 * (pos.avg_close - pos.avg_open) / pos.avg_open
        } else {
            0.0
        };
        let unrealized = if closed {
            0
        } else {
            let value = (mid - pos.avg_open) * sign as f64 * pos.lots as f64 / 1_000.0;
            (value * MONEY_SCALE as f64).round() as i64
        };
        format!(
            "<--[EVT] {event}(instrument_id={}, position_id={}, account_id={ACCOUNT_ID}, opening_order_id={}, closing_order_id={}, entry={}, side={}, signed_qty={}, quantity={}, peak_qty={}, currency=USDT, avg_px_open={}, avg_px_close={}, realized_return={}, realized_pnl={} USDT, unrealized_pnl={} USDT, ts_opened={}, ts_last={ts}, ts_closed={}, duration_ns={})",
            spec.id,
            position_id(inst, side),
            pos.opening_order,
            pos.closing_order.as_deref().unwrap_or("None"),
            match side {
                PosSide::Long => "BUY",
                PosSide::Short => "SELL",
            },
            if closed { "FLAT" } else { side.as_str() },
            py_float((sign * pos.lots) as f64 / 1_000.0),
            fmt_fixed(pos.lots, 3),
            fmt_fixed(pos.peak, 3),
            py_float(pos.avg_open),
            py_float(pos.avg_close),
            fmt_return(realized_return),
            fmt_fixed(pos.realized, 8),
            fmt_fixed(unrealized, 8),
            pos.ts_opened,
            if closed { ts } else { 0 },
            if closed { ts - pos.ts_opened } else { 0 },
        )
    }

    fn net_position(&self, inst: usize) -> String {
        let [long, short] = &self.positions[inst];
        let net = long.lots - short.lots;
        let shown = if net == 0 {
            "0".to_string()
        } else {
            fmt_fixed(net, 3)
        };
        format!("{} net_position={shown}", INSTRUMENTS[inst].id)
    }

    /// The venue-reported account state: Binance pushes one after every
    /// balance change, and its `margins` list is empty in live mode. The total
    /// is the wallet as of the fill lines already logged.
    fn account_state(&mut self) -> Draft {
        let mut locked: i64 = 0;
        for (inst, sides) in self.positions.iter().enumerate() {
            for pos in sides {
                locked += self.position_notional(inst, pos) / LEVERAGE;
            }
        }
        for order in self.orders.values() {
            if order.accepted && order.ord_type != OrdType::StopMarket {
                locked += self.order_notional(order) / LEVERAGE;
            }
        }
        let total = self.reported_wallet;
        let locked = locked.clamp(0, total.max(0));
        let message = format!(
            "Updated AccountState(account_id={ACCOUNT_ID}, account_type=MARGIN, base_currency=None, is_reported=True, balances=[AccountBalance(total={} USDT, locked={} USDT, free={} USDT)], margins=[], event_id={})",
            fmt_fixed(total, 8),
            fmt_fixed(locked, 8),
            fmt_fixed(total - locked, 8),
            self.uuid4(),
        );
        Draft::new(LineKind::Balance, Level::Info, C_PORTFOLIO, message)
    }

    // ----- REST, rate limits, WebSocket, heartbeats, secrets --------------

    /// The polling budget left in this weight window.
    fn weight_cap(&self, t: i64) -> u32 {
        if self.active[IncidentKind::RateLimitPressure.index()].is_some()
            || t < self.pressure_tail_until
        {
            PRESSURE_WEIGHT_CAP
        } else {
            CALM_WEIGHT_CAP
        }
    }

    fn rest_poll(&mut self, t: i64) -> Draft {
        let total: u32 = POLLS.iter().map(|p| p.3).sum();
        let mut roll = self.rng.random_range(0..total);
        let mut pick = POLLS[0];
        for poll in POLLS {
            if roll < poll.3 {
                pick = poll;
                break;
            }
            roll -= poll.3;
        }
        let (method, path, weight, _) = pick;
        let latency = self.lognormal_ns(11.0, 0.6, 2.0, 400.0);
        let failing = self.active[IncidentKind::ExchangeErrors.index()];
        if failing.is_some() && self.rng.random_bool(EXCHANGE_FAILURE_SHARE) {
            let call = self.failed_call(method, path, weight, t, failing);
            return self.http_line(call, t);
        }
        let cap = self.weight_cap(t);
        if *self.weight_1m.at(t) + weight > cap {
            // The client throttles itself instead of spending the budget.
            return self.heartbeat();
        }
        self.http_line(HttpCall::ok(method, path, latency, weight), t)
    }

    /// A REST call during `exchange_errors`: mostly 5xx after a long wait,
    /// sometimes Binance's 418 ban.
    fn failed_call(
        &mut self,
        method: &'static str,
        path: &'static str,
        weight: u32,
        t: i64,
        incident: Option<u16>,
    ) -> HttpCall {
        let latency = self.lognormal_ns(2_000.0, 0.7, 300.0, 10_000.0);
        let mut call = HttpCall::ok(method, path, latency, weight);
        call.incident = incident;
        let (status, error) = match self.rng.random_range(0..20) {
            0 => (
                418,
                Some((
                    -1003,
                    format!(
                        "Way too many requests; IP banned until {}. Please use the websocket for live updates to avoid bans.",
                        t / MS + 120_000
                    ),
                )),
            ),
            1..=6 => (502, None),
            7..=13 => (
                503,
                Some((
                    -1001,
                    "Internal error; unable to process your request. Please try again.".to_string(),
                )),
            ),
            _ => (
                504,
                Some((
                    -1007,
                    "Timeout waiting for response from backend server. Send status unknown; execution status unknown.".to_string(),
                )),
            ),
        };
        call.status = status;
        call.error = error;
        call
    }

    fn on_http(&mut self, call: HttpCall, t: i64) -> Draft {
        if call.ramp && *self.weight_1m.at(t) >= PRESSURE_WEIGHT_TARGET {
            // The ramp already got there (other calls helped); this one is
            // never sent.
            return self.rate_limit_line(t);
        }
        self.http_line(call, t)
    }

    /// Renders an HTTP response line and books its weight in the fixed windows
    /// at the moment it is logged, which is when Binance's headers would say so.
    fn http_line(&mut self, mut call: HttpCall, t: i64) -> Draft {
        let seconds_left = self.weight_1m.seconds_left(t);
        let used = self.weight_1m.at(t);
        if call.status == 200 && *used + call.weight > WEIGHT_LIMIT {
            call.status = 429;
            call.retry_after_s = Some(seconds_left);
        }
        // A refused request costs no weight.
        if call.status == 429 {
            if call.error.is_none() {
                call.error = Some((
                    -1003,
                    "Too many requests; current limit is 2400 requests per minute. Please use the websocket for live updates to avoid polling the API.".to_string(),
                ));
            }
        } else {
            *used = (*used + call.weight).min(WEIGHT_LIMIT);
        }
        let used = *used;
        let mut message = format!(
            "{} {} {} ({:.1}ms) x-mbx-used-weight-1m={used}/{WEIGHT_LIMIT}",
            call.method,
            call.path,
            call.status,
            call.latency_ns as f64 / MS as f64,
        );
        if call.counts_as_order {
            let o10 = self.orders_10s.at(t);
            *o10 += 1;
            let o10 = *o10;
            let o1m = self.orders_1m.at(t);
            *o1m += 1;
            let o1m = *o1m;
            let _ = write!(
                message,
                " x-mbx-order-count-10s={o10}/{ORDERS_10S_LIMIT} x-mbx-order-count-1m={o1m}/{ORDERS_1M_LIMIT}"
            );
        }
        if let Some(seconds) = call.retry_after_s {
            let _ = write!(message, " retry-after={seconds}");
        }
        if let Some((code, msg)) = &call.error {
            let _ = write!(message, " code={code} msg='{msg}'");
        }
        let level = match call.status {
            200..=299 => Level::Debug,
            418 | 500.. => Level::Error,
            _ => Level::Warn,
        };
        Draft::new(LineKind::RestCall, level, C_HTTP, message).tagged(call.incident)
    }

    fn rate_limit_line(&mut self, t: i64) -> Draft {
        let weight = *self.weight_1m.at(t);
        let pressure = self.active[IncidentKind::RateLimitPressure.index()];
        if (pressure.is_some() || t < self.pressure_tail_until) && weight < PRESSURE_WEIGHT_TARGET {
            // The periodic summary is not due while the ramp is under way.
            return self.heartbeat();
        }
        let o10 = *self.orders_10s.at(t);
        let o1m = *self.orders_1m.at(t);
        let pct = 100.0 * weight as f64 / WEIGHT_LIMIT as f64;
        let hot = weight >= HOT_WEIGHT
            || o10 * 5 >= ORDERS_10S_LIMIT * 4
            || o1m * 5 >= ORDERS_1M_LIMIT * 4;
        let message = format!(
            "Rate limit usage: REQUEST_WEIGHT={weight}/{WEIGHT_LIMIT} ({pct:.1}%), ORDERS_10S={o10}/{ORDERS_10S_LIMIT}, ORDERS_1M={o1m}/{ORDERS_1M_LIMIT}",
        );
        let level = if hot { Level::Warn } else { Level::Info };
        Draft::new(LineKind::RateLimit, level, C_HTTP, message).tagged(pressure)
    }

    /// `rate_limit_pressure`: at the start of each weight window, a burst of
    /// the heaviest call there is (24h tickers of every symbol, weight 40)
    /// takes the counter to [`PRESSURE_WEIGHT_TARGET`] within ~0.1 s.
    fn pressure_tick(&mut self, t: i64, incident: u16) {
        let bucket = t.div_euclid(self.weight_1m.period);
        if bucket == self.pressure_bucket {
            return;
        }
        self.pressure_bucket = bucket;
        let used = *self.weight_1m.at(t);
        let calls = PRESSURE_WEIGHT_TARGET.saturating_sub(used).div_ceil(40);
        let mut due = t;
        for _ in 0..calls {
            due += self.uniform_us(500, 2_500);
            let latency = self.lognormal_ns(25.0, 0.4, 8.0, 150.0);
            let mut call = HttpCall::ok("GET", "/fapi/v1/ticker/24hr", latency, 40);
            call.ramp = true;
            call.incident = Some(incident);
            self.schedule(due, Event::Http(call));
        }
    }

    /// Wait before the next calm drop (see [`WS_DROP_MIN_GAP`]).
    fn ws_drop_wait(&mut self) -> i64 {
        let u: f64 = self.rng.random();
        (-(1.0 - u).ln() * WS_DROP_MEAN_WAIT) as i64
    }

    /// A calm drop: the stream is back within 1.5 s.
    fn ws_drop(&mut self, t: i64) -> Option<Draft> {
        let connected = (0..self.streams.len())
            .filter(|&i| self.streams[i].state == WsState::Connected)
            .count();
        if connected == 0 {
            return None;
        }
        let nth = self.rng.random_range(0..connected);
        let i = (0..self.streams.len())
            .filter(|&i| self.streams[i].state == WsState::Connected)
            .nth(nth)?;
        let backoff = self.lognormal_ns(700.0, 0.5, 200.0, 1_500.0);
        let reason = if self.rng.random_bool(0.7) {
            "code=1006 (abnormal closure)"
        } else {
            "code=1001 (going away)"
        };
        self.streams[i].state = WsState::Reconnecting;
        self.schedule(t + backoff, Event::Reconnected(i));
        let message = format!(
            "Disconnected from {}: {reason}, reconnecting in {:.1}s",
            self.streams[i].url,
            backoff as f64 / SEC as f64,
        );
        Some(Draft::new(
            LineKind::WebSocketDisconnected,
            Level::Warn,
            C_WS,
            message,
        ))
    }

    /// Backoff after failed reconnect attempt `n`: 2 s, 4 s, then 5 s.
    fn ws_backoff(attempt: u32) -> i64 {
        (1i64 << attempt.min(3)).min(5) * SEC
    }

    fn ws_attempt(&mut self, incident: usize, stream: usize, attempt: u32, t: i64) -> Draft {
        if self.active[IncidentKind::WsOutage.index()] != Some(incident as u16) {
            return self.heartbeat();
        }
        let backoff = Self::ws_backoff(attempt);
        let failure = WS_FAILURES[attempt as usize % WS_FAILURES.len()];
        let message = format!(
            "Error connecting to exchange: {}: {failure}, retrying in {:.1}s (attempt {attempt})",
            self.streams[stream].url,
            backoff as f64 / SEC as f64,
        );
        if t + backoff < self.incident_state[incident].end {
            self.schedule(
                t + backoff,
                Event::WsAttempt {
                    incident,
                    stream,
                    attempt: attempt + 1,
                },
            );
        }
        Draft::new(LineKind::Error, Level::Error, C_DATA, message).tagged(Some(incident as u16))
    }

    fn exchange_error(&mut self, incident: usize, t: i64) -> Draft {
        if self.active[IncidentKind::ExchangeErrors.index()] != Some(incident as u16) {
            return self.heartbeat();
        }
        let next = t + self.uniform_us(1_000_000, 3_000_000);
        if next < self.incident_state[incident].end {
            self.schedule(next, Event::ExchangeError { incident });
        }
        let message = EXCHANGE_ERRORS[self.rng.random_range(0..EXCHANGE_ERRORS.len())];
        Draft::new(LineKind::Error, Level::Error, C_EXEC, message.to_string())
            .tagged(Some(incident as u16))
    }

    /// Harmless WARN lines a healthy grid bot writes now and then.
    fn benign_warning(&mut self) -> Draft {
        let inst = self.rng.random_range(0..INSTRUMENTS.len());
        let message = if self.rng.random_bool(0.5) {
            format!(
                "Grid update skipped for {}: spread {}bps above max 3bps",
                INSTRUMENTS[inst].id,
                self.rng.random_range(4..=12)
            )
        } else {
            format!(
                "Quote for {} is {}ms old, skipping grid update",
                INSTRUMENTS[inst].id,
                self.rng.random_range(250..=900)
            )
        };
        Draft::new(LineKind::Warning, Level::Warn, STRATEGY, message)
    }

    fn heartbeat(&mut self) -> Draft {
        if self.rng.random_bool(0.2) {
            return Draft::new(
                LineKind::Heartbeat,
                Level::Debug,
                C_WS,
                "Received ping from fstream.binance.com, sent pong".to_string(),
            );
        }
        let inst = self.rng.random_range(0..INSTRUMENTS.len());
        let open = self
            .orders
            .values()
            .filter(|o| o.inst == inst && o.accepted)
            .count();
        let [long, short] = &self.positions[inst];
        let message = format!(
            "Heartbeat {} mid={} open_orders={open} long={} short={}",
            INSTRUMENTS[inst].id,
            fmt_fixed(self.mid_ticks(inst), INSTRUMENTS[inst].price_precision),
            fmt_fixed(long.lots, 3),
            fmt_fixed(short.lots, 3),
        );
        Draft::new(LineKind::Heartbeat, Level::Info, STRATEGY, message)
    }

    // ----- planted incidents --------------------------------------------

    /// Turns `at_seconds` into stamps once the first line fixed the origin.
    fn build_timeline(&mut self, t0: i64) {
        let mut timeline = Vec::new();
        for (i, incident) in self.incidents.iter().enumerate() {
            let start = t0.saturating_add((incident.at_seconds * SEC as f64) as i64);
            let end = start.saturating_add((incident.duration_seconds * SEC as f64) as i64);
            self.incident_state[i].start = start;
            self.incident_state[i].end = end;
            match incident.kind {
                IncidentKind::PositionJump => {
                    timeline.push(((start - QUIET_LEAD).max(t0), i, Phase::Prepare));
                    timeline.push((start, i, Phase::Start));
                }
                // Single events, and gaps that end themselves.
                IncidentKind::BalanceJump | IncidentKind::Silence | IncidentKind::Restart => {
                    timeline.push((start, i, Phase::Start));
                }
                _ => {
                    timeline.push((start, i, Phase::Start));
                    timeline.push((end, i, Phase::End));
                }
            }
        }
        // An incident ending when the next of its kind starts ends first.
        let rank = |phase: Phase| match phase {
            Phase::End => 0,
            Phase::Prepare => 1,
            Phase::Start => 2,
        };
        timeline.sort_by_key(|&(time, i, phase)| (time, rank(phase), i));
        self.timeline = timeline.into();
        self.next_incident_ns = self.timeline.front().map_or(i64::MAX, |e| e.0);
    }

    fn run_timeline(&mut self, vnow: i64) {
        while let Some(&(time, i, phase)) = self.timeline.front() {
            if time > vnow {
                break;
            }
            self.timeline.pop_front();
            match phase {
                Phase::Prepare => self.prepare_position_jump(i),
                Phase::Start => self.begin(i, vnow),
                Phase::End => self.finish(i, vnow),
            }
        }
        self.next_incident_ns = self.timeline.front().map_or(i64::MAX, |e| e.0);
    }

    fn begin(&mut self, i: usize, t: i64) {
        let kind = self.incidents[i].kind;
        let tag = Some(i as u16);
        let IncidentState { start, end, .. } = self.incident_state[i];
        self.stats.incidents[i].start_ns = Some(t);
        if !kind.is_single_event() {
            self.active[kind.index()] = tag;
        }
        match kind {
            IncidentKind::WsOutage => {
                let stream = 0;
                let was = self.streams[stream].state;
                self.streams[stream].state = WsState::Down;
                if was != WsState::Reconnecting {
                    let message = format!(
                        "Disconnected from {}: code=1006 (abnormal closure), reconnecting in 1.0s",
                        self.streams[stream].url
                    );
                    let draft =
                        Draft::new(LineKind::WebSocketDisconnected, Level::Warn, C_WS, message);
                    self.script.push_back(Script::Line(t, draft.tagged(tag)));
                }
                if t + SEC < end {
                    let event = Event::WsAttempt {
                        incident: i,
                        stream,
                        attempt: 1,
                    };
                    self.schedule(t + SEC, event);
                }
            }
            IncidentKind::ExchangeErrors => {
                let first = t + self.uniform_us(100_000, 1_000_000);
                if first < end {
                    self.schedule(first, Event::ExchangeError { incident: i });
                }
            }
            IncidentKind::RateLimitPressure => self.pressure_bucket = i64::MIN,
            IncidentKind::Silence => {
                // No line falls between the last one and the end of the gap.
                let first_free = self.last_ns.map_or(start, |last| last + 1);
                self.stats.incidents[i].start_ns = Some(start.max(first_free));
                self.script.push_back(Script::Gap {
                    until: end,
                    incident: i,
                });
            }
            IncidentKind::Restart => self.restart(i, t, end),
            IncidentKind::PositionJump => self.position_jump(i, t),
            IncidentKind::BalanceJump => self.balance_jump(i, t),
            IncidentKind::RejectionBurst
            | IncidentKind::ExecutionFailure
            | IncidentKind::LatencySpike
            | IncidentKind::ErrorSpike => {}
        }
    }

    fn finish(&mut self, i: usize, t: i64) {
        let kind = self.incidents[i].kind;
        if self.active[kind.index()] == Some(i as u16) {
            self.active[kind.index()] = None;
        }
        self.stats.incidents[i].end_ns = Some(t);
        match kind {
            IncidentKind::WsOutage => {
                let stream = 0;
                self.streams[stream].state = WsState::Connected;
                let message = format!("Reconnected to {}", self.streams[stream].url);
                let draft = Draft::new(LineKind::WebSocketReconnected, Level::Info, C_WS, message);
                self.script
                    .push_back(Script::Line(t, draft.tagged(Some(i as u16))));
            }
            IncidentKind::RateLimitPressure => {
                // Binance's counter only drops when its window ends.
                let calm_from = self.weight_1m.end_of(t);
                self.pressure_tail_until = calm_from;
                self.stats.incidents[i].end_ns = Some(calm_from);
            }
            _ => {}
        }
    }

    /// Stops new orders on the instrument whose position will jump, choosing
    /// the side with the most lots no pending order can close, so the event
    /// is a `PositionChanged` with no fill of that instrument in the 30 s before.
    fn prepare_position_jump(&mut self, i: usize) {
        let mut best: Option<(usize, PosSide)> = None;
        let mut best_free = 0;
        for (inst, spec) in INSTRUMENTS.iter().enumerate() {
            for side in [PosSide::Long, PosSide::Short] {
                let pos = &self.positions[inst][side.index()];
                let free = (pos.lots - pos.reserved) / spec.lot_multiple;
                if free > best_free {
                    best_free = free;
                    best = Some((inst, side));
                }
            }
        }
        let (inst, side) = best.map_or((0, None), |(inst, side)| (inst, Some(side)));
        self.quiet[inst] += 1;
        self.incident_state[i].jump = Some((inst, side));
    }

    /// An external trade (a human in the Binance app, an ADL) grows a position
    /// the bot did not touch: Nautilus reconciles it into a position event
    /// with no fill before it. If the instrument was flat (the jump was
    /// planted in the first 80 s) the position opens instead.
    fn position_jump(&mut self, i: usize, t: i64) {
        let (inst, side) = self.incident_state[i].jump.unwrap_or((0, None));
        self.quiet[inst] = self.quiet[inst].saturating_sub(1);
        let spec = &INSTRUMENTS[inst];
        let side = side
            .filter(|s| self.positions[inst][s.index()].lots > 0)
            .or_else(|| {
                [PosSide::Long, PosSide::Short]
                    .into_iter()
                    .find(|s| self.positions[inst][s.index()].lots > 0)
            });
        let px = self.mids[inst] / 10f64.powi(spec.price_precision as i32);
        let (side, event) = match side {
            Some(side) => {
                let pos = &mut self.positions[inst][side.index()];
                let add = (pos.lots / 2).max(spec.max_size * spec.lot_multiple);
                let add = add / spec.lot_multiple * spec.lot_multiple;
                pos.avg_open =
                    (pos.avg_open * pos.lots as f64 + px * add as f64) / (pos.lots + add) as f64;
                pos.lots += add;
                pos.peak = pos.peak.max(pos.lots);
                (side, "PositionChanged")
            }
            None => {
                let pos = &mut self.positions[inst][PosSide::Long.index()];
                *pos = Position {
                    reserved: pos.reserved,
                    pending_open: pos.pending_open,
                    avg_open: px,
                    lots: spec.max_size * spec.lot_multiple,
                    peak: spec.max_size * spec.lot_multiple,
                    opening_order: "None".to_string(),
                    ts_opened: t,
                    ..Position::default()
                };
                (PosSide::Long, "PositionOpened")
            }
        };
        let tag = Some(i as u16);
        let net = Draft::new(
            LineKind::Position,
            Level::Info,
            C_PORTFOLIO,
            self.net_position(inst),
        );
        let message = self.position_message(inst, side, event, t);
        let position = Draft::new(LineKind::Position, Level::Info, STRATEGY, message);
        self.stats.incidents[i].end_ns = Some(t);
        self.script.push_back(Script::Line(t, net.tagged(tag)));
        let due = t + self.uniform_us(60, 140);
        self.script
            .push_back(Script::Line(due, position.tagged(tag)));
    }

    /// Money leaves the futures wallet with no trade (a transfer, a
    /// liquidation elsewhere): two account updates in a row, the second 8%
    /// lower, so no fill can sit between them.
    fn balance_jump(&mut self, i: usize, t: i64) {
        let tag = Some(i as u16);
        let before = self.account_state().tagged(tag);
        let delta = self.reported_wallet * BALANCE_JUMP_PER_MILLE / 1_000;
        self.wallet += delta;
        self.reported_wallet += delta;
        let after = self.account_state().tagged(tag);
        self.stats.incidents[i].end_ns = Some(t);
        self.script.push_back(Script::Line(t, before));
        let due = t + self.uniform_us(500, 3_000);
        self.script.push_back(Script::Line(due, after));
    }

    /// A live node's shutdown (as NautilusTrader logs it), nothing for the
    /// downtime, then the banner and start-up; orders still in flight are
    /// logged after it, as reconciliation would.
    fn restart(&mut self, i: usize, t: i64, until: i64) {
        let trader: Cow<'static, str> = Cow::Owned(self.trader_id.clone());
        let b = Cow::Borrowed;
        let mut stop: Vec<(Cow<'static, str>, String)> = vec![(b(C_NODE), "STOPPING".into())];
        for inst in &INSTRUMENTS {
            stop.push((
                b(STRATEGY),
                format!(
                    "[CMD]--> UnsubscribeQuoteTicks(instrument_id={}, client_id=None, venue=BINANCE)",
                    inst.id
                ),
            ));
        }
        for (component, message) in [
            (b(STRATEGY), "STOPPED"),
            (trader.clone(), "STOPPED"),
            (b(C_DATA), "Disconnecting..."),
            (b(C_DATA), "Disconnected"),
            (b(C_DATA), "STOPPED"),
            (b("DataEngine"), "STOPPED"),
            (b(C_RISK), "STOPPED"),
            (b(C_EXEC), "Disconnecting..."),
            (b(C_EXEC), "Disconnected"),
            (b(C_EXEC), "STOPPED"),
            (b(C_ENGINE), "STOPPED"),
            (b("OrderEmulator"), "STOPPED"),
            (b(C_NODE), "STOPPED"),
            (b(C_DATA), "DISPOSED"),
            (b("DataEngine"), "DISPOSED"),
            (b(C_RISK), "DISPOSED"),
            (b(C_EXEC), "DISPOSED"),
            (b(C_ENGINE), "DISPOSED"),
            (b("MessageBus"), "Closed message bus"),
            (b(STRATEGY), "DISPOSED"),
            (trader.clone(), "DISPOSED"),
            (b(C_NODE), "DISPOSED"),
        ] {
            stop.push((component, message.to_string()));
        }
        let tag = Some(i as u16);
        let mut due = t;
        for (component, message) in stop {
            self.script
                .push_back(Script::Line(due, lifecycle(component, message, tag)));
            due += self.uniform_us(20, 400);
        }
        for stream in &mut self.streams {
            if stream.state != WsState::Down {
                stream.state = WsState::Connected;
            }
        }
        self.script.push_back(Script::Gap { until, incident: i });

        let mut start: Vec<(Cow<'static, str>, String)> = vec![(b(C_NODE), RULE.into())];
        for line in [
            " NAUTILUS TRADER - Automated Algorithmic Trading Platform",
            " by Nautech Systems Pty Ltd.",
            " Copyright (C) 2015-2025. All rights reserved.",
            RULE,
        ]
        .into_iter()
        .chain(BANNER_LOGO)
        .chain([RULE, " IDENTIFIERS", RULE])
        {
            start.push((b(C_NODE), line.to_string()));
        }
        let instance = self.uuid4();
        let pid = self.rng.random_range(1_000..60_000);
        for message in [
            format!("trader_id: {}", self.trader_id),
            "machine_id: bot-1".to_string(),
            format!("instance_id: {instance}"),
            format!("PID: {pid}"),
            RULE.to_string(),
            " VERSIONING".to_string(),
            RULE.to_string(),
            "nautilus_trader: 1.221.0".to_string(),
            "python: 3.11.7".to_string(),
            RULE.to_string(),
            "Building system kernel".to_string(),
        ] {
            start.push((b(C_NODE), message));
        }
        let open_orders = self.orders.values().filter(|o| o.accepted).count();
        let open_positions = self
            .positions
            .iter()
            .flatten()
            .filter(|p| p.lots > 0)
            .count();
        let next_order = self.next_order_no - 1;
        for (component, message) in [
            (b("Cache"), "READY".to_string()),
            (b("DataEngine"), "READY".to_string()),
            (b(C_RISK), "READY".to_string()),
            (b(C_RISK), "TradingState is ACTIVE".to_string()),
            (b(C_ENGINE), "READY".to_string()),
            (b("OrderEmulator"), "READY".to_string()),
            (trader.clone(), "READY".to_string()),
            (b(C_DATA), "READY".to_string()),
            (b(C_EXEC), "READY".to_string()),
            (b(STRATEGY), "READY".to_string()),
            (b(C_NODE), "STARTING".to_string()),
            (b(C_DATA), "Connecting...".to_string()),
            (b(C_DATA), "Connected".to_string()),
            (b(C_DATA), "RUNNING".to_string()),
            (b("DataEngine"), "RUNNING".to_string()),
            (b(C_RISK), "RUNNING".to_string()),
            (b(C_EXEC), "Connecting...".to_string()),
            (b(C_EXEC), "Connected".to_string()),
            (b(C_EXEC), "RUNNING".to_string()),
            (b(C_ENGINE), "RUNNING".to_string()),
            (b("OrderEmulator"), "RUNNING".to_string()),
            (
                b(C_PORTFOLIO),
                format!("Initialized {open_orders} open orders"),
            ),
            (
                b(C_PORTFOLIO),
                format!("Initialized {open_positions} open positions"),
            ),
            (
                b(STRATEGY),
                format!("Set ClientOrderIdGenerator client_order_id count to {next_order}"),
            ),
            (b(STRATEGY), "RUNNING".to_string()),
            (trader, "RUNNING".to_string()),
            (b(C_NODE), "RUNNING".to_string()),
        ] {
            start.push((component, message));
        }
        let mut due = until;
        for (component, message) in start {
            self.script
                .push_back(Script::Line(due, lifecycle(component, message, tag)));
            due += self.uniform_us(20, 400);
        }
        for s in 0..self.streams.len() {
            if self.streams[s].state == WsState::Down {
                continue;
            }
            let message = format!("Connected to {}", self.streams[s].url);
            let draft = Draft::new(LineKind::WebSocketConnected, Level::Info, C_WS, message);
            self.script.push_back(Script::Line(due, draft.tagged(tag)));
            due += self.uniform_us(5_000, 40_000);
        }
        let state = self.account_state().tagged(tag);
        self.script.push_back(Script::Line(due, state));
    }

    /// Lines in the shapes the live Binance adapter really writes with
    /// credentials in them; every secret is freshly drawn from the seeded RNG,
    /// so none is a real key.
    fn secret_line(&mut self, t: i64) -> Draft {
        match self.rng.random_range(0..5) {
            0 => Draft::secret(
                Level::Info,
                C_EXEC,
                format!("API key {} has trading permissions", self.api_key),
                self.api_key.clone(),
            ),
            1 => {
                self.maybe_rotate_listen_key();
                Draft::secret(
                    Level::Info,
                    C_EXEC,
                    format!("Listen key {}", self.listen_key),
                    self.listen_key.clone(),
                )
            }
            2 => {
                self.maybe_rotate_listen_key();
                Draft::secret(
                    Level::Info,
                    C_WS,
                    format!(
                        "Connected to wss://fstream.binance.com/ws/{}",
                        self.listen_key
                    ),
                    self.listen_key.clone(),
                )
            }
            3 => {
                let signature = random_string(&mut self.rng, HEX, 64);
                let request = self.signed_request(t);
                Draft::secret(
                    Level::Debug,
                    C_HTTP,
                    format!("Request {request}&signature={signature}"),
                    signature,
                )
            }
            _ => Draft::secret(
                Level::Debug,
                C_HTTP,
                format!("Request header X-MBX-APIKEY: {}", self.api_key),
                self.api_key.clone(),
            ),
        }
    }

    fn maybe_rotate_listen_key(&mut self) {
        if self.rng.random_bool(0.25) {
            let len = self.rng.random_range(60..=64);
            self.listen_key = random_string(&mut self.rng, ALNUM, len);
        }
    }

    /// The query string a signed Binance call carries before its signature.
    fn signed_request(&mut self, t: i64) -> String {
        let ts_ms = t / MS - self.rng.random_range(0..3);
        let inst = self.rng.random_range(0..INSTRUMENTS.len());
        let spec = &INSTRUMENTS[inst];
        match self.rng.random_range(0..3) {
            0 => {
                let side = if self.rng.random_bool(0.5) {
                    Side::Buy
                } else {
                    Side::Sell
                };
                let lots = self.rng.random_range(spec.min_size..=spec.max_size) * spec.lot_multiple;
                let step = self.rng.random_range(1..=6) * spec.grid_step_ticks;
                let price = match side {
                    Side::Buy => self.mid_ticks(inst) - step,
                    Side::Sell => self.mid_ticks(inst) + step,
                };
                let position_side = match (side, self.rng.random_bool(0.5)) {
                    (Side::Buy, true) | (Side::Sell, false) => "LONG",
                    _ => "SHORT",
                };
                format!(
                    "POST /fapi/v1/order?symbol={}&side={}&positionSide={position_side}&type=LIMIT&timeInForce=GTX&quantity={}&price={}&recvWindow=5000&timestamp={ts_ms}",
                    spec.symbol,
                    side.as_str(),
                    fmt_plain(lots, 3),
                    fmt_plain(price, spec.price_precision),
                )
            }
            1 => format!(
                "DELETE /fapi/v1/order?symbol={}&orderId={}&recvWindow=5000&timestamp={ts_ms}",
                spec.symbol,
                self.next_venue_id[inst] - self.rng.random_range(0..50_000),
            ),
            _ => format!("GET /fapi/v2/account?recvWindow=5000&timestamp={ts_ms}"),
        }
    }
}

// ----- formatting helpers ----------------------------------------------

fn unit_interval(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}

/// Clamped to [1970, ~2116] so that adding simulated delays can never overflow.
fn to_ns(now: DateTime<Utc>) -> i64 {
    now.timestamp_nanos_opt()
        .unwrap_or(i64::MAX)
        .clamp(0, i64::MAX / 2)
}

fn floor_ms(ns: i64) -> i64 {
    ns - ns.rem_euclid(MS)
}

fn random_string(rng: &mut StdRng, alphabet: &[u8], len: usize) -> String {
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// Stamps lines in RFC 3339 with exactly nine fractional digits and a `Z`, as
/// Nautilus writes. It keeps the `YYYY-MM-DDTHH:MM:SS.` part of the last
/// second: consecutive lines share it, and formatting dates was a good part
/// of a line's cost.
#[derive(Default)]
struct SecondStamp {
    second: Option<i64>,
    prefix: String,
}

impl SecondStamp {
    fn push(&mut self, out: &mut String, ns: i64) {
        let (second, nanos) = (ns.div_euclid(SEC), ns.rem_euclid(SEC));
        if self.second != Some(second) {
            let dt = DateTime::from_timestamp_nanos(second * SEC);
            self.prefix.clear();
            let _ = write!(
                self.prefix,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
                dt.year(),
                dt.month(),
                dt.day(),
                dt.hour(),
                dt.minute(),
                dt.second(),
            );
            self.second = Some(second);
        }
        out.push_str(&self.prefix);
        let mut digits = [b'0'; 9];
        let mut rest = nanos;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        out.push_str(std::str::from_utf8(&digits).unwrap_or("000000000"));
        out.push('Z');
    }
}

/// `O-YYYYMMDD-HHMMSS-<trader tag>-<strategy tag>-<n>`, Nautilus' client order id.
fn client_order_id(ns: i64, tags: &str, number: u64) -> String {
    let dt = DateTime::from_timestamp_nanos(ns);
    format!(
        "O-{:04}{:02}{:02}-{:02}{:02}{:02}-{tags}-{number}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
    )
}

fn order_repr(order: &Order) -> String {
    let spec = &INSTRUMENTS[order.inst];
    let body = match order.ord_type {
        OrdType::Limit => format!(
            "LimitOrder({} {} {} LIMIT @ {} GTC",
            order.side.as_str(),
            fmt_fixed(order.lots, 3),
            spec.id,
            fmt_fixed(order.price_ticks, spec.price_precision),
        ),
        OrdType::Market => format!(
            "MarketOrder({} {} {} MARKET GTC",
            order.side.as_str(),
            fmt_fixed(order.lots, 3),
            spec.id,
        ),
        OrdType::StopMarket => format!(
            "StopMarketOrder({} {} {} STOP_MARKET @ {}[DEFAULT] GTC",
            order.side.as_str(),
            fmt_fixed(order.lots, 3),
            spec.id,
            fmt_fixed(order.price_ticks, spec.price_precision),
        ),
    };
    format!(
        "{body}, status=INITIALIZED, client_order_id={}, venue_order_id=None, position_id=None, tags=None)",
        order.client_id
    )
}

/// A fixed-point value as Nautilus prints `Price`, `Quantity` and `Money`:
/// `decimals` places and `_` between thousands (`1_000_000.00000000`).
fn fmt_fixed(units: i64, decimals: u32) -> String {
    fmt_decimal(units, decimals, true)
}

/// The same without separators, as in HTTP query strings.
fn fmt_plain(units: i64, decimals: u32) -> String {
    fmt_decimal(units, decimals, false)
}

fn fmt_decimal(units: i64, decimals: u32, grouped: bool) -> String {
    let scale = 10u64.pow(decimals);
    let abs = units.unsigned_abs();
    let (int, frac) = (abs / scale, abs % scale);
    let digits = int.to_string();
    let mut s = String::with_capacity(digits.len() * 4 / 3 + decimals as usize + 2);
    if units < 0 {
        s.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if grouped && i > 0 && (digits.len() - i) % 3 == 0 {
            s.push('_');
        }
        s.push(c);
    }
    if decimals > 0 {
        let _ = write!(s, ".{frac:0width$}", width = decimals as usize);
    }
    s
}

/// Python's `repr(float)`, which Nautilus uses for `signed_qty` and average
/// prices: shortest round-trip digits, always a decimal point or exponent.
fn py_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    let abs = x.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        let s = format!("{x:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let s = format!("{x}");
    if s.contains('.') {
        s
    } else {
        s + ".0"
    }
}

/// `realized_return` is printed with five decimals; a zero must not print as
/// `-0.00000`.
fn fmt_return(r: f64) -> String {
    let s = format!("{r:.5}");
    if s == "-0.00000" {
        "0.00000".to_string()
    } else {
        s
    }
}

fn lifecycle(component: Cow<'static, str>, message: String, incident: Option<u16>) -> Draft {
    Draft {
        component,
        ..Draft::new(LineKind::Lifecycle, Level::Info, "", message)
    }
    .tagged(incident)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn start() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-06-03T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// Drives a generator the way a paced source would: `now` advances by
    /// `step` between calls.
    fn run(config: &DemoConfig, n: usize, step: chrono::Duration) -> (Vec<DemoLine>, DemoStats) {
        let mut generator = Generator::new(config);
        let mut now = start();
        let mut lines = Vec::with_capacity(n);
        for _ in 0..n {
            lines.push(generator.next_line(now));
            now += step;
        }
        (lines, generator.stats().clone())
    }

    fn paced(config: &DemoConfig, n: usize) -> (Vec<DemoLine>, DemoStats) {
        run(config, n, chrono::Duration::milliseconds(5))
    }

    fn with_incidents(incidents: &[(IncidentKind, f64, f64)]) -> DemoConfig {
        DemoConfig {
            incidents: incidents
                .iter()
                .map(|&(kind, at, duration)| Incident::new(kind, at, duration))
                .collect(),
            ..DemoConfig::default()
        }
    }

    /// One incident of every kind, spread over 250 s.
    fn every_incident() -> DemoConfig {
        with_incidents(&[
            (IncidentKind::WsOutage, 20.0, 15.0),
            (IncidentKind::RejectionBurst, 40.0, 15.0),
            (IncidentKind::ExecutionFailure, 60.0, 10.0),
            (IncidentKind::LatencySpike, 75.0, 10.0),
            (IncidentKind::RateLimitPressure, 90.0, 20.0),
            (IncidentKind::ExchangeErrors, 120.0, 15.0),
            (IncidentKind::Silence, 140.0, 10.0),
            (IncidentKind::ErrorSpike, 155.0, 10.0),
            (IncidentKind::PositionJump, 170.0, 0.0),
            (IncidentKind::BalanceJump, 180.0, 0.0),
            (IncidentKind::Restart, 190.0, 20.0),
        ])
    }

    fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
        let key = format!("{name}=");
        let start = line.find(&key)? + key.len();
        let rest = &line[start..];
        let end = rest.find([',', ')']).unwrap_or(rest.len());
        Some(&rest[..end])
    }

    fn number_after(line: &str, key: &str) -> Option<i64> {
        let start = line.find(key)? + key.len();
        let digits: String = line[start..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits.parse().ok()
    }

    fn line_ns(line: &str) -> i64 {
        DateTime::parse_from_rfc3339(&line[..30])
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    }

    fn level(line: &str) -> &str {
        let rest = &line[32..];
        &rest[..rest.find(']').unwrap()]
    }

    /// Checks the PLAIN prefix by hand and returns (level, component, message).
    fn parse_plain<'a>(line: &'a str, trader_id: &str) -> (&'a str, &'a str, &'a str) {
        let b = line.as_bytes();
        assert!(line.len() > 30, "too short: {line}");
        for (i, &c) in b[..30].iter().enumerate() {
            let ok = match i {
                4 | 7 => c == b'-',
                10 => c == b'T',
                13 | 16 => c == b':',
                19 => c == b'.',
                29 => c == b'Z',
                _ => c.is_ascii_digit(),
            };
            assert!(ok, "bad timestamp byte {i} in {line}");
        }
        let rest = line[30..].strip_prefix(" [").expect("' [' after timestamp");
        let (level, rest) = rest.split_once("] ").expect("'] ' after level");
        assert!(
            ["DEBUG", "INFO", "WARN", "ERROR"].contains(&level),
            "level {level}"
        );
        let rest = rest.strip_prefix(trader_id).expect("trader id");
        let rest = rest.strip_prefix('.').expect("'.' after trader id");
        let (component, message) = rest.split_once(": ").expect("': ' after component");
        assert!(
            !component.is_empty() && !component.contains(' '),
            "component {component:?}"
        );
        assert!(!message.is_empty());
        (level, component, message)
    }

    /// HTTP status of a `BinanceFuturesHttpClient` response line.
    fn http_status(line: &str) -> Option<u16> {
        let message = line.split_once("BinanceFuturesHttpClient: ")?.1;
        let mut words = message.split(' ');
        let (_method, _path) = (words.next()?, words.next()?);
        words.next()?.parse().ok()
    }

    /// The used request weight a line reports, from a response header or a
    /// `Rate limit usage:` summary.
    fn used_weight(line: &str) -> Option<u32> {
        number_after(line, "x-mbx-used-weight-1m=")
            .or_else(|| number_after(line, "Rate limit usage: REQUEST_WEIGHT="))
            .map(|w| w as u32)
    }

    fn account_total(line: &str) -> Option<f64> {
        let total = field(line, "AccountBalance(total")?;
        total
            .trim_end_matches(" USDT")
            .replace('_', "")
            .parse()
            .ok()
    }

    /// What a line-reading alert engine would measure, from the text alone.
    /// State follows every line; only lines whose stamp `counted` accepts
    /// add to the numbers, so a planted incident's window can be left out.
    #[derive(Debug, Default)]
    struct Health {
        lines: usize,
        errors: usize,
        warnings: usize,
        max_rejects_60s: usize,
        max_weight: u32,
        max_orders_10s: u32,
        max_orders_1m: u32,
        accept_latencies: Vec<i64>,
        disconnects: usize,
        max_disconnect_ns: i64,
        bad_status: Vec<String>,
        connection_errors: usize,
        denied: usize,
        exec_engine_errors: usize,
        unexplained_positions: Vec<String>,
        unexplained_balances: Vec<String>,
        lifecycle: usize,
        max_gap_ns: i64,
        span_ns: i64,
    }

    impl Health {
        fn p99_latency(&self) -> i64 {
            let mut sorted = self.accept_latencies.clone();
            sorted.sort_unstable();
            sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)]
        }

        fn error_share(&self) -> f64 {
            self.errors as f64 / self.lines as f64
        }

        /// Every property of a healthy bot, the ones no alert may fire on.
        fn assert_calm(&self, what: &str) {
            assert!(self.lines > 1_000, "{what}: too few lines to judge");
            assert!(
                self.max_rejects_60s < 3,
                "{what}: {} rejections within 60 s",
                self.max_rejects_60s
            );
            assert!(
                self.max_weight * 100 < WEIGHT_LIMIT * 60,
                "{what}: used weight {}",
                self.max_weight
            );
            assert!(
                self.max_orders_10s * 100 < ORDERS_10S_LIMIT * 60
                    && self.max_orders_1m * 100 < ORDERS_1M_LIMIT * 60,
                "{what}: order counts {}/10s {}/1m",
                self.max_orders_10s,
                self.max_orders_1m
            );
            assert!(self.accept_latencies.len() > 50, "{what}: too few orders");
            assert!(
                self.p99_latency() < 100 * MS,
                "{what}: p99 accept latency {} ns",
                self.p99_latency()
            );
            assert!(
                self.error_share() < 0.01,
                "{what}: ERROR share {}",
                self.error_share()
            );
            assert!(self.bad_status.is_empty(), "{what}: {:?}", self.bad_status);
            assert_eq!(self.connection_errors, 0, "{what}: connection errors");
            assert_eq!(
                self.denied + self.exec_engine_errors,
                0,
                "{what}: failed orders"
            );
            assert_eq!(self.lifecycle, 0, "{what}: a restart");
            assert!(
                self.max_disconnect_ns <= 2 * SEC,
                "{what}: WebSocket down for {} ns",
                self.max_disconnect_ns
            );
            let hours = (self.span_ns as f64 / (3_600.0 * SEC as f64)).max(1.0);
            assert!(
                self.disconnects as f64 <= 6.0 * hours,
                "{what}: {} disconnects in {hours} h",
                self.disconnects
            );
            assert!(
                self.unexplained_positions.is_empty(),
                "{what}: {:?}",
                &self.unexplained_positions[..1]
            );
            assert!(
                self.unexplained_balances.is_empty(),
                "{what}: {:?}",
                &self.unexplained_balances[..1]
            );
            assert!(
                self.max_gap_ns < 2 * SEC,
                "{what}: {} ns without a line",
                self.max_gap_ns
            );
        }
    }

    fn health(lines: &[DemoLine], counted: impl Fn(i64) -> bool) -> Health {
        let mut h = Health::default();
        let mut rejects = VecDeque::new();
        let mut submitted: HashMap<String, i64> = HashMap::new();
        let mut down: HashMap<String, i64> = HashMap::new();
        let mut last_fill: HashMap<String, i64> = HashMap::new();
        let mut fills_since_state = false;
        let mut last_total: Option<f64> = None;
        let mut prev: Option<i64> = None;
        let (first, last) = (
            line_ns(&lines[0].line),
            line_ns(&lines.last().unwrap().line),
        );
        h.span_ns = last - first;
        for l in lines {
            let line = l.line.as_str();
            let t = line_ns(line);
            let counts = counted(t);
            if let Some(p) = prev {
                if counts && counted(p) {
                    h.max_gap_ns = h.max_gap_ns.max(t - p);
                }
            }
            prev = Some(t);
            let level = level(line);
            if counts {
                h.lines += 1;
                h.errors += (level == "ERROR") as usize;
                h.warnings += (level == "WARN") as usize;
                h.lifecycle += (l.kind == LineKind::Lifecycle) as usize;
            }
            if line.contains("<--[EVT] OrderRejected(") && counts {
                rejects.push_back(t);
                while rejects.front().is_some_and(|&r| r < t - 60 * SEC) {
                    rejects.pop_front();
                }
                h.max_rejects_60s = h.max_rejects_60s.max(rejects.len());
            }
            if let (Some(w), true) = (used_weight(line), counts) {
                h.max_weight = h.max_weight.max(w);
            }
            if counts {
                for key in ["x-mbx-order-count-10s=", "ORDERS_10S="] {
                    if let Some(n) = number_after(line, key) {
                        h.max_orders_10s = h.max_orders_10s.max(n as u32);
                    }
                }
                for key in ["x-mbx-order-count-1m=", "ORDERS_1M="] {
                    if let Some(n) = number_after(line, key) {
                        h.max_orders_1m = h.max_orders_1m.max(n as u32);
                    }
                }
                if let Some(status) = http_status(line) {
                    if status == 418 || status == 429 || status >= 500 {
                        h.bad_status.push(line.to_string());
                    }
                }
                h.connection_errors += line.contains("Error connecting to exchange") as usize;
                h.denied += line.contains("<--[EVT] OrderDenied(") as usize;
                h.exec_engine_errors +=
                    (level == "ERROR" && line.contains(".ExecEngine: ")) as usize;
            }
            let ts_event = || field(line, "ts_event").unwrap().parse::<i64>().unwrap();
            let id = || field(line, "client_order_id").unwrap().to_string();
            if line.contains("<--[EVT] OrderSubmitted(") {
                submitted.insert(id(), ts_event());
            } else if line.contains("<--[EVT] OrderAccepted(") && counts {
                h.accept_latencies.push(ts_event() - submitted[&id()]);
            }
            if let Some((_, rest)) = line.split_once("BinanceWebSocketClient: Disconnected from ") {
                let url = rest.split_once(": code=").unwrap().0.to_string();
                h.disconnects += counts as usize;
                down.entry(url).or_insert(t);
            } else if let Some((_, url)) = line
                .split_once("BinanceWebSocketClient: Reconnected to ")
                .or_else(|| line.split_once("BinanceWebSocketClient: Connected to "))
            {
                if let Some(since) = down.remove(url) {
                    if counted(since) {
                        h.max_disconnect_ns = h.max_disconnect_ns.max(t - since);
                    }
                }
            }
            if line.contains("<--[EVT] OrderFilled(") {
                last_fill.insert(field(line, "instrument_id").unwrap().to_string(), t);
                fills_since_state = true;
            }
            if line.contains("<--[EVT] Position") && counts {
                let inst = field(line, "instrument_id").unwrap();
                if last_fill.get(inst).is_none_or(|&f| t - f > 10 * SEC) {
                    h.unexplained_positions.push(line.to_string());
                }
            }
            if let Some(total) = account_total(line) {
                if let Some(before) = last_total {
                    let moved = total != before;
                    let big = (total - before).abs() > before.abs() * 0.01;
                    if counts && moved && (!fills_since_state || big) {
                        h.unexplained_balances.push(line.to_string());
                    }
                }
                last_total = Some(total);
                fills_since_state = false;
            }
        }
        for since in down.into_values() {
            if counted(since) {
                h.max_disconnect_ns = h.max_disconnect_ns.max(last - since);
            }
        }
        h
    }

    #[test]
    fn calm_defaults_are_healthy_over_200k_lines() {
        let runs = [
            (
                "paced 200/s",
                DemoConfig::default(),
                chrono::Duration::milliseconds(5),
            ),
            (
                "rate 0, seed 7",
                DemoConfig {
                    rate: 0.0,
                    seed: 7,
                    ..DemoConfig::default()
                },
                chrono::Duration::zero(),
            ),
            (
                "paced 2000/s, seed 9",
                DemoConfig {
                    rate: 2_000.0,
                    seed: 9,
                    ..DemoConfig::default()
                },
                chrono::Duration::microseconds(500),
            ),
        ];
        for (what, config, step) in runs {
            let (lines, stats) = run(&config, 200_000, step);
            let h = health(&lines, |_| true);
            eprintln!(
                "{what}: {} s, max rejections/60s {}, max weight {} ({:.1}%), orders {}/10s {}/1m, \
                 p99 accept {:.1} ms, ERROR share {:.4}%, WARN share {:.3}%, disconnects {} (max {:.2} s), \
                 max gap {:.3} s, orders {:?}",
                h.span_ns / SEC,
                h.max_rejects_60s,
                h.max_weight,
                100.0 * h.max_weight as f64 / WEIGHT_LIMIT as f64,
                h.max_orders_10s,
                h.max_orders_1m,
                h.p99_latency() as f64 / MS as f64,
                100.0 * h.error_share(),
                100.0 * h.warnings as f64 / h.lines as f64,
                h.disconnects,
                h.max_disconnect_ns as f64 / SEC as f64,
                h.max_gap_ns as f64 / SEC as f64,
                stats.orders,
            );
            h.assert_calm(what);
            // Healthy, not sterile: a few warnings, the odd rejection and
            // reconnect still show up, and the bot keeps trading.
            assert!(h.warnings > 100, "{what}: {} warnings", h.warnings);
            assert!(stats.orders.rejected > 0, "{what}");
            assert!(stats.orders.filled > 5_000, "{what}: {:?}", stats.orders);
            assert!(lines.iter().all(|l| l.incident.is_none()));
        }
    }

    #[test]
    fn calm_rejections_never_bunch_even_when_all_orders_fail() {
        let config = DemoConfig {
            reject_ratio: 1.0,
            ..DemoConfig::default()
        };
        let (lines, stats) = paced(&config, 100_000);
        let h = health(&lines, |_| true);
        assert_eq!(h.max_rejects_60s, 2);
        // Two every 64 s over ~500 s.
        assert!(
            (14..=18).contains(&stats.orders.rejected),
            "{:?}",
            stats.orders
        );
    }

    /// Runs a paced 200 lines/s stream with one incident at 200 s and returns
    /// the lines, the stats, and the incident's start and end.
    fn planted(kind: IncidentKind, duration: f64) -> (Vec<DemoLine>, DemoStats, i64, i64) {
        let config = with_incidents(&[(kind, 200.0, duration)]);
        let n = ((200.0 + duration + 150.0) * 200.0) as usize;
        let (lines, stats) = paced(&config, n);
        let incident = stats.incident(kind).unwrap();
        let (begin, end) = (incident.start_ns.unwrap(), incident.end_ns.unwrap());
        let origin = line_ns(&lines[0].line);
        assert!(
            (begin - origin - 200 * SEC).abs() < 20 * MS,
            "{kind:?} began at {} ns",
            begin - origin
        );
        (lines, stats, begin, end)
    }

    /// Calm before `begin` and after `end + tail`, and the incident's tagged
    /// lines only in between.
    fn assert_calm_outside(
        lines: &[DemoLine],
        kind: IncidentKind,
        begin: i64,
        end: i64,
        tail: i64,
    ) {
        let outside = |t: i64| t < begin || t > end + tail;
        health(lines, outside).assert_calm(kind.as_str());
        for l in lines.iter().filter(|l| l.incident.is_some()) {
            assert_eq!(l.incident, Some(kind));
            assert!(
                !outside(line_ns(&l.line)),
                "tagged line outside: {}",
                l.line
            );
        }
    }

    fn within(lines: &[DemoLine], from: i64, to: i64) -> impl Iterator<Item = (i64, &str)> {
        lines
            .iter()
            .map(|l| (line_ns(&l.line), l.line.as_str()))
            .filter(move |&(t, _)| (from..=to).contains(&t))
    }

    /// Largest distance between consecutive times, counting the ends.
    fn max_spacing(from: i64, to: i64, times: impl Iterator<Item = i64>) -> i64 {
        let mut last = from;
        let mut max = 0;
        for t in times {
            max = max.max(t - last);
            last = t;
        }
        max.max(to - last)
    }

    #[test]
    fn ws_outage_keeps_the_stream_down_then_reconnects() {
        let kind = IncidentKind::WsOutage;
        let (lines, stats, begin, end) = planted(kind, 90.0);
        assert_eq!(end - begin, 90 * SEC);
        let down: Vec<(i64, &str)> = within(&lines, begin, end)
            .filter(|(_, l)| {
                l.contains("Disconnected from wss://") && l.contains("code=1006 (abnormal closure)")
            })
            .collect();
        assert_eq!(down.len(), 1, "{down:?}");
        let url = down[0]
            .1
            .split_once("Disconnected from ")
            .unwrap()
            .1
            .split_once(": code")
            .unwrap()
            .0;
        assert!(down[0].0 - begin < 10 * MS);
        let failures: Vec<i64> = within(&lines, begin, end)
            .filter(|(_, l)| {
                l.contains(" [ERROR] ")
                    && l.contains("Error connecting to exchange: ")
                    && l.contains(url)
            })
            .map(|(t, _)| t)
            .collect();
        eprintln!(
            "ws_outage: {} failed attempts, max spacing {} ms",
            failures.len(),
            max_spacing(begin, end, failures.iter().copied()) / MS
        );
        assert!(failures.len() >= 17, "{} failed attempts", failures.len());
        assert!(max_spacing(begin, end, failures.iter().copied()) <= 5 * SEC + 10 * MS);
        let back: Vec<i64> = lines
            .iter()
            .filter(|l| l.line.ends_with(&format!("Reconnected to {url}")))
            .map(|l| line_ns(&l.line))
            .filter(|&t| t > begin)
            .collect();
        assert!(!back.is_empty() && (back[0] - end) < 10 * MS && back[0] >= end);
        let h = health(&lines, |t| (begin..=end).contains(&t));
        assert!(h.max_disconnect_ns >= 90 * SEC && h.connection_errors >= 17);
        assert_eq!(
            stats.incident(kind).unwrap().lines as usize,
            failures.len() + 2
        );
        assert_calm_outside(&lines, kind, begin, end, 10 * MS);
    }

    #[test]
    fn rejection_burst_rejects_ten_a_minute_throughout() {
        let kind = IncidentKind::RejectionBurst;
        let (lines, stats, begin, end) = planted(kind, 90.0);
        let rejected: Vec<i64> = within(&lines, begin, end + SEC)
            .filter(|(_, l)| {
                l.contains("<--[EVT] OrderRejected(")
                    && l.contains("reason='Margin is insufficient.'")
            })
            .map(|(t, _)| t)
            .collect();
        let mut from = begin;
        while from + 60 * SEC <= end {
            let n = rejected
                .iter()
                .filter(|&&t| (from..from + 60 * SEC).contains(&t))
                .count();
            assert!(n >= 10, "{n} rejections in the minute from {from}");
            from += SEC;
        }
        eprintln!(
            "rejection_burst: {} rejections in {} s",
            rejected.len(),
            (end - begin) / SEC
        );
        assert!(rejected.len() >= 60, "{}", rejected.len());
        assert!(stats.incident(kind).unwrap().lines >= rejected.len() as u64);
        assert_calm_outside(&lines, kind, begin, end, 100 * MS);
    }

    #[test]
    fn execution_failure_denies_or_errors_every_order() {
        let kind = IncidentKind::ExecutionFailure;
        let (lines, _, begin, end) = planted(kind, 60.0);
        let failures: Vec<(i64, &str)> = within(&lines, begin, end + 10 * MS)
            .filter(|(_, l)| {
                l.contains("<--[EVT] OrderDenied(")
                    || (l.contains(" [ERROR] ")
                        && l.contains(".ExecEngine: Cannot execute command"))
            })
            .collect();
        let denied = failures
            .iter()
            .filter(|(_, l)| l.contains("OrderDenied"))
            .count();
        eprintln!(
            "execution_failure: {denied} OrderDenied, {} ExecEngine errors",
            failures.len() - denied
        );
        assert!(
            denied >= 20 && failures.len() - denied >= 20,
            "{denied} of {}",
            failures.len()
        );
        for (_, l) in &failures {
            assert!(
                field(l, "client_order_id").is_some_and(|id| id.starts_with("O-")),
                "{l}"
            );
        }
        assert!(max_spacing(begin, end, failures.iter().map(|f| f.0)) < 5 * SEC);
        // No order sent in the window reached Binance.
        assert!(!within(&lines, begin + 10 * MS, end)
            .any(|(_, l)| l.contains("<--[EVT] OrderSubmitted(")));
        assert_calm_outside(&lines, kind, begin, end, 10 * MS);
    }

    #[test]
    fn latency_spike_slows_every_order_in_the_window() {
        let kind = IncidentKind::LatencySpike;
        let (lines, _, begin, end) = planted(kind, 60.0);
        let mut submitted = HashMap::new();
        let mut slow = 0;
        for l in &lines {
            let ts = field(&l.line, "ts_event").map(|v| v.parse::<i64>().unwrap());
            if l.line.contains("<--[EVT] OrderSubmitted(") {
                submitted.insert(
                    field(&l.line, "client_order_id").unwrap().to_string(),
                    ts.unwrap(),
                );
            } else if l.line.contains("<--[EVT] OrderAccepted(") {
                let sent = submitted[field(&l.line, "client_order_id").unwrap()];
                let latency = ts.unwrap() - sent;
                if (begin..end).contains(&sent) {
                    assert!(
                        (SEC..=3 * SEC).contains(&latency),
                        "{latency} ns in the spike"
                    );
                    slow += 1;
                } else {
                    assert!(latency < 250 * MS, "{latency} ns outside the spike");
                }
            }
        }
        eprintln!("latency_spike: {slow} orders accepted 1-3 s late");
        assert!(slow >= 100, "{slow} slow orders");
        assert_calm_outside(&lines, kind, begin, end, 3_100 * MS);
    }

    #[test]
    fn rate_limit_pressure_holds_the_weight_above_85_percent() {
        let kind = IncidentKind::RateLimitPressure;
        let (lines, _, begin, end) = planted(kind, 150.0);
        // The incident ends with the 1-minute window it ended in.
        let period = 60 * SEC;
        assert_eq!(end.rem_euclid(period), 0);
        assert!(end - begin >= 150 * SEC && end - begin < 210 * SEC);
        let mut readings = 0;
        let mut summaries = 0;
        for (t, l) in within(&lines, begin, end - 1) {
            assert_ne!(http_status(l), Some(429), "{l}");
            let Some(weight) = used_weight(l) else {
                continue;
            };
            // Binance's counter restarts with every window; the bot drives it
            // back up within the first few hundred milliseconds.
            let into_window = t.rem_euclid(period);
            if t - begin < SEC || into_window < SEC {
                continue;
            }
            assert!(
                weight * 100 > WEIGHT_LIMIT * 85,
                "{weight} at {into_window} ns: {l}"
            );
            readings += 1;
            if l.contains("Rate limit usage: ") {
                assert_eq!(level(l), "WARN");
                summaries += 1;
            }
        }
        eprintln!("rate_limit_pressure: {readings} readings above 85%, {summaries} WARN summaries");
        assert!(
            readings > 1_000 && summaries > 100,
            "{readings} {summaries}"
        );
        assert_calm_outside(&lines, kind, begin, end, 0);
    }

    #[test]
    fn exchange_errors_fail_most_calls() {
        let kind = IncidentKind::ExchangeErrors;
        let (lines, _, begin, end) = planted(kind, 60.0);
        let (mut calls, mut polls, mut failed, mut conn) = (0, 0, 0, vec![]);
        for (t, l) in within(&lines, begin, end) {
            if let Some(status) = http_status(l) {
                calls += 1;
                // Orders still go through; every polled endpoint is failing.
                let polled = !l.contains(" /fapi/v1/order ") || l.contains(": GET ");
                polls += polled as usize;
                if status >= 500 || status == 418 {
                    failed += 1;
                    assert_eq!(level(l), "ERROR");
                }
            }
            if l.contains(" [ERROR] ")
                && l.contains("ExecClient-BINANCE: Error connecting to exchange: ")
            {
                conn.push(t);
            }
        }
        eprintln!("exchange_errors: {failed} failed of {polls} polls / {calls} calls, {} connection errors", conn.len());
        assert!(failed * 100 > polls * 80, "{failed} of {polls} polls");
        assert!(failed * 100 > calls * 60, "{failed} of {calls} calls");
        assert!(conn.len() >= 20);
        assert!(max_spacing(begin, end, conn.into_iter()) < 4 * SEC);
        assert_calm_outside(&lines, kind, begin, end, 10 * SEC);
    }

    #[test]
    fn silence_leaves_a_gap_in_both_modes() {
        let kind = IncidentKind::Silence;
        let (lines, stats, begin, end) = planted(kind, 60.0);
        let check = |lines: &[DemoLine], begin: i64, end: i64| {
            assert!(end - begin >= 60 * SEC);
            let stamps: Vec<i64> = lines.iter().map(|l| line_ns(&l.line)).collect();
            let after = stamps.iter().position(|&t| t >= end).unwrap();
            assert!(stamps[after - 1] < begin, "a line in the gap");
            assert!(stamps[after] - end < 10 * MS);
        };
        check(&lines, begin, end);
        assert_eq!(stats.incident(kind).unwrap().lines, 0);
        assert_calm_outside(&lines, kind, begin, end, 0);

        let config = DemoConfig {
            rate: 0.0,
            ..with_incidents(&[(kind, 200.0, 60.0)])
        };
        let (lines, stats) = run(&config, 80_000, chrono::Duration::zero());
        let incident = stats.incident(kind).unwrap();
        check(&lines, incident.start_ns.unwrap(), incident.end_ns.unwrap());
        // Silence at rate 0 is a jump of the simulated clock: ~200 lines/s before.
        let origin = line_ns(&lines[0].line);
        let before = lines
            .iter()
            .filter(|l| line_ns(&l.line) < incident.start_ns.unwrap())
            .count();
        assert!((36_000..44_000).contains(&before), "{before} lines before");
        assert!(incident.start_ns.unwrap() - origin >= 200 * SEC);
    }

    #[test]
    fn a_paced_caller_that_honours_pause_until_really_pauses() {
        let config = with_incidents(&[
            (IncidentKind::Silence, 100.0, 30.0),
            (IncidentKind::Restart, 200.0, 40.0),
        ]);
        let mut generator = Generator::new(&config);
        let mut now = start();
        let mut lines = Vec::new();
        let mut pauses = Vec::new();
        while now < start() + chrono::Duration::seconds(300) {
            if let Some(until) = generator.pause_until(now) {
                pauses.push((now, until));
                now = until;
                continue;
            }
            lines.push((now, generator.next_line(now)));
            now += chrono::Duration::milliseconds(5);
        }
        assert_eq!(pauses.len(), 2, "{pauses:?}");
        assert!(pauses[0].1 - pauses[0].0 >= chrono::Duration::milliseconds(29_990));
        assert!(pauses[1].1 - pauses[1].0 >= chrono::Duration::milliseconds(39_000));
        // Nothing runs ahead of the wall clock: the pause was real.
        for (now, l) in &lines {
            let t = line_ns(&l.line);
            let wall = now.timestamp_nanos_opt().unwrap();
            assert!(t <= wall + 50 * MS, "{} ahead of {now}", l.line);
        }
        let stats = generator.stats();
        let silence = stats.incident(IncidentKind::Silence).unwrap();
        assert!(silence.end_ns.unwrap() - silence.start_ns.unwrap() >= 30 * SEC);
    }

    #[test]
    fn error_spike_makes_a_quarter_of_lines_errors() {
        let kind = IncidentKind::ErrorSpike;
        let (lines, _, begin, end) = planted(kind, 60.0);
        let mut from = begin;
        while from < end {
            let slice: Vec<&str> = within(&lines, from, (from + 10 * SEC).min(end))
                .map(|(_, l)| l)
                .collect();
            let errors = slice.iter().filter(|l| level(l) == "ERROR").count();
            eprintln!("error_spike: {errors} ERROR of {} lines", slice.len());
            assert!(
                errors * 100 > slice.len() * 15,
                "{errors} of {}",
                slice.len()
            );
            assert!(!slice.iter().any(|l| l.contains("Error connecting")));
            from += 10 * SEC;
        }
        assert_calm_outside(&lines, kind, begin, end, 0);
    }

    #[test]
    fn position_jump_changes_a_position_with_no_fill() {
        let kind = IncidentKind::PositionJump;
        let (lines, stats, begin, end) = planted(kind, 0.0);
        assert_eq!(begin, end);
        let jump = lines
            .iter()
            .find(|l| l.incident == Some(kind) && l.line.contains("<--[EVT] PositionChanged("))
            .expect("a PositionChanged");
        let t = line_ns(&jump.line);
        let inst = field(&jump.line, "instrument_id").unwrap();
        let position = field(&jump.line, "position_id").unwrap();
        let last_fill = lines
            .iter()
            .filter(|l| {
                line_ns(&l.line) < t
                    && l.line.contains("<--[EVT] OrderFilled(")
                    && l.line.contains(inst)
            })
            .map(|l| line_ns(&l.line))
            .max()
            .unwrap();
        eprintln!(
            "position_jump: last fill of {inst} {} s before",
            (t - last_fill) / SEC
        );
        assert!(t - last_fill > 30 * SEC, "fill {} ns before", t - last_fill);
        let before: f64 = lines
            .iter()
            .filter(|l| {
                line_ns(&l.line) < t && l.line.contains(&format!("position_id={position},"))
            })
            .filter_map(|l| field(&l.line, "quantity"))
            .next_back()
            .unwrap()
            .parse()
            .unwrap();
        let after: f64 = field(&jump.line, "quantity").unwrap().parse().unwrap();
        assert!(after > before, "{before} -> {after}");
        assert_eq!(stats.incident(kind).unwrap().lines, 2);
        assert_calm_outside(&lines, kind, begin, end, 10 * MS);
    }

    #[test]
    fn balance_jump_moves_the_balance_with_no_fill() {
        let kind = IncidentKind::BalanceJump;
        let (lines, _, begin, end) = planted(kind, 0.0);
        let states: Vec<(usize, f64)> = lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| account_total(&l.line).map(|t| (i, t)))
            .collect();
        let jumps: Vec<&[(usize, f64)]> = states
            .windows(2)
            .filter(|w| (w[1].1 - w[0].1).abs() > w[0].1 * 0.05)
            .collect();
        assert_eq!(jumps.len(), 1);
        let [(a, before), (b, after)] = jumps[0] else {
            unreachable!()
        };
        assert!(lines[*a + 1..*b]
            .iter()
            .all(|l| !l.line.contains("OrderFilled(")));
        assert!((after / before - 0.92).abs() < 1e-6, "{before} -> {after}");
        assert!(line_ns(&lines[*b].line) - begin < 5 * MS);
        assert_calm_outside(&lines, kind, begin, end, 10 * MS);
    }

    #[test]
    fn restart_stops_waits_and_starts_again() {
        let kind = IncidentKind::Restart;
        let (lines, _, begin, end) = planted(kind, 45.0);
        assert!(end - begin >= 45 * SEC && end - begin < 45 * SEC + 50 * MS);
        let ours: Vec<&DemoLine> = lines.iter().filter(|l| l.incident == Some(kind)).collect();
        let position = |needle: &str| {
            ours.iter()
                .position(|l| l.line.ends_with(needle))
                .unwrap_or_else(|| panic!("no {needle}"))
        };
        let order = [
            "TradingNode: STOPPING",
            "TradingNode: STOPPED",
            "TradingNode: DISPOSED",
            "TradingNode:  NAUTILUS TRADER - Automated Algorithmic Trading Platform",
            "TradingNode: STARTING",
            "TradingNode: RUNNING",
        ];
        let at: Vec<usize> = order.iter().map(|n| position(n)).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{at:?}");
        let disposed = line_ns(&ours[at[2]].line);
        let banner = line_ns(&ours[at[3] - 1].line);
        assert!(banner >= end);
        // Down in between: not a single line.
        assert!(!lines
            .iter()
            .any(|l| (disposed + 1..banner).contains(&line_ns(&l.line))));
        assert!(line_ns(&ours[at[0]].line) - begin < 10 * MS);
        assert_calm_outside(&lines, kind, begin, end, 2 * SEC);
    }

    #[test]
    fn incidents_are_deterministic_and_wrap_every_kind() {
        let config = every_incident();
        let (a, stats_a) = paced(&config, 50_000);
        let (b, stats_b) = paced(&config, 50_000);
        assert_eq!(a, b);
        assert_eq!(stats_a, stats_b);
        for incident in &stats_a.incidents {
            assert!(
                incident.start_ns.is_some() && incident.end_ns.is_some(),
                "{incident:?}"
            );
            let tagged = a
                .iter()
                .filter(|l| l.incident == Some(incident.kind))
                .count() as u64;
            assert_eq!(tagged, incident.lines, "{:?}", incident.kind);
            if incident.kind != IncidentKind::Silence {
                assert!(incident.lines > 0, "{:?}", incident.kind);
            }
        }
        let stamps: Vec<i64> = a.iter().map(|l| line_ns(&l.line)).collect();
        assert!(stamps.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn incidents_config_is_checked() {
        let parse = |v: serde_json::Value| {
            serde_json::from_value::<DemoConfig>(v).map_err(|e| e.to_string())
        };
        let config = parse(serde_json::json!({"incidents": [
            {"kind": "ws_outage", "at_seconds": 120, "duration_seconds": 90},
            {"kind": "balance_jump", "at_seconds": 300},
            {"kind": "ws_outage", "at_seconds": 210, "duration_seconds": 5},
        ]}))
        .unwrap();
        assert_eq!(
            config.incidents[0],
            Incident::new(IncidentKind::WsOutage, 120.0, 90.0)
        );
        assert_eq!(
            config.incidents[1],
            Incident::new(IncidentKind::BalanceJump, 300.0, 0.0)
        );
        for (incident, expected) in [
            (
                serde_json::json!({"kind": "silence", "at_seconds": 1}),
                "duration_seconds: silence needs a duration",
            ),
            (
                serde_json::json!({"kind": "position_jump", "at_seconds": 1, "duration_seconds": 5}),
                "single event",
            ),
            (
                serde_json::json!({"kind": "silence", "at_seconds": -1, "duration_seconds": 5}),
                "at_seconds: must be between",
            ),
            (
                serde_json::json!({"kind": "meltdown", "at_seconds": 1}),
                "unknown variant `meltdown`",
            ),
            (
                serde_json::json!({"kind": "silence", "at": 1}),
                "unknown field `at`",
            ),
        ] {
            let err = parse(serde_json::json!({"incidents": [incident]})).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
        let err = parse(serde_json::json!({"incidents": [
            {"kind": "silence", "at_seconds": 10, "duration_seconds": 30},
            {"kind": "restart", "at_seconds": 20, "duration_seconds": 30},
            {"kind": "silence", "at_seconds": 39, "duration_seconds": 30},
        ]}))
        .unwrap_err();
        assert!(
            err.contains("[2] overlaps [0]: two silence incidents"),
            "{err}"
        );
        // A config built in code skips what the check would refuse.
        let config = with_incidents(&[
            (IncidentKind::Silence, 10.0, 30.0),
            (IncidentKind::Silence, 20.0, 30.0),
            (IncidentKind::ErrorSpike, f64::NAN, 1.0),
        ]);
        assert_eq!(Generator::new(&config).stats().incidents.len(), 1);
    }

    #[test]
    fn same_seed_same_lines_other_seed_other_lines() {
        let config = DemoConfig::default();
        let (a, stats_a) = paced(&config, 5_000);
        let (b, stats_b) = paced(&config, 5_000);
        assert_eq!(a, b);
        assert_eq!(stats_a, stats_b);
        let other = DemoConfig {
            seed: 7,
            ..DemoConfig::default()
        };
        let (c, _) = paced(&other, 5_000);
        assert_ne!(a, c);
    }

    #[test]
    fn every_line_has_the_plain_prefix() {
        let config = DemoConfig {
            trader_id: "HEDGE-GRID-042".to_string(),
            ..every_incident()
        };
        let (lines, _) = paced(&config, 50_000);
        for l in &lines {
            assert!(!l.line.contains('\n'));
            parse_plain(&l.line, "HEDGE-GRID-042");
        }
        assert!(lines.iter().any(|l| l.line.contains("-042-001-")));
        assert!(lines
            .iter()
            .any(|l| l.line.ends_with("HEDGE-GRID-042.HEDGE-GRID-042: RUNNING")));
    }

    #[test]
    fn timestamps_strictly_increase() {
        for step in [
            chrono::Duration::milliseconds(5),
            chrono::Duration::microseconds(100),
            chrono::Duration::zero(),
            chrono::Duration::seconds(2),
        ] {
            let (lines, _) = run(&every_incident(), 10_000, step);
            let stamps: Vec<i64> = lines.iter().map(|l| line_ns(&l.line)).collect();
            assert!(stamps.windows(2).all(|w| w[0] < w[1]), "step {step:?}");
        }
    }

    #[test]
    fn stamps_follow_the_wall_clock_when_paced() {
        let (lines, _) = paced(&DemoConfig::default(), 10_000);
        let begin = start().timestamp_nanos_opt().unwrap();
        for (i, l) in lines.iter().enumerate() {
            let wall = begin + i as i64 * 5 * MS;
            let t = line_ns(&l.line);
            assert!(t <= wall + MS, "line {i} is ahead of now: {}", l.line);
        }
        let last = line_ns(&lines.last().unwrap().line);
        assert!(begin + 9_999 * 5 * MS - last < 100 * MS);
    }

    #[test]
    fn filled_orders_were_submitted_and_accepted_first() {
        let config = with_incidents(&[(IncidentKind::RejectionBurst, 60.0, 20.0)]);
        let (lines, stats) = paced(&config, 30_000);
        let mut submitted = HashSet::new();
        let mut accepted = HashSet::new();
        let mut commands = HashSet::new();
        let mut accepted_seen = Vec::new();
        let mut filled_seen = Vec::new();
        for l in &lines {
            let id = field(&l.line, "client_order_id").map(str::to_string);
            match l.kind {
                LineKind::SubmitCommand => {
                    assert!(l.line.contains("[CMD]--> [Risk] SubmitOrder(order="));
                    commands.insert(id.unwrap());
                }
                LineKind::OrderSubmitted => {
                    let id = id.unwrap();
                    assert!(commands.contains(&id), "submitted before command: {id}");
                    submitted.insert(id);
                }
                LineKind::OrderAccepted => {
                    let id = id.unwrap();
                    assert!(submitted.contains(&id), "accepted before submitted: {id}");
                    accepted.insert(id.clone());
                    accepted_seen.push(id);
                }
                LineKind::OrderFilled | LineKind::OrderPartiallyFilled => {
                    assert!(l.line.contains("<--[EVT] OrderFilled("));
                    let id = id.unwrap();
                    assert!(accepted.contains(&id), "filled before accepted: {id}");
                    if l.kind == LineKind::OrderFilled {
                        filled_seen.push(id);
                    }
                }
                LineKind::OrderCanceled => {
                    assert!(accepted.contains(&id.unwrap()));
                }
                LineKind::OrderRejected => {
                    let id = id.unwrap();
                    assert!(submitted.contains(&id) && !accepted.contains(&id));
                    assert!(l.line.contains(" [WARN] "));
                }
                _ => {}
            }
        }
        assert_eq!(stats.accepted_ids, accepted_seen);
        assert_eq!(stats.filled_ids, filled_seen);
        assert_eq!(stats.orders.submitted as usize, submitted.len());
        assert!(stats.orders.filled > 100 && stats.orders.canceled > 20);
        assert!(stats.orders.rejected > 5);
        assert!(stats.orders.open() <= MAX_OPEN_ORDERS as u64);
        assert_eq!(
            stats.orders.rejected,
            stats.lines_of(LineKind::OrderRejected)
        );
        assert_eq!(
            stats.orders.canceled,
            stats.lines_of(LineKind::OrderCanceled)
        );
    }

    #[test]
    fn venue_latency_shows_in_ts_event_and_line_stamps() {
        let (lines, _) = paced(&DemoConfig::default(), 20_000);
        let mut submitted = std::collections::HashMap::new();
        let mut checked = 0;
        for l in &lines {
            let ts_event = field(&l.line, "ts_event").map(|v| v.parse::<i64>().unwrap());
            let id = field(&l.line, "client_order_id");
            match l.kind {
                LineKind::OrderSubmitted => {
                    assert_eq!(ts_event.unwrap(), line_ns(&l.line));
                    submitted.insert(id.unwrap().to_string(), ts_event.unwrap());
                }
                LineKind::OrderAccepted => {
                    let sent = submitted[id.unwrap()];
                    let venue = ts_event.unwrap() - sent;
                    assert!((4 * MS..=80 * MS).contains(&venue), "venue latency {venue}");
                    let seen = line_ns(&l.line) - sent;
                    assert!(seen >= 5 * MS, "line latency {seen}");
                    assert!(ts_event.unwrap() <= line_ns(&l.line));
                    checked += 1;
                }
                _ => {}
            }
        }
        assert!(checked > 100);
    }

    #[test]
    fn secret_ratio_is_roughly_honoured() {
        let (lines, stats) = paced(&DemoConfig::default(), 10_000);
        let planted = lines.iter().filter(|l| l.planted_secret.is_some()).count();
        assert!((150..=250).contains(&planted), "planted {planted}");
        assert_eq!(planted as u64, stats.lines_of(LineKind::Secret));

        let config = DemoConfig {
            secret_ratio: 0.2,
            ..DemoConfig::default()
        };
        let (lines, _) = paced(&config, 10_000);
        let planted = lines.iter().filter(|l| l.planted_secret.is_some()).count();
        assert!((1_850..=2_150).contains(&planted), "planted {planted}");

        let config = DemoConfig {
            secret_ratio: 0.0,
            ..every_incident()
        };
        let (lines, _) = paced(&config, 50_000);
        assert!(lines.iter().all(|l| l.planted_secret.is_none()));
        assert!(!lines.iter().any(|l| l.line.contains("signature=")));
    }

    #[test]
    fn planted_secret_is_in_the_line_and_has_a_real_shape() {
        let config = DemoConfig {
            secret_ratio: 0.3,
            ..DemoConfig::default()
        };
        let (lines, _) = paced(&config, 5_000);
        let mut shapes = HashSet::new();
        for l in &lines {
            assert_eq!(l.kind == LineKind::Secret, l.planted_secret.is_some());
            let Some(secret) = &l.planted_secret else {
                continue;
            };
            assert!(
                l.line.contains(secret.as_str()),
                "{secret} not in {}",
                l.line
            );
            let alnum = secret.bytes().all(|b| b.is_ascii_alphanumeric());
            if l.line.contains("signature=") {
                assert!(l.line.ends_with(&format!("&signature={secret}")));
                assert!(l.line.contains("[DEBUG]") && l.line.contains("timestamp="));
                assert_eq!(secret.len(), 64);
                assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
                shapes.insert("signature");
            } else if l.line.contains("X-MBX-APIKEY: ") {
                assert!(alnum && secret.len() == 64);
                shapes.insert("header");
            } else if l.line.contains("has trading permissions") {
                assert!(l
                    .line
                    .contains(&format!("API key {secret} has trading permissions")));
                assert!(alnum && secret.len() == 64);
                shapes.insert("api key");
            } else {
                assert!(
                    l.line.ends_with(&format!("Listen key {secret}"))
                        || l.line
                            .ends_with(&format!("fstream.binance.com/ws/{secret}")),
                    "{}",
                    l.line
                );
                assert!(alnum && (60..=64).contains(&secret.len()));
                shapes.insert("listen key");
            }
        }
        assert_eq!(shapes.len(), 4);
    }

    #[test]
    fn all_kinds_appear_and_counts_add_up() {
        let (lines, stats) = paced(&every_incident(), 50_000);
        for kind in LineKind::ALL {
            let n = lines.iter().filter(|l| l.kind == kind).count() as u64;
            assert!(n > 0, "{kind:?} never produced");
            assert_eq!(n, stats.lines_of(kind), "{kind:?}");
        }
        assert_eq!(stats.lines, 50_000);
        let sum: u64 = LineKind::ALL.iter().map(|&k| stats.lines_of(k)).sum();
        assert_eq!(sum, stats.lines);
        for status in ["418", "400", "502", "503", "504"] {
            assert!(
                lines
                    .iter()
                    .any(|l| l.kind == LineKind::RestCall
                        && l.line.contains(&format!(" {status} ("))),
                "no {status}"
            );
        }
        assert_eq!(
            stats.orders.denied,
            lines
                .iter()
                .filter(|l| l.line.contains("<--[EVT] OrderDenied("))
                .count() as u64
        );
    }

    #[test]
    fn shapes_match_the_nautilus_sample() {
        let (lines, _) = paced(&every_incident(), 50_000);
        let find = |needle: &str| {
            lines
                .iter()
                .find(|l| l.line.contains(needle))
                .unwrap_or_else(|| panic!("no line with {needle}"))
                .line
                .clone()
        };
        let initial = find("Portfolio: Updated AccountState(");
        assert!(initial.contains(
            "Updated AccountState(account_id=BINANCE-001, account_type=MARGIN, base_currency=None, is_reported=True, balances=[AccountBalance(total=10_000.00000000 USDT, locked=0.00000000 USDT, free=10_000.00000000 USDT)], margins=[], event_id="
        ));
        let uuid = initial
            .rsplit("event_id=")
            .next()
            .unwrap()
            .trim_end_matches(')');
        assert_eq!(uuid.len(), 36);
        assert_eq!(uuid.as_bytes()[14], b'4');

        let fill = find("<--[EVT] OrderFilled(instrument_id=BTCUSDT-PERP.BINANCE");
        let names: Vec<&str> = fill
            .split(", ")
            .map(|part| part.rsplit('(').next().unwrap().split('=').next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "instrument_id",
                "client_order_id",
                "venue_order_id",
                "account_id",
                "trade_id",
                "position_id",
                "order_side",
                "order_type",
                "last_qty",
                "last_px",
                "commission",
                "liquidity_side",
                "ts_event"
            ]
        );
        let px = field(&fill, "last_px").unwrap();
        assert!(px.ends_with(" USDT") && px.contains('_'), "{px}");
        let id = field(&fill, "client_order_id").unwrap();
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(parts[0], "O");
        assert_eq!(parts[1].len(), 8);
        assert_eq!(parts[2].len(), 6);
        assert_eq!(&parts[3..5], ["001", "001"]);

        let submit = find("[CMD]--> [Risk] SubmitOrder(order=LimitOrder(");
        assert!(
            submit.contains(" LIMIT @ ")
                && submit.contains(" GTC, status=INITIALIZED, client_order_id=O-")
        );
        let opened = find("<--[EVT] PositionOpened(");
        assert!(opened.contains(", closing_order_id=None, entry="));
        assert!(opened.contains("avg_px_close=0.0, realized_return=0.00000, realized_pnl=-"));
        let closed = find("<--[EVT] PositionClosed(");
        assert!(closed.contains(", side=FLAT, signed_qty=0.0, quantity=0.000, "));
        let rejected = find("<--[EVT] OrderRejected(");
        assert!(rejected.contains(", reason='") && rejected.contains("', due_post_only="));
        // As the RiskEngine and the strategy log a denial in NautilusTrader 1.22x.
        let denied = find("<--[EVT] OrderDenied(");
        assert!(
            denied.contains(" [WARN] TRADER-001.HedgeGrid: <--[EVT] OrderDenied(instrument_id=")
        );
        assert!(denied.ends_with(", reason='Exceeded MAX_ORDER_SUBMIT_RATE')"));
        assert!(find("RiskEngine: SubmitOrder for O-")
            .contains(" DENIED: Exceeded MAX_ORDER_SUBMIT_RATE"));
        assert!(find("BinanceFuturesHttpClient: GET /fapi/v2/account 200 (")
            .contains("x-mbx-used-weight-1m="));
        assert!(find("POST /fapi/v1/order 200 (").contains("x-mbx-order-count-10s="));
        assert!(find("Rate limit usage: REQUEST_WEIGHT=").contains(", ORDERS_10S="));
        find("BinanceWebSocketClient: Connected to wss://fstream.binance.com/");
        find("BinanceWebSocketClient: Disconnected from wss://");
        find("BinanceWebSocketClient: Reconnected to wss://");
        find("Portfolio: BTCUSDT-PERP.BINANCE net_position=");
        find("[INFO] TRADER-001.TradingNode:  NAUTILUS TRADER - Automated Algorithmic Trading Platform");
        find("[INFO] TRADER-001.TRADER-001: STOPPED");
    }

    #[test]
    fn rate_zero_still_spaces_lines_out() {
        let config = DemoConfig {
            rate: 0.0,
            ..DemoConfig::default()
        };
        assert_eq!(config.interval(), None);
        let (lines, stats) = run(&config, 10_000, chrono::Duration::zero());
        let span = line_ns(&lines.last().unwrap().line) - line_ns(&lines[0].line);
        // ~200 lines per simulated second.
        assert!((40 * SEC..60 * SEC).contains(&span), "span {span}");
        assert!(stats.orders.filled > 100);
    }

    #[test]
    fn count_and_interval_helpers() {
        let config = DemoConfig {
            count: Some(3),
            rate: 4.0,
            ..DemoConfig::default()
        };
        assert_eq!(config.interval(), Some(Duration::from_millis(250)));
        let mut generator = Generator::new(&config);
        for _ in 0..3 {
            assert!(!generator.is_exhausted());
            generator.next_line(start());
        }
        assert!(generator.is_exhausted());
        let odd = DemoConfig {
            rate: f64::NAN,
            secret_ratio: 7.0,
            reject_ratio: -1.0,
            ..DemoConfig::default()
        };
        assert_eq!(odd.interval(), None);
        let (lines, _) = paced(&odd, 200);
        assert!(lines.iter().all(|l| l.kind == LineKind::Secret));
    }

    #[test]
    fn config_defaults_and_unknown_fields() {
        use serde::de::value::{Error, MapDeserializer};
        let empty = MapDeserializer::<_, Error>::new(std::iter::empty::<(&str, u64)>());
        let config = DemoConfig::deserialize(empty).unwrap();
        assert_eq!(config.rate, 200.0);
        assert_eq!(config.count, None);
        assert_eq!(config.seed, 42);
        assert_eq!(config.trader_id, "TRADER-001");
        assert_eq!(config.secret_ratio, 0.02);
        assert_eq!(config.reject_ratio, 0.003);
        assert!(config.incidents.is_empty());
        let seeded = MapDeserializer::<_, Error>::new([("seed", 7u64)].into_iter());
        assert_eq!(DemoConfig::deserialize(seeded).unwrap().seed, 7);
        let unknown = MapDeserializer::<_, Error>::new([("sead", 7u64)].into_iter());
        assert!(DemoConfig::deserialize(unknown).is_err());
    }

    /// Benchmarks rely on the generator outpacing the pipeline; the floor is
    /// well under what a release build does (> 500k lines/s) so a busy
    /// machine cannot fail it, while a real slowdown would.
    #[test]
    fn generates_fast_enough_for_benchmarks() {
        if cfg!(debug_assertions) {
            return;
        }
        let config = DemoConfig {
            rate: 0.0,
            ..every_incident()
        };
        let mut generator = Generator::new(&config);
        let now = start();
        let began = std::time::Instant::now();
        let mut bytes = 0;
        for _ in 0..1_000_000 {
            bytes += generator.next_line(now).line.len();
        }
        let rate = 1e6 / began.elapsed().as_secs_f64();
        eprintln!("{rate:.0} lines/s, {bytes} bytes");
        assert!(rate > 200_000.0, "{rate:.0} lines/s");
    }

    #[test]
    fn number_formatting_matches_nautilus() {
        assert_eq!(fmt_fixed(100_000_000_000_000, 8), "1_000_000.00000000");
        assert_eq!(fmt_fixed(27_002_920, 8), "0.27002920");
        assert_eq!(fmt_fixed(-54_007_480, 8), "-0.54007480");
        assert_eq!(fmt_fixed(675_073, 1), "67_507.3");
        assert_eq!(fmt_fixed(306_342, 2), "3_063.42");
        assert_eq!(fmt_fixed(20, 3), "0.020");
        assert_eq!(fmt_fixed(-1_000, 3), "-1.000");
        assert_eq!(fmt_fixed(0, 8), "0.00000000");
        assert_eq!(fmt_plain(675_073, 1), "67507.3");
        assert_eq!(py_float(-0.02), "-0.02");
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(0.0), "0.0");
        assert_eq!(py_float(67507.3), "67507.3");
        assert_eq!(py_float((67507.3 + 67511.4) / 2.0), "67509.35");
        assert_eq!(py_float(1e-5), "1e-05");
        assert_eq!(py_float(2.5e16), "2.5e+16");
        assert_eq!(fmt_return(-0.0000001), "0.00000");
        assert_eq!(fmt_return(0.000509), "0.00051");
        let mut s = String::new();
        let mut stamps = SecondStamp::default();
        stamps.push(&mut s, 1_717_372_811_068_363_520);
        assert_eq!(s, "2024-06-03T00:00:11.068363520Z");
        s.clear();
        stamps.push(&mut s, 1_717_372_811_000_000_007);
        assert_eq!(s, "2024-06-03T00:00:11.000000007Z");
        s.clear();
        stamps.push(&mut s, 1_717_372_812_000_000_000);
        assert_eq!(s, "2024-06-03T00:00:12.000000000Z");
        assert_eq!(
            client_order_id(1_717_372_811_068_363_520, "001-001", 1),
            "O-20240603-000011-001-001-1"
        );
    }
}
