//! Finding secrets in one string.
//!
//! Redact sees every string of every record, so the common case, a line with no secret,
//! must cost one pass over its bytes. That pass does two things per byte:
//!
//! 1. it steps an Aho-Corasick DFA over the trigger literals of every enabled rule
//!    (`signature`, `x-mbx-apikey`, `://`, `eyJ`, `AKIA`, `@`, ...), ASCII
//!    case-insensitive, where a few literals must also match case exactly or pass a
//!    cheap look at their neighbours;
//! 2. it tracks runs of `[A-Za-z0-9_-]`, which recognises the shapes that have no
//!    literal to trigger on (bare 60–64 character Binance keys, Telegram bot tokens,
//!    Discord bot tokens, IBANs) and reports their spans itself.
//!
//! The DFA is driven by hand rather than through `AhoCorasick::find_overlapping_iter`,
//! which costs about 40 ns of set-up per call: most strings in a record are short
//! (`level`, `trader_id`, `timestamp`), so that set-up alone would cost more than the
//! scan. Only the rules whose triggers fired run their regex, over that string alone. The
//! regexes are byte regexes without Unicode and without capture groups: where a prefix
//! is context to keep (`signature=`), an anchored regex for the prefix alone is run on
//! each match, which is far rarer than the search itself.

use crate::iban;
use aho_corasick::automaton::Automaton;
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind};
use regex::bytes::{Regex, RegexBuilder};

/// Built-in categories, in the order of their ids. The names appear in replacements
/// (`[REDACTED:hmac_signature]`), in the `categories`/`disable` config keys and in the
/// `category` label of `redact_secrets_total`.
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

const BINANCE_API_KEY: u16 = 0;
const API_SECRET: u16 = 1;
const HMAC_SIGNATURE: u16 = 2;
const LISTEN_KEY: u16 = 3;
const BEARER_TOKEN: u16 = 4;
const JWT: u16 = 5;
const URL_PASSWORD: u16 = 6;
const PASSWORD: u16 = 7;
const AWS_ACCESS_KEY_ID: u16 = 8;
const AWS_SECRET_ACCESS_KEY: u16 = 9;
const GITHUB_TOKEN: u16 = 10;
const SLACK_TOKEN: u16 = 11;
const SLACK_WEBHOOK: u16 = 12;
const DISCORD_TOKEN: u16 = 13;
const DISCORD_WEBHOOK: u16 = 14;
const TELEGRAM_BOT_TOKEN: u16 = 15;
const PAGERDUTY_KEY: u16 = 16;
const PRIVATE_KEY: u16 = 17;
const EMAIL: u16 = 18;
const ACCOUNT_NUMBER: u16 = 19;
const IBAN: u16 = 20;

/// A secret found in a string: bytes `start..end` are replaced. `prio` breaks ties
/// between overlapping finds (lower wins the label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
    pub cat: u16,
    pub prio: u16,
}

/// The separator between a key and its value in `key=value`, `key: value`,
/// `"key": "value"`, `\"key\":\"value\"` (JSON inside a log line) and `key => value`.
macro_rules! sep {
    () => {
        r#"(?:\\?["'])?\s*[:=]>?\s*(?:\\?["'])?"#
    };
}

/// What must hold around a regex match for it to count.
#[derive(Clone, Copy)]
enum Check {
    Any,
    /// The byte after the match is not one of these (e.g. `@`: `/ws/btcusdt@depth` is a
    /// stream name, not a listen key).
    NotFollowedBy(&'static [u8]),
    /// Neither neighbour of the match is alphanumeric.
    Bounded,
    /// The byte after the match is not alphanumeric (a longer number or token is
    /// something else).
    EndsWord,
    /// An opaque token after `Bearer`: has a digit or is long, so prose ("bearer of bad
    /// news") stays.
    TokenLike,
    /// A bare 40-character AWS secret beside an access key id.
    Aws40,
    /// An email address that is not the user part of a URL (`ssh://git@host`).
    Email,
}

/// Where in a match the secret is.
#[derive(Clone, Copy)]
enum Special {
    /// After `prefix` (or all of it when there is no prefix).
    None,
    /// `scheme://user:PASSWORD@`: between the first `:` after `://` and the last `@`.
    UrlPassword,
    /// `user:PASSWORD@tcp(`: between the first `:` and the last `@`.
    GoDsn,
    /// A `-----BEGIN ... PRIVATE KEY-----` header: the body up to the matching footer
    /// (or to the end of the string when the footer is missing).
    Pem,
}

struct Def {
    cat: u16,
    /// Literals that make this rule worth running (matched ASCII case-insensitively).
    triggers: &'static [&'static str],
    /// The triggers must also match case exactly (`AKIA`, not `Slovakia`).
    exact: bool,
    /// Context kept in front of the secret; empty when the whole match is the secret.
    prefix: &'static str,
    value: &'static str,
    check: Check,
    /// A value that opens with a quote runs to the closing quote, so a quoted password
    /// with spaces goes entirely.
    quoted: bool,
    special: Special,
}

