//! Prometheus metrics, kept in process and rendered in the text format at `/metrics`.
//!
//! A small hand-written registry: a handful of labelled counters and one latency histogram
//! do not justify a metrics framework. Counters are process-global, like any Prometheus
//! client's default registry.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{Mutex, PoisonError},
};

/// Upper bounds (seconds) of the request latency buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Registry {
    counters: BTreeMap<(&'static str, Labels), u64>,
    latencies: BTreeMap<Labels, Histogram>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    counters: BTreeMap::new(),
    latencies: BTreeMap::new(),
});

/// Help text of each counter, in render order.
const COUNTERS: &[(&str, &str)] = &[
    (
        "authgate_http_requests_total",
        "HTTP requests by route, method and status.",
    ),
    ("authgate_logins_total", "Login attempts by outcome."),
    (
        "authgate_mails_sent_total",
        "Mails handed to the transport, by kind (codes and notices).",
    ),
    (
        "authgate_mail_failures_total",
        "Mails the transport refused, by kind.",
    ),
    (
        "authgate_refresh_reuse_total",
        "Replayed refresh tokens detected (sessions revoked).",
    ),
    (
        "authgate_rate_limited_total",
        "Requests refused by an abuse limit, by limit.",
    ),
];

pub fn count(name: &'static str, labels: &[(&'static str, &str)]) {
    let labels = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    *registry.counters.entry((name, labels)).or_default() += 1;
}

/// Records one HTTP request.
pub fn observe_request(route: &str, method: &str, status: u16, seconds: f64) {
    count(
        "authgate_http_requests_total",
        &[
            ("route", route),
            ("method", method),
            ("status", &status.to_string()),
        ],
    );
    let labels = vec![("route", route.to_string()), ("method", method.to_string())];
    let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    let histogram = registry.latencies.entry(labels).or_default();
    for (bucket, bound) in histogram.buckets.iter_mut().zip(LATENCY_BUCKETS) {
        if seconds <= bound {
            *bucket += 1;
        }
    }
    histogram.count += 1;
    histogram.sum += seconds;
}

/// Gauges read at render time.
pub struct Gauges {
    pub hashes_waiting: usize,
    pub hashes_running: usize,
}

pub fn render(gauges: &Gauges) -> String {
    let registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    let mut out = String::new();
    for (name, help) in COUNTERS {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for ((_, labels), value) in registry
            .counters
            .range((*name, Vec::new())..)
            .take_while(|((n, _), _)| n == name)
        {
            let _ = writeln!(out, "{name}{} {value}", format_labels(labels, None));
        }
    }
    let name = "authgate_http_request_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} HTTP request latency by route and method.\n# TYPE {name} histogram"
    );
    for (labels, histogram) in &registry.latencies {
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(histogram.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{} {bucket}",
                format_labels(labels, Some(&bound.to_string()))
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{} {}",
            format_labels(labels, Some("+Inf")),
            histogram.count
        );
        let _ = writeln!(
            out,
            "{name}_sum{} {}",
            format_labels(labels, None),
            histogram.sum
        );
        let _ = writeln!(
            out,
            "{name}_count{} {}",
            format_labels(labels, None),
            histogram.count
        );
    }
    for (name, help, value) in [
        (
            "authgate_password_hashes_waiting",
            "Password hashes queued for a worker.",
            gauges.hashes_waiting,
        ),
        (
            "authgate_password_hashes_in_progress",
            "Password hashes being computed.",
            gauges.hashes_running,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
    out
}

fn format_labels(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(key, value)| {
            format!(
                "{key}=\"{}\"",
                value.replace('\\', "\\\\").replace('"', "\\\"")
            )
        })
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms_in_text_format() {
        observe_request("/auth/me", "GET", 200, 0.003);
        count("authgate_logins_total", &[("outcome", "success")]);
        let text = render(&Gauges {
            hashes_waiting: 2,
            hashes_running: 1,
        });
        assert!(text.contains(
            "authgate_http_requests_total{route=\"/auth/me\",method=\"GET\",status=\"200\"}"
        ));
        assert!(text.contains("authgate_http_request_duration_seconds_bucket{route=\"/auth/me\",method=\"GET\",le=\"0.005\"}"));
        assert!(text.contains("authgate_logins_total{outcome=\"success\"}"));
        assert!(text.contains("authgate_password_hashes_waiting 2"));
        assert!(text.contains("# TYPE authgate_http_request_duration_seconds histogram"));
    }
}
