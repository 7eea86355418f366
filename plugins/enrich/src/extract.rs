//! From one message to the fields of `docs/plugins/fields.md`.
//!
//! Each kind of line is recognised by its shape with a few byte comparisons before
//! anything is parsed, so the common lines (margins, heartbeats, REST calls) cost little
//! and a line of an unknown shape costs almost nothing. A line is written to only once it
//! is known to match, so a record we do not understand is left as it was.

use crate::parse::{self, parse_amount, parse_call, parse_f64, parse_number, Call, Node};
use serde_json::{Map, Number, Value};

/// What the record says about the line besides its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineInfo {
    pub error_level: bool,
    pub component: Component,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    WebSocket,
    /// Talks to the venue: execution and data clients, the Binance adapter, the engine
    /// that reconciles with the venue.
    Exchange,
    Other,
}

impl Component {
    pub fn of(name: &str) -> Self {
        if name.contains("WebSocket") {
            Component::WebSocket
        } else if name.starts_with("Binance")
            || name.starts_with("ExecClient")
            || name.starts_with("DataClient")
            || name == "ExecEngine"
        {
            Component::Exchange
        } else {
            Component::Other
        }
    }
}

pub fn is_error_level(level: &str) -> bool {
    matches!(level, "ERROR" | "ERR" | "CRITICAL" | "FATAL")
}

/// The order a line is about, borrowed from the message until the caller has decided
/// the fill status (which needs the latency tracker) and writes it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct OrderInfo<'a> {
    pub client_order_id: Option<&'a str>,
    pub venue_order_id: Option<&'a str>,
    pub instrument_id: Option<&'a str>,
    pub side: Option<&'a str>,
    pub order_type: Option<&'a str>,
    pub quantity: Option<Number>,
    pub price: Option<Number>,
    pub trigger_price: Option<Number>,
    pub last_qty: Option<Number>,
    pub last_px: Option<Number>,
    pub commission: Option<Number>,
    pub currency: Option<&'a str>,
    pub status: Option<&'static str>,
    pub reason: Option<&'a str>,
    pub trade_id: Option<&'a str>,
    pub position_id: Option<&'a str>,
}

/// What the caller needs beyond the fields already written.
#[derive(Debug, Default)]
pub struct Parsed<'a> {
    /// Event or command name of a Nautilus event line.
    pub event: Option<&'a str>,
    pub order: Option<OrderInfo<'a>>,
    /// `ts_event`, ns.
    pub ts_event: Option<i64>,
    /// Orders of a `SubmitOrderList`: (client order id, quantity).
    pub list_orders: Vec<(&'a str, Option<f64>)>,
    /// The line looked like a Nautilus event but did not parse.
    pub parse_error: Option<parse::ParseError>,
}

/// Writes what `message` tells into `out` (the record's fields).
pub fn extract<'a>(
    message: &'a str,
    line: LineInfo,
    out: &mut Map<String, Value>,
    event_fields: bool,
) -> Parsed<'a> {
    let mut parsed = Parsed::default();
    if let Some((command, start)) = event_start(message) {
        nautilus_event(message, start, command, out, event_fields, &mut parsed);
        return parsed;
    }
    if let Some(start) = message
        .strip_prefix("Updated ")
        .filter(|rest| rest.starts_with("AccountState("))
        .map(|_| "Updated ".len())
    {
        nautilus_event(message, start, false, out, event_fields, &mut parsed);
        return parsed;
    }
    let first = message.as_bytes().first().copied().unwrap_or(0);
    let done = match first {
        b'G' | b'P' | b'D' | b'H' | b'O' => rest_call(message, out),
        _ => false,
    } || match first {
        b'R' => {
            rate_limit(message, out)
                || rest_request(message, out)
                || ws_change(message, line, out)
                || ws_ping(message, out)
        }
        b'A' => rate_limit(message, out),
        b'C' | b'D' => ws_change(message, line, out),
        b'H' => heartbeat(message, out),
        _ => false,
    } || portfolio(message, out);
    if done {
        return parsed;
    }
    if line.component == Component::WebSocket && (line.error_level || message.starts_with("Error"))
    {
        ws_error(message, out);
    } else if line.error_level {
        error(message, line, out, &mut parsed);
    }
    parsed
}

fn put(out: &mut Map<String, Value>, key: &str, value: impl Into<Value>) {
    out.insert(key.to_owned(), value.into());
}

/// The map at `out[key]`, made (or replacing a non-map) if need be.
fn sub<'m>(out: &'m mut Map<String, Value>, key: &str) -> &'m mut Map<String, Value> {
    if !out.get(key).is_some_and(Value::is_object) {
        out.insert(key.to_owned(), Value::Object(Map::new()));
    }
    match out.get_mut(key) {
        Some(Value::Object(map)) => map,
        _ => unreachable!("just made a map"),
    }
}

fn set_event(out: &mut Map<String, Value>, event: &str, kind: Option<&str>) {
    put(out, "event", event);
    if let Some(kind) = kind {
        put(out, "event_kind", kind);
    }
}

// ----- NautilusTrader events and commands -----------------------------------------

/// `<--[EVT] Name(`, `[CMD]--> [Risk] Name(`: whether it is a command, and where the
/// name starts.
fn event_start(message: &str) -> Option<(bool, usize)> {
    let b = message.as_bytes();
    let head = &b[..b.len().min(12)];
    let at = head
        .windows(5)
        .position(|w| w == b"[EVT]" || w == b"[CMD]")?;
    let command = &b[at..at + 5] == b"[CMD]";
    let mut i = at + 5;
    for arrow in [b"-->", b"<--"] {
        if b[i..].starts_with(arrow) {
            i += 3;
        }
    }
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    // The receiving component of a command: `[Risk] `, `[Execution] `.
    if b.get(i) == Some(&b'[') {
        let close = b[i..].iter().position(|&c| c == b']')?;
        i += close + 1;
        while b.get(i) == Some(&b' ') {
            i += 1;
        }
    }
    Some((command, i))
}