const fn def(
    cat: u16,
    triggers: &'static [&'static str],
    prefix: &'static str,
    value: &'static str,
) -> Def {
    Def {
        cat,
        triggers,
        exact: false,
        prefix,
        value,
        check: Check::Any,
        quoted: false,
        special: Special::None,
    }
}

impl Def {
    const fn exact(mut self) -> Self {
        self.exact = true;
        self
    }
    const fn check(mut self, check: Check) -> Self {
        self.check = check;
        self
    }
    const fn quoted(mut self) -> Self {
        self.quoted = true;
        self
    }
    const fn special(mut self, special: Special) -> Self {
        self.special = special;
        self
    }
}

const AWS_ID_PREFIXES: &[&str] = &[
    "AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "ABIA", "ACCA",
];

/// The rules, in priority order (earlier wins the label when finds overlap).
const DEFS: &[Def] = &[
    def(PRIVATE_KEY, &["private key-----"], "", r"-----BEGIN[ A-Z0-9]*PRIVATE KEY-----")
        .special(Special::Pem),
    def(
        BINANCE_API_KEY,
        &["x-mbx-apikey"],
        concat!(r"(?i)x-mbx-apikey", sep!()),
        r"[A-Za-z0-9]{16,}",
    ),
    // `API key <key> has trading permissions`, `apiKey=`, `"api_key": "..."`.
    def(
        BINANCE_API_KEY,
        &["apikey", "api_key", "api key", "api-key"],
        r#"(?i)api[ _-]?key(?:(?:\\?["'])?\s*[:=]>?\s*(?:\\?["'])?|\s+)"#,
        r"[A-Za-z0-9_-]{16,}",
    ),
    def(
        AWS_SECRET_ACCESS_KEY,
        &["secretaccesskey", "secret_access_key", "secret-access-key"],
        concat!(r"(?i)(?:aws[_-]?)?secret[_-]?access[_-]?key", sep!()),
        r"[A-Za-z0-9/+=]{16,}",
    ),
    // `secret=`, `apiSecret`, `api_secret: ...`, `client_secret`, `secretKey`.
    def(
        API_SECRET,
        &["secret"],
        concat!(r"(?i)(?:api[_-]?|client[_-]?)?secret(?:[_-]?key)?", sep!()),
        r#"[^\s"'&,;\\]+"#,
    )
    .quoted(),
    def(
        HMAC_SIGNATURE,
        &["signature"],
        concat!(r"(?i)signature", sep!()),
        r"[A-Za-z0-9+/_-]{16,}={0,2}",
    ),
    def(LISTEN_KEY, &["/ws/"], r"/ws/", r"[A-Za-z0-9]{20,}").check(Check::NotFollowedBy(b"@")),
    def(
        LISTEN_KEY,
        &["listenkey", "listen_key", "listen key", "listen-key"],
        r#"(?i)listen[ _-]?key(?:(?:\\?["'])?\s*[:=]\s*(?:\\?["'])?|\s+)"#,
        r"[A-Za-z0-9]{20,}",
    ),
    // Combined streams: `wss://fstream.binance.com/stream?streams=<listenKey>/btcusdt@aggTrade`.
    def(
        LISTEN_KEY,
        &["streams="],
        r"(?i)streams=(?:[A-Za-z0-9@_.-]+/)*",
        r"[A-Za-z0-9]{30,}",
    )
    .check(Check::NotFollowedBy(b"@")),
    def(
        BEARER_TOKEN,
        &["bearer"],
        r"(?i)\bbearer\s+",
        r"[A-Za-z0-9._~+/-]{8,}=*",
    )
    .check(Check::TokenLike),
    def(
        BEARER_TOKEN,
        &["authorization"],
        concat!(
            r"(?i)authorization",
            sep!(),
            r"(?:(?:bearer|basic|token|bot|digest|apikey|hmac|key)\s+)?"
        ),
        r#"[^\s"',;\\]+"#,
    )
    .quoted(),
    def(
        JWT,
        &["eyJ"],
        "",
        r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
    )
    .exact(),
    def(
        URL_PASSWORD,
        &["://"],
        "",
        r#"[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:"'<>]*:[^\s/?#"'<>]+@"#,
    )
    .special(Special::UrlPassword),
    // Go's MySQL DSN: `user:password@tcp(host:3306)/db`.
    def(
        URL_PASSWORD,
        &["@tcp(", "@unix(", "@udp("],
        "",
        r#"[A-Za-z0-9._-]+:[^\s/?#"'<>]+@(?:tcp|unix|udp)\("#,
    )
    .special(Special::GoDsn),
    def(
        PASSWORD,
        &["password", "passwd", "passphrase", "pwd"],
        concat!(r"(?i)(?:password|passwd|passphrase|pwd)", sep!()),
        r#"[^\s"'&,;\\]+"#,
    )
    .quoted(),
    def(
        AWS_ACCESS_KEY_ID,
        AWS_ID_PREFIXES,
        "",
        r"(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}",
    )
    .exact()
    .check(Check::Bounded),
    // A bare secret access key next to an access key id (credentials files, CSV exports).
    def(AWS_SECRET_ACCESS_KEY, AWS_ID_PREFIXES, "", r"[A-Za-z0-9/+]{40,}")
        .exact()
        .check(Check::Aws40),
    def(
        GITHUB_TOKEN,
        &["ghp_", "gho_", "ghs_", "ghu_", "ghr_", "github_pat_"],
        "",
        r"(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{20,})",
    )
    .exact(),
    def(
        SLACK_TOKEN,
        &["xox", "xapp-"],
        "",
        r"(?:xox[a-z]-[A-Za-z0-9-]{10,}|xapp-[0-9]+-[A-Za-z0-9-]{10,})",
    )
    .exact(),
    def(
        SLACK_WEBHOOK,
        &["hooks.slack.com"],
        r"(?i)hooks\.slack\.com/(?:services|workflows|triggers)/",
        r"[A-Za-z0-9_/-]+",
    ),
    def(
        DISCORD_WEBHOOK,
        &["discord"],
        r"(?i)discord(?:app)?\.com/api/(?:v[0-9]+/)?webhooks/[0-9]+/",
        r"[A-Za-z0-9_-]+",
    ),
    def(
        PAGERDUTY_KEY,
        &[
            "routing_key", "routing key", "routingkey", "routing-key", "integration_key",
            "integration key", "integrationkey", "integration-key", "service_key",
            "service key", "servicekey", "service-key",
        ],
        r#"(?i)(?:routing|integration|service)[ _-]?key(?:\\?["'])?\s*[:=]?>?\s*(?:\\?["'])?"#,
        r"[A-Za-z0-9+]{32}",
    )
    .check(Check::EndsWord),
    // In context only: `account number`, `acct`, `account_no`, `account=`; never
    // NautilusTrader's `account_id=BINANCE-001`.
    def(
        ACCOUNT_NUMBER,
        &[
            "account number", "account_number", "account-number", "accountnumber",
            "account num", "account_num", "account no", "account_no", "accountno",
            "account=", "account:", "account #", "account#", "account ", "account\"",
            "account'", "acct",
        ],
        r#"(?i)(?:account[ _-]?(?:number|num|no)\.?|acct(?:[ _-]?(?:number|num|no))?\.?|account)(?:\\?["'])?\s*(?:[:=#]|is)?\s*(?:\\?["'])?"#,
        r"[0-9]{8,20}",
    )
    .check(Check::EndsWord),
    def(
        EMAIL,
        &["@"],
        "",
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    )
    .check(Check::Email),
];

