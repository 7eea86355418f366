//! Request bodies, one builder per service, each following that service's documented
//! format and limits (message sizes are cut with a visible "…and N more" rather than
//! rejected by the service). Text from log lines is escaped for each markup, and Discord
//! is told to ping nobody, so a crafted log line cannot mention `@everyone`.

use super::router::{AlertSnapshot, Notification, Status};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// Alertmanager's "no end time yet".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `[FIRING:2] BotSilent`, after Alertmanager's default title.
pub fn title(n: &Notification) -> String {
    let status = match n.status() {
        Status::Firing => format!("FIRING:{}", n.count(Status::Firing)),
        Status::Resolved => "RESOLVED".to_owned(),
    };
    let name = if n.group_labels.is_empty() {
        n.common_labels()
            .get("alertname")
            .cloned()
            .unwrap_or_else(|| "alerts".to_owned())
    } else {
        n.group_labels
            .values()
            .cloned()
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!("[{status}] {name}")
}

/// Cuts to at most `max` characters, marking the cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A runbook link fit to embed in markup: http(s) and nothing that closes a link.
pub fn safe_url(url: &str) -> Option<&str> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= 2000
        && !url
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '<' | '>' | '|' | '"' | '\''));
    ok.then_some(url)
}

fn runbook(a: &AlertSnapshot) -> Option<&str> {
    a.annotations.get("runbook_url").and_then(|u| safe_url(u))
}

/// The description, when it says more than the summary.
fn description(a: &AlertSnapshot) -> Option<&str> {
    a.annotations
        .get("description")
        .map(String::as_str)
        .filter(|d| !d.is_empty() && *d != a.summary())
}

fn label_pairs(a: &AlertSnapshot) -> Vec<String> {
    a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Alertmanager's webhook format (version 4), as its `webhook_config` sends it.
pub fn webhook(n: &Notification, receiver: &str, external_url: &str, max_alerts: usize) -> Value {
    let shown = if max_alerts == 0 {
        n.alerts.len()
    } else {
        n.alerts.len().min(max_alerts)
    };
    let alerts: Vec<Value> = n.alerts[..shown]
        .iter()
        .map(|a| {
            json!({
                "status": a.status.as_str(),
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": ts(a.starts_at),
                "endsAt": a.ends_at.map(ts).unwrap_or_else(|| ZERO_TIME.to_owned()),
                "generatorURL": external_url,
                "fingerprint": a.fingerprint,
            })
        })
        .collect();
    json!({
        "version": "4",
        "groupKey": &*n.group_key,
        "truncatedAlerts": n.alerts.len() - shown,
        "status": n.status().as_str(),
        "receiver": receiver,
        "groupLabels": n.group_labels,
        "commonLabels": n.common_labels(),
        "commonAnnotations": n.common_annotations(),
        "externalURL": external_url,
        "alerts": alerts,
    })
}

/// Slack's mrkdwn needs only `&`, `<` and `>` escaped; backticks would end a code span.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('`', "'")
}

/// Slack allows 50 blocks a message: a header, this many alerts, and a "more" line.
const SLACK_MAX_ALERTS: usize = 20;

/// An incoming-webhook message: `text` (shown in notifications) and Block Kit blocks.
pub fn slack(n: &Notification) -> Value {
    let title = title(n);
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(&title, 150), "emoji": true},
    })];
    for a in n.alerts.iter().take(SLACK_MAX_ALERTS) {
        let mark = match a.status {
            Status::Firing => ":red_circle: *FIRING*",
            Status::Resolved => ":large_green_circle: *RESOLVED*",
        };
        let mut text = format!(
            "{mark} · `{}` · *{}*",
            slack_escape(&truncate(a.severity(), 50)),
            slack_escape(&truncate(a.summary(), 300))
        );
        if let Some(d) = description(a) {
            text.push('\n');
            text.push_str(&slack_escape(&truncate(d, 1500)));
        }
        let labels: Vec<String> = label_pairs(a)
            .iter()
            .map(|p| format!("`{}`", slack_escape(p)))
            .collect();
        text.push_str("\n*Labels:* ");
        text.push_str(&truncate(&labels.join(" "), 900));
        if let Some(url) = runbook(a) {
            text.push_str(&format!("\n<{url}|Runbook>"));
        }
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": truncate(&text, 3000)},
        }));
    }
    if n.alerts.len() > SLACK_MAX_ALERTS {
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": format!("…and {} more", n.alerts.len() - SLACK_MAX_ALERTS)}],
        }));
    }
    json!({"text": title, "blocks": blocks})
}

