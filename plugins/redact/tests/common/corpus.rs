// The labelled corpus the redact tests measure recall and false changes on.
//
// Shared by the native tests (`plugins/redact/tests/`) and the Wasm test
// (`tests/e2e/plugin_redact.rs`, via `include!`), so it uses only `std` and
// `serde_json`. Every secret is synthetic, drawn from a seeded PRNG written here, and
// planted in templates that copy how real software logs them, including the exact
// shapes of the demo generator (`host/src/sources/demo/generator.rs`).
// (Plain comments, not `//!`: `include!` does not accept inner doc comments.)

use serde_json::{json, Map, Value};

/// A record carrying planted secrets of one category.
pub struct SecretCase {
    pub category: &'static str,
    /// Each must be absent from every string of the redacted record.
    pub secrets: Vec<String>,
    pub record: Map<String, Value>,
}

/// A record without secrets; `source` says where it came from, for the report.
pub struct CleanCase {
    pub source: &'static str,
    pub record: Map<String, Value>,
}

/// SplitMix64: tiny, seedable and good enough to draw test secrets.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn range(&mut self, lo: usize, hi_inclusive: usize) -> usize {
        lo + self.below(hi_inclusive - lo + 1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn string(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len())] as char)
            .collect()
    }

    pub fn string_in(&mut self, alphabet: &[u8], min_len: usize, max_len: usize) -> String {
        let len = self.range(min_len, max_len);
        self.string(alphabet, len)
    }

    /// Letters of both cases and digits all present, as in real random keys.
    pub fn mixed(&mut self, alphabet: &[u8], len: usize) -> String {
        loop {
            let s = self.string(alphabet, len);
            let b = s.as_bytes();
            if b.iter().any(u8::is_ascii_uppercase)
                && b.iter().any(u8::is_ascii_lowercase)
                && b.iter().any(u8::is_ascii_digit)
            {
                return s;
            }
        }
    }
}

pub const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub const HEX: &[u8] = b"0123456789abcdef";
pub const DIGITS: &[u8] = b"0123456789";
pub const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
pub const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
pub const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// Password characters that survive unquoted in URLs, DSNs and `key=value`.
pub const PASSWORD: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!$%^*()_+=~.-";

pub const CATEGORIES: [&str; 21] = [
    "binance_api_key",
    "api_secret",
    "hmac_signature",
    "listen_key",
    "bearer_token",
    "jwt",
    "url_password",
    "password",
    "aws_access_key_id",
    "aws_secret_access_key",
    "github_token",
    "slack_token",
    "slack_webhook",
    "discord_token",
    "discord_webhook",
    "telegram_bot_token",
    "pagerduty_key",
    "private_key",
    "email",
    "account_number",
    "iban",
];

fn line(rng: &mut Rng, level: &str, component: &str, message: String) -> Map<String, Value> {
    let ns = 1_717_372_800_000_000_000u64 + rng.next_u64() % 86_400_000_000_000;
    let secs = (ns / 1_000_000_000) % 86_400;
    let ts = format!(
        "2024-06-03T{:02}:{:02}:{:02}.{:09}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ns % 1_000_000_000
    );
    let mut m = Map::new();
    m.insert("timestamp".into(), json!(ts));
    m.insert("level".into(), json!(level));
    m.insert("trader_id".into(), json!("TRADER-001"));
    m.insert("component".into(), json!(component));
    m.insert("message".into(), json!(message));
    m
}

/// Puts the text deeper into the record: a map in a list in a map, so the walk over
/// nested values is exercised by the recall measurement too.
fn nest(rng: &mut Rng, mut record: Map<String, Value>) -> Map<String, Value> {
    let text = record.remove("message").unwrap();
    match rng.below(3) {
        0 => {
            record.insert("message".into(), json!("HTTP request failed"));
            record.insert(
                "http".into(),
                json!({"request": {"attempts": [{"n": 1, "detail": text}], "retries": 2}}),
            );
        }
        1 => {
            record.insert("message".into(), json!("context"));
            record.insert("ctx".into(), json!({"lines": ["start", text, "end"]}));
        }
        _ => {
            record.insert("message".into(), json!("exception"));
            record.insert("error".into(), json!({"cause": {"cause": {"text": text}}}));
        }
    }
    record
}

