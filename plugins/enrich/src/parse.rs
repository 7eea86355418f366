//! A byte-level reader for the Python-`repr`-like structures NautilusTrader prints:
//! `OrderFilled(instrument_id=BTCUSDT-PERP.BINANCE, last_px=62_001.3 USDT, ...)`.
//!
//! Why not split on `", "`: values nest (`[AccountBalance(total=..., ...)]`, `{'code': -1}`,
//! `order=LimitOrder(BUY 0.012 ... GTC, status=..., ...)`), positional parts hold spaces,
//! and quoted text is printed without escaping (`reason='...it's...'` is written with
//! double quotes, but a message can still hold `, ` or brackets). The reader borrows from
//! the line and only allocates the vectors of the tree, so it stays cheap on every event.
//!
//! Unescaped quotes make the end of a quoted value ambiguous; we take the first matching
//! quote that is followed by something that can follow a value in that position (end,
//! a closing bracket, `, key=` in an argument list, `, ` in a list or dict, `:` after a
//! dict key). A value that defeats that rule yields an error, never a wrong structure
//! past the error point, and the record passes with fewer fields.

use serde_json::{Map, Number, Value};

/// Deeper nesting than this is refused: no Nautilus repr comes close, and hostile input
/// must not exhaust the Wasm stack.
const MAX_DEPTH: usize = 48;