const DISCORD_MAX_EMBEDS: usize = 10;
/// Discord's 6000-character budget for all embeds of a message, with some margin.
const DISCORD_EMBED_BUDGET: usize = 5800;

fn discord_color(a: &AlertSnapshot) -> u32 {
    match (a.status, a.severity()) {
        (Status::Resolved, _) => 0x2E_CC71,
        (_, "critical" | "error" | "page") => 0xE7_4C3C,
        (_, "warning") => 0xE6_7E22,
        _ => 0x34_98DB,
    }
}

fn discord_embed(a: &AlertSnapshot) -> (Value, usize) {
    let status = match a.status {
        Status::Firing => "FIRING",
        Status::Resolved => "RESOLVED",
    };
    let title = truncate(&format!("{status}: {}", a.summary()), 256);
    let severity = truncate(a.severity(), 1024);
    let labels = truncate(&label_pairs(a).join("\n"), 1000);
    let mut size = title.chars().count() + "Severity".len() + severity.chars().count();
    let mut fields = vec![json!({"name": "Severity", "value": severity, "inline": true})];
    if !labels.is_empty() {
        size += "Labels".len() + labels.chars().count() + 8;
        fields.push(
            json!({"name": "Labels", "value": format!("```\n{labels}\n```"), "inline": false}),
        );
    }
    let mut embed = Map::new();
    embed.insert("title".into(), json!(title));
    if let Some(d) = description(a) {
        let d = truncate(d, 2048);
        size += d.chars().count();
        embed.insert("description".into(), json!(d));
    }
    if let Some(url) = runbook(a) {
        embed.insert("url".into(), json!(url));
        size += "Runbook".len() + url.len();
        fields.push(json!({"name": "Runbook", "value": url, "inline": false}));
    }
    embed.insert("color".into(), json!(discord_color(a)));
    embed.insert("fields".into(), Value::Array(fields));
    embed.insert(
        "timestamp".into(),
        json!(ts(a.ends_at.unwrap_or(a.starts_at))),
    );
    (Value::Object(embed), size)
}

/// An execute-webhook body: the title as `content` (2000 characters at most), one embed
/// per alert within Discord's 10-embed and 6000-character limits.
pub fn discord(n: &Notification) -> Value {
    let mut embeds = Vec::new();
    let mut used = 0;
    for a in &n.alerts {
        if embeds.len() == DISCORD_MAX_EMBEDS {
            break;
        }
        let (embed, size) = discord_embed(a);
        if used + size > DISCORD_EMBED_BUDGET {
            break;
        }
        used += size;
        embeds.push(embed);
    }
    let mut content = title(n);
    let omitted = n.alerts.len() - embeds.len();
    if omitted > 0 {
        content.push_str(&format!(" (…and {omitted} more)"));
    }
    json!({
        "content": truncate(&content, 2000),
        "embeds": embeds,
        "allowed_mentions": {"parse": []},
    })
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Below Telegram's 4096 characters even counting the markup.
const TELEGRAM_BUDGET: usize = 3900;

fn telegram_alert(a: &AlertSnapshot) -> String {
    let mark = match a.status {
        Status::Firing => "🔴 <b>FIRING</b>",
        Status::Resolved => "✅ <b>RESOLVED</b>",
    };
    let mut s = format!(
        "{mark} [{}] {}",
        html_escape(&truncate(a.severity(), 50)),
        html_escape(&truncate(a.summary(), 300))
    );
    if let Some(d) = description(a) {
        s.push('\n');
        s.push_str(&html_escape(&truncate(d, 1000)));
    }
    s.push_str(&format!(
        "\n<code>{}</code>",
        html_escape(&truncate(&label_pairs(a).join(", "), 800))
    ));
    if let Some(url) = runbook(a) {
        s.push_str(&format!("\n<a href=\"{}\">Runbook</a>", html_escape(url)));
    }
    s
}

/// A `sendMessage` body with HTML formatting.
pub fn telegram(n: &Notification, chat_id: &Value) -> Value {
    let mut text = format!("<b>{}</b>", html_escape(&title(n)));
    let mut shown = 0;
    for a in &n.alerts {
        let block = telegram_alert(a);
        if shown > 0 && text.chars().count() + block.chars().count() + 2 > TELEGRAM_BUDGET {
            break;
        }
        text.push_str("\n\n");
        text.push_str(&block);
        shown += 1;
    }
    if shown < n.alerts.len() {
        text.push_str(&format!("\n\n…and {} more", n.alerts.len() - shown));
    }
    json!({
        "chat_id": chat_id,
        "text": text,
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": true},
    })
}

/// PagerDuty knows four severities; others map to the nearest.
pub fn pagerduty_severity(severity: &str) -> &'static str {
    match severity.to_ascii_lowercase().as_str() {
        "critical" | "fatal" | "page" | "emergency" => "critical",
        "error" | "high" | "major" => "error",
        "info" | "informational" | "low" | "debug" | "none" => "info",
        _ => "warning",
    }
}