/// Span priorities of the scan-found shapes: after every regex rule.
const SCAN_PRIO: u16 = DEFS.len() as u16;

struct Rule {
    cat: u16,
    find: Regex,
    /// Anchored regex for the kept context in front of the secret.
    prefix: Option<Regex>,
    /// The footer of a PEM block.
    pem_end: Option<Regex>,
    check: Check,
    quoted: bool,
    special: Special,
}

#[derive(Clone, Copy)]
enum Guard {
    None,
    /// The trigger's bytes must equal the literal exactly.
    Exact(usize),
    /// `@` with a local-part byte before it and a domain byte after it.
    EmailAt,
}

struct Trigger {
    rules: u64,
    guard: Guard,
    len: usize,
}

/// The built-in detector for one configuration of enabled categories.
pub(crate) struct Detector {
    rules: Vec<Rule>,
    triggers: Option<DFA>,
    trigger_info: Vec<Trigger>,
    literals: Vec<&'static [u8]>,
    /// Which scan-found shapes are enabled.
    scan_bare_key: bool,
    scan_listen_key: bool,
    scan_telegram: bool,
    scan_discord: bool,
    scan_iban: bool,
}

fn compile(pattern: &str) -> Regex {
    RegexBuilder::new(pattern)
        .unicode(false)
        .build()
        .unwrap_or_else(|e| panic!("built-in pattern {pattern:?}: {e}"))
}

