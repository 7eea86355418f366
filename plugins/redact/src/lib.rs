//! Removes secrets from every string of every record before anything leaves the host.
//!
//! A leaked Binance key loses the account, so this plugin runs first in the chain and
//! looks at every string field at any depth, not only `message`: a secret that an
//! adapter logged into a structured field must go too. What it replaces says what it
//! removed (`[REDACTED:hmac_signature]`), keeping the context an operator needs
//! (`signature=[REDACTED:hmac_signature]`), and with a hash key from the environment it
//! appends a short keyed hash so one secret can be followed across lines without being
//! recoverable. See `docs/plugins/redact.md`.

mod detect;
mod iban;

pub use detect::CATEGORIES;

use detect::{Detector, Span};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sluice_sdk::prelude::*;

type HmacSha256 = Hmac<Sha256>;

/// The field names masked wholesale when the config does not list its own.
pub const DEFAULT_FIELDS: [&str; 14] = [
    "password",
    "passwd",
    "secret",
    "api_secret",
    "apisecret",
    "api_key",
    "apikey",
    "token",
    "access_token",
    "refresh_token",
    "private_key",
    "signature",
    "authorization",
    "listen_key",
];

/// The transform's `config:` block.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Built-in categories to look for; absent means all of them.
    pub categories: Option<Vec<String>>,
    /// Built-in categories to leave alone (applied after `categories`).
    pub disable: Vec<String>,
    /// Keys whose values are replaced whole, at any depth, matched ASCII
    /// case-insensitively. Replaces the default list; `[]` masks no field.
    pub fields: Vec<String>,
    /// The operator's own patterns, run on every string after the built-in ones.
    pub patterns: Vec<UserPattern>,
    /// Name of the environment variable holding the hash key. The key itself never sits
    /// in YAML; the transform must grant the variable (`grants: {env: [NAME]}`).
    pub hash_key_env: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            categories: None,
            disable: Vec::new(),
            fields: DEFAULT_FIELDS.iter().map(|f| (*f).to_owned()).collect(),
            patterns: Vec::new(),
            hash_key_env: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPattern {
    /// Shown in the replacement (`[REDACTED:<name>]`) and as the metric's `category`.
    pub name: String,
    /// A `regex` crate pattern. With a group named `secret`, only that group is replaced
    /// and the rest of the match is kept as context.
    pub pattern: String,
}

struct Compiled {
    regex: regex::Regex,
    /// Index of the `secret` capture group, when the pattern has one.
    secret_group: Option<usize>,
}

/// Everything fixed at init.
struct Engine {
    detector: Detector,
    user: Vec<Compiled>,
    /// Lower-cased masked field names; a masked value's tag names the one that matched.
    fields: Vec<String>,
    /// `field_bit` of every masked name, OR-ed.
    field_bloom: u64,
    /// Label of each category id: built-ins, then user patterns, then `field`.
    labels: Vec<String>,
    field_cat: usize,
    mac: Option<HmacSha256>,
}

/// Per-call working memory, kept between calls so a clean record allocates nothing.
#[derive(Default)]
struct Scratch {
    spans: Vec<Span>,
    counts: Vec<u64>,
}

/// The plugin. One instance per transform; `process_batch` emits the batch's counts.
pub struct Redact {
    engine: Engine,
    scratch: Scratch,
}

fn known_categories(key: &str, names: &[String]) -> Result<Vec<usize>, Error> {
    let mut unknown = Vec::new();
    let mut ids = Vec::new();
    for name in names {
        match CATEGORIES.iter().position(|c| c == name) {
            Some(i) => ids.push(i),
            None => unknown.push(format!("`{name}`")),
        }
    }
    if unknown.is_empty() {
        Ok(ids)
    } else {
        Err(Error(format!(
            "config key `{key}`: unknown categor{} {}; known categories: {}",
            if unknown.len() == 1 { "y" } else { "ies" },
            unknown.join(", "),
            CATEGORIES.join(", ")
        )))
    }
}

