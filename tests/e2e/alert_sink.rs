//! The `alerts` sink end to end: alert events posted to an `http` source are routed,
//! grouped, de-duplicated, rate-limited and delivered by a real `sluice` to receivers
//! recorded on loopback (exact payloads per service), and to a real Alertmanager that
//! returns them through its API. Secrets never reach the log or `/health`.

use crate::recorder::*;
use crate::support::{pipeline, Sluice};
use serde_json::{json, Value};
use sluice_tests::{free_port, http, wait_for};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// Seconds since the epoch of a UTC RFC 3339 time (`2025-03-01T12:00:00.250Z`), the form
/// Sluice and Alertmanager write; None for anything else.
fn rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() < 20
        || !s.ends_with('Z')
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let frac: f64 = match &s[19..s.len() - 1] {
        "" => 0.0,
        f => format!("0{f}").parse().ok()?,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss) as f64 + frac)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Replaces each RFC 3339 time in `v` (but Alertmanager's zero time) with `<time>`, after
/// checking it lies between `from` (Unix seconds) and a minute from now: startsAt, endsAt
/// and timestamps are "now" when the sink saw the event.
fn normalize_times(v: &mut Value, from: f64) {
    match v {
        Value::String(s) if s != "0001-01-01T00:00:00Z" => {
            if let Some(t) = rfc3339(s) {
                assert!(
                    t >= from - 1.0 && t <= unix_now() + 60.0,
                    "time {s} is not around now"
                );
                *s = "<time>".into();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| normalize_times(x, from)),
        Value::Object(o) => o.values_mut().for_each(|x| normalize_times(x, from)),
        _ => {}
    }
}

fn secret_file(dir: &Path, name: &str, value: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("{value}\n")).unwrap();
    path.display().to_string()
}

/// Starts sluice with `sinks_yaml` fed by an `http` source; returns it and the source's
/// address once it listens.
fn start(dir: &Path, admin: Option<u16>, sinks_yaml: &str) -> (Sluice, String) {
    let port = free_port();
    let admin = admin.map_or("null".to_owned(), |p| format!("\"127.0.0.1:{p}\""));
    let config = pipeline(
        dir,
        &format!(
            "data_dir: {d}/data\nadmin: {{address: {admin}}}\nsources:\n  ingest: {{type: http, address: \"127.0.0.1:{port}\", path: /alerts}}\nsinks:\n{sinks_yaml}",
            d = dir.display()
        ),
    );
    let sluice = Sluice::start(dir, &config);
    let addr = format!("127.0.0.1:{port}");
    let up = wait_for(Duration::from_secs(20), || TcpStream::connect(&addr).ok());
    assert!(up.is_some(), "sluice did not start:\n{}", sluice.log_text());
    (sluice, addr)
}

fn post(addr: &str, events: &[Value]) {
    let body: String = events.iter().map(|e| format!("{e}\n")).collect();
    let (status, reply) = http("POST", addr, "/alerts", &[], body.as_bytes());
    assert_eq!(status, 200, "{reply}");
}

fn event(name: &str, status: &str, labels: Value, fingerprint: &str) -> Value {
    json!({
        "name": name,
        "status": status,
        "severity": "critical",
        "labels": labels,
        "annotations": {
            "summary": format!("{name} for {}", labels["trader_id"].as_str().unwrap_or("all")),
            "runbook_url": "https://runbooks.example/bot-silent",
        },
        "fingerprint": fingerprint,
        "plugin": "alerts",
    })
}

fn log_of_all_runs(dir: &Path) -> String {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("sluice-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect()
}

const HOOK_TOKEN: &str = "HOOKSECRET7f3a9c";
const SLACK_TOKEN: &str = "SLACKSECRETxoxb42";
const DISCORD_TOKEN: &str = "DISCORDSECRETq8w7";
const BOT_TOKEN: &str = "123456:TGSECRETabcdef";
const ROUTING_KEY: &str = "PDROUTINGKEY0123456789abcdefABCD";

#[test]
fn rfc3339_reads_utc_times() {
    assert_eq!(rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
    assert_eq!(rfc3339("2025-03-01T12:00:00.250Z"), Some(1_740_830_400.25));
    assert_eq!(rfc3339("2025-03-01 12:00:00Z"), None);
    assert_eq!(rfc3339("BotSilent"), None);
}

#[test]
fn alert_sink_sends_each_receiver_its_documented_payload() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rec = Recorder::start(|path, _| {
        if path.starts_with("/discord") {
            (204, vec![], String::new())
        } else if path.starts_with("/pd") {
            (
                202,
                vec![],
                r#"{"status":"success","message":"Event processed"}"#.into(),
            )
        } else if path.starts_with("/tg") {
            (
                200,
                vec![],
                r#"{"ok":true,"result":{"message_id":1}}"#.into(),
            )
        } else {
            ok(path, 0)
        }
    });
    let started = unix_now();
    let hook = secret_file(d, "hook", &rec.url(&format!("/hook/{HOOK_TOKEN}")));
    let slack = secret_file(
        d,
        "slack",
        &rec.url(&format!("/slack/services/T0/B0/{SLACK_TOKEN}")),
    );
    let discord = secret_file(
        d,
        "discord",
        &rec.url(&format!("/discord/api/webhooks/42/{DISCORD_TOKEN}")),
    );
    let bot = secret_file(d, "bot", BOT_TOKEN);
    let key = secret_file(d, "pd", ROUTING_KEY);
    let (sluice, addr) = start(
        d,
        None,
        &format!(
            r#"  notify:
    type: alerts
    inputs: [ingest]
    external_url: "http://sluice.test:8686"
    route:
      receiver: hook
      group_by: [alertname]
      group_wait_ms: 200
      group_interval_ms: 400
      repeat_interval_ms: 3600000
      routes:
        - {{receiver: hook, matchers: {{team: ops}}, continue: true}}
        - {{receiver: slack, matchers: {{team: ops}}, continue: true}}
        - {{receiver: discord, matchers: {{team: ops}}, continue: true}}
        - {{receiver: telegram, matchers: {{team: ops}}, continue: true}}
        - {{receiver: pager, matchers: {{team: ops}}}}
    receivers:
      hook: {{type: webhook, url: {{file: "{hook}"}}}}
      slack: {{type: slack, webhook_url: {{file: "{slack}"}}}}
      discord: {{type: discord, webhook_url: {{file: "{discord}"}}}}
      telegram: {{type: telegram, bot_token: {{file: "{bot}"}}, chat_id: -1001234567, api_url: "{tg}"}}
      pager: {{type: pagerduty, routing_key: {{file: "{key}"}}, url: "{pd}", source: trading-host-1}}
"#,
            tg = rec.url("/tg"),
            pd = rec.url("/pd/v2/enqueue"),
        ),
    );
    let labels = json!({"team": "ops", "trader_id": "TRADER-001"});
    post(
        &addr,
        &[event(
            "BotSilent",
            "firing",
            labels.clone(),
            "9f2c4e1a0b3d5f67",
        )],
    );

    let timeout = Duration::from_secs(10);
    let mut hook_body = rec.wait("/hook/", 1, timeout)[0].json();
    normalize_times(&mut hook_body, started);
    let full_labels = json!({"alertname": "BotSilent", "severity": "critical", "team": "ops", "trader_id": "TRADER-001"});
    let annotations = json!({"summary": "BotSilent for TRADER-001", "runbook_url": "https://runbooks.example/bot-silent"});
    assert_eq!(
        hook_body,
        json!({
            "version": "4",
            "groupKey": "{}/{team=\"ops\"}:{alertname=\"BotSilent\"}",
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "hook",
            "groupLabels": {"alertname": "BotSilent"},
            "commonLabels": full_labels,
            "commonAnnotations": annotations,
            "externalURL": "http://sluice.test:8686",
            "alerts": [{
                "status": "firing",
                "labels": full_labels,
                "annotations": annotations,
                "startsAt": "<time>",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://sluice.test:8686",
                "fingerprint": "9f2c4e1a0b3d5f67",
            }],
        })
    );

    let slack_req = &rec.wait("/slack/", 1, timeout)[0];
    assert_eq!(
        slack_req.path,
        format!("/slack/services/T0/B0/{SLACK_TOKEN}")
    );
    assert_eq!(
        slack_req.json(),
        json!({
            "text": "[FIRING:1] BotSilent",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "[FIRING:1] BotSilent", "emoji": true}},
                {"type": "section", "text": {"type": "mrkdwn", "text":
                    ":red_circle: *FIRING* · `critical` · *BotSilent for TRADER-001*\n\
                     *Labels:* `alertname=BotSilent` `severity=critical` `team=ops` `trader_id=TRADER-001`\n\
                     <https://runbooks.example/bot-silent|Runbook>"}},
            ],
        })
    );

    let mut discord_body = rec.wait("/discord/", 1, timeout)[0].json();
    normalize_times(&mut discord_body, started);
    assert_eq!(
        discord_body,
        json!({
            "content": "[FIRING:1] BotSilent",
            "embeds": [{
                "title": "FIRING: BotSilent for TRADER-001",
                "url": "https://runbooks.example/bot-silent",
                "color": 0xE74C3C,
                "fields": [
                    {"name": "Severity", "value": "critical", "inline": true},
                    {"name": "Labels", "value": "```\nalertname=BotSilent\nseverity=critical\nteam=ops\ntrader_id=TRADER-001\n```", "inline": false},
                    {"name": "Runbook", "value": "https://runbooks.example/bot-silent", "inline": false},
                ],
                "timestamp": "<time>",
            }],
            "allowed_mentions": {"parse": []},
        })
    );

    let tg = &rec.wait("/tg/", 1, timeout)[0];
    assert_eq!(tg.path, format!("/tg/bot{BOT_TOKEN}/sendMessage"));
    assert_eq!(
        tg.json(),
        json!({
            "chat_id": -1001234567,
            "text": "<b>[FIRING:1] BotSilent</b>\n\n\
                     🔴 <b>FIRING</b> [critical] BotSilent for TRADER-001\n\
                     <code>alertname=BotSilent, severity=critical, team=ops, trader_id=TRADER-001</code>\n\
                     <a href=\"https://runbooks.example/bot-silent\">Runbook</a>",
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": true},
        })
    );

    let mut pd_body = rec.wait("/pd/", 1, timeout)[0].json();
    normalize_times(&mut pd_body, started);
    assert_eq!(
        pd_body,
        json!({
            "routing_key": ROUTING_KEY,
            "event_action": "trigger",
            "dedup_key": "9f2c4e1a0b3d5f67",
            "payload": {
                "summary": "[critical] BotSilent: BotSilent for TRADER-001",
                "source": "trading-host-1",
                "severity": "critical",
                "timestamp": "<time>",
                "class": "BotSilent",
                "custom_details": {"labels": full_labels, "annotations": annotations, "plugin": "alerts"},
            },
            "client": "Sluice",
            "client_url": "http://sluice.test:8686",
            "links": [{"href": "https://runbooks.example/bot-silent", "text": "Runbook"}],
        })
    );

    // Resolved: every receiver hears it once, in the group's next notification.
    post(
        &addr,
        &[event("BotSilent", "resolved", labels, "9f2c4e1a0b3d5f67")],
    );
    let mut resolved = rec.wait("/hook/", 2, timeout)[1].json();
    normalize_times(&mut resolved, started);
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    assert_eq!(resolved["alerts"][0]["endsAt"], "<time>");
    assert_eq!(
        rec.wait("/slack/", 2, timeout)[1].json()["text"],
        "[RESOLVED] BotSilent"
    );
    assert_eq!(
        rec.wait("/discord/", 2, timeout)[1].json()["embeds"][0]["color"],
        0x2ECC71
    );
    let tg_text = rec.wait("/tg/", 2, timeout)[1].json()["text"].clone();
    assert!(
        tg_text.as_str().unwrap().contains("✅ <b>RESOLVED</b>"),
        "{tg_text}"
    );
    assert_eq!(
        rec.wait("/pd/", 2, timeout)[1].json(),
        json!({"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "9f2c4e1a0b3d5f67"})
    );
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        rec.on("/").len(),
        10,
        "one firing and one resolved per receiver"
    );

    assert_eq!(sluice.stop(), 0);
    let log = log_of_all_runs(d);
    for secret in [
        HOOK_TOKEN,
        SLACK_TOKEN,
        DISCORD_TOKEN,
        BOT_TOKEN,
        ROUTING_KEY,
    ] {
        assert!(
            !log.contains(secret),
            "{secret} leaked into the log:\n{log}"
        );
    }
}