fn nautilus_event<'a>(
    message: &'a str,
    start: usize,
    command: bool,
    out: &mut Map<String, Value>,
    event_fields: bool,
    parsed: &mut Parsed<'a>,
) {
    let text = &message[start..];
    // A name with no argument list (`[EVT] Something`) is not a structured event.
    let name_len = text
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
        .count();
    if name_len == 0 || text.as_bytes().get(name_len) != Some(&b'(') {
        return;
    }
    let call = match parse_call(text) {
        Ok((call, end)) if text[end..].trim().is_empty() => call,
        Ok((_, end)) => {
            parsed.parse_error = Some(parse::ParseError {
                at: start + end,
                what: "text after the event",
            });
            return;
        }
        Err(mut e) => {
            e.at += start;
            parsed.parse_error = Some(e);
            return;
        }
    };
    let name = call.name;
    let kind = if command {
        Some("command")
    } else if name.starts_with("Order") {
        Some("order")
    } else if name.starts_with("Position") {
        Some("position")
    } else if name == "AccountState" {
        Some("account")
    } else {
        None
    };
    set_event(out, name, kind);
    parsed.event = Some(name);
    if event_fields {
        put(
            out,
            "event_fields",
            Value::Object(parse::call_to_map(&call)),
        );
    }
    parsed.ts_event = call
        .str("ts_event")
        .and_then(parse_number)
        .and_then(|n| n.as_i64());
    match kind {
        Some("order") => {
            let mut order = OrderInfo::default();
            order_fields(&call, &mut order);
            order.status = status_of(name);
            parsed.order = Some(order);
        }
        Some("command") => {
            let mut order = OrderInfo::default();
            order_fields(&call, &mut order);
            if let Some(list) = call.get("order_list").and_then(Node::as_call) {
                order.instrument_id = order.instrument_id.or(list.str("instrument_id"));
                for o in list
                    .get("orders")
                    .and_then(Node::as_list)
                    .unwrap_or_default()
                {
                    let Some(o) = o.as_call() else { continue };
                    let mut info = OrderInfo::default();
                    order_fields(o, &mut info);
                    if let Some(id) = info.client_order_id {
                        let qty = info.quantity.as_ref().and_then(Number::as_f64);
                        parsed.list_orders.push((id, qty));
                    }
                }
            }
            if order != OrderInfo::default() {
                parsed.order = Some(order);
            }
        }
        Some("position") => position(&call, out),
        Some("account") => account(&call, out),
        _ => {}
    }
}

/// `order.status` as of an order event; `OrderFilled` is decided by the caller.
fn status_of(event: &str) -> Option<&'static str> {
    Some(match event {
        "OrderInitialized" => "initialized",
        "OrderDenied" => "denied",
        "OrderEmulated" => "emulated",
        "OrderReleased" => "released",
        "OrderSubmitted" => "submitted",
        "OrderAccepted" => "accepted",
        "OrderRejected" => "rejected",
        "OrderCanceled" => "canceled",
        "OrderExpired" => "expired",
        "OrderTriggered" => "triggered",
        "OrderPendingUpdate" => "pending_update",
        "OrderPendingCancel" => "pending_cancel",
        "OrderModifyRejected" => "modify_rejected",
        "OrderCancelRejected" => "cancel_rejected",
        "OrderUpdated" => "updated",
        "OrderFilled" => "filled",
        _ => return None,
    })
}

fn side(s: Option<&str>) -> Option<&str> {
    s.filter(|s| matches!(*s, "BUY" | "SELL"))
}

fn number(s: Option<&str>) -> Option<Number> {
    parse_number(s?)
}

fn order_fields<'a>(call: &Call<'a>, o: &mut OrderInfo<'a>) {
    // A command wraps the order: `SubmitOrder(order=LimitOrder(...), position_id=...)`.
    if let Some(inner) = call.get("order").and_then(Node::as_call) {
        order_fields(inner, o);
    }
    if call.name.ends_with("Order") && call.name != "SubmitOrder" {
        if let Some(header) = call.positional(0).and_then(Node::text) {
            order_header(header, o);
        }
    }
    let set = |slot: &mut Option<&'a str>, value: Option<&'a str>| {
        if value.is_some() {
            *slot = value;
        }
    };
    set(&mut o.client_order_id, call.str("client_order_id"));
    set(&mut o.venue_order_id, call.str("venue_order_id"));
    set(&mut o.instrument_id, call.str("instrument_id"));
    set(
        &mut o.side,
        side(call.str("order_side").or(call.str("side"))),
    );
    set(
        &mut o.order_type,
        call.str("order_type").or(call.str("type")),
    );
    set(&mut o.reason, call.str("reason"));
    set(&mut o.trade_id, call.str("trade_id"));
    set(&mut o.position_id, call.str("position_id"));
    if let Some(q) = number(call.str("quantity")) {
        o.quantity = Some(q);
    }
    if let Some(q) = number(call.str("last_qty")) {
        o.last_qty = Some(q);
    }
    for (key, slot) in [
        ("price", 0),
        ("trigger_price", 1),
        ("last_px", 2),
        ("commission", 3),
    ] {
        let Some((n, ccy)) = call.str(key).and_then(parse_amount) else {
            continue;
        };
        match slot {
            0 => o.price = Some(n),
            1 => o.trigger_price = Some(n),
            2 => o.last_px = Some(n),
            _ => o.commission = Some(n),
        }
        // The traded currency: `last_px`'s first, then the price's; never the
        // commission's (it can be paid in BNB).
        if slot != 3 && o.currency.is_none() {
            o.currency = ccy;
        }
    }
    // `OrderInitialized` keeps prices in `options={'price': '67491.2', ...}`.
    if let Some(options) = call.get("options") {
        if o.price.is_none() {
            o.price = options
                .dict_get("price")
                .and_then(Node::text)
                .and_then(parse_number);
        }
        if o.trigger_price.is_none() {
            o.trigger_price = options
                .dict_get("trigger_price")
                .and_then(Node::text)
                .and_then(parse_number);
        }
    }
}

/// The positional head of an order repr: `BUY 0.012 BTCUSDT-PERP.BINANCE LIMIT @ 67_472.5 GTC`,
/// `SELL 0.050 X STOP_MARKET @ 67_507.4[DEFAULT] GTC`,
/// `BUY 0.050 X LIMIT_IF_TOUCHED @ 67_516.0-STOP[DEFAULT] 67_516.0-LIMIT GTD 2024-...`,
/// `BUY 1.000 X TRAILING_STOP_MARKET[LAST_PRICE] 0.50-TRAILING_OFFSET[BASIS_POINTS] GTC`.
fn order_header<'a>(header: &'a str, o: &mut OrderInfo<'a>) {
    let mut tokens = header.split(' ').filter(|t| !t.is_empty());
    let (Some(s), Some(qty), Some(instrument), Some(kind)) =
        (tokens.next(), tokens.next(), tokens.next(), tokens.next())
    else {
        return;
    };
    let Some(s) = side(Some(s)) else { return };
    o.side = Some(s);
    o.quantity = parse_number(qty);
    o.instrument_id = Some(instrument);
    let kind = strip_bracket(kind);
    o.order_type = Some(kind);
    if tokens.next() != Some("@") {
        return;
    }
    let limit_kind = kind.contains("LIMIT");
    for token in tokens {
        let token = strip_bracket(token);
        let (value, role) = match token.rsplit_once('-') {
            Some((v, "STOP")) => (v, false),
            Some((v, "LIMIT")) => (v, true),
            _ => (token, limit_kind),
        };
        let Some(n) = parse_number(value) else {
            // Time in force and what follows it.
            break;
        };
        if role {
            o.price = Some(n);
        } else {
            o.trigger_price = Some(n);
        }
    }
}