pub struct PagerDutyTarget<'a> {
    pub routing_key: &'a str,
    pub source: &'a str,
    pub client: &'a str,
    pub client_url: &'a str,
}

/// Events API v2 events, one per alert: `trigger` for firing, `resolve` for resolved, both
/// with the alert's fingerprint as `dedup_key` so PagerDuty pairs them.
pub fn pagerduty(n: &Notification, target: &PagerDutyTarget<'_>) -> Vec<Value> {
    n.alerts
        .iter()
        .map(|a| match a.status {
            Status::Resolved => json!({
                "routing_key": target.routing_key,
                "event_action": "resolve",
                "dedup_key": a.fingerprint,
            }),
            Status::Firing => {
                let summary = if a.summary() == a.name() {
                    format!("[{}] {}", a.severity(), a.name())
                } else {
                    format!("[{}] {}: {}", a.severity(), a.name(), a.summary())
                };
                let mut details = Map::new();
                details.insert("labels".into(), json!(a.labels));
                details.insert("annotations".into(), json!(a.annotations));
                if let Some(p) = &a.plugin {
                    details.insert("plugin".into(), json!(p));
                }
                let mut event = json!({
                    "routing_key": target.routing_key,
                    "event_action": "trigger",
                    "dedup_key": a.fingerprint,
                    "payload": {
                        "summary": truncate(&summary, 1024),
                        "source": target.source,
                        "severity": pagerduty_severity(a.severity()),
                        "timestamp": ts(a.starts_at),
                        "class": a.name(),
                        "custom_details": details,
                    },
                    "client": target.client,
                });
                if !target.client_url.is_empty() {
                    event["client_url"] = json!(target.client_url);
                }
                if let Some(url) = a.annotations.get("runbook_url").filter(|u| !u.is_empty()) {
                    event["links"] = json!([{"href": url, "text": "Runbook"}]);
                }
                event
            }
        })
        .collect()
}