impl Redact {
    fn build(config: Config, hash_key: Option<Vec<u8>>) -> Result<Self, Error> {
        let mut enabled = [config.categories.is_none(); CATEGORIES.len()];
        if let Some(list) = &config.categories {
            for i in known_categories("categories", list)? {
                enabled[i] = true;
            }
        }
        for i in known_categories("disable", &config.disable)? {
            enabled[i] = false;
        }

        let mut labels: Vec<String> = CATEGORIES.iter().map(|c| (*c).to_owned()).collect();
        let mut user = Vec::new();
        for p in &config.patterns {
            let valid_name = !p.name.is_empty()
                && p.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !valid_name {
                return Err(Error(format!(
                    "config key `patterns`: name `{}` must be non-empty and use only letters, digits, `_`, `-` and `.`",
                    p.name
                )));
            }
            if labels.contains(&p.name) || p.name == "field" {
                return Err(Error(format!(
                    "config key `patterns`: name `{}` is already taken (by a built-in category or another pattern)",
                    p.name
                )));
            }
            let regex = regex::Regex::new(&p.pattern).map_err(|e| {
                Error(format!(
                    "config key `patterns`: pattern `{}` does not compile: {e}",
                    p.name
                ))
            })?;
            let secret_group = regex.capture_names().position(|n| n == Some("secret"));
            user.push(Compiled {
                regex,
                secret_group,
            });
            labels.push(p.name.clone());
        }
        let field_cat = labels.len();
        labels.push("field".to_owned());

        let mut fields = Vec::new();
        for f in &config.fields {
            if f.is_empty() {
                return Err(Error("config key `fields`: a field name is empty".into()));
            }
            fields.push(f.to_ascii_lowercase());
        }

        let mac = hash_key
            .map(|key| HmacSha256::new_from_slice(&key).expect("HMAC takes keys of any length"));
        let scratch = Scratch {
            spans: Vec::new(),
            counts: vec![0; labels.len()],
        };
        Ok(Self {
            engine: Engine {
                detector: Detector::new(&enabled),
                user,
                field_bloom: fields.iter().fold(0, |bloom, f| bloom | field_bit(f)),
                fields,
                labels,
                field_cat,
                mac,
            },
            scratch,
        })
    }

    /// Redacts one record in place; counts what it removed into the batch's tally.
    pub fn redact(&mut self, record: &mut Record) {
        for (key, value) in record.fields_mut().iter_mut() {
            self.engine.visit(key, value, &mut self.scratch);
        }
    }
}

fn field_bit(key: &str) -> u64 {
    let first = key
        .bytes()
        .next()
        .map_or(0, |b| b.to_ascii_lowercase() as usize);
    1 << ((key.len() * 7 + first) % 64)
}

fn read_hash_key(var: &str) -> Result<Vec<u8>, Error> {
    if var.is_empty() {
        return Err(Error(
            "config key `hash_key_env`: the variable name is empty".into(),
        ));
    }
    match std::env::var_os(var) {
        Some(value) if !value.is_empty() => Ok(value.into_encoded_bytes()),
        Some(_) => Err(Error(format!(
            "config key `hash_key_env`: environment variable {var} is empty; set it to a random key"
        ))),
        None => Err(Error(format!(
            "config key `hash_key_env`: environment variable {var} is not visible to the plugin; \
             grant it on this transform with `grants: {{env: [{var}]}}` and set it in Sluice's environment"
        ))),
    }
}

impl Engine {
    fn field_index(&self, key: &str) -> Option<usize> {
        // Every key of every record is asked; most are not masked, and a one-bit test on
        // (length, first letter) says so without comparing strings.
        if self.field_bloom & field_bit(key) == 0 {
            return None;
        }
        self.fields
            .iter()
            .position(|f| f.len() == key.len() && f.eq_ignore_ascii_case(key))
    }

    fn visit(&self, key: &str, value: &mut Value, scratch: &mut Scratch) {
        match self.field_index(key) {
            Some(i) => self.mask(i, value, scratch),
            None => self.walk(value, scratch),
        }
    }