/// `67_507.4[DEFAULT]` → `67_507.4`.
fn strip_bracket(token: &str) -> &str {
    match token.find('[') {
        Some(i) if token.ends_with(']') => &token[..i],
        _ => token,
    }
}

impl OrderInfo<'_> {
    /// Writes `order.*`, merged into an `order` map the record may already have.
    pub fn write(&self, out: &mut Map<String, Value>) {
        let map = sub(out, "order");
        let mut text = |key: &str, v: Option<&str>| {
            if let Some(v) = v {
                map.insert(key.to_owned(), Value::String(v.to_owned()));
            }
        };
        text("client_order_id", self.client_order_id);
        text("venue_order_id", self.venue_order_id);
        text("instrument_id", self.instrument_id);
        if let Some((symbol, venue)) = self.instrument_id.and_then(|i| i.rsplit_once('.')) {
            text("symbol", Some(symbol));
            text("venue", Some(venue));
        }
        text("side", self.side);
        text("type", self.order_type);
        text("currency", self.currency);
        text("status", self.status);
        text("reason", self.reason);
        text("trade_id", self.trade_id);
        text("position_id", self.position_id);
        for (key, v) in [
            ("quantity", &self.quantity),
            ("price", &self.price),
            ("trigger_price", &self.trigger_price),
            ("last_qty", &self.last_qty),
            ("last_px", &self.last_px),
            ("commission", &self.commission),
        ] {
            if let Some(n) = v {
                map.insert(key.to_owned(), Value::Number(n.clone()));
            }
        }
    }
}

fn amount_value(s: Option<&str>) -> Option<Value> {
    parse_amount(s?).map(|(n, _)| Value::Number(n))
}

fn position(call: &Call<'_>, out: &mut Map<String, Value>) {
    let map = sub(out, "position");
    for key in ["instrument_id", "position_id", "side"] {
        if let Some(v) = call.str(key) {
            map.insert(key.to_owned(), Value::String(v.to_owned()));
        }
    }
    for key in [
        "signed_qty",
        "quantity",
        "avg_px_open",
        "realized_pnl",
        "unrealized_pnl",
    ] {
        if let Some(v) = amount_value(call.str(key)) {
            map.insert(key.to_owned(), v);
        }
    }
}

fn account(call: &Call<'_>, out: &mut Map<String, Value>) {
    let map = sub(out, "account");
    if let Some(id) = call.str("account_id") {
        map.insert("account_id".to_owned(), Value::String(id.to_owned()));
    }
    let mut balances = Vec::new();
    for b in call
        .get("balances")
        .and_then(Node::as_list)
        .unwrap_or_default()
    {
        let Some(b) = b.as_call() else { continue };
        let mut entry = Map::new();
        for key in ["total", "locked", "free"] {
            if let Some((n, ccy)) = b.str(key).and_then(parse_amount) {
                entry.insert(key.to_owned(), Value::Number(n));
                if let Some(ccy) = ccy {
                    entry
                        .entry("currency")
                        .or_insert_with(|| Value::String(ccy.to_owned()));
                }
            }
        }
        balances.push(Value::Object(entry));
    }
    map.insert("balances".to_owned(), Value::Array(balances));
    let mut margins = Vec::new();
    for m in call
        .get("margins")
        .and_then(Node::as_list)
        .unwrap_or_default()
    {
        let Some(m) = m.as_call() else { continue };
        let mut entry = Map::new();
        if let Some(id) = m.str("instrument_id") {
            entry.insert("instrument_id".to_owned(), Value::String(id.to_owned()));
        }
        for key in ["initial", "maintenance"] {
            if let Some((n, ccy)) = m.str(key).and_then(parse_amount) {
                entry.insert(key.to_owned(), Value::Number(n));
                if let Some(ccy) = ccy {
                    entry
                        .entry("currency")
                        .or_insert_with(|| Value::String(ccy.to_owned()));
                }
            }
        }
        margins.push(Value::Object(entry));
    }
    map.insert("margins".to_owned(), Value::Array(margins));
}

