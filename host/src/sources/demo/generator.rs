//! Synthetic NautilusTrader live-trading log stream for demos and soak tests.
//!
//! Sluice has to be shown and load-tested without a live Binance account, and a
//! parser, redactor or latency metric tuned on toy lines tells us nothing about
//! real logs. So this module simulates the small part of a NautilusTrader node
//! that produces log lines for a Binance USDT-M hedge-grid bot (strategy, order
//! lifecycle, positions, account, REST and WebSocket clients) and renders each
//! line in NautilusTrader's PLAIN format. Event shapes are copied from a real
//! NautilusTrader 1.221.0 log (`shared/fixtures/nautilus/sample.log`); the REST,
//! WebSocket and rate-limit lines, which backtests never write, follow what the
//! live Binance adapter logs.
//!
//! Because it is a simulation rather than independent random lines, the
//! cross-line invariants a pipeline test may rely on hold: an order is filled
//! only after it was submitted and accepted, venue latency shows both in the
//! `ts_event` nanoseconds and in the spacing of line timestamps, and positions
//! and balances add up. Everything random comes from one seeded RNG, so a seed
//! and a sequence of `now` values always give the same lines.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;

/// Settings of the `demo` source, as written in the pipeline config.
#[derive(Debug, Clone, Deserialize)]
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
    /// Fraction of orders rejected.
    pub reject_ratio: f64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            rate: 200.0,
            count: None,
            seed: 42,
            trader_id: "TRADER-001".to_string(),
            secret_ratio: 0.02,
            reject_ratio: 0.03,
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

/// What a line is about, so tests can compare a pipeline's counts with the source's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LineKind {
    OrderSubmitted,
    OrderAccepted,
    OrderFilled,
    OrderPartiallyFilled,
    OrderCanceled,
    OrderRejected,
    SubmitCommand,
    RestCall,
    RateLimit,
    WebSocketConnected,
    WebSocketDisconnected,
    WebSocketReconnected,
    Balance,
    Position,
    Error,
    Heartbeat,
    Secret,
}

impl LineKind {
    pub const COUNT: usize = 17;
    pub const ALL: [LineKind; LineKind::COUNT] = [
        LineKind::OrderSubmitted,
        LineKind::OrderAccepted,
        LineKind::OrderFilled,
        LineKind::OrderPartiallyFilled,
        LineKind::OrderCanceled,
        LineKind::OrderRejected,
        LineKind::SubmitCommand,
        LineKind::RestCall,
        LineKind::RateLimit,
        LineKind::WebSocketConnected,
        LineKind::WebSocketDisconnected,
        LineKind::WebSocketReconnected,
        LineKind::Balance,
        LineKind::Position,
        LineKind::Error,
        LineKind::Heartbeat,
        LineKind::Secret,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// One generated line. `planted_secret` is set exactly when `kind` is
/// [`LineKind::Secret`], so a redaction test can check the secret is gone
/// downstream without re-deriving where it sits in the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoLine {
    pub line: String,
    pub kind: LineKind,
    pub planted_secret: Option<String>,
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
}

impl OrderCounts {
    /// Orders submitted but without a final status yet (cut off by `count`).
    pub fn open(&self) -> u64 {
        self.submitted - self.filled - self.canceled - self.rejected
    }
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
}

impl DemoStats {
    pub fn lines_of(&self, kind: LineKind) -> u64 {
        self.per_kind[kind.index()]
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
}

impl Order {
    fn remaining(&self) -> i64 {
        self.lots - self.filled
    }