impl Detector {
    /// `enabled[cat]` says whether a built-in category is on.
    pub(crate) fn new(enabled: &[bool; CATEGORIES.len()]) -> Self {
        let mut rules = Vec::new();
        let mut literals: Vec<(String, bool)> = Vec::new();
        let mut trigger_info: Vec<Trigger> = Vec::new();
        let mut raw: Vec<&'static [u8]> = Vec::new();
        for def in DEFS.iter().filter(|d| enabled[d.cat as usize]) {
            let bit = 1u64 << rules.len();
            let full = if def.prefix.is_empty() {
                def.value.to_owned()
            } else {
                format!("(?:{})(?:{})", def.prefix, def.value)
            };
            rules.push(Rule {
                cat: def.cat,
                find: compile(&full),
                prefix: (!def.prefix.is_empty()).then(|| compile(&format!("^(?:{})", def.prefix))),
                pem_end: matches!(def.special, Special::Pem)
                    .then(|| compile(r"-----END[ A-Z0-9]*PRIVATE KEY-----")),
                check: def.check,
                quoted: def.quoted,
                special: def.special,
            });
            for &literal in def.triggers {
                let key = (literal.to_ascii_lowercase(), def.exact);
                match literals.iter().position(|k| *k == key) {
                    Some(i) => trigger_info[i].rules |= bit,
                    None => {
                        let guard = if def.exact {
                            Guard::Exact(raw.len())
                        } else if literal == "@" {
                            Guard::EmailAt
                        } else {
                            Guard::None
                        };
                        literals.push(key);
                        raw.push(literal.as_bytes());
                        trigger_info.push(Trigger {
                            rules: bit,
                            guard,
                            len: literal.len(),
                        });
                    }
                }
            }
        }
        assert!(rules.len() <= 64, "trigger masks are 64 bits");
        // Standard semantics report every literal ending at a position, overlapping ones
        // included; without a prefilter the only special states are match states.
        let triggers = (!literals.is_empty()).then(|| {
            DFA::builder()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .prefilter(false)
                .build(literals.iter().map(|(l, _)| l.as_bytes()))
                .expect("trigger literals build")
        });
        let on = |cat: u16| enabled[cat as usize];
        Self {
            rules,
            triggers,
            trigger_info,
            literals: raw,
            scan_bare_key: on(BINANCE_API_KEY),
            scan_listen_key: on(LISTEN_KEY),
            scan_telegram: on(TELEGRAM_BOT_TOKEN),
            scan_discord: on(DISCORD_TOKEN),
            scan_iban: on(IBAN),
        }
    }

    /// Appends the secrets found in `hay` to `out` (unsorted, possibly overlapping).
    pub(crate) fn find(&self, hay: &[u8], out: &mut Vec<Span>) {
        let mut fired = match &self.triggers {
            Some(dfa) => self.scan_with_triggers(dfa, hay, out),
            None => {
                self.scan(hay, out);
                0
            }
        };
        while fired != 0 {
            let i = fired.trailing_zeros() as usize;
            fired &= fired - 1;
            self.run_rule(i, hay, out);
        }
    }