fn binance_key(rng: &mut Rng) -> String {
    rng.mixed(ALNUM, 64)
}

fn listen_key(rng: &mut Rng) -> String {
    let len = rng.range(60, 64);
    rng.mixed(ALNUM, len)
}

fn signed_request(rng: &mut Rng) -> String {
    let ts = 1_717_372_800_000u64 + rng.next_u64() % 86_400_000;
    match rng.below(3) {
        0 => format!(
            "POST /fapi/v1/order?symbol=BTCUSDT&side=BUY&positionSide=LONG&type=LIMIT&timeInForce=GTX&quantity=0.012&price=67472.5&recvWindow=5000&timestamp={ts}"
        ),
        1 => format!(
            "DELETE /fapi/v1/order?symbol=ETHUSDT&orderId={}&recvWindow=5000&timestamp={ts}",
            8_000_000_000u64 + rng.next_u64() % 1_000_000_000
        ),
        _ => format!("GET /fapi/v2/account?recvWindow=5000&timestamp={ts}"),
    }
}

fn email(rng: &mut Rng) -> String {
    let local = rng.string_in(b"abcdefghijklmnopqrstuvwxyz", 3, 10);
    let sep = rng.pick(&["", ".", "_", "+", "-"]).to_string();
    let tail = rng.string_in(LOWER_ALNUM, 1, 6);
    let domain = rng.string_in(b"abcdefghijklmnopqrstuvwxyz", 3, 12);
    let tld = rng.pick(&["com", "io", "net", "org", "co.uk", "de", "trade"]);
    format!("{local}{sep}{tail}@{domain}.{tld}")
}

/// A valid IBAN for one of a few countries: random BBAN, real check digits.
fn iban(rng: &mut Rng) -> String {
    let (country, bban) = match rng.below(6) {
        0 => ("DE", rng.string(DIGITS, 18)),
        1 => (
            "GB",
            format!(
                "{}{}",
                rng.string(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4),
                rng.string(DIGITS, 14)
            ),
        ),
        2 => (
            "FR",
            format!(
                "{}{}{}",
                rng.string(DIGITS, 10),
                rng.string(UPPER_DIGITS, 11),
                rng.string(DIGITS, 2)
            ),
        ),
        3 => (
            "NL",
            format!(
                "{}{}",
                rng.string(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4),
                rng.string(DIGITS, 10)
            ),
        ),
        4 => ("CH", rng.string(DIGITS, 17)),
        _ => ("ES", rng.string(DIGITS, 20)),
    };
    let mut rem = 0u32;
    for c in format!("{bban}{country}00").bytes() {
        rem = if c.is_ascii_digit() {
            (rem * 10 + u32::from(c - b'0')) % 97
        } else {
            (rem * 100 + u32::from(c - b'A') + 10) % 97
        };
    }
    format!("{country}{:02}{bban}", 98 - rem)
}

fn spaced(iban: &str) -> String {
    iban.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(" ")
}

/// At least `per_category` cases for every category (1,050 at 50), a third of them
/// nested inside maps and lists.
pub fn secret_cases(seed: u64, per_category: usize) -> Vec<SecretCase> {
    let mut rng = Rng::new(seed);
    let mut cases = Vec::new();
    for &category in &CATEGORIES {
        for i in 0..per_category {
            let (level, component, message, secrets) = plant(&mut rng, category, i);
            let mut record = line(&mut rng, level, component, message);
            if i % 3 == 2 {
                record = nest(&mut rng, record);
            }
            cases.push(SecretCase {
                category,
                secrets,
                record,
            });
        }
    }
    cases
}