/// `POST /api/v2/alerts` body. A firing alert is valid until four resend intervals from
/// now (as Prometheus does), so Alertmanager resolves it by itself if Sluice goes away.
pub fn alertmanager(
    n: &Notification,
    now: DateTime<Utc>,
    resend: Duration,
    generator_url: &str,
) -> Value {
    let valid_for = chrono::Duration::from_std(resend * 4).unwrap_or(chrono::Duration::hours(1));
    Value::Array(
        n.alerts
            .iter()
            .map(|a| {
                let ends = match a.status {
                    Status::Firing => now + valid_for,
                    Status::Resolved => a.ends_at.unwrap_or(now),
                };
                let mut alert = json!({
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "startsAt": ts(a.starts_at),
                    "endsAt": ts(ends),
                });
                if !generator_url.is_empty() {
                    alert["generatorURL"] = json!(generator_url);
                }
                alert
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::alerts::route::Labels;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn bot_silent(status: Status) -> AlertSnapshot {
        AlertSnapshot {
            fingerprint: "a1b2c3d4e5f60718".into(),
            status,
            labels: labels(&[
                ("alertname", "BotSilent"),
                ("severity", "critical"),
                ("trader_id", "TRADER-001"),
            ]),
            annotations: labels(&[
                ("summary", "No log lines from TRADER-001 for 60 s"),
                ("description", "The bot may have crashed <check> & restart"),
                ("runbook_url", "https://runbooks.example/bot-silent"),
            ]),
            plugin: Some("alerts".into()),
            starts_at: t("2025-03-01T12:00:00Z"),
            ends_at: (status == Status::Resolved).then(|| t("2025-03-01T12:05:00.250Z")),
        }
    }

    fn rejections() -> AlertSnapshot {
        AlertSnapshot {
            fingerprint: "ffff000011112222".into(),
            status: Status::Firing,
            labels: labels(&[
                ("alertname", "BotSilent"),
                ("severity", "critical"),
                ("trader_id", "TRADER-002"),
            ]),
            annotations: labels(&[("summary", "No log lines from TRADER-002 for 60 s")]),
            plugin: None,
            starts_at: t("2025-03-01T12:00:01Z"),
            ends_at: None,
        }
    }

    fn notification(alerts: Vec<AlertSnapshot>) -> Notification {
        Notification {
            receiver: 0,
            route: 0,
            group_key: "{}:{alertname=\"BotSilent\"}".into(),
            group_labels: labels(&[("alertname", "BotSilent")]),
            alerts,
        }
    }

    #[test]
    fn webhook_is_alertmanagers_version_4() {
        let n = notification(vec![
            bot_silent(Status::Firing),
            bot_silent(Status::Resolved),
        ]);
        let mut n = n;
        n.alerts[1].fingerprint = "0000000000000001".into();
        n.alerts[1]
            .labels
            .insert("trader_id".into(), "TRADER-009".into());
        let got = webhook(&n, "ops", "https://sluice.example", 1);
        let expected = json!({
            "version": "4",
            "groupKey": "{}:{alertname=\"BotSilent\"}",
            "truncatedAlerts": 1,
            "status": "firing",
            "receiver": "ops",
            "groupLabels": {"alertname": "BotSilent"},
            "commonLabels": {"alertname": "BotSilent", "severity": "critical"},
            "commonAnnotations": {
                "summary": "No log lines from TRADER-001 for 60 s",
                "description": "The bot may have crashed <check> & restart",
                "runbook_url": "https://runbooks.example/bot-silent",
            },
            "externalURL": "https://sluice.example",
            "alerts": [{
                "status": "firing",
                "labels": {"alertname": "BotSilent", "severity": "critical", "trader_id": "TRADER-001"},
                "annotations": {
                    "summary": "No log lines from TRADER-001 for 60 s",
                    "description": "The bot may have crashed <check> & restart",
                    "runbook_url": "https://runbooks.example/bot-silent",
                },
                "startsAt": "2025-03-01T12:00:00.000Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "https://sluice.example",
                "fingerprint": "a1b2c3d4e5f60718",
            }],
        });
        assert_eq!(got, expected);
    }

    #[test]
    fn slack_has_text_blocks_severity_labels_and_runbook_and_marks_resolved() {
        let got = slack(&notification(vec![bot_silent(Status::Firing)]));
        let expected = json!({
            "text": "[FIRING:1] BotSilent",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "[FIRING:1] BotSilent", "emoji": true}},
                {"type": "section", "text": {"type": "mrkdwn", "text":
                    ":red_circle: *FIRING* · `critical` · *No log lines from TRADER-001 for 60 s*\n\
                     The bot may have crashed &lt;check&gt; &amp; restart\n\
                     *Labels:* `alertname=BotSilent` `severity=critical` `trader_id=TRADER-001`\n\
                     <https://runbooks.example/bot-silent|Runbook>"}},
            ],
        });
        assert_eq!(got, expected);
        let resolved = slack(&notification(vec![bot_silent(Status::Resolved)]));
        assert_eq!(resolved["text"], "[RESOLVED] BotSilent");
        assert!(resolved["blocks"][1]["text"]["text"]
            .as_str()
            .unwrap()
            .starts_with(":large_green_circle: *RESOLVED*"));
    }

    #[test]
    fn slack_caps_blocks() {
        let many: Vec<_> = (0..25)
            .map(|i| {
                let mut a = rejections();
                a.fingerprint = format!("{i:016x}");
                a
            })
            .collect();
        let got = slack(&notification(many));
        let blocks = got["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 1 + SLACK_MAX_ALERTS + 1);
        assert_eq!(blocks.last().unwrap()["elements"][0]["text"], "…and 5 more");
    }

    #[test]
    fn discord_embeds_colour_by_state_and_mention_nobody() {
        let got = discord(&notification(vec![
            bot_silent(Status::Firing),
            rejections(),
        ]));
        let expected = json!({
            "content": "[FIRING:2] BotSilent",
            "embeds": [
                {
                    "title": "FIRING: No log lines from TRADER-001 for 60 s",
                    "description": "The bot may have crashed <check> & restart",
                    "url": "https://runbooks.example/bot-silent",
                    "color": 0xE74C3C,
                    "fields": [
                        {"name": "Severity", "value": "critical", "inline": true},
                        {"name": "Labels", "value": "```\nalertname=BotSilent\nseverity=critical\ntrader_id=TRADER-001\n```", "inline": false},
                        {"name": "Runbook", "value": "https://runbooks.example/bot-silent", "inline": false},
                    ],
                    "timestamp": "2025-03-01T12:00:00.000Z",
                },
                {
                    "title": "FIRING: No log lines from TRADER-002 for 60 s",
                    "color": 0xE74C3C,
                    "fields": [
                        {"name": "Severity", "value": "critical", "inline": true},
                        {"name": "Labels", "value": "```\nalertname=BotSilent\nseverity=critical\ntrader_id=TRADER-002\n```", "inline": false},
                    ],
                    "timestamp": "2025-03-01T12:00:01.000Z",
                },
            ],
            "allowed_mentions": {"parse": []},
        });
        assert_eq!(got, expected);
        let resolved = discord(&notification(vec![bot_silent(Status::Resolved)]));
        assert_eq!(resolved["embeds"][0]["color"], 0x2ECC71);
        assert_eq!(
            resolved["embeds"][0]["timestamp"],
            "2025-03-01T12:05:00.250Z"
        );
    }

    #[test]
    fn discord_respects_embed_count_and_size_limits() {
        let mut big = rejections();
        big.annotations
            .insert("description".into(), "x".repeat(5000));
        let many: Vec<_> = (0..12)
            .map(|i| {
                let mut a = if i < 2 { big.clone() } else { rejections() };
                a.fingerprint = format!("{i:016x}");
                a
            })
            .collect();
        let got = discord(&notification(many));
        let embeds = got["embeds"].as_array().unwrap();
        let total: usize = embeds
            .iter()
            .map(|e| {
                e["title"].as_str().unwrap().chars().count()
                    + e["description"].as_str().map_or(0, |d| d.chars().count())
                    + e["fields"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|f| {
                            f["name"].as_str().unwrap().chars().count()
                                + f["value"].as_str().unwrap().chars().count()
                        })
                        .sum::<usize>()
            })
            .sum();
        assert!(total <= 6000, "{total}");
        assert!(embeds.len() <= 10);
        assert_eq!(
            embeds[0]["description"].as_str().unwrap().chars().count(),
            2048
        );
        let content = got["content"].as_str().unwrap();
        assert!(
            content.starts_with("[FIRING:12] BotSilent (…and "),
            "{content}"
        );
        assert!(content.chars().count() <= 2000);
    }

    #[test]
    fn telegram_is_escaped_html_within_the_limit() {
        let got = telegram(
            &notification(vec![bot_silent(Status::Firing)]),
            &json!(-1001234567890i64),
        );
        let expected = json!({
            "chat_id": -1001234567890i64,
            "text": "<b>[FIRING:1] BotSilent</b>\n\n\
                     🔴 <b>FIRING</b> [critical] No log lines from TRADER-001 for 60 s\n\
                     The bot may have crashed &lt;check&gt; &amp; restart\n\
                     <code>alertname=BotSilent, severity=critical, trader_id=TRADER-001</code>\n\
                     <a href=\"https://runbooks.example/bot-silent\">Runbook</a>",
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": true},
        });
        assert_eq!(got, expected);
        let many: Vec<_> = (0..40)
            .map(|i| {
                let mut a = bot_silent(Status::Firing);
                a.fingerprint = format!("{i:016x}");
                a
            })
            .collect();
        let got = telegram(&notification(many), &json!("@ops"));
        let text = got["text"].as_str().unwrap();
        assert!(text.chars().count() <= 4096);
        assert!(text.contains("more"), "{text}");
    }

    #[test]
    fn pagerduty_triggers_and_resolves_by_fingerprint() {
        let target = PagerDutyTarget {
            routing_key: "R0UT1NGKEY",
            source: "trading-host-1",
            client: "Sluice",
            client_url: "",
        };
        let got = pagerduty(
            &notification(vec![bot_silent(Status::Firing), {
                let mut r = bot_silent(Status::Resolved);
                r.fingerprint = "0000000000000001".into();
                r
            }]),
            &target,
        );
        let expected = vec![
            json!({
                "routing_key": "R0UT1NGKEY",
                "event_action": "trigger",
                "dedup_key": "a1b2c3d4e5f60718",
                "payload": {
                    "summary": "[critical] BotSilent: No log lines from TRADER-001 for 60 s",
                    "source": "trading-host-1",
                    "severity": "critical",
                    "timestamp": "2025-03-01T12:00:00.000Z",
                    "class": "BotSilent",
                    "custom_details": {
                        "labels": {"alertname": "BotSilent", "severity": "critical", "trader_id": "TRADER-001"},
                        "annotations": {
                            "summary": "No log lines from TRADER-001 for 60 s",
                            "description": "The bot may have crashed <check> & restart",
                            "runbook_url": "https://runbooks.example/bot-silent",
                        },
                        "plugin": "alerts",
                    },
                },
                "client": "Sluice",
                "links": [{"href": "https://runbooks.example/bot-silent", "text": "Runbook"}],
            }),
            json!({"routing_key": "R0UT1NGKEY", "event_action": "resolve", "dedup_key": "0000000000000001"}),
        ];
        assert_eq!(got, expected);
        assert_eq!(pagerduty_severity("warn"), "warning");
        assert_eq!(pagerduty_severity("Error"), "error");
        assert_eq!(pagerduty_severity("low"), "info");
    }

    #[test]
    fn alertmanager_alerts_carry_start_and_end() {
        let now = t("2025-03-01T12:10:00Z");
        let got = alertmanager(
            &notification(vec![
                bot_silent(Status::Firing),
                bot_silent(Status::Resolved),
            ]),
            now,
            Duration::from_secs(60),
            "",
        );
        let a = &got[0];
        assert_eq!(a["startsAt"], "2025-03-01T12:00:00.000Z");
        assert_eq!(a["endsAt"], "2025-03-01T12:14:00.000Z");
        assert_eq!(a["labels"]["alertname"], "BotSilent");
        assert!(a.get("generatorURL").is_none());
        assert_eq!(got[1]["endsAt"], "2025-03-01T12:05:00.250Z");
        assert_eq!(
            a.as_object().unwrap().keys().collect::<Vec<_>>(),
            vec!["annotations", "endsAt", "labels", "startsAt"]
        );
    }

    #[test]
    fn unsafe_runbook_links_are_left_out() {
        assert_eq!(
            safe_url("https://x.example/a?b=1"),
            Some("https://x.example/a?b=1")
        );
        assert_eq!(safe_url("javascript:alert(1)"), None);
        assert_eq!(safe_url("https://x.example/|<@everyone>"), None);
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