    fn walk(&self, value: &mut Value, scratch: &mut Scratch) {
        match value {
            Value::String(s) => self.redact_string(s, scratch),
            Value::Array(items) => {
                for item in items {
                    self.walk(item, scratch);
                }
            }
            Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    self.visit(key, item, scratch);
                }
            }
            _ => {}
        }
    }

    /// Replaces a masked field's whole value, whatever its type; `null` and `""` carry
    /// nothing and stay.
    fn mask(&self, field: usize, value: &mut Value, scratch: &mut Scratch) {
        let secret = match &mut *value {
            Value::Null => return,
            Value::String(s) if s.is_empty() || s.starts_with("[REDACTED") => return,
            Value::String(s) => std::mem::take(s),
            other => other.to_string(),
        };
        let mut out = String::with_capacity(24);
        self.write_tag(&mut out, &self.fields[field], secret.as_bytes());
        *value = Value::String(out);
        scratch.counts[self.field_cat] += 1;
    }

    fn write_tag(&self, out: &mut String, label: &str, secret: &[u8]) {
        out.push_str("[REDACTED:");
        out.push_str(label);
        if let Some(mac) = &self.mac {
            let mut mac = mac.clone();
            mac.update(secret);
            let digest = mac.finalize().into_bytes();
            out.push(':');
            for byte in &digest[..4] {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push(HEX[(byte >> 4) as usize] as char);
                out.push(HEX[(byte & 15) as usize] as char);
            }
        }
        out.push(']');
    }

    fn redact_string(&self, s: &mut String, scratch: &mut Scratch) {
        let spans = &mut scratch.spans;
        spans.clear();
        self.detector.find(s.as_bytes(), spans);
        let builtin = CATEGORIES.len();
        for (i, user) in self.user.iter().enumerate() {
            let cat = (builtin + i) as u16;
            let prio = u16::MAX - 1;
            match user.secret_group {
                None => {
                    spans.extend(
                        user.regex
                            .find_iter(s)
                            .filter(|m| !m.is_empty())
                            .map(|m| Span {
                                start: m.start(),
                                end: m.end(),
                                cat,
                                prio,
                            }),
                    )
                }
                Some(group) => spans.extend(
                    user.regex
                        .captures_iter(s)
                        .filter_map(|c| c.get(group))
                        .filter(|m| !m.is_empty())
                        .map(|m| Span {
                            start: m.start(),
                            end: m.end(),
                            cat,
                            prio,
                        }),
                ),
            }
        }
        if spans.is_empty() {
            return;
        }
        // Byte regexes may stop inside a UTF-8 sequence; widen to whole characters.
        for span in spans.iter_mut() {
            while !s.is_char_boundary(span.start) {
                span.start -= 1;
            }
            while !s.is_char_boundary(span.end) {
                span.end += 1;
            }
        }
        spans.sort_unstable_by_key(|sp| (sp.start, sp.prio));
        // Overlapping finds become one replacement, labelled by the first (or, at the
        // same start, the higher-priority) find.
        let mut merged = 0;
        for i in 1..spans.len() {
            if spans[i].start < spans[merged].end {
                spans[merged].end = spans[merged].end.max(spans[i].end);
            } else {
                merged += 1;
                spans[merged] = spans[i];
            }
        }
        spans.truncate(merged + 1);

        let mut out = String::with_capacity(s.len() + spans.len() * 24);
        let mut last = 0;
        for span in spans.iter() {
            out.push_str(&s[last..span.start]);
            self.write_tag(
                &mut out,
                &self.labels[span.cat as usize],
                &s.as_bytes()[span.start..span.end],
            );
            scratch.counts[span.cat as usize] += 1;
            last = span.end;
        }
        out.push_str(&s[last..]);
        *s = out;
    }
}

impl Plugin for Redact {
    type Config = Config;

    fn new(config: Config) -> Result<Self, Error> {
        let key = match &config.hash_key_env {
            Some(var) => Some(read_hash_key(var)?),
            None => None,
        };
        Self::build(config, key)
    }

    fn process(&mut self, mut record: Record, out: &mut Output) -> Result<(), Error> {
        self.redact(&mut record);
        out.push(record);
        Ok(())
    }

    /// One counter update per category seen in the batch, not one per record, so the
    /// metric costs nothing on the hot path.
    fn process_batch(&mut self, batch: Vec<Record>, out: &mut Output) -> Result<(), Error> {
        for record in batch {
            self.process(record, out)?;
        }
        for (label, count) in self
            .engine
            .labels
            .iter()
            .zip(self.scratch.counts.iter_mut())
        {
            if *count > 0 {
                counter(
                    "redact_secrets_total",
                    &[("category", label)],
                    *count as f64,
                );
                *count = 0;
            }
        }
        Ok(())
    }
}

export_plugin!(Redact);

#[doc(hidden)]
pub mod bench {
    //! For the native micro-measurement in `examples/`: the plugin without the SDK's
    //! MessagePack round trip.
    pub use super::Redact;
    use super::*;

    pub fn with_key(config: Config, key: Option<&[u8]>) -> Result<Redact, Error> {
        Redact::build(config, key.map(<[u8]>::to_vec))
    }
}

#[cfg(test)]
mod tests;