#[derive(Debug, Clone, PartialEq)]
pub enum Node<'a> {
    /// Unquoted text, trimmed: `BTCUSDT-PERP.BINANCE`, `62_001.3 USDT`, `None`.
    Scalar(&'a str),
    /// The text between the quotes.
    Quoted(&'a str),
    List(Vec<Node<'a>>),
    Dict(Vec<(Node<'a>, Node<'a>)>),
    Call(Call<'a>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Call<'a> {
    pub name: &'a str,
    pub args: Vec<Arg<'a>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arg<'a> {
    /// `None` for a positional argument (`LimitOrder(BUY 0.012 ...`).
    pub key: Option<&'a str>,
    pub value: Node<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset into the parsed text.
    pub at: usize,
    pub what: &'static str,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

impl<'a> Call<'a> {
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        self.args
            .iter()
            .find(|a| a.key == Some(key))
            .map(|a| &a.value)
    }

    /// A keyword argument as text; `None` for a missing key and for Python's `None`.
    pub fn str(&self, key: &str) -> Option<&'a str> {
        self.get(key).and_then(Node::text)
    }

    pub fn positional(&self, index: usize) -> Option<&Node<'a>> {
        self.args
            .iter()
            .filter(|a| a.key.is_none())
            .nth(index)
            .map(|a| &a.value)
    }
}

impl<'a> Node<'a> {
    /// Scalar or quoted text; `None` for Python's `None`, an empty value and containers.
    pub fn text(&self) -> Option<&'a str> {
        match *self {
            Node::Scalar(s) if s.is_empty() || s == "None" => None,
            Node::Scalar(s) | Node::Quoted(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_call(&self) -> Option<&Call<'a>> {
        match self {
            Node::Call(c) => Some(c),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Node<'a>]> {
        match self {
            Node::List(items) => Some(items),
            _ => None,
        }
    }

    /// The value of a dict entry whose key reads `key`.
    pub fn dict_get(&self, key: &str) -> Option<&Node<'a>> {
        match self {
            Node::Dict(entries) => entries
                .iter()
                .find(|(k, _)| k.text() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Parses `Name(...)` at the start of `text`; returns the call and the offset just past
/// its closing parenthesis (the caller decides whether trailing text matters).
pub fn parse_call(text: &str) -> Result<(Call<'_>, usize), ParseError> {
    let mut p = Parser {
        s: text,
        b: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    let call = p.call()?;
    Ok((call, p.i))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Args,
    List,
    DictKey,
    DictValue,
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    depth: usize,
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl<'a> Parser<'a> {
    fn err(&self, what: &'static str) -> ParseError {
        ParseError { at: self.i, what }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn ident_end(&self, from: usize) -> usize {
        let mut j = from;
        while j < self.b.len() && is_ident(self.b[j]) {
            j += 1;
        }
        j
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        Ok(())
    }

    fn call(&mut self) -> Result<Call<'a>, ParseError> {
        let start = self.i;
        let end = self.ident_end(start);
        if end == start {
            return Err(self.err("expected a name"));
        }
        if self.b.get(end) != Some(&b'(') {
            self.i = end;
            return Err(self.err("expected '(' after the name"));
        }
        self.i = end + 1;
        self.enter()?;
        let args = self.args()?;
        self.depth -= 1;
        Ok(Call {
            name: &self.s[start..end],
            args,
        })
    }

    fn args(&mut self) -> Result<Vec<Arg<'a>>, ParseError> {
        // One allocation for a typical event (OrderFilled has 13 arguments) instead of
        // three as the vector grows.
        let mut args = Vec::with_capacity(16);
        self.skip_spaces();
        if self.peek() == Some(b')') {
            self.i += 1;
            return Ok(args);
        }
        loop {
            self.skip_spaces();
            let key = self.key();
            let value = self.value(Ctx::Args)?;
            args.push(Arg { key, value });
            self.skip_spaces();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b')') => {
                    self.i += 1;
                    return Ok(args);
                }
                None => return Err(self.err("unclosed '('")),
                Some(_) => return Err(self.err("expected ',' or ')'")),
            }
        }
    }

    /// `key=` at the cursor, consumed; otherwise nothing is consumed.
    fn key(&mut self) -> Option<&'a str> {
        let end = self.ident_end(self.i);
        if end > self.i && self.b.get(end) == Some(&b'=') {
            let key = &self.s[self.i..end];
            self.i = end + 1;
            Some(key)
        } else {
            None
        }
    }

    fn value(&mut self, ctx: Ctx) -> Result<Node<'a>, ParseError> {
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => self.quoted(q, ctx),
            Some(b'[') => self.list(),
            Some(b'{') => self.dict(),
            Some(_) => {
                let end = self.ident_end(self.i);
                if end > self.i && self.b.get(end) == Some(&b'(') {
                    Ok(Node::Call(self.call()?))
                } else {
                    Ok(self.scalar(ctx))
                }
            }
            None => Ok(Node::Scalar("")),
        }
    }

    /// Unquoted text up to the next `,` or closing bracket at its own nesting level, so
    /// `67_507.4[DEFAULT]` and `Bad Gateway (upstream)` stay one value.
    fn scalar(&mut self, ctx: Ctx) -> Node<'a> {
        let start = self.i;
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            match c {
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' if depth == 0 => break,
                b')' | b']' | b'}' => depth -= 1,
                b',' if depth == 0 => break,
                b':' if depth == 0 && ctx == Ctx::DictKey => break,
                _ => {}
            }
            self.i += 1;
        }
        Node::Scalar(self.s[start..self.i].trim_end())
    }

    fn quoted(&mut self, quote: u8, ctx: Ctx) -> Result<Node<'a>, ParseError> {
        let open = self.i;
        let start = open + 1;
        let mut j = start;
        while let Some(offset) = self.b[j..].iter().position(|&c| c == quote) {
            let close = j + offset;
            if self.closes_value(close + 1, ctx) {
                self.i = close + 1;
                return Ok(Node::Quoted(&self.s[start..close]));
            }
            j = close + 1;
        }
        self.i = open;
        Err(self.err("unterminated quote"))
    }

    /// Whether a quote ending just before `k` can end the value (see the module doc).
    fn closes_value(&self, k: usize, ctx: Ctx) -> bool {
        let Some(&c) = self.b.get(k) else {
            return true;
        };
        match c {
            b')' | b']' | b'}' => true,
            b':' => ctx == Ctx::DictKey,
            b',' => {
                let mut n = k + 1;
                while matches!(self.b.get(n), Some(b' ')) {
                    n += 1;
                }
                match self.b.get(n) {
                    None | Some(b'\'' | b'"') => true,
                    Some(_) if ctx != Ctx::Args => true,
                    Some(_) => {
                        let end = self.ident_end(n);
                        end > n && self.b.get(end) == Some(&b'=')
                    }
                }
            }
            _ => false,
        }
    }

    fn list(&mut self) -> Result<Node<'a>, ParseError> {
        self.i += 1;
        self.enter()?;
        let mut items = Vec::new();
        self.skip_spaces();
        if self.peek() == Some(b']') {
            self.i += 1;
            self.depth -= 1;
            return Ok(Node::List(items));
        }
        loop {
            self.skip_spaces();
            items.push(self.value(Ctx::List)?);
            self.skip_spaces();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(Node::List(items));
                }
                None => return Err(self.err("unclosed '['")),
                Some(_) => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    /// A dict, or a Python set (`{a, b}`), which comes back as a list.
    fn dict(&mut self) -> Result<Node<'a>, ParseError> {
        self.i += 1;
        self.enter()?;
        let mut entries = Vec::new();
        let mut set = Vec::new();
        self.skip_spaces();
        if self.peek() == Some(b'}') {
            self.i += 1;
            self.depth -= 1;
            return Ok(Node::Dict(entries));
        }
        loop {
            self.skip_spaces();
            let key = self.value(Ctx::DictKey)?;
            self.skip_spaces();
            if self.peek() == Some(b':') && set.is_empty() {
                self.i += 1;
                self.skip_spaces();
                let value = self.value(Ctx::DictValue)?;
                entries.push((key, value));
                self.skip_spaces();
            } else if entries.is_empty() {
                set.push(key);
            } else {
                return Err(self.err("expected ':' in dict"));
            }
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(if set.is_empty() {
                        Node::Dict(entries)
                    } else {
                        Node::List(set)
                    });
                }
                None => return Err(self.err("unclosed '{'")),
                Some(_) => return Err(self.err("expected ',' or '}'")),
            }
        }
    }
}