    /// The one pass: trigger literals and token runs together. Returns the rules to run.
    fn scan_with_triggers(&self, dfa: &DFA, hay: &[u8], out: &mut Vec<Span>) -> u64 {
        let mut fired = 0u64;
        let mut sid = dfa
            .start_state(Anchored::No)
            .expect("unanchored searches are supported");
        let mut prev = (0usize, 0usize, 0u8);
        let mut prev2 = (0usize, 0usize, 0u8);
        let mut run_start = 0;
        let mut classes = 0u8;
        for (i, &byte) in hay.iter().enumerate() {
            sid = dfa.next_state(Anchored::No, sid, byte);
            if dfa.is_special(sid) && dfa.is_match(sid) {
                fired |= self.fire(dfa, sid, hay, i + 1);
            }
            let class = CLASS[byte as usize];
            if class != 0 {
                if classes == 0 {
                    run_start = i;
                }
                classes |= class;
            } else if classes != 0 {
                let run = (run_start, i, classes);
                if worth_checking(i - run_start, classes) {
                    self.check_run(hay, run, prev, prev2, out);
                }
                prev2 = prev;
                prev = run;
                classes = 0;
            }
        }
        if classes != 0 && worth_checking(hay.len() - run_start, classes) {
            self.check_run(hay, (run_start, hay.len(), classes), prev, prev2, out);
        }
        fired
    }

    /// The rules of the literals ending at `end`, after their guards.
    #[cold]
    fn fire(
        &self,
        dfa: &DFA,
        sid: aho_corasick::automaton::StateID,
        hay: &[u8],
        end: usize,
    ) -> u64 {
        let mut fired = 0;
        for k in 0..dfa.match_len(sid) {
            let trigger = &self.trigger_info[dfa.match_pattern(sid, k).as_usize()];
            let start = end - trigger.len;
            let ok = match trigger.guard {
                Guard::None => true,
                Guard::Exact(i) => &hay[start..end] == self.literals[i],
                Guard::EmailAt => {
                    start > 0
                        && is_local_part(hay[start - 1])
                        && hay.get(end).is_some_and(u8::is_ascii_alphanumeric)
                }
            };
            if ok {
                fired |= trigger.rules;
            }
        }
        fired
    }

    fn run_rule(&self, index: usize, hay: &[u8], out: &mut Vec<Span>) {
        let rule = &self.rules[index];
        let prio = index as u16;
        let mut at = 0;
        while let Some(m) = rule.find.find_at(hay, at) {
            at = m.end().max(at + 1);
            let (start, mut end) = match rule.special {
                Special::None => match &rule.prefix {
                    None => (m.start(), m.end()),
                    Some(prefix) => {
                        let kept = prefix.find(&hay[m.start()..m.end()]).map_or(0, |p| p.end());
                        if kept >= m.len() {
                            (m.start(), m.end())
                        } else {
                            (m.start() + kept, m.end())
                        }
                    }
                },
                Special::UrlPassword => {
                    let text = &hay[m.start()..m.end()];
                    let Some(scheme_end) = find_bytes(text, b"://") else {
                        continue;
                    };
                    let Some(colon) = text[scheme_end + 3..].iter().position(|&b| b == b':') else {
                        continue;
                    };
                    (m.start() + scheme_end + 3 + colon + 1, m.end() - 1)
                }
                Special::GoDsn => {
                    let text = &hay[m.start()..m.end()];
                    let (Some(colon), Some(at_sign)) = (
                        text.iter().position(|&b| b == b':'),
                        text.iter().rposition(|&b| b == b'@'),
                    ) else {
                        continue;
                    };
                    (m.start() + colon + 1, m.start() + at_sign)
                }
                Special::Pem => {
                    let end_marker = rule.pem_end.as_ref().expect("pem rules have a footer");
                    match end_marker.find_at(hay, m.end()) {
                        Some(footer) => {
                            at = footer.end();
                            (m.end(), footer.start())
                        }
                        None => {
                            // No footer: everything after the header may be key material.
                            at = hay.len();
                            (m.end(), hay.len())
                        }
                    }
                }
            };
            if start >= end
                || hay[start..end].starts_with(b"[REDACTED")
                || is_placeholder(&hay[start..end])
            {
                continue;
            }
            let ok = match rule.check {
                Check::Any => true,
                Check::NotFollowedBy(bytes) => hay.get(m.end()).is_none_or(|b| !bytes.contains(b)),
                Check::Bounded => {
                    (m.start() == 0 || !hay[m.start() - 1].is_ascii_alphanumeric())
                        && hay.get(m.end()).is_none_or(|b| !b.is_ascii_alphanumeric())
                }
                Check::EndsWord => hay.get(m.end()).is_none_or(|b| !b.is_ascii_alphanumeric()),
                Check::TokenLike => {
                    end - start >= 24 || hay[start..end].iter().any(u8::is_ascii_digit)
                }
                Check::Aws40 => {
                    let token = &hay[start..end];
                    token.len() == 40
                        && (start == 0 || !is_base64(hay[start - 1]))
                        && hay.get(end) != Some(&b'=')
                        && token.iter().any(u8::is_ascii_uppercase)
                        && token.iter().any(u8::is_ascii_lowercase)
                }
                Check::Email => !is_url_userinfo(hay, start),
            };
            if !ok {
                continue;
            }
            if rule.quoted && start > 0 && matches!(hay[start - 1], b'"' | b'\'') {
                let quote = hay[start - 1];
                let limit = hay.len().min(start + 1024);
                if let Some(q) = hay[end..limit].iter().position(|&b| b == quote) {
                    end += q;
                    // A JSON-escaped closing quote keeps its backslash outside the secret.
                    if end > start && hay[end - 1] == b'\\' {
                        end -= 1;
                    }
                }
            }
            if start < end {
                out.push(Span {
                    start,
                    end,
                    cat: rule.cat,
                    prio,
                });
            }
        }
    }