// ----- Binance REST -------------------------------------------------------------------

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// `GET /fapi/v2/account?x=1` → ("GET", "/fapi/v2/account", rest after the path).
fn method_and_path(s: &str) -> Option<(&str, &str, &str)> {
    let (method, rest) = s.split_once(' ')?;
    if !METHODS.contains(&method) || !rest.starts_with('/') {
        return None;
    }
    let (path, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let endpoint = path.split_once('?').map_or(path, |(p, _)| p);
    Some((method, endpoint, rest))
}

/// `GET /fapi/v2/account 200 (12.4ms) x-mbx-used-weight-1m=37/2400 [x-mbx-order-count-10s=1/300
/// x-mbx-order-count-1m=5/1200] [retry-after=12] [code=-2011 msg='Unknown order sent.']`
fn rest_call(message: &str, out: &mut Map<String, Value>) -> bool {
    let Some((method, endpoint, rest)) = method_and_path(message) else {
        return false;
    };
    let (status, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if status.len() != 3 || !status.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    set_event(out, "rest_call", Some("rest"));
    let map = sub(out, "rest");
    map.insert("method".to_owned(), method.into());
    map.insert("endpoint".to_owned(), endpoint.into());
    map.insert(
        "status".to_owned(),
        status.parse::<u16>().unwrap_or_default().into(),
    );
    if let Some(inner) = rest.strip_prefix('(') {
        if let Some(close) = inner.find(')') {
            if let Some(seconds) = duration_seconds(&inner[..close]) {
                map.insert("latency_seconds".to_owned(), seconds.into());
            }
            rest = inner[close + 1..].trim_start();
        }
    }
    while !rest.is_empty() {
        // Binance's message is free text and comes last.
        if let Some(msg) = rest.strip_prefix("msg=") {
            map.insert("error_message".to_owned(), unquote(msg).into());
            break;
        }
        let (token, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        rest = tail.trim_start();
        let Some((key, value)) = token.split_once('=') else {
            continue;
        };
        let ratio = || {
            let (used, limit) = value.split_once('/')?;
            Some((parse_number(used)?, parse_number(limit)?))
        };
        let pair = |used: &str, limit: &str, map: &mut Map<String, Value>| {
            if let Some((u, l)) = ratio() {
                map.insert(used.to_owned(), Value::Number(u));
                map.insert(limit.to_owned(), Value::Number(l));
            }
        };
        match key {
            k if k.starts_with("x-mbx-used-weight") => pair("used_weight", "weight_limit", map),
            "x-mbx-order-count-10s" => pair("order_count_10s", "order_limit_10s", map),
            "x-mbx-order-count-1m" => pair("order_count_1m", "order_limit_1m", map),
            "retry-after" => {
                if let Some(n) = parse_number(value) {
                    map.insert("retry_after_seconds".to_owned(), Value::Number(n));
                }
            }
            "code" => {
                if let Some(n) = parse_number(value) {
                    map.insert("error_code".to_owned(), Value::Number(n));
                }
            }
            _ => {}
        }
    }
    true
}

/// `Request POST /fapi/v1/order?symbol=...&signature=...`: the method and endpoint only;
/// the query (and the signature in it) is left to `redact`.
fn rest_request(message: &str, out: &mut Map<String, Value>) -> bool {
    let Some((method, endpoint, _)) = message.strip_prefix("Request ").and_then(method_and_path)
    else {
        return false;
    };
    set_event(out, "rest_request", Some("rest"));
    let map = sub(out, "rest");
    map.insert("method".to_owned(), method.into());
    map.insert("endpoint".to_owned(), endpoint.into());
    true
}

/// `12.4ms`, `0.7s`, `850us`, `850µs` → seconds.
fn duration_seconds(s: &str) -> Option<f64> {
    let split = s
        .bytes()
        .position(|c| !(c.is_ascii_digit() || c == b'.' || c == b'_'))
        .unwrap_or(s.len());
    let value = parse_f64(&s[..split])?;
    let per_second = match s[split..].trim() {
        "s" => 1.0,
        "ms" => 1e3,
        "us" | "µs" => 1e6,
        "ns" => 1e9,
        _ => return None,
    };
    Some(value / per_second)
}

/// `'text'` or `"text"` → `text`; anything else as it is.
fn unquote(s: &str) -> &str {
    let s = s.trim_end();
    let b = s.as_bytes();
    if b.len() >= 2 && matches!(b[0], b'\'' | b'"') && b[b.len() - 1] == b[0] {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// `Rate limit usage: REQUEST_WEIGHT=11/2400 (0.5%), ORDERS_10S=9/300, ORDERS_1M=9/1200`,
/// also the `Approaching rate limit, throttling requests: ...` warning.
fn rate_limit(message: &str, out: &mut Map<String, Value>) -> bool {
    if !(message.starts_with("Rate limit") || message.starts_with("Approaching rate limit")) {
        return false;
    }
    let Some((_, body)) = message.split_once(": ") else {
        return false;
    };
    let mut limits = Map::new();
    for item in body.split(',') {
        let item = item.trim();
        let Some((name, value)) = item.split_once('=') else {
            continue;
        };
        if name.is_empty()
            || !name
                .bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
        {
            continue;
        }
        let value = value.split(' ').next().unwrap_or_default();
        let Some((used, limit)) = value.split_once('/') else {
            continue;
        };
        let (Some(used), Some(limit)) = (parse_number(used), parse_number(limit)) else {
            continue;
        };
        let mut entry = Map::new();
        if let (Some(u), Some(l)) = (used.as_f64(), limit.as_f64()) {
            if l > 0.0 {
                entry.insert("ratio".to_owned(), (u / l).into());
            }
        }
        entry.insert("used".to_owned(), Value::Number(used));
        entry.insert("limit".to_owned(), Value::Number(limit));
        limits.insert(name.to_owned(), Value::Object(entry));
    }
    if limits.is_empty() {
        return false;
    }
    set_event(out, "rate_limit", Some("rate_limit"));
    out.insert("rate_limit".to_owned(), Value::Object(limits));
    true
}

// ----- WebSocket ------------------------------------------------------------------------

fn is_ws_url(s: &str) -> bool {
    s.starts_with("wss://") || s.starts_with("ws://")
}

/// `Connected to wss://...`, `Reconnected to wss://...`,
/// `Disconnected from wss://...: code=1006 (abnormal closure), reconnecting in 0.7s`.
fn ws_change(message: &str, line: LineInfo, out: &mut Map<String, Value>) -> bool {
    let (event, state, rest) = if let Some(rest) = message.strip_prefix("Connected to ") {
        ("ws_connected", "connected", rest)
    } else if let Some(rest) = message.strip_prefix("Reconnected to ") {
        ("ws_reconnected", "reconnected", rest)
    } else if let Some(rest) = message.strip_prefix("Disconnected from ") {
        ("ws_disconnected", "disconnected", rest)
    } else {
        return false;
    };
    let (url, details) = match rest.find(' ') {
        Some(i) => (&rest[..i], rest[i + 1..].trim()),
        None => (rest, ""),
    };
    let url = url.strip_suffix(':').unwrap_or(url);
    if url.is_empty() || !(is_ws_url(url) || line.component == Component::WebSocket) {
        return false;
    }
    set_event(out, event, Some("websocket"));
    let map = sub(out, "ws");
    map.insert("state".to_owned(), state.into());
    map.insert("url".to_owned(), url.into());
    for part in details.split(", ") {
        if let Some(code) = part.strip_prefix("code=") {
            let (number, reason) = code.split_once(' ').unwrap_or((code, ""));
            if let Some(n) = parse_number(number) {
                map.insert("code".to_owned(), Value::Number(n));
            }
            let reason = reason.trim();
            let reason = reason
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .unwrap_or(reason);
            if !reason.is_empty() {
                map.insert("reason".to_owned(), reason.into());
            }
        } else if let Some(delay) = part.strip_prefix("reconnecting in ") {
            if let Some(seconds) = duration_seconds(delay.trim()) {
                map.insert("reconnect_in_seconds".to_owned(), seconds.into());
            }
        }
    }
    true
}

/// `Received ping from fstream.binance.com, sent pong`: the connection is alive.
fn ws_ping(message: &str, out: &mut Map<String, Value>) -> bool {
    if !message.starts_with("Received ping") {
        return false;
    }
    set_event(out, "ws_ping", Some("websocket"));
    true
}

fn ws_error(message: &str, out: &mut Map<String, Value>) {
    set_event(out, "ws_error", Some("websocket"));
    let found = exception(message);
    let detail = match found {
        Some((_, after)) => after,
        None => message.split_once(": ").map_or(message, |(_, d)| d),
    };
    if let Some((name, _)) = found {
        sub(out, "error").insert("type".to_owned(), name.into());
    }
    let map = sub(out, "ws");
    map.insert("state".to_owned(), "error".into());
    let detail = detail.trim();
    if !detail.is_empty() {
        map.insert("reason".to_owned(), detail.into());
    }
}

// ----- errors -------------------------------------------------------------------------

/// The first exception class name in a message (`ClientConnectorError`,
/// `BinanceServerError(`) and the text after it.
fn exception(message: &str) -> Option<(&str, &str)> {
    let b = message.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_uppercase() && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
            let end = i + b[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            let word = &message[i..end];
            let next = b.get(end).copied();
            if (word.ends_with("Error") || word.ends_with("Exception"))
                && matches!(next, None | Some(b':' | b'('))
            {
                let after = message[end..].trim_start_matches(':').trim_start();
                return Some((word, after));
            }
            i = end;
        } else {
            i += 1;
        }
    }
    None
}

/// An ERROR line nothing else claimed: `exchange_error` from venue-facing components or
/// Binance exceptions, `error` otherwise, with the exception type and whatever status,
/// Binance code and order it names.
fn error<'a>(
    message: &'a str,
    line: LineInfo,
    out: &mut Map<String, Value>,
    parsed: &mut Parsed<'a>,
) {
    let found = exception(message);
    let exchange = line.component == Component::Exchange
        || found.is_some_and(|(name, _)| name.starts_with("Binance"));
    set_event(
        out,
        if exchange { "exchange_error" } else { "error" },
        Some("error"),
    );
    if let Some((name, after)) = found {
        sub(out, "error").insert("type".to_owned(), name.into());
        // `BinanceServerError(status=503, message={'code': -1001, 'msg': '...'})`
        if after.starts_with('(') {
            let start = message.len() - after.len() - name.len();
            if let Ok((call, _)) = parse_call(&message[start..]) {
                let map = sub(out, "rest");
                if let Some(n) = number(call.str("status")) {
                    map.insert("status".to_owned(), Value::Number(n));
                }
                match call.get("message") {
                    Some(m @ Node::Dict(_)) => {
                        if let Some(n) = number(m.dict_get("code").and_then(Node::text)) {
                            map.insert("error_code".to_owned(), Value::Number(n));
                        }
                        if let Some(msg) = m.dict_get("msg").and_then(Node::text) {
                            map.insert("error_message".to_owned(), msg.into());
                        }
                    }
                    Some(m) => {
                        if let Some(text) = m.text() {
                            map.insert("error_message".to_owned(), text.into());
                        }
                    }
                    None => {}
                }
                if map.is_empty() {
                    out.remove("rest");
                }
            }
        }
    }
    // `Cannot cancel order O-20240603-000011-001-001-1 (venue_order_id=4000123456): ...`
    if let Some(at) = message.find(" order O-") {
        let id_start = at + " order ".len();
        let id_len = message[id_start..]
            .bytes()
            .take_while(|c| !matches!(c, b' ' | b':' | b',' | b')'))
            .count();
        let mut order = OrderInfo {
            client_order_id: Some(&message[id_start..id_start + id_len]),
            ..OrderInfo::default()
        };
        if let Some(v) = message.split_once("venue_order_id=").map(|(_, v)| v) {
            let len = v
                .bytes()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == b'-')
                .count();
            if len > 0 {
                order.venue_order_id = Some(&v[..len]);
            }
        }
        parsed.order = Some(order);
    }
}

// ----- the bot's own lines ----------------------------------------------------------

/// Portfolio lines: `BTCUSDT-PERP.BINANCE margin_init=0.27002920 USDT`, `... margin_maint=...`,
/// `... net_position=-0.012`.
fn portfolio(message: &str, out: &mut Map<String, Value>) -> bool {
    let Some((instrument, rest)) = message.split_once(' ') else {
        return false;
    };
    if !instrument.contains('.') {
        return false;
    }
    let (event, kind, key, value) = if let Some(v) = rest.strip_prefix("margin_init=") {
        ("margin", "account", "initial", v)
    } else if let Some(v) = rest.strip_prefix("margin_maint=") {
        ("margin", "account", "maintenance", v)
    } else if let Some(v) = rest.strip_prefix("net_position=") {
        ("net_position", "position", "net_qty", v)
    } else {
        return false;
    };
    let Some((n, ccy)) = parse_amount(value) else {
        return false;
    };
    set_event(out, event, Some(kind));
    let map = sub(
        out,
        if event == "margin" {
            "margin"
        } else {
            "position"
        },
    );
    map.insert("instrument_id".to_owned(), instrument.into());
    map.insert(key.to_owned(), Value::Number(n));
    if let Some(ccy) = ccy {
        map.insert("currency".to_owned(), ccy.into());
    }
    true
}

/// The strategy's `Heartbeat BTCUSDT-PERP.BINANCE mid=67_500.0 open_orders=3 long=0.012 short=0.000`.
fn heartbeat(message: &str, out: &mut Map<String, Value>) -> bool {
    let Some(rest) = message.strip_prefix("Heartbeat ") else {
        return false;
    };
    let mut parts = rest.split(' ');
    let instrument = parts.next().unwrap_or_default();
    if instrument.is_empty() || instrument.contains('=') {
        return false;
    }
    let mut map = Map::new();
    map.insert("instrument_id".to_owned(), instrument.into());
    for part in parts {
        if let Some((k, v)) = part.split_once('=') {
            let value = match parse_number(v) {
                Some(n) => Value::Number(n),
                None => Value::String(v.to_owned()),
            };
            map.insert(k.to_owned(), value);
        }
    }
    set_event(out, "heartbeat", Some("strategy"));
    out.insert("heartbeat".to_owned(), Value::Object(map));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const OTHER: LineInfo = LineInfo {
        error_level: false,
        component: Component::Other,
    };

    fn run(message: &str, line: LineInfo) -> (Value, Option<Value>) {
        let mut out = Map::new();
        let parsed = extract(message, line, &mut out, false);
        assert!(parsed.parse_error.is_none(), "{:?}", parsed.parse_error);
        let order = parsed.order.map(|o| {
            let mut m = Map::new();
            o.write(&mut m);
            m.remove("order").unwrap()
        });
        (Value::Object(out), order)
    }

    #[test]
    fn order_filled_generator_and_nautilus() {
        let (out, order) = run("<--[EVT] OrderFilled(instrument_id=BTCUSDT-PERP.BINANCE, client_order_id=O-20240603-000011-001-001-7, venue_order_id=4000123456, account_id=BINANCE-001, trade_id=5200000001, position_id=BTCUSDT-PERP.BINANCE-LONG, order_side=BUY, order_type=LIMIT, last_qty=0.012, last_px=62_001.3 USDT, commission=0.14880312 USDT, liquidity_side=MAKER, ts_event=1709251443474513664)", OTHER);
        assert_eq!(out, json!({"event": "OrderFilled", "event_kind": "order"}));
        assert_eq!(
            order.unwrap(),
            json!({
                "client_order_id": "O-20240603-000011-001-001-7",
                "venue_order_id": "4000123456",
                "instrument_id": "BTCUSDT-PERP.BINANCE",
                "symbol": "BTCUSDT-PERP",
                "venue": "BINANCE",
                "side": "BUY",
                "type": "LIMIT",
                "last_qty": 0.012,
                "last_px": 62001.3,
                "commission": 0.14880312,
                "currency": "USDT",
                "status": "filled",
                "trade_id": "5200000001",
                "position_id": "BTCUSDT-PERP.BINANCE-LONG"
            })
        );
    }

    #[test]
    fn submit_order_commands_of_every_order_type() {
        let cases = [
            ("[CMD]--> [Risk] SubmitOrder(order=LimitOrder(BUY 0.012 BTCUSDT-PERP.BINANCE LIMIT @ 67_472.5 GTC, status=INITIALIZED, client_order_id=O-1, venue_order_id=None, position_id=None, tags=None), position_id=None)",
             json!({"client_order_id": "O-1", "instrument_id": "BTCUSDT-PERP.BINANCE", "symbol": "BTCUSDT-PERP", "venue": "BINANCE", "side": "BUY", "type": "LIMIT", "quantity": 0.012, "price": 67472.5})),
            ("[CMD]--> [Risk] SubmitOrder(order=MarketOrder(SELL 1.000 ETHUSDT-PERP.BINANCE MARKET GTC, status=INITIALIZED, client_order_id=O-2, venue_order_id=None, position_id=None, tags=None), position_id=ETHUSDT-PERP.BINANCE-SHORT)",
             json!({"client_order_id": "O-2", "instrument_id": "ETHUSDT-PERP.BINANCE", "symbol": "ETHUSDT-PERP", "venue": "BINANCE", "side": "SELL", "type": "MARKET", "quantity": 1.0, "position_id": "ETHUSDT-PERP.BINANCE-SHORT"})),
            ("[CMD]--> [Risk] SubmitOrder(order=StopMarketOrder(SELL 0.050 BTCUSDT-PERP.BINANCE STOP_MARKET @ 67_507.4[DEFAULT] GTC, status=INITIALIZED, client_order_id=O-3, venue_order_id=None, position_id=None, tags=None), position_id=None)",
             json!({"client_order_id": "O-3", "instrument_id": "BTCUSDT-PERP.BINANCE", "symbol": "BTCUSDT-PERP", "venue": "BINANCE", "side": "SELL", "type": "STOP_MARKET", "quantity": 0.05, "trigger_price": 67507.4})),
            ("[CMD]--> [Risk] SubmitOrder(order=TrailingStopMarketOrder(BUY 1.000 ETHUSDT-PERP.BINANCE TRAILING_STOP_MARKET[LAST_PRICE] 0.50-TRAILING_OFFSET[BASIS_POINTS] GTC, status=INITIALIZED, client_order_id=O-4, venue_order_id=None, position_id=None, tags=None), position_id=None)",
             json!({"client_order_id": "O-4", "instrument_id": "ETHUSDT-PERP.BINANCE", "symbol": "ETHUSDT-PERP", "venue": "BINANCE", "side": "BUY", "type": "TRAILING_STOP_MARKET", "quantity": 1.0})),
        ];
        for (message, want) in cases {
            let (out, order) = run(message, OTHER);
            assert_eq!(
                out,
                json!({"event": "SubmitOrder", "event_kind": "command"})
            );
            assert_eq!(order.unwrap(), want, "{message}");
        }
    }

    #[test]
    fn limit_if_touched_in_an_order_list() {
        let mut out = Map::new();
        let parsed = extract("[CMD]--> [Risk] SubmitOrderList(order_list=OrderList(id=OL-1, instrument_id=BTCUSDT-PERP.BINANCE, strategy_id=S-000, orders=[LimitIfTouchedOrder(BUY 0.050 BTCUSDT-PERP.BINANCE LIMIT_IF_TOUCHED @ 67_516.0-STOP[DEFAULT] 67_510.0-LIMIT GTD 2024-06-03T00:12:42.138Z, status=INITIALIZED, client_order_id=O-1, tags=['ENTRY']), StopMarketOrder(SELL 0.050 BTCUSDT-PERP.BINANCE STOP_MARKET @ 67_507.4[DEFAULT] GTC, status=INITIALIZED, client_order_id=O-2, tags=['STOP_LOSS'])]), position_id=None)", OTHER, &mut out, true);
        assert_eq!(
            parsed.list_orders,
            vec![("O-1", Some(0.05)), ("O-2", Some(0.05))]
        );
        let order = parsed.order.unwrap();
        assert_eq!(order.instrument_id, Some("BTCUSDT-PERP.BINANCE"));
        assert_eq!(order.client_order_id, None);
        let first = &out["event_fields"]["order_list"]["orders"][0];
        assert_eq!(first["_type"], "LimitIfTouchedOrder");
        assert_eq!(first["tags"], json!(["ENTRY"]));

        let mut o = OrderInfo::default();
        order_header("BUY 0.050 X LIMIT_IF_TOUCHED @ 67_516.0-STOP[DEFAULT] 67_510.0-LIMIT GTD 2024-06-03T00:12:42.138Z", &mut o);
        assert_eq!(o.price.and_then(|n| n.as_f64()), Some(67510.0));
        assert_eq!(o.trigger_price.and_then(|n| n.as_f64()), Some(67516.0));
        assert_eq!(o.order_type, Some("LIMIT_IF_TOUCHED"));
    }

    #[test]
    fn order_lifecycle_events() {
        let (_, order) = run("<--[EVT] OrderRejected(instrument_id=BTCUSDT-PERP.BINANCE, client_order_id=O-9, account_id=BINANCE-001, reason='Due to the order could not be executed as maker, the Post Only order will be rejected.', due_post_only=True, ts_event=1)", OTHER);
        let order = order.unwrap();
        assert_eq!(order["status"], "rejected");
        assert_eq!(
            order["reason"],
            "Due to the order could not be executed as maker, the Post Only order will be rejected."
        );
        let (_, order) = run("<--[EVT] OrderInitialized(instrument_id=BTCUSDT-PERP.BINANCE, client_order_id=O-1, side=BUY, type=LIMIT, quantity=0.020, time_in_force=GTC, post_only=False, reduce_only=False, quote_quantity=False, options={'price': '67491.2', 'display_qty': None, 'expire_time_ns': 0}, emulation_trigger=NO_TRIGGER, tags=None)", OTHER);
        let order = order.unwrap();
        assert_eq!(
            (order["status"].as_str(), order["side"].as_str()),
            (Some("initialized"), Some("BUY"))
        );
        assert_eq!(
            (order["quantity"].as_f64(), order["price"].as_f64()),
            (Some(0.02), Some(67491.2))
        );
        let (_, order) = run("<--[EVT] OrderUpdated(instrument_id=BTCUSDT-PERP.BINANCE, client_order_id=O-2, venue_order_id=BINANCE-1-002, account_id=BINANCE-001, quantity=0.020, price=67_507.3, trigger_price=None, ts_event=1717372817382214144)", OTHER);
        let order = order.unwrap();
        assert_eq!(order["status"], "updated");
        assert_eq!(order["price"], 67507.3);
        assert!(order.get("trigger_price").is_none());
        let (out, order) = run("[CMD]--> [Risk] ModifyOrder(instrument_id=BTCUSDT-PERP.BINANCE, client_order_id=O-2, venue_order_id=BINANCE-1-002, quantity=None, price=67_507.3, trigger_price=None)", OTHER);
        assert_eq!(out["event"], "ModifyOrder");
        let order = order.unwrap();
        assert!(order.get("status").is_none() && order.get("quantity").is_none());
        let (out, order) = run("[CMD]--> SubscribeBars(bar_type=BTCUSDT-PERP.BINANCE-100-TICK-LAST-INTERNAL, client_id=None, venue=BINANCE)", OTHER);
        assert_eq!(
            out,
            json!({"event": "SubscribeBars", "event_kind": "command"})
        );
        assert_eq!(order, None);
    }

    #[test]
    fn positions_and_accounts() {
        let (out, _) = run("<--[EVT] PositionChanged(instrument_id=BTCUSDT-PERP.BINANCE, position_id=BTCUSDT-PERP.BINANCE-ExecTester-003, account_id=BINANCE-001, opening_order_id=O-1, closing_order_id=None, entry=SELL, side=SHORT, signed_qty=-0.04, quantity=0.040, peak_qty=0.040, currency=USDT, avg_px_open=67509.34999999999, avg_px_close=0.0, realized_return=0.00000, realized_pnl=-0.54007480 USDT, unrealized_pnl=-0.08200000 USDT, ts_opened=1, ts_last=2, ts_closed=0, duration_ns=0)", OTHER);
        assert_eq!(out["event_kind"], "position");
        assert_eq!(
            out["position"],
            json!({"instrument_id": "BTCUSDT-PERP.BINANCE", "position_id": "BTCUSDT-PERP.BINANCE-ExecTester-003", "side": "SHORT", "signed_qty": -0.04, "quantity": 0.04, "avg_px_open": 67509.34999999999, "realized_pnl": -0.5400748, "unrealized_pnl": -0.082})
        );
        let (out, _) = run("Updated AccountState(account_id=BINANCE-001, account_type=MARGIN, base_currency=None, is_reported=False, balances=[AccountBalance(total=1_000_000.00000000 USDT, locked=6.74912000 USDT, free=999_993.25088000 USDT)], margins=[MarginBalance(initial=6.74912000 USDT, maintenance=0.00000000 USDT, instrument_id=BTCUSDT-PERP.BINANCE)], event_id=3eaad266-b2aa-479f-ab8b-3197f373ac90)", OTHER);
        assert_eq!(out["event"], "AccountState");
        assert_eq!(
            out["account"],
            json!({
                "account_id": "BINANCE-001",
                "balances": [{"currency": "USDT", "total": 1000000.0, "locked": 6.74912, "free": 999993.25088}],
                "margins": [{"instrument_id": "BTCUSDT-PERP.BINANCE", "initial": 6.74912, "maintenance": 0.0, "currency": "USDT"}]
            })
        );
        let (out, _) = run("BTCUSDT-PERP.BINANCE margin_init=0.27002920 USDT", OTHER);
        assert_eq!(
            out,
            json!({"event": "margin", "event_kind": "account", "margin": {"instrument_id": "BTCUSDT-PERP.BINANCE", "initial": 0.2700292, "currency": "USDT"}})
        );
        let (out, _) = run("ETHUSDT-PERP.BINANCE margin_maint=1_234.5 USDT", OTHER);
        assert_eq!(out["margin"]["maintenance"], 1234.5);
        let (out, _) = run("BTCUSDT-PERP.BINANCE net_position=-0.012", OTHER);
        assert_eq!(
            out,
            json!({"event": "net_position", "event_kind": "position", "position": {"instrument_id": "BTCUSDT-PERP.BINANCE", "net_qty": -0.012}})
        );
    }

    #[test]
    fn rest_calls_ok_throttled_and_failed() {
        let (out, _) = run(
            "GET /fapi/v2/account 200 (12.4ms) x-mbx-used-weight-1m=37/2400",
            OTHER,
        );
        assert_eq!(
            out,
            json!({"event": "rest_call", "event_kind": "rest", "rest": {"method": "GET", "endpoint": "/fapi/v2/account", "status": 200, "latency_seconds": 0.0124, "used_weight": 37, "weight_limit": 2400}})
        );
        let (out, _) = run("POST /fapi/v1/order 200 (23.1ms) x-mbx-used-weight-1m=40/2400 x-mbx-order-count-10s=3/300 x-mbx-order-count-1m=7/1200", OTHER);
        assert_eq!(out["rest"]["order_count_10s"], 3);
        assert_eq!(out["rest"]["order_limit_1m"], 1200);
        let (out, _) = run("GET /fapi/v1/openOrders?symbol=BTCUSDT 429 (3.0ms) x-mbx-used-weight-1m=2400/2400 retry-after=12 code=-1003 msg='Too many requests; current limit is 2400 requests per minute. Please use the websocket for live updates to avoid polling the API.'", OTHER);
        let rest = &out["rest"];
        assert_eq!(rest["endpoint"], "/fapi/v1/openOrders");
        assert_eq!(
            (
                rest["status"].as_i64(),
                rest["retry_after_seconds"].as_i64(),
                rest["error_code"].as_i64()
            ),
            (Some(429), Some(12), Some(-1003))
        );
        assert!(rest["error_message"]
            .as_str()
            .unwrap()
            .starts_with("Too many requests; current"));
        let (out, _) = run("DELETE /fapi/v1/order 400 (18.0ms) x-mbx-used-weight-1m=9/2400 code=-2011 msg='Unknown order sent.'", OTHER);
        assert_eq!(out["rest"]["error_message"], "Unknown order sent.");
        let (out, _) = run(
            "GET /fapi/v1/time 502 (2.1s) x-mbx-used-weight-1m=9/2400",
            OTHER,
        );
        assert_eq!(out["rest"]["latency_seconds"], 2.1);
        let (out, _) = run(
            "Request POST /fapi/v1/order?symbol=BTCUSDT&side=BUY&timestamp=1&signature=abc",
            OTHER,
        );
        assert_eq!(
            out,
            json!({"event": "rest_request", "event_kind": "rest", "rest": {"method": "POST", "endpoint": "/fapi/v1/order"}})
        );
        for not_rest in [
            "GET ready",
            "GET /x ok (1ms)",
            "POSTAL /x 200",
            "Request header X-MBX-APIKEY: abc",
        ] {
            assert_eq!(run(not_rest, OTHER).0, json!({}), "{not_rest}");
        }
    }

    #[test]
    fn rate_limits() {
        let (out, _) = run(
            "Rate limit usage: REQUEST_WEIGHT=11/2400 (0.5%), ORDERS_10S=9/300, ORDERS_1M=9/1200",
            OTHER,
        );
        assert_eq!(out["event"], "rate_limit");
        assert_eq!(
            out["rate_limit"]["REQUEST_WEIGHT"],
            json!({"used": 11, "limit": 2400, "ratio": 11.0 / 2400.0})
        );
        assert_eq!(out["rate_limit"]["ORDERS_1M"]["used"], 9);
        let (out, _) = run("Approaching rate limit, throttling requests: REQUEST_WEIGHT=1950/2400 (81.3%), ORDERS_10S=250/300, ORDERS_1M=900/1200", OTHER);
        assert_eq!(out["rate_limit"]["ORDERS_10S"]["ratio"], 250.0 / 300.0);
        assert_eq!(run("Rate limit usage: unknown", OTHER).0, json!({}));
    }

    #[test]
    fn websocket_lines() {
        let ws = LineInfo {
            error_level: false,
            component: Component::WebSocket,
        };
        let (out, _) = run("Connected to wss://fstream.binance.com/stream?streams=btcusdt@bookTicker/btcusdt@aggTrade", ws);
        assert_eq!(
            out,
            json!({"event": "ws_connected", "event_kind": "websocket", "ws": {"state": "connected", "url": "wss://fstream.binance.com/stream?streams=btcusdt@bookTicker/btcusdt@aggTrade"}})
        );
        let (out, _) = run("Disconnected from wss://fstream.binance.com/ws/btcusdt@markPrice@1s: code=1006 (abnormal closure), reconnecting in 0.7s", ws);
        assert_eq!(
            out["ws"],
            json!({"state": "disconnected", "url": "wss://fstream.binance.com/ws/btcusdt@markPrice@1s", "code": 1006, "reason": "abnormal closure", "reconnect_in_seconds": 0.7})
        );
        let (out, _) = run("Disconnected from wss://fstream.binance.com/ws/btcusdt@depth20@100ms: code=1000 (normal closure)", ws);
        assert_eq!(
            (out["ws"]["code"].as_i64(), out["ws"]["reason"].as_str()),
            (Some(1000), Some("normal closure"))
        );
        assert!(out["ws"].get("reconnect_in_seconds").is_none());
        let (out, _) = run("Reconnected to wss://fstream.binance.com/ws/x", ws);
        assert_eq!(out["ws"]["state"], "reconnected");
        let (out, _) = run("Received ping from fstream.binance.com, sent pong", ws);
        assert_eq!(out, json!({"event": "ws_ping", "event_kind": "websocket"}));
        let err = LineInfo {
            error_level: true,
            component: Component::WebSocket,
        };
        let (out, _) = run(
            "Error handling message: ConnectionClosedError: no close frame received or sent",
            err,
        );
        assert_eq!(
            out,
            json!({"event": "ws_error", "event_kind": "websocket", "error": {"type": "ConnectionClosedError"}, "ws": {"state": "error", "reason": "no close frame received or sent"}})
        );
        // Not a WebSocket URL, not a WebSocket component: someone else's sentence.
        assert_eq!(run("Connected to the database", OTHER).0, json!({}));
    }

    #[test]
    fn errors() {
        let exec = LineInfo {
            error_level: true,
            component: Component::of("ExecClient-BINANCE"),
        };
        let (out, _) = run("Order execution failed: BinanceServerError(status=503, message={'code': -1001, 'msg': 'Internal error; unable to process your request. Please try again.'})", exec);
        assert_eq!(
            out,
            json!({"event": "exchange_error", "event_kind": "error", "error": {"type": "BinanceServerError"}, "rest": {"status": 503, "error_code": -1001, "error_message": "Internal error; unable to process your request. Please try again."}})
        );
        let (out, _) = run(
            "Failed to query account balances: BinanceServerError(status=502, message=Bad Gateway)",
            exec,
        );
        assert_eq!(
            out["rest"],
            json!({"status": 502, "error_message": "Bad Gateway"})
        );
        let (out, _) = run("Error connecting to exchange: ClientConnectorError: Cannot connect to host fapi.binance.com:443 ssl:default [Connection reset by peer]", exec);
        assert_eq!(
            out,
            json!({"event": "exchange_error", "event_kind": "error", "error": {"type": "ClientConnectorError"}})
        );
        let engine = LineInfo {
            error_level: true,
            component: Component::of("ExecEngine"),
        };
        let (out, _) = run(
            "Error reconciling open orders: request GET /fapi/v1/openOrders timed out after 10.0s",
            engine,
        );
        assert_eq!(
            out,
            json!({"event": "exchange_error", "event_kind": "error"})
        );
        let (out, order) = run("Cannot cancel order O-20240603-000011-001-001-7 (venue_order_id=4000123456): BinanceClientError(status=400, message={'code': -2011, 'msg': 'Unknown order sent.'})", exec);
        assert_eq!(out["rest"]["error_code"], -2011);
        assert_eq!(
            order.unwrap(),
            json!({"client_order_id": "O-20240603-000011-001-001-7", "venue_order_id": "4000123456"})
        );
        let strategy = LineInfo {
            error_level: true,
            component: Component::of("HedgeGrid"),
        };
        let (out, _) = run("Something broke: ValueError: bad grid", strategy);
        assert_eq!(
            out,
            json!({"event": "error", "event_kind": "error", "error": {"type": "ValueError"}})
        );
        // The same line at INFO is nobody's business.
        assert_eq!(
            run("Something broke: ValueError: bad grid", OTHER).0,
            json!({})
        );
    }

    #[test]
    fn heartbeats() {
        let (out, _) = run(
            "Heartbeat ETHUSDT-PERP.BINANCE mid=3_500.05 open_orders=0 long=0.000 short=1.500",
            OTHER,
        );
        assert_eq!(
            out,
            json!({"event": "heartbeat", "event_kind": "strategy", "heartbeat": {"instrument_id": "ETHUSDT-PERP.BINANCE", "mid": 3500.05, "open_orders": 0, "long": 0.0, "short": 1.5}})
        );
    }

    #[test]
    fn unknown_and_broken_lines_write_nothing() {
        for message in [
            "",
            "READY",
            "Registered Strategy EMACross-000",
            "Bar(BTCUSDT-PERP.BINANCE-100-TICK-LAST-INTERNAL,67500.0,67510.0,67490.0,67505.0,1.5,1)",
            "API key abc has trading permissions",
            "Listen key abc",
            "Waiting for indicators to warm up [16]",
            "[EVT] NoArguments",
        ] {
            let mut out = Map::new();
            let parsed = extract(message, OTHER, &mut out, true);
            assert!(out.is_empty(), "{message}: {out:?}");
            assert!(parsed.order.is_none() && parsed.parse_error.is_none());
        }
        let mut out = Map::new();
        let parsed = extract(
            "<--[EVT] OrderFilled(instrument_id=X, reason='never closed",
            OTHER,
            &mut out,
            true,
        );
        assert!(out.is_empty());
        assert_eq!(parsed.parse_error.unwrap().what, "unterminated quote");
    }
}