fn plant(
    rng: &mut Rng,
    category: &str,
    i: usize,
) -> (&'static str, &'static str, String, Vec<String>) {
    const EXEC: &str = "ExecClient-BINANCE";
    const HTTP: &str = "BinanceFuturesHttpClient";
    const WS: &str = "BinanceWebSocketClient";
    const APP: &str = "Notifier";
    let pick = i % 5;
    match category {
        "binance_api_key" => {
            let k = binance_key(rng);
            let msg = match i % 6 {
                0 => format!("API key {k} has trading permissions"),
                1 => format!("Request header X-MBX-APIKEY: {k}"),
                2 => format!("BinanceFuturesHttpClient(apiKey={k}, testnet=False)"),
                3 => format!("Loaded credentials {{\"api_key\": \"{k}\", \"venue\": \"BINANCE\"}}"),
                4 => format!("export BINANCE_API_KEY={k}"),
                _ => format!("Using key {k} for BTCUSDT-PERP.BINANCE"),
            };
            ("INFO", EXEC, msg, vec![k])
        }
        "api_secret" => {
            let s = rng.mixed(ALNUM, 64);
            let msg = match pick {
                0 => format!("config: api_secret: {s}"),
                1 => format!("BinanceExecClientConfig(api_key=None, apiSecret={s}, us=False)"),
                2 => format!("env BINANCE_API_SECRET={s} loaded"),
                3 => format!("{{\"secret\": \"{s}\", \"testnet\": false}}"),
                _ => format!("POST /oauth/token client_id=sluice&client_secret={s}&grant_type=client_credentials"),
            };
            ("DEBUG", EXEC, msg, vec![s])
        }
        "hmac_signature" => {
            let sig = rng.string(HEX, 64);
            let msg = match pick {
                0..=2 => format!("Request {}&signature={sig}", signed_request(rng)),
                3 => format!(
                    "body: symbol=BTCUSDT&side=SELL&timestamp=1717372800123&signature={sig}"
                ),
                _ => format!("{{\"signature\": \"{sig}\", \"recvWindow\": 5000}}"),
            };
            ("DEBUG", HTTP, msg, vec![sig])
        }
        "listen_key" => {
            let k = listen_key(rng);
            let msg = match i % 6 {
                5 => format!("user stream ws_listen_key: {k}"),
                0 | 1 => format!("Listen key {k}"),
                2 => format!("Connected to wss://fstream.binance.com/ws/{k}"),
                3 => format!("PUT /fapi/v1/listenKey 200 (3.2ms) body={{\"listenKey\":\"{k}\"}}"),
                _ => format!(
                    "Subscribing wss://fstream.binance.com/stream?streams={k}/btcusdt@aggTrade"
                ),
            };
            ("INFO", WS, msg, vec![k])
        }
        "bearer_token" => {
            let len = rng.range(24, 48);
            let t = rng.mixed(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-",
                len,
            );
            let msg = match pick {
                0 | 1 => format!("Authorization: Bearer {t}"),
                2 => {
                    format!("curl -H 'Authorization: Bearer {t}' https://api.example.com/v1/alerts")
                }
                3 => format!("headers={{'authorization': 'Token {t}', 'accept': 'json'}}"),
                _ => format!("retrying with bearer {t} after 401"),
            };
            ("DEBUG", APP, msg, vec![t])
        }
        "jwt" => {
            let payload = rng.string_in(B64URL, 30, 120);
            let sig = rng.string(B64URL, 43);
            let t = format!("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ{payload}.{sig}");
            let msg = match pick {
                0 => format!("session token {t} issued"),
                1 => format!("cookie: session={t}; Path=/"),
                2 => format!("Authorization: Bearer {t}"),
                3 => format!("{{\"id_token\":\"{t}\"}}"),
                _ => format!("https://grafana.example.com/login?jwt={t}&orgId=1"),
            };
            ("INFO", APP, msg, vec![t])
        }
        "url_password" => {
            let pw = rng.string_in(PASSWORD, 8, 24);
            let user = rng.string_in(b"abcdefghijklmnopqrstuvwxyz", 3, 10);
            let scheme = rng.pick(&[
                "postgres",
                "postgresql",
                "mysql",
                "mongodb+srv",
                "redis",
                "amqp",
                "https",
                "smtp",
            ]);
            let msg = match pick {
                0 | 1 => format!("connecting to {scheme}://{user}:{pw}@db.internal:5432/trading"),
                2 => format!("DSN={scheme}://{user}:{pw}@10.0.0.7/nautilus?sslmode=require"),
                3 => format!("cache url redis://:{pw}@cache:6379/0 ok"),
                _ => format!("mysql dsn {user}:{pw}@tcp(127.0.0.1:3306)/trades"),
            };
            ("INFO", APP, msg, vec![pw])
        }
        "password" => {
            let pw = rng.string_in(PASSWORD, 8, 24);
            let (msg, secret) = match pick {
                0 => (
                    format!("host=db port=5432 user=trader password={pw} dbname=nautilus"),
                    pw,
                ),
                1 => (format!("login attempt user=ops passwd={pw} failed"), pw),
                2 => {
                    let phrase = format!(
                        "{} {} {}",
                        rng.string(LOWER_ALNUM, 5),
                        rng.string(LOWER_ALNUM, 6),
                        rng.string(LOWER_ALNUM, 4)
                    );
                    (
                        format!("{{\"user\": \"ops\", \"password\": \"{phrase}\"}}"),
                        phrase,
                    )
                }
                3 => (format!("OKX passphrase: {pw}"), pw),
                _ => (format!("PGPASSWORD={pw} psql -h db"), pw),
            };
            ("WARN", APP, msg, vec![secret])
        }
        "aws_access_key_id" => {
            let id = format!(
                "{}{}",
                rng.pick(&["AKIA", "ASIA"]),
                rng.string(UPPER_DIGITS, 16)
            );
            let msg = match pick {
                0 => format!("aws_access_key_id = {id}"),
                1 => format!("S3 upload as {id} to s3://backups/nautilus"),
                2 => format!(
                    "{{\"AccessKeyId\": \"{id}\", \"Expiration\": \"2024-06-03T12:00:00Z\"}}"
                ),
                3 => format!("export AWS_ACCESS_KEY_ID={id}"),
                _ => format!("credential={id}/20240603/us-east-1/s3/aws4_request"),
            };
            ("INFO", APP, msg, vec![id])
        }
        "aws_secret_access_key" => {
            let s = rng.mixed(B64, 40);
            let id = format!("AKIA{}", rng.string(UPPER_DIGITS, 16));
            let (msg, secrets) = match pick {
                0 => (format!("aws_secret_access_key = {s}"), vec![s]),
                1 => (format!("export AWS_SECRET_ACCESS_KEY={s}"), vec![s]),
                2 => (format!("{{\"SecretAccessKey\": \"{s}\"}}"), vec![s]),
                3 => (format!("credentials.csv: backup,{id},{s}"), vec![id, s]),
                _ => (format!("using {id} {s} for s3"), vec![id, s]),
            };
            ("INFO", APP, msg, secrets)
        }
        "github_token" => {
            let t = match pick {
                0 | 1 => format!("ghp_{}", rng.string(ALNUM, 36)),
                2 => format!("gho_{}", rng.string(ALNUM, 36)),
                3 => format!("ghs_{}", rng.string(ALNUM, 36)),
                _ => format!(
                    "github_pat_{}_{}",
                    rng.string(ALNUM, 22),
                    rng.string(ALNUM, 59)
                ),
            };
            let msg = match i % 3 {
                0 => format!("git clone https://x-access-token:{t}@github.com/org/bot.git"),
                1 => format!("GITHUB_TOKEN={t}"),
                _ => format!("using token {t} for release upload"),
            };
            ("INFO", APP, msg, vec![t])
        }
        "slack_token" => {
            let t = format!(
                "xox{}-{}-{}-{}",
                rng.pick(&["b", "p", "a", "r", "s"]),
                rng.string(DIGITS, 12),
                rng.string(DIGITS, 13),
                rng.string(ALNUM, 24)
            );
            let msg = match pick {
                0 | 1 => format!("slack client token={t}"),
                2 => format!("chat.postMessage failed for {t}: invalid_auth"),
                3 => format!("{{\"token\": \"{t}\"}}"),
                _ => format!("SLACK_BOT_TOKEN={t}"),
            };
            ("WARN", APP, msg, vec![t])
        }
        "slack_webhook" => {
            let path = format!(
                "T{}/B{}/{}",
                rng.string(UPPER_DIGITS, 8),
                rng.string(UPPER_DIGITS, 10),
                rng.string(ALNUM, 24)
            );
            let msg = match pick {
                0..=2 => format!("POST https://hooks.slack.com/services/{path} 200"),
                3 => format!("webhook url=https://hooks.slack.com/services/{path} timeout"),
                _ => format!("{{\"url\": \"https://hooks.slack.com/services/{path}\"}}"),
            };
            ("INFO", APP, msg, vec![path])
        }
        "discord_token" => {
            let first = format!("{}{}", rng.pick(&["M", "N", "O"]), rng.mixed(ALNUM, 23));
            let t = format!(
                "{first}.{}.{}",
                rng.string(B64URL, 6),
                rng.string(B64URL, if pick.is_multiple_of(2) { 27 } else { 38 })
            );
            let msg = match pick {
                0 | 1 => format!("discord bot logged in with {t}"),
                2 => format!("Authorization: Bot {t}"),
                3 => format!("DISCORD_TOKEN={t}"),
                _ => format!("{{\"token\":\"{t}\"}}"),
            };
            ("INFO", APP, msg, vec![t])
        }
        "discord_webhook" => {
            let id = rng.string(DIGITS, 18);
            let token = rng.string(B64URL, 68);
            let host = rng.pick(&["discord.com", "discordapp.com"]);
            let msg = match pick {
                0..=2 => format!("POST https://{host}/api/webhooks/{id}/{token} 204"),
                3 => {
                    format!("alert sent to https://{host}/api/v10/webhooks/{id}/{token}?wait=true")
                }
                _ => format!("{{\"discord\": \"https://{host}/api/webhooks/{id}/{token}\"}}"),
            };
            ("INFO", APP, msg, vec![token])
        }
        "telegram_bot_token" => {
            let t = format!(
                "{}:AA{}",
                rng.string_in(DIGITS, 8, 10),
                rng.string(B64URL, 33)
            );
            let msg = match pick {
                0..=2 => format!("POST https://api.telegram.org/bot{t}/sendMessage 200"),
                3 => format!("TELEGRAM_BOT_TOKEN={t}"),
                _ => format!("telegram notifier started with token {t}"),
            };
            ("INFO", APP, msg, vec![t])
        }
        "pagerduty_key" => {
            let k = rng.string(LOWER_ALNUM, 32);
            let msg = match pick {
                0 | 1 => format!("{{\"routing_key\": \"{k}\", \"event_action\": \"trigger\"}}"),
                2 => format!("pagerduty integration_key={k}"),
                3 => format!("PagerDuty routing key {k} rejected: 400"),
                _ => format!("service_key: {k}"),
            };
            ("INFO", APP, msg, vec![k])
        }
        "private_key" => {
            let kind = rng.pick(&["RSA ", "EC ", "OPENSSH ", "", "ENCRYPTED "]);
            let lines: Vec<String> = (0..rng.range(2, 6)).map(|_| rng.string(B64, 64)).collect();
            let sep = if pick == 4 { "\\n" } else { "\n" };
            let msg = format!(
                "loaded key: -----BEGIN {kind}PRIVATE KEY-----{sep}{}{sep}-----END {kind}PRIVATE KEY----- from vault",
                lines.join(sep)
            );
            ("INFO", APP, msg, lines)
        }
        "email" => {
            let e = email(rng);
            let msg = match i % 6 {
                5 => {
                    format!("GET https://grafana.example.com/api/invite?email={e}&role=viewer 200")
                }
                0 | 1 => format!("Sending daily PnL report to {e}"),
                2 => format!("user <{e}> logged in"),
                3 => format!("{{\"notify\": \"{e}\"}}"),
                _ => format!("alert routed to mailto:{e}"),
            };
            ("INFO", APP, msg, vec![e])
        }
        "account_number" => {
            let n = rng.string_in(DIGITS, 8, 20);
            let msg = match i % 6 {
                5 => format!("payout bank_account_number={n}"),
                0 => format!("wire to account number {n} scheduled"),
                1 => format!("acct {n} settled"),
                2 => format!("payout account_no={n} status=ok"),
                3 => format!("bank transfer account={n}"),
                _ => format!("Account No.: {n}"),
            };
            ("INFO", APP, msg, vec![n])
        }
        "iban" => {
            let compact = iban(rng);
            let shown = if pick.is_multiple_of(2) {
                compact.clone()
            } else {
                spaced(&compact)
            };
            let msg = match pick {
                0 | 1 => format!("Withdrawal to IBAN {shown} requested"),
                2 => format!("beneficiary={shown};amount=1000"),
                3 => format!("SEPA transfer {shown} EUR 250.00"),
                _ => format!("{{\"iban\": \"{shown}\"}}"),
            };
            ("INFO", APP, msg, vec![shown])
        }
        other => panic!("no template for {other}"),
    }
}