    /// One pass over runs of `[A-Za-z0-9_-]` for the shapes without a trigger literal.
    fn scan(&self, hay: &[u8], out: &mut Vec<Span>) {
        // (start, end, classes) of the previous two runs, to see `a.b.c` and `a:b`.
        let mut prev = (0usize, 0usize, 0u8);
        let mut prev2 = (0usize, 0usize, 0u8);
        let mut i = 0;
        let n = hay.len();
        while i < n {
            if CLASS[hay[i] as usize] == 0 {
                i += 1;
                continue;
            }
            let start = i;
            let mut classes = 0u8;
            while i < n {
                let c = CLASS[hay[i] as usize];
                if c == 0 {
                    break;
                }
                classes |= c;
                i += 1;
            }
            let len = i - start;
            if worth_checking(len, classes) {
                self.check_run(hay, (start, i, classes), prev, prev2, out);
            }
            prev2 = prev;
            prev = (start, i, classes);
        }
    }

    #[inline]
    fn check_run(
        &self,
        hay: &[u8],
        run: (usize, usize, u8),
        prev: (usize, usize, u8),
        prev2: (usize, usize, u8),
        out: &mut Vec<Span>,
    ) {
        let (start, end, classes) = run;
        let len = end - start;
        let mixed = classes & (UPPER | LOWER | DIGIT) == UPPER | LOWER | DIGIT;
        if (60..=64).contains(&len) && mixed && classes & PUNCT == 0 {
            let cat = if len == 64 {
                BINANCE_API_KEY
            } else {
                LISTEN_KEY
            };
            let on = if len == 64 {
                self.scan_bare_key
            } else {
                self.scan_listen_key
            };
            if on {
                out.push(Span {
                    start,
                    end,
                    cat,
                    prio: SCAN_PRIO,
                });
            }
        }
        // `<bot id>:<35 characters>`, also inside `api.telegram.org/bot<token>/`.
        if self.scan_telegram
            && (30..=45).contains(&len)
            && prev.1 + 1 == start
            && hay[prev.1] == b':'
            && classes & (UPPER | LOWER) != 0
        {
            let digits = hay[prev.0..prev.1]
                .iter()
                .rev()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if (8..=10).contains(&digits) {
                out.push(Span {
                    start: prev.1 - digits,
                    end,
                    cat: TELEGRAM_BOT_TOKEN,
                    prio: SCAN_PRIO,
                });
            }
        }
        // `<base64 user id>.<6>.<27+>`.
        if self.scan_discord
            && (27..=40).contains(&len)
            && prev.1 + 1 == start
            && hay[prev.1] == b'.'
            && (6..=7).contains(&(prev.1 - prev.0))
            && prev2.1 + 1 == prev.0
            && hay[prev2.1] == b'.'
            && (23..=28).contains(&(prev2.1 - prev2.0))
            && matches!(hay[prev2.0], b'M' | b'N' | b'O')
            && prev2.2 & (UPPER | LOWER) == UPPER | LOWER
        {
            out.push(Span {
                start: prev2.0,
                end,
                cat: DISCORD_TOKEN,
                prio: SCAN_PRIO,
            });
        }
        if self.scan_iban && iban::could_start(hay, start) {
            if let Some(iban_end) = iban::match_at(hay, start) {
                out.push(Span {
                    start,
                    end: iban_end,
                    cat: IBAN,
                    prio: SCAN_PRIO,
                });
            }
        }
    }
}