// ----- numbers -----------------------------------------------------------------------

/// A number as Nautilus prints it: `_` between digit groups, optional fraction and
/// exponent (`1e-05`, Python's float repr). `nan`/`inf` are not numbers here: JSON has
/// no place for them.
pub fn parse_number(s: &str) -> Option<Number> {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'-' | b'+')) {
        i = 1;
    }
    let int_start = i;
    let mut underscores = false;
    while i < b.len() {
        match b[i] {
            b'0'..=b'9' => i += 1,
            // Only between two digits.
            b'_' if i > int_start
                && b[i - 1].is_ascii_digit()
                && b.get(i + 1).is_some_and(u8::is_ascii_digit) =>
            {
                underscores = true;
                i += 1;
            }
            _ => break,
        }
    }
    if i == int_start {
        return None;
    }
    let mut float = false;
    if b.get(i) == Some(&b'.') {
        float = true;
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == frac_start {
            return None;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        float = true;
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    let mut buf = [0u8; 64];
    let clean: &str = if underscores {
        if b.len() > buf.len() {
            return None;
        }
        let mut n = 0;
        for &c in b {
            if c != b'_' {
                buf[n] = c;
                n += 1;
            }
        }
        // Only ASCII digits, signs, '.' and 'e' were copied.
        std::str::from_utf8(&buf[..n]).ok()?
    } else {
        s
    };
    if !float {
        if let Ok(v) = clean.parse::<i64>() {
            return Some(Number::from(v));
        }
    }
    clean.parse::<f64>().ok().and_then(Number::from_f64)
}

pub fn parse_f64(s: &str) -> Option<f64> {
    parse_number(s).and_then(|n| n.as_f64())
}

/// `62_001.3 USDT` → (62001.3, Some("USDT")); a bare number → (n, None).
pub fn parse_amount(s: &str) -> Option<(Number, Option<&str>)> {
    if let Some((num, ccy)) = s.rsplit_once(' ') {
        if is_currency(ccy) {
            return parse_number(num.trim_end()).map(|n| (n, Some(ccy)));
        }
        return None;
    }
    parse_number(s).map(|n| (n, None))
}

fn is_currency(s: &str) -> bool {
    (2..=12).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && s.bytes().any(|c| c.is_ascii_uppercase())
}

// ----- to JSON -----------------------------------------------------------------------

/// Identifiers stay strings even when they look like numbers (Binance order and trade
/// ids are all digits), by the `_id`/`_ids` naming Nautilus uses for them.
fn is_id_key(key: &str) -> bool {
    key == "id" || key.ends_with("_id") || key.ends_with("_ids")
}

pub fn scalar_value(s: &str, key: Option<&str>) -> Value {
    match s {
        "None" => return Value::Null,
        "True" => return Value::Bool(true),
        "False" => return Value::Bool(false),
        _ => {}
    }
    if !key.is_some_and(is_id_key) {
        if let Some((n, _)) = parse_amount(s) {
            return Value::Number(n);
        }
    }
    Value::String(s.to_owned())
}

/// The call's arguments as a JSON map: keyword arguments by name, positional ones as a
/// list under `_args`; a nested call is a map with its name under `_type`.
pub fn call_to_map(call: &Call<'_>) -> Map<String, Value> {
    let mut map = Map::new();
    let mut positional = Vec::new();
    for arg in &call.args {
        let value = node_to_value(&arg.value, arg.key);
        match arg.key {
            Some(key) => {
                map.insert(key.to_owned(), value);
            }
            None => positional.push(value),
        }
    }
    if !positional.is_empty() {
        map.insert("_args".to_owned(), Value::Array(positional));
    }
    map
}

pub fn node_to_value(node: &Node<'_>, key: Option<&str>) -> Value {
    match node {
        Node::Scalar(s) => scalar_value(s, key),
        Node::Quoted(s) => Value::String((*s).to_owned()),
        Node::List(items) => Value::Array(items.iter().map(|n| node_to_value(n, key)).collect()),
        Node::Dict(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let name = match k {
                    Node::Scalar(s) | Node::Quoted(s) => (*s).to_owned(),
                    other => node_to_value(other, None).to_string(),
                };
                let value = node_to_value(v, Some(&name));
                map.insert(name, value);
            }
            Value::Object(map)
        }
        Node::Call(call) => {
            let mut map = call_to_map(call);
            map.insert("_type".to_owned(), Value::String(call.name.to_owned()));
            Value::Object(map)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(s: &str) -> Call<'_> {
        let (c, end) = parse_call(s).unwrap_or_else(|e| panic!("{e}: {s}"));
        assert_eq!(end, s.len(), "trailing text in {s}");
        c
    }

    #[test]
    fn amounts_nested_calls_and_lists() {
        let c = call("AccountState(account_id=BINANCE-001, balances=[AccountBalance(total=10_000.00000000 USDT, locked=0.5 USDT, free=9_999.5 USDT)], margins=[], event_id=8a60f86f)");
        assert_eq!(c.name, "AccountState");
        let balances = c.get("balances").unwrap().as_list().unwrap();
        let b = balances[0].as_call().unwrap();
        assert_eq!(b.name, "AccountBalance");
        assert_eq!(b.str("total"), Some("10_000.00000000 USDT"));
        assert_eq!(c.get("margins").unwrap().as_list().unwrap().len(), 0);
        assert_eq!(c.str("event_id"), Some("8a60f86f"));
    }

    #[test]
    fn positional_args_with_spaces_and_brackets() {
        let c = call("SubmitOrder(order=StopMarketOrder(SELL 0.050 BTCUSDT-PERP.BINANCE STOP_MARKET @ 67_507.4[DEFAULT] GTC, status=INITIALIZED, client_order_id=O-1, tags=['STOP_LOSS']), position_id=None)");
        let order = c.get("order").unwrap().as_call().unwrap();
        assert_eq!(
            order.positional(0).unwrap().text(),
            Some("SELL 0.050 BTCUSDT-PERP.BINANCE STOP_MARKET @ 67_507.4[DEFAULT] GTC")
        );
        assert_eq!(order.str("client_order_id"), Some("O-1"));
        assert_eq!(
            order.get("tags").unwrap(),
            &Node::List(vec![Node::Quoted("STOP_LOSS")])
        );
        assert_eq!(c.str("position_id"), None);
    }

    #[test]
    fn unescaped_quotes_inside_values() {
        let c = call("OrderRejected(client_order_id=O-1, reason='Order would immediately trigger.', due_post_only=False)");
        assert_eq!(c.str("reason"), Some("Order would immediately trigger."));
        let c =
            call(r#"OrderDenied(client_order_id=O-2, reason="it's a 'quoted', word (x)", ts=1)"#);
        assert_eq!(c.str("reason"), Some("it's a 'quoted', word (x)"));
        // A single-quoted value holding a quote that is not followed by a boundary.
        let c = call("OrderRejected(reason='can't do it', x=1)");
        assert_eq!(c.str("reason"), Some("can't do it"));
        // `, ` and brackets inside quotes.
        let c = call("E(reason='LIMIT BUY px was in the market: bid=1.0, ask=2.0 [x', due=False)");
        assert_eq!(
            c.str("reason"),
            Some("LIMIT BUY px was in the market: bid=1.0, ask=2.0 [x")
        );
        assert_eq!(c.str("due"), Some("False"));
    }

    #[test]
    fn python_dicts_and_sets() {
        let c = call("BinanceServerError(status=503, message={'code': -1001, 'msg': 'Internal error; unable to process your request. Please try again.'})");
        let m = c.get("message").unwrap();
        assert_eq!(m.dict_get("code").unwrap().text(), Some("-1001"));
        assert_eq!(
            m.dict_get("msg").unwrap().text(),
            Some("Internal error; unable to process your request. Please try again.")
        );
        let c = call("X(options={'price': '67491.2', 'display_qty': None, 'expire_time_ns': 0}, s={a, b}, e={})");
        assert_eq!(
            c.get("options").unwrap().dict_get("price").unwrap().text(),
            Some("67491.2")
        );
        assert_eq!(
            c.get("options")
                .unwrap()
                .dict_get("display_qty")
                .unwrap()
                .text(),
            None
        );
        assert_eq!(
            c.get("s").unwrap(),
            &Node::List(vec![Node::Scalar("a"), Node::Scalar("b")])
        );
        assert_eq!(c.get("e").unwrap(), &Node::Dict(vec![]));
    }

    #[test]
    fn empty_calls_empty_values_and_free_text() {
        assert!(call("Ping()").args.is_empty());
        let c = call("BinanceServerError(status=502, message=Bad Gateway (upstream))");
        assert_eq!(c.str("message"), Some("Bad Gateway (upstream)"));
        let c = call("X(a=, b=1)");
        assert_eq!(c.str("a"), None);
        assert_eq!(c.str("b"), Some("1"));
        let c = call("X( a=1 ,b=2 )");
        assert_eq!(c.str("a"), Some("1"));
        assert_eq!(c.str("b"), Some("2"));
        // Unicode passes through untouched.
        let c = call("X(note='ünïcödé, ok', y=ß)");
        assert_eq!(c.str("note"), Some("ünïcödé, ok"));
        assert_eq!(c.str("y"), Some("ß"));
    }

    #[test]
    fn trailing_text_is_reported_not_swallowed() {
        let (c, end) = parse_call("A(x=1) and more").unwrap();
        assert_eq!(c.str("x"), Some("1"));
        assert_eq!(end, 6);
    }

    #[test]
    fn malformed_input_is_an_error() {
        for bad in [
            "OrderFilled(instrument_id=X, last_px=1",
            "OrderFilled(a=[1, 2",
            "OrderFilled(a={'k': 1",
            "OrderFilled(reason='never closed)",
            "OrderFilled(a='x' b)",
            "NoParen",
            "(x=1)",
            "",
        ] {
            assert!(parse_call(bad).is_err(), "{bad}");
        }
        let deep = format!("A({}{})", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(parse_call(&deep).unwrap_err().what, "nested too deeply");
        let deep_calls = format!("{}{}", "A(".repeat(5_000), ")".repeat(5_000));
        assert!(parse_call(&deep_calls).is_err());
    }

    #[test]
    fn numbers() {
        let n = |s: &str| parse_number(s).map(|n| serde_json::to_value(n).unwrap());
        assert_eq!(n("62_001.3"), Some(json!(62001.3)));
        assert_eq!(n("1_000_000.00000000"), Some(json!(1000000.0)));
        assert_eq!(n("-0.54007480"), Some(json!(-0.5400748)));
        assert_eq!(
            n("1717372811068363520"),
            Some(json!(1717372811068363520i64))
        );
        assert_eq!(n("1e-05"), Some(json!(1e-5)));
        assert_eq!(n("2.5e+16"), Some(json!(2.5e16)));
        assert_eq!(n("-2011"), Some(json!(-2011)));
        assert_eq!(n("99999999999999999999"), Some(json!(1e20)));
        for bad in [
            "",
            "-",
            "_1",
            "1_",
            "1__0",
            "1.",
            ".5",
            "1e",
            "nan",
            "inf",
            "O-1",
            "1.2.3",
            "12ab",
            "BINANCE-1-001",
            "2024-06-03T00:12:42.138Z",
            "1_000.0_1",
        ] {
            assert_eq!(n(bad), None, "{bad}");
        }
        assert_eq!(
            parse_amount("62_001.3 USDT").map(|(n, c)| (n.as_f64(), c)),
            Some((Some(62001.3), Some("USDT")))
        );
        assert_eq!(
            parse_amount("0.1 1000SHIB").map(|(_, c)| c),
            Some(Some("1000SHIB"))
        );
        assert_eq!(parse_amount("Bad Gateway"), None);
        assert_eq!(parse_amount("1.0 usd"), None);
    }

    #[test]
    fn json_conversion_keeps_ids_as_strings() {
        let c = call("OrderFilled(venue_order_id=4000123456, trade_id=5200000001, last_qty=0.020, last_px=67_507.3 USDT, liquidity_side=MAKER, ts_event=1717372928806165760, is_reported=True, position_id=None, o=LimitOrder(BUY 1, tags=['A']))");
        assert_eq!(
            Value::Object(call_to_map(&c)),
            json!({
                "venue_order_id": "4000123456",
                "trade_id": "5200000001",
                "last_qty": 0.02,
                "last_px": 67507.3,
                "liquidity_side": "MAKER",
                "ts_event": 1717372928806165760i64,
                "is_reported": true,
                "position_id": null,
                "o": {"_type": "LimitOrder", "_args": ["BUY 1"], "tags": ["A"]}
            })
        );
    }
}