/// Real NautilusTrader lines: each line of `sample.log` whole as `message`, as a plain
/// source without a decoder would pass it.
pub fn nautilus_lines(sample_log: &str) -> Vec<CleanCase> {
    sample_log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut record = Map::new();
            record.insert("message".into(), json!(l));
            CleanCase {
                source: "nautilus sample.log",
                record,
            }
        })
        .collect()
}

/// Demo generator records without planted secrets (`tests/fixtures/demo-clean.jsonl`).
pub fn demo_lines(jsonl: &str) -> Vec<CleanCase> {
    jsonl
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| CleanCase {
            source: "demo generator",
            record: serde_json::from_str(l).expect("fixture lines are JSON objects"),
        })
        .collect()
}

/// Lines that look like secrets but are not: what operators need kept.
pub fn near_miss_lines(seed: u64) -> Vec<CleanCase> {
    let mut rng = Rng::new(seed);
    let mut lines: Vec<String> = [
        "<--[EVT] OrderFilled(instrument_id=BTCUSDT-PERP.BINANCE, client_order_id=O-20240603-000000-001-001-1, venue_order_id=4000553556, account_id=BINANCE-001, trade_id=1234567890, position_id=BTCUSDT-PERP.BINANCE-LONG, order_side=BUY, order_type=LIMIT, last_qty=0.012 BTC, last_px=67_472.5 USDT, commission=0.16193400 USDT, liquidity_side=MAKER, ts_event=1717372800000000000)",
        "Connected to wss://fstream.binance.com/ws/btcusdt@markPrice@1s",
        "Connected to wss://fstream.binance.com/ws/btcusdt@depth20@100ms",
        "Connected to wss://fstream.binance.com/stream?streams=btcusdt@bookTicker/btcusdt@aggTrade",
        "PUT /fapi/v1/listenKey 200 (3.1ms) x-mbx-used-weight-1m=5/2400",
        "Listen key expired, creating a new one",
        "API key has trading permissions",
        "API key is missing; set BINANCE_API_KEY in the environment",
        "secret_ratio=0.02 reject_ratio=0.03",
        "signature_valid=True signature_checks=12",
        "password_reset_required=False",
        "token_count=5 max_tokens=4096",
        "BUY 0.012 BTCUSDT-PERP.BINANCE LIMIT @ 67_472.5 GTC, status=INITIALIZED",
        "Updated AccountState(account_id=BINANCE-001, account_type=MARGIN, base_currency=None)",
        "Failed to query account balances: BinanceClientError(status=401)",
        "account_id=BINANCE-001 account_type=MARGIN",
        "Received ping from fstream.binance.com, sent pong",
        "bearer of bad news: the strategy stopped",
        "Authorization header missing",
        "Slovakia and Asia sessions overlap at 08:00:00",
        "ssh://deploy@bastion.internal:22 reachable",
        "GET https://fapi.binance.com:443/fapi/v1/time 200",
        "position BTCUSDT-PERP.BINANCE-HedgeGrid-001 opened",
        "fe80::1 and 2001:db8::1 are link addresses",
        "order book checksum 0x7f3a9c21",
        "Heartbeat BTCUSDT-PERP.BINANCE mid=67_507.3 open_orders=12 long=0.120 short=0.048",
        "Rate limit usage: REQUEST_WEIGHT=11/2400 (0.5%), ORDERS_10S=9/300, ORDERS_1M=40/1200",
        "model BTC1234567 rev XY12 3456",
        "invoice DE12 batch 3704",
        "-----BEGIN PUBLIC KEY----- (public keys are not secrets)",
        "service key rotation scheduled for Sunday",
        "routing key missing in alert config",
        "discord notifier disabled",
        "hooks.slack.com unreachable: timeout",
        "the @ sign and a@b and x@y.z1",
        "xoxo from the team",
        "ghost_town=true",
        "AKIAshort is not a key",
        "event_id=8a60f86f-d725-44dc-93a3-cdc59588f809 correlation_id=order:O-20240603-000000-001-001-1",
        "BinanceExecClientConfig(api_key=None, api_secret=None, key_type=HMAC, account_type=USDT_FUTURE, testnet=False, us=False)",
        "password=None passphrase=null",
        "Authorization failed: invalid signature",
        "signature: invalid (expected 64 hex characters)",
        "api key: not configured",
        "acct_type=MARGIN account 2 of 3 account=12345",
        "Connected to wss://stream.binance.com:9443/ws/!miniTicker@arr",
        "wss://fstream.binance.com/stream?streams=btcusdt@depth@100ms/ethusdt@depth@100ms/btcusdt@markPrice@1s",
        "GET /fapi/v1/listenKey?timestamp=1717372800123 200 (4.0ms)",
        "commit 3f9a1c2e4b5d6f708192a3b4c5d6e7f809123456 deployed to prod",
        "client_order_id=O-20240603-000208-007-003-3 venue_order_id=BINANCE-1-003",
        "Telegram chat_id=-1001234567890 message_id=42",
        "order 1234567890:fill 0.001 at 67_000.0",
        "MD5 d41d8cd98f00b204e9800998ecf8427e of empty file",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for _ in 0..80 {
        let uuid = format!(
            "{}-{}-4{}-{}{}-{}",
            rng.string(HEX, 8),
            rng.string(HEX, 4),
            rng.string(HEX, 3),
            rng.pick(&["8", "9", "a", "b"]),
            rng.string(HEX, 3),
            rng.string(HEX, 12)
        );
        let id = format!(
            "O-20240603-{:06}-001-001-{}",
            rng.below(240000),
            rng.range(1, 999)
        );
        let hash = rng.string(HEX, 64);
        let ts = 1_717_372_800_000_000_000u64 + rng.next_u64() % 86_400_000_000_000;
        let bad_iban = format!("DE{:02}{}", rng.range(10, 99), rng.string(DIGITS, 18));
        lines.push(match rng.below(6) {
            0 => format!("OrderAccepted(client_order_id={id}, venue_order_id={}, event_id={uuid}, ts_event={ts})", rng.range(4_000_000_000, 8_999_999_999)),
            1 => format!("artifact sha256={hash} size={}", rng.range(1000, 99999)),
            2 => format!("tx {hash} confirmed in block {}", rng.range(1_000_000, 9_999_999)),
            3 => format!("reference {bad_iban} is not an IBAN when the checksum fails (or passes by chance)"),
            4 => format!("PositionChanged(position_id=ETHUSDT-PERP.BINANCE-SHORT, signed_qty=-{}.{:03}, ts_event={ts})", rng.below(9), rng.below(1000)),
            _ => format!("trade_id={} order_id={} qty=0.{:03} px=3_{:03}.{:02}", rng.range(100_000_000, 999_999_999), rng.range(100_000_000, 999_999_999), rng.below(1000), rng.below(1000), rng.below(100)),
        });
    }
    lines
        .into_iter()
        .map(|l| {
            let mut record = Map::new();
            record.insert("message".into(), json!(l));
            CleanCase {
                source: "near misses",
                record,
            }
        })
        .collect()
}

/// Every string in a value, at any depth.
pub fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// The measured result of one run over the corpus.
#[derive(Default)]
pub struct Report {
    /// Per category: (cases, cases with every secret gone, cases labelled with the category).
    pub recall: Vec<(&'static str, usize, usize, usize)>,
    pub missed: Vec<String>,
    /// Per source: (lines, tokens, tokens changed).
    pub clean: Vec<(&'static str, usize, usize, usize)>,
    pub changed: Vec<(String, String)>,
}

impl Report {
    pub fn measure(
        secret_cases: &[SecretCase],
        secret_out: &[Map<String, Value>],
        clean_cases: &[CleanCase],
        clean_out: &[Map<String, Value>],
    ) -> Self {
        assert_eq!(secret_cases.len(), secret_out.len());
        assert_eq!(clean_cases.len(), clean_out.len());
        let mut report = Report::default();
        for &category in &CATEGORIES {
            let mut row = (category, 0, 0, 0);
            for (case, out) in secret_cases
                .iter()
                .zip(secret_out)
                .filter(|(c, _)| c.category == category)
            {
                let mut texts = Vec::new();
                strings(&Value::Object(out.clone()), &mut texts);
                row.1 += 1;
                let leaked: Vec<&String> = case
                    .secrets
                    .iter()
                    .filter(|s| texts.iter().any(|t| t.contains(s.as_str())))
                    .collect();
                if leaked.is_empty() {
                    row.2 += 1;
                } else {
                    report
                        .missed
                        .push(format!("{category}: {leaked:?} in {texts:?}"));
                }
                if texts
                    .iter()
                    .any(|t| t.contains(&format!("[REDACTED:{category}")))
                {
                    row.3 += 1;
                }
            }
            report.recall.push(row);
        }
        for (case, out) in clean_cases.iter().zip(clean_out) {
            let row = match report.clean.iter().position(|r| r.0 == case.source) {
                Some(i) => &mut report.clean[i],
                None => {
                    report.clean.push((case.source, 0, 0, 0));
                    report.clean.last_mut().unwrap()
                }
            };
            row.1 += 1;
            let mut before = Vec::new();
            let mut after = Vec::new();
            strings(&Value::Object(case.record.clone()), &mut before);
            strings(&Value::Object(out.clone()), &mut after);
            for (b, a) in before.iter().zip(&after) {
                let tb: Vec<&str> = b.split_whitespace().collect();
                let ta: Vec<&str> = a.split_whitespace().collect();
                row.2 += tb.len();
                let changed = if tb.len() == ta.len() {
                    tb.iter().zip(&ta).filter(|(x, y)| x != y).count()
                } else {
                    tb.len()
                };
                row.3 += changed;
                if changed > 0 {
                    report.changed.push((b.clone(), a.clone()));
                }
            }
        }
        report
    }

    pub fn print(&self) {
        println!(
            "\n{:<24} {:>6} {:>8} {:>9} {:>9}",
            "category", "cases", "removed", "recall", "labelled"
        );
        for (cat, n, ok, labelled) in &self.recall {
            println!(
                "{cat:<24} {n:>6} {ok:>8} {:>8.1}% {:>8.1}%",
                100.0 * *ok as f64 / *n as f64,
                100.0 * *labelled as f64 / *n as f64
            );
        }
        let total: usize = self.recall.iter().map(|r| r.1).sum();
        let ok: usize = self.recall.iter().map(|r| r.2).sum();
        println!(
            "{:<24} {total:>6} {ok:>8} {:>8.1}%",
            "all",
            100.0 * ok as f64 / total as f64
        );
        println!(
            "\n{:<24} {:>6} {:>8} {:>8} {:>9}",
            "non-secret source", "lines", "tokens", "changed", "share"
        );
        for (source, lines, tokens, changed) in &self.clean {
            println!(
                "{source:<24} {lines:>6} {tokens:>8} {changed:>8} {:>8.3}%",
                100.0 * *changed as f64 / *tokens as f64
            );
        }
        let (lines, tokens, changed) = self.clean_totals();
        println!(
            "{:<24} {lines:>6} {tokens:>8} {changed:>8} {:>8.3}%",
            "all",
            100.0 * self.changed_share()
        );
        for (before, after) in self.changed.iter().take(20) {
            println!("changed: {before}\n     ->  {after}");
        }
    }

    pub fn clean_totals(&self) -> (usize, usize, usize) {
        self.clean
            .iter()
            .fold((0, 0, 0), |acc, r| (acc.0 + r.1, acc.1 + r.2, acc.2 + r.3))
    }

    pub fn changed_share(&self) -> f64 {
        let (_, tokens, changed) = self.clean_totals();
        changed as f64 / tokens as f64
    }
}