/// Only long runs (keys, tokens) or runs with capitals that may start an IBAN (`DE89`
/// of a spaced one, or a compact one) can be anything; the rest skip `check_run`.
#[inline(always)]
fn worth_checking(len: usize, classes: u8) -> bool {
    len >= 27 || (classes & UPPER != 0 && (len == 4 || len >= 15))
}

const UPPER: u8 = 1;
const LOWER: u8 = 2;
const DIGIT: u8 = 4;
const PUNCT: u8 = 8;

static CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = if b.is_ascii_uppercase() {
            UPPER
        } else if b.is_ascii_lowercase() {
            LOWER
        } else if b.is_ascii_digit() {
            DIGIT
        } else if b == b'_' || b == b'-' {
            PUNCT
        } else {
            0
        };
        i += 1;
    }
    table
};

/// Values that say "no secret here" (`api_secret=None` in a config dump); replacing
/// them would only hide that the setting is empty.
fn is_placeholder(value: &[u8]) -> bool {
    const EMPTY: [&[u8]; 7] = [
        b"None",
        b"none",
        b"null",
        b"NULL",
        b"nil",
        b"undefined",
        b"***",
    ];
    EMPTY.contains(&value)
}

fn is_local_part(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'/' | b'+' | b'=')
}

/// Whether the email-looking match at `start` is the user part of a URL
/// (`ssh://git@host`): `://` comes before it with nothing but user characters between.
/// An address in a query string (`?email=ops@example.com`) is an email. Looks back at
/// most 256 bytes so a long run of near-misses stays linear.
fn is_url_userinfo(hay: &[u8], start: usize) -> bool {
    let from = start.saturating_sub(256);
    let mut i = start;
    while i > from {
        i -= 1;
        match hay[i] {
            b'/' => return i >= 2 && &hay[i - 2..=i] == b"://",
            b'?' | b'#' | b'=' | b'&' | b'"' | b'\'' | b'<' | b'(' => return false,
            b if b.is_ascii_whitespace() => return false,
            _ => {}
        }
    }
    false
}

fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Detector {
        Detector::new(&[true; CATEGORIES.len()])
    }

    fn secrets(det: &Detector, text: &str) -> Vec<(String, &'static str)> {
        let mut spans = Vec::new();
        det.find(text.as_bytes(), &mut spans);
        spans.sort_by_key(|s| (s.start, s.prio));
        spans
            .iter()
            .map(|s| (text[s.start..s.end].to_owned(), CATEGORIES[s.cat as usize]))
            .collect()
    }

    #[test]
    fn every_built_in_pattern_compiles_and_triggers_are_lowercase_or_exact() {
        let det = all();
        assert_eq!(det.rules.len(), DEFS.len());
        for d in DEFS {
            for t in d.triggers {
                assert!(d.exact || t.to_ascii_lowercase() == *t, "{t}");
            }
        }
    }

    #[test]
    fn context_prefix_is_kept() {
        let det = all();
        assert_eq!(
            secrets(&det, "GET /x?timestamp=1&signature=0123456789abcdef0123"),
            [("0123456789abcdef0123".to_owned(), "hmac_signature")]
        );
        assert_eq!(
            secrets(&det, "postgres://user:hunter2@db:5432/x"),
            [("hunter2".to_owned(), "url_password")]
        );
        assert_eq!(
            secrets(&det, r#"{"password": "correct horse battery"}"#),
            [("correct horse battery".to_owned(), "password")]
        );
    }

    #[test]
    fn near_misses_are_not_secrets() {
        let det = all();
        for text in [
            "Connected to wss://fstream.binance.com/ws/btcusdt@markPrice@1s",
            "PUT /fapi/v1/listenKey 200 (3.1ms) x-mbx-used-weight-1m=5/2400",
            "AccountState(account_id=BINANCE-001, account_type=MARGIN)",
            "BUY 0.012 BTCUSDT-PERP.BINANCE LIMIT @ 67_472.5 GTC",
            "secret_ratio=0.02 signature_valid=true",
            "ts_event=1717372800000000000",
            "ssh://git@github.com/org/repo",
            "Slovakia and Asia",
            "bearer of bad news",
        ] {
            assert_eq!(secrets(&det, text), [], "{text}");
        }
    }
}