#[test]
fn alert_sink_groups_deduplicates_and_resolves_on_the_group_interval() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rec = Recorder::start(ok);
    let hook = secret_file(d, "hook", &rec.url("/hook/t0ken"));
    let (sluice, addr) = start(
        d,
        None,
        &format!(
            r#"  notify:
    type: alerts
    inputs: [ingest]
    route:
      receiver: hook
      group_by: [alertname]
      group_wait_ms: 300
      group_interval_ms: 1000
      repeat_interval_ms: 60000
    receivers:
      hook: {{type: webhook, url: {{file: "{hook}"}}}}
"#
        ),
    );
    let a = |id: &str| json!({"trader_id": id});
    let t0 = Instant::now();
    post(
        &addr,
        &[
            event("OrderRejected", "firing", a("T-1"), "aaaa000000000001"),
            event("OrderRejected", "firing", a("T-2"), "aaaa000000000002"),
            event("BotSilent", "firing", a("T-1"), "bbbb000000000001"),
        ],
    );
    let first = rec.wait("/hook/", 2, Duration::from_secs(10));
    for r in &first {
        let waited = r.at - t0;
        assert!(
            waited >= Duration::from_millis(250),
            "sent after {waited:?}, before group_wait"
        );
    }
    let groups: Vec<(String, Vec<String>)> = first
        .iter()
        .map(|r| {
            let b = r.json();
            let fps = b["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["fingerprint"].as_str().unwrap().to_owned())
                .collect();
            (
                b["groupLabels"]["alertname"].as_str().unwrap().to_owned(),
                fps,
            )
        })
        .collect();
    let mut sorted = groups.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![
            ("BotSilent".to_owned(), vec!["bbbb000000000001".to_owned()]),
            (
                "OrderRejected".to_owned(),
                vec!["aaaa000000000001".to_owned(), "aaaa000000000002".to_owned()]
            ),
        ]
    );
    let order_first = first
        .iter()
        .find(|r| r.json()["groupLabels"]["alertname"] == "OrderRejected")
        .unwrap()
        .at;

    // The same firing alerts again: de-duplicated, nothing new for two group intervals.
    post(
        &addr,
        &[
            event("OrderRejected", "firing", a("T-1"), "aaaa000000000001"),
            event("BotSilent", "firing", a("T-1"), "bbbb000000000001"),
        ],
    );
    std::thread::sleep(Duration::from_millis(2300));
    assert_eq!(
        rec.on("/hook/").len(),
        2,
        "duplicates were notified: {:#?}",
        rec.on("/hook/")
    );

    // One alert of the group resolves: it goes out on the group's next tick, beside the
    // one still firing.
    let resolved_at = Instant::now();
    post(
        &addr,
        &[event(
            "OrderRejected",
            "resolved",
            a("T-1"),
            "aaaa000000000001",
        )],
    );
    let third = rec.wait("/hook/", 3, Duration::from_secs(5))[2].clone();
    let body = third.json();
    assert_eq!(body["groupLabels"]["alertname"], "OrderRejected");
    assert_eq!(body["status"], "firing");
    let states: Vec<(&str, &str)> = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["fingerprint"].as_str().unwrap(),
                a["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            ("aaaa000000000002", "firing"),
            ("aaaa000000000001", "resolved")
        ]
    );
    let delay = third.at - resolved_at;
    assert!(
        delay <= Duration::from_millis(1500),
        "resolve took {delay:?}"
    );
    // On the group's ticks: a whole number of group intervals after its first notification.
    let since_first = (third.at - order_first).as_millis() as i64;
    let off_tick = (since_first + 500) % 1000 - 500;
    assert!(
        off_tick.abs() <= 250,
        "{since_first} ms after the first, not on a tick"
    );

    // The last one resolves: a resolved notification with it alone, then the group is gone.
    post(
        &addr,
        &[event(
            "OrderRejected",
            "resolved",
            a("T-2"),
            "aaaa000000000002",
        )],
    );
    let fourth = rec.wait("/hook/", 4, Duration::from_secs(5))[3].json();
    assert_eq!(fourth["status"], "resolved");
    assert_eq!(fourth["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(fourth["alerts"][0]["fingerprint"], "aaaa000000000002");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(rec.on("/hook/").len(), 4);
    assert_eq!(sluice.stop(), 0);
}

fn metric(admin: &str, series: &str) -> f64 {
    let (status, text) = http("GET", admin, "/metrics", &[], b"");
    assert_eq!(status, 200);
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn alert_sink_rate_limits_retries_and_reports_a_failing_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rec = Recorder::start(|path, n| {
        if path.starts_with("/flaky") && n == 0 {
            (
                429,
                vec![("Retry-After", "1".into())],
                "rate_limited".into(),
            )
        } else if path.starts_with("/down") {
            (503, vec![], r#"{"status":"unavailable"}"#.into())
        } else {
            ok(path, n)
        }
    });
    let limited = secret_file(d, "limited", &rec.url("/limited/LIMITEDTOKEN"));
    let flaky = secret_file(
        d,
        "flaky",
        &rec.url(&format!("/flaky/services/T/B/{SLACK_TOKEN}")),
    );
    let key = secret_file(d, "pd", ROUTING_KEY);
    let admin_port = free_port();
    let admin = format!("127.0.0.1:{admin_port}");
    let (sluice, addr) = start(
        d,
        Some(admin_port),
        &format!(
            r#"  notify:
    type: alerts
    inputs: [ingest]
    retry: {{initial_backoff_ms: 100, max_backoff_ms: 400, max_elapsed_ms: 3000}}
    route:
      receiver: limited
      group_by: [alertname]
      group_wait_ms: 100
      group_interval_ms: 500
      routes:
        - {{receiver: flaky, matchers: {{dest: flaky}}}}
        - {{receiver: down, matchers: {{dest: down}}}}
    receivers:
      limited: {{type: webhook, url: {{file: "{limited}"}}, rate_limit: {{max_per_minute: 2}}}}
      flaky: {{type: slack, webhook_url: {{file: "{flaky}"}}}}
      down: {{type: pagerduty, routing_key: {{file: "{key}"}}, url: "{pd}"}}
"#,
            pd = rec.url("/down/v2/enqueue"),
        ),
    );

    // Four groups to a receiver allowed two a minute: two go, two wait.
    let events: Vec<Value> = (1..=4)
        .map(|i| {
            event(
                &format!("Limit{i}"),
                "firing",
                json!({}),
                &format!("{i:016x}"),
            )
        })
        .collect();
    post(&addr, &events);
    rec.wait("/limited/", 2, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        rec.on("/limited/").len(),
        2,
        "the rate limit let more through"
    );
    let series = |outcome: &str, receiver: &str| {
        format!(
            r#"sluice_alert_notifications_total{{component="notify",outcome="{outcome}",receiver="{receiver}"}}"#
        )
    };
    assert_eq!(metric(&admin, &series("sent", "limited")), 2.0);
    assert!(metric(&admin, &series("rate_limited", "limited")) >= 1.0);

    // 429 with Retry-After: 1 → the same notification again a second later.
    post(
        &addr,
        &[event(
            "Flaky",
            "firing",
            json!({"dest": "flaky"}),
            "f000000000000001",
        )],
    );
    let flaky_requests = rec.wait("/flaky/", 2, Duration::from_secs(10));
    let gap = flaky_requests[1].at - flaky_requests[0].at;
    assert!(
        gap >= Duration::from_millis(1000),
        "Retry-After not honoured: {gap:?}"
    );
    assert_eq!(flaky_requests[0].body, flaky_requests[1].body);
    assert_eq!(metric(&admin, &series("retried", "flaky")), 1.0);
    assert_eq!(metric(&admin, &series("sent", "flaky")), 1.0);

    // A receiver that keeps failing: counted, /health degraded naming it, never its key.
    post(
        &addr,
        &[event(
            "Down",
            "firing",
            json!({"dest": "down"}),
            "d000000000000001",
        )],
    );
    rec.wait("/down/", 3, Duration::from_secs(10));
    let (status, health) = http("GET", &admin, "/health", &[], b"");
    assert_eq!(status, 503, "{health}");
    let health: Value = serde_json::from_str(&health).unwrap();
    let notify = &health["components"]["notify"];
    assert_eq!(notify["status"], "degraded", "{health}");
    let message = notify["last_error"].as_str().unwrap();
    assert!(
        message.contains("receiver `down`") && message.contains("503"),
        "{message}"
    );
    assert!(
        !message.contains(ROUTING_KEY) && !message.contains(&rec.address),
        "{message}"
    );
    assert!(
        metric(
            &admin,
            r#"sluice_component_errors_total{component="notify",error_kind="delivery"}"#
        ) >= 3.0
    );
    let given_up = wait_for(Duration::from_secs(10), || {
        (metric(&admin, &series("failed", "down")) >= 1.0).then_some(())
    });
    assert!(given_up.is_some(), "max_elapsed_ms did not end the retries");

    let stopping = Instant::now();
    assert_eq!(sluice.stop(), 0);
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "shutdown waited on the rate limit"
    );
    let log = log_of_all_runs(d);
    for secret in [SLACK_TOKEN, ROUTING_KEY, "LIMITEDTOKEN"] {
        assert!(
            !log.contains(secret),
            "{secret} leaked into the log:\n{log}"
        );
    }
    assert!(
        log.contains("receiver `down`"),
        "the failure was not logged:\n{log}"
    );
}

/// A real Alertmanager (Debian package `prometheus-alertmanager`) on loopback.
struct Alertmanager {
    child: std::process::Child,
    address: String,
}

impl Alertmanager {
    fn start(dir: &Path) -> Self {
        let binary = Path::new("/usr/bin/prometheus-alertmanager");
        assert!(
            binary.is_file(),
            "Alertmanager is not installed: `apt-get install prometheus-alertmanager` (.ci/run does it)"
        );
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: blackhole\n  group_wait: 1h\nreceivers:\n  - name: blackhole\n",
        )
        .unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let child = std::process::Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address={address}"))
            .arg("--cluster.listen-address=")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("alertmanager.log")).unwrap())
            .spawn()
            .unwrap();
        let am = Self { child, address };
        let ready = wait_for(Duration::from_secs(20), || {
            TcpStream::connect(&am.address).ok()?;
            (http("GET", &am.address, "/-/ready", &[], b"").0 == 200).then_some(())
        });
        assert!(
            ready.is_some(),
            "alertmanager did not become ready: {}",
            std::fs::read_to_string(dir.join("alertmanager.log")).unwrap_or_default()
        );
        am
    }

    fn alerts(&self) -> Vec<Value> {
        let (status, body) = http("GET", &self.address, "/api/v2/alerts", &[], b"");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body)
            .unwrap()
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn find(&self, alertname: &str) -> Option<Value> {
        self.alerts()
            .into_iter()
            .find(|a| a["labels"]["alertname"] == alertname)
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn alert_sink_feeds_a_real_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let am = Alertmanager::start(d);
    let (sluice, addr) = start(
        d,
        None,
        &format!(
            r#"  notify:
    type: alerts
    inputs: [ingest]
    route:
      receiver: am
      group_wait_ms: 60000
    receivers:
      am: {{type: alertmanager, url: "http://{}", resend_interval_ms: 1000}}
"#,
            am.address
        ),
    );
    let labels = json!({"team": "ops", "trader_id": "TRADER-007"});
    post(
        &addr,
        &[event(
            "PositionMismatch",
            "firing",
            labels.clone(),
            "c0ffee0000000001",
        )],
    );
    // No group_wait: Alertmanager groups on its side.
    let alert = wait_for(Duration::from_secs(5), || am.find("PositionMismatch"))
        .expect("Alertmanager never got the alert");
    assert_eq!(
        alert["labels"],
        json!({"alertname": "PositionMismatch", "severity": "critical", "team": "ops", "trader_id": "TRADER-007"})
    );
    assert_eq!(
        alert["annotations"],
        json!({"summary": "PositionMismatch for TRADER-007", "runbook_url": "https://runbooks.example/bot-silent"})
    );
    assert_eq!(alert["status"]["state"], "active", "{alert}");
    let starts = rfc3339(alert["startsAt"].as_str().unwrap()).unwrap();
    let ends = rfc3339(alert["endsAt"].as_str().unwrap()).unwrap();
    assert!(
        (3.0..=6.0).contains(&(ends - starts)),
        "endsAt should be ~4 resends ahead: {alert}"
    );

    // Resent while firing: Alertmanager sees it updated.
    let updated = alert["updatedAt"].as_str().unwrap().to_owned();
    let resent = wait_for(Duration::from_secs(5), || {
        let a = am.find("PositionMismatch")?;
        (a["updatedAt"].as_str()? != updated).then_some(a)
    });
    assert!(resent.is_some(), "the firing alert was not resent");

    // Resolved: Alertmanager gets endsAt now and stops listing the alert as active.
    post(
        &addr,
        &[event(
            "PositionMismatch",
            "resolved",
            labels,
            "c0ffee0000000001",
        )],
    );
    let gone = wait_for(Duration::from_secs(5), || {
        am.find("PositionMismatch").is_none().then_some(())
    });
    assert!(
        gone.is_some(),
        "still active after resolve: {:?}",
        am.alerts()
    );
    assert_eq!(sluice.stop(), 0);
}