    fn position_id(&self) -> String {
        position_id(self.inst, self.pos_side)
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WsState {
    Idle,
    Connected,
    Reconnecting,
}

struct Stream {
    url: String,
    /// Core streams are never closed on purpose, only dropped and re-dialled.
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
}

struct Draft {
    kind: LineKind,
    level: Level,
    component: &'static str,
    message: String,
    secret: Option<String>,
    effect: Effect,
}

impl Draft {
    fn new(kind: LineKind, level: Level, component: &'static str, message: String) -> Self {
        Self {
            kind,
            level,
            component,
            message,
            secret: None,
            effect: Effect::None,
        }
    }

    fn with_effect(mut self, effect: Effect) -> Self {
        self.effect = effect;
        self
    }

    fn secret(level: Level, component: &'static str, message: String, secret: String) -> Self {
        Self {
            kind: LineKind::Secret,
            level,
            component,
            message,
            secret: Some(secret),
            effect: Effect::None,
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
        }
    }
}

enum Event {
    Submitted(u64),
    Accepted(u64),
    Rejected(u64),
    Fill { order: u64, venue_ts: i64 },
    Canceled { order: u64, venue_ts: i64 },
    Http(HttpCall),
    Reconnected(usize),
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

/// What a line slot not taken by a due follow-up event is used for. Every
/// order brings about twelve follow-up lines, so these weights give a stream
/// that is ~70% order flow (as in real Nautilus logs, where the Portfolio and
/// strategy events dominate) while order counts and request weight stay at
/// about 2/3 of Binance's limits.
#[derive(Debug, Clone, Copy)]
enum Spontaneous {
    NewOrder,
    Rest,
    RateLimit,
    WsConnect,
    WsDisconnect,
    Error,
    Heartbeat,
}

const SPONTANEOUS: [(Spontaneous, f64); 7] = [
    (Spontaneous::NewOrder, 0.270),
    (Spontaneous::Rest, 0.260),
    (Spontaneous::RateLimit, 0.070),
    (Spontaneous::WsConnect, 0.002),
    (Spontaneous::WsDisconnect, 0.006),
    (Spontaneous::Error, 0.012),
    (Spontaneous::Heartbeat, 0.380),
];

/// Polled endpoints with their Binance request weight and how often the bot
/// calls them. Placing an order weighs 0 on the IP limit (it counts against
/// the order limits instead); the mix keeps the default stream near 2/3 of the
/// 2400/min weight budget, so 429s stay the exception they are in practice.
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

const ERRORS: [(&str, &str); 6] = [
    (
        C_EXEC,
        "Error connecting to exchange: ClientConnectorError: Cannot connect to host fapi.binance.com:443 ssl:default [Connection reset by peer]",
    ),
    (
        C_DATA,
        "Error connecting to exchange: TimeoutError: WebSocket handshake with wss://fstream.binance.com timed out after 10.0s",
    ),
    (
        C_EXEC,
        "Order execution failed: BinanceServerError(status=503, message={'code': -1001, 'msg': 'Internal error; unable to process your request. Please try again.'})",
    ),
    (
        C_ENGINE,
        "Error reconciling open orders: request GET /fapi/v1/openOrders timed out after 10.0s",
    ),
    (
        C_WS,
        "Error handling message: ConnectionClosedError: no close frame received or sent",
    ),
    (
        C_EXEC,
        "Failed to query account balances: BinanceServerError(status=502, message=Bad Gateway)",
    ),
];

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
    market_ns: i64,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    orders: BTreeMap<u64, Order>,
    next_order_no: u64,
    next_venue_id: [u64; 2],
    next_trade_id: [u64; 2],
    mids: [f64; 2],
    positions: [[Position; 2]; 2],
    wallet: i64,
    weight_1m: Window,
    orders_10s: Window,
    orders_1m: Window,
    streams: Vec<Stream>,
    api_key: String,
    listen_key: String,
    stats: DemoStats,
}

impl Generator {
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
        Self {
            rng,
            trader_id: config.trader_id.clone(),
            order_id_tags: format!("{trader_tag}-{STRATEGY_TAG}"),
            secret_ratio: unit_interval(config.secret_ratio),
            reject_ratio: unit_interval(config.reject_ratio),
            count: config.count,
            virtual_gap_ns,
            last_ns: None,
            clock: 0,
            market_ns: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            orders: BTreeMap::new(),
            next_order_no: 1,
            next_venue_id,
            next_trade_id,
            mids: [INSTRUMENTS[0].anchor_ticks, INSTRUMENTS[1].anchor_ticks],
            positions: Default::default(),
            wallet: START_BALANCE,
            speed,
            weight_1m: Window::new(60 * SEC, speed),
            orders_10s: Window::new(10 * SEC, speed),
            orders_1m: Window::new(60 * SEC, speed),
            streams,
            api_key,
            listen_key,
            stats: DemoStats::default(),
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

    /// Next line (no trailing newline) and what it planted. `now` is the wall-clock time to stamp on it.
    ///
    /// The stamp is `now` unless that would not move forward: stamps strictly
    /// increase, follow-up events keep their simulated due time (at most
    /// `now`), and with `rate` 0 the stream runs on a simulated 200 lines/s
    /// clock, so its stamps can run ahead of the wall clock.
    pub fn next_line(&mut self, now: DateTime<Utc>) -> DemoLine {
        let now_ns = to_ns(now);
        let vnow = self.virtual_now(now_ns);
        if self.last_ns.is_none() {
            self.start(vnow);
        }
        self.advance_market(vnow);
        let next_due = self.queue.peek().map(|Reverse(s)| s.due);
        // The secret decision comes first and on every line so that
        // `secret_ratio` is the fraction of all lines, not of idle slots.
        let plant = self.secret_ratio > 0.0 && self.rng.random_bool(self.secret_ratio);
        let (t, draft) = if plant {
            let t = self.stamp(next_due.map_or(vnow, |due| due.min(vnow)));
            (t, self.secret_line(t))
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
        let Some(last) = self.last_ns else {
            self.clock = now_ns;
            return now_ns;
        };
        if let Some(mean) = self.virtual_gap_ns {
            let u: f64 = self.rng.random();
            self.clock += ((-(1.0 - u).ln() * mean) as i64).max(1);
        }
        self.clock = self.clock.max(now_ns);
        self.clock.max(last + 1)
    }

    fn stamp(&self, target: i64) -> i64 {
        match self.last_ns {
            Some(last) => target.max(last + 1),
            None => target,
        }
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
        let state = self.account_state();
        self.schedule(t, Event::Line(state));
        for i in 0..self.streams.len() {
            if self.streams[i].core {
                self.streams[i].state = WsState::Connected;
                let message = format!("Connected to {}", self.streams[i].url);
                let draft = Draft::new(LineKind::WebSocketConnected, Level::Info, C_WS, message);
                self.schedule(t, Event::Line(draft));
            }
        }
    }

    fn emit(&mut self, t: i64, draft: Draft) -> DemoLine {
        let mut line = String::with_capacity(64 + self.trader_id.len() + draft.message.len());
        push_timestamp(&mut line, t);
        line.push_str(" [");
        line.push_str(draft.level.as_str());
        line.push_str("] ");
        line.push_str(&self.trader_id);
        line.push('.');
        line.push_str(draft.component);
        line.push_str(": ");
        line.push_str(&draft.message);

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
        }
        self.last_ns = Some(t);
        DemoLine {
            line,
            kind: draft.kind,
            planted_secret: draft.secret,
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

    fn advance_market(&mut self, t: i64) {
        if t <= self.market_ns {
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
            Event::Fill { order, venue_ts } => self.on_fill(order, venue_ts, t),
            Event::Canceled { order, venue_ts } => self.on_canceled(order, venue_ts, t),
            Event::Http(call) => self.http_line(call, t),
            Event::Reconnected(i) => {
                self.streams[i].state = WsState::Connected;
                let message = format!("Reconnected to {}", self.streams[i].url);
                Draft::new(LineKind::WebSocketReconnected, Level::Info, C_WS, message)
            }
            Event::Line(draft) => draft,
        }
    }

    fn spontaneous(&mut self, t: i64) -> Draft {
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
            Spontaneous::WsConnect => match self.ws_connect() {
                Some(draft) => draft,
                None => self.heartbeat(),
            },
            Spontaneous::WsDisconnect => match self.ws_disconnect(t) {
                Some(draft) => draft,
                None => self.heartbeat(),
            },
            Spontaneous::Error => {
                let (component, message) = ERRORS[self.rng.random_range(0..ERRORS.len())];
                Draft::new(
                    LineKind::Error,
                    Level::Error,
                    component,
                    message.to_string(),
                )
            }
            Spontaneous::Heartbeat => self.heartbeat(),
        }
    }

    // ----- order lifecycle ----------------------------------------------

    fn start_order(&mut self, t: i64) -> Option<Draft> {
        if self.orders.len() >= MAX_OPEN_ORDERS {
            return None;
        }
        let inst = if self.rng.random_bool(0.6) { 0 } else { 1 };
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
        let fate = if self.rng.random_bool(self.reject_ratio) {
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
        let due = t + self.uniform_us(40, 300);
        self.schedule(due, Event::Submitted(number));
        Some(Draft::new(
            LineKind::SubmitCommand,
            Level::Info,
            STRATEGY,
            message,
        ))
    }

    fn on_submitted(&mut self, key: u64, t: i64) -> Draft {
        let latency = self.venue_latency();
        let Some(order) = self.orders.get(&key) else {
            return self.heartbeat();
        };
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
                self.schedule(t + http_latency, Event::Http(call));
                // Binance stamps its events in whole milliseconds.
                if let Some(order) = self.orders.get_mut(&key) {
                    order.venue_accept_ts = venue_ts;
                }
            }
        }
        Draft::new(LineKind::OrderSubmitted, Level::Info, STRATEGY, message)
            .with_effect(Effect::Submitted)
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
        let (fate, ord_type) = (order.fate, order.ord_type);
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
            (Fate::Reject(_), _) => {}
        }
        let accepted = Draft::new(LineKind::OrderAccepted, Level::Info, STRATEGY, message)
            .with_effect(Effect::Accepted(id));
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
        let race_error_at = race_at + self.uniform_us(50, 300);
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

        let position_message = self.apply_fill(
            inst, pos_side, reduce, &client_id, lots, px, commission, venue_ts,
        );
        let net_message = self.net_position(inst);
        let maint = self.margin_maint_line(inst);
        let state = self.account_state();
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
        self.schedule(
            fill_line_at,
            Event::Line(Draft::new(kind, Level::Info, STRATEGY, fill_message).with_effect(effect)),
        );
        self.schedule(
            position_line_at,
            Event::Line(Draft::new(
                LineKind::Position,
                Level::Info,
                STRATEGY,
                position_message,
            )),
        );
        self.schedule(account_line_at, Event::Line(state));

        if finished {
            if let Some(order) = self.orders.remove(&key) {
                self.release(&order);
            }
            if cancel_race {
                let mut call = HttpCall::ok("DELETE", "/fapi/v1/order", race_latency, 1);
                call.status = 400;
                call.error = Some((-2011, "Unknown order sent.".to_string()));
                self.schedule(race_at, Event::Http(call));
                let message = format!(
                    "Cannot cancel order {client_id} (venue_order_id={venue_id}): BinanceClientError(status=400, message={{'code': -2011, 'msg': 'Unknown order sent.'}})"
                );
                self.schedule(
                    race_error_at,
                    Event::Line(Draft::new(LineKind::Error, Level::Error, C_EXEC, message)),
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
    /// balance change, and its `margins` list is empty in live mode.
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
        let total = self.wallet;
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
        let mut call = HttpCall::ok(
            method,
            path,
            self.lognormal_ns(11.0, 0.6, 2.0, 400.0),
            weight,
        );
        let roll: f64 = self.rng.random();
        if roll < 0.004 {
            call.status = 429;
            call.retry_after_s = Some(self.rng.random_range(5..=60));
        } else if roll < 0.005 {
            call.status = 418;
            call.error = Some((
                -1003,
                format!(
                    "Way too many requests; IP banned until {}. Please use the websocket for live updates to avoid bans.",
                    t / MS + 120_000
                ),
            ));
        } else if roll < 0.010 {
            let (status, error) = match self.rng.random_range(0..3) {
                0 => (502, None),
                1 => (
                    503,
                    Some((
                        -1001,
                        "Internal error; unable to process your request. Please try again.",
                    )),
                ),
                _ => (
                    504,
                    Some((
                        -1007,
                        "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
                    )),
                ),
            };
            call.status = status;
            call.error = error.map(|(code, msg)| (code, msg.to_string()));
            call.latency_ns = self.lognormal_ns(2_000.0, 0.7, 300.0, 10_000.0);
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
        // A refused request costs no weight. Random 429s (Binance also
        // throttles bursts and per-endpoint) therefore show the real budget.
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
        Draft::new(LineKind::RestCall, level, C_HTTP, message)
    }

    fn rate_limit_line(&mut self, t: i64) -> Draft {
        let weight = *self.weight_1m.at(t);
        let o10 = *self.orders_10s.at(t);
        let o1m = *self.orders_1m.at(t);
        let pct = 100.0 * weight as f64 / WEIGHT_LIMIT as f64;
        let hot = weight * 5 >= WEIGHT_LIMIT * 4
            || o10 * 5 >= ORDERS_10S_LIMIT * 4
            || o1m * 5 >= ORDERS_1M_LIMIT * 4;
        let message = format!(
            "{}REQUEST_WEIGHT={weight}/{WEIGHT_LIMIT} ({pct:.1}%), ORDERS_10S={o10}/{ORDERS_10S_LIMIT}, ORDERS_1M={o1m}/{ORDERS_1M_LIMIT}",
            if hot {
                "Approaching rate limit, throttling requests: "
            } else {
                "Rate limit usage: "
            },
        );
        let level = if hot { Level::Warn } else { Level::Info };
        Draft::new(LineKind::RateLimit, level, C_HTTP, message)
    }

    fn ws_connect(&mut self) -> Option<Draft> {
        let idle: Vec<usize> = (0..self.streams.len())
            .filter(|&i| self.streams[i].state == WsState::Idle)
            .collect();
        if idle.is_empty() {
            return None;
        }
        let i = idle[self.rng.random_range(0..idle.len())];
        self.streams[i].state = WsState::Connected;
        let message = format!("Connected to {}", self.streams[i].url);
        Some(Draft::new(
            LineKind::WebSocketConnected,
            Level::Info,
            C_WS,
            message,
        ))
    }

    fn ws_disconnect(&mut self, t: i64) -> Option<Draft> {
        let connected: Vec<usize> = (0..self.streams.len())
            .filter(|&i| self.streams[i].state == WsState::Connected)
            .collect();
        if connected.is_empty() {
            return None;
        }
        let i = connected[self.rng.random_range(0..connected.len())];
        if !self.streams[i].core && self.rng.random_bool(0.4) {
            self.streams[i].state = WsState::Idle;
            let message = format!(
                "Disconnected from {}: code=1000 (normal closure)",
                self.streams[i].url
            );
            return Some(Draft::new(
                LineKind::WebSocketDisconnected,
                Level::Info,
                C_WS,
                message,
            ));
        }
        let backoff = self.lognormal_ns(1_500.0, 0.6, 200.0, 10_000.0);
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

/// RFC 3339 with exactly nine fractional digits and a `Z`, as Nautilus writes.
fn push_timestamp(out: &mut String, ns: i64) {
    let dt = DateTime::from_timestamp_nanos(ns);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.nanosecond(),
    );
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

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

    fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
        let key = format!("{name}=");
        let start = line.find(&key)? + key.len();
        let rest = &line[start..];
        let end = rest.find([',', ')']).unwrap_or(rest.len());
        Some(&rest[..end])
    }

    fn line_ns(line: &str) -> i64 {
        DateTime::parse_from_rfc3339(&line[..30])
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
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
            ..DemoConfig::default()
        };
        let (lines, _) = paced(&config, 20_000);
        for l in &lines {
            assert!(!l.line.contains('\n'));
            parse_plain(&l.line, "HEDGE-GRID-042");
        }
        assert!(lines.iter().any(|l| l.line.contains("-042-001-")));
    }

    #[test]
    fn timestamps_strictly_increase() {
        for step in [
            chrono::Duration::milliseconds(5),
            chrono::Duration::microseconds(100),
            chrono::Duration::zero(),
            chrono::Duration::seconds(2),
        ] {
            let (lines, _) = run(&DemoConfig::default(), 10_000, step);
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
        let (lines, stats) = paced(&DemoConfig::default(), 30_000);
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
            ..DemoConfig::default()
        };
        let (lines, _) = paced(&config, 10_000);
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
        let (lines, stats) = paced(&DemoConfig::default(), 50_000);
        for kind in LineKind::ALL {
            let n = lines.iter().filter(|l| l.kind == kind).count() as u64;
            assert!(n > 0, "{kind:?} never produced");
            assert_eq!(n, stats.lines_of(kind), "{kind:?}");
        }
        assert_eq!(stats.lines, 50_000);
        let sum: u64 = LineKind::ALL.iter().map(|&k| stats.lines_of(k)).sum();
        assert_eq!(sum, stats.lines);
        for status in ["429", "418", "400"] {
            assert!(
                lines
                    .iter()
                    .any(|l| l.kind == LineKind::RestCall
                        && l.line.contains(&format!(" {status} ("))),
                "no {status}"
            );
        }
    }

    #[test]
    fn shapes_match_the_nautilus_sample() {
        let (lines, _) = paced(&DemoConfig::default(), 20_000);
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
        assert!(find("BinanceFuturesHttpClient: GET /fapi/v2/account 200 (")
            .contains("x-mbx-used-weight-1m="));
        assert!(find("POST /fapi/v1/order 200 (").contains("x-mbx-order-count-10s="));
        find("BinanceWebSocketClient: Connected to wss://fstream.binance.com/");
        find("BinanceWebSocketClient: Disconnected from wss://");
        find("BinanceWebSocketClient: Reconnected to wss://");
        find("Portfolio: BTCUSDT-PERP.BINANCE net_position=");
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
    fn reject_ratio_one_rejects_everything() {
        let config = DemoConfig {
            reject_ratio: 1.0,
            ..DemoConfig::default()
        };
        let (_, stats) = paced(&config, 5_000);
        assert!(stats.orders.rejected > 50);
        assert_eq!(stats.orders.accepted, 0);
        assert!(stats.accepted_ids.is_empty());
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
        assert_eq!(config.reject_ratio, 0.03);
        let seeded = MapDeserializer::<_, Error>::new([("seed", 7u64)].into_iter());
        assert_eq!(DemoConfig::deserialize(seeded).unwrap().seed, 7);
        let unknown = MapDeserializer::<_, Error>::new([("sead", 7u64)].into_iter());
        assert!(DemoConfig::deserialize(unknown).is_err());
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
        push_timestamp(&mut s, 1_717_372_811_068_363_520);
        assert_eq!(s, "2024-06-03T00:00:11.068363520Z");
        assert_eq!(
            client_order_id(1_717_372_811_068_363_520, "001-001", 1),
            "O-20240603-000011-001-001-1"
        );
    }
}
