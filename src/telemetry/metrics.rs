//! Prometheus metrics through the `metrics` facade and its Prometheus exporter. Every metric
//! name is a constant here, so a typo does not compile; each is described once, at install.

use std::sync::OnceLock;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::domain::health::HashingLoad;

pub const HTTP_REQUESTS: &str = "authgate_http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "authgate_http_request_duration_seconds";
pub const LOGINS: &str = "authgate_logins_total";
pub const MAILS_SENT: &str = "authgate_mails_sent_total";
pub const MAIL_FAILURES: &str = "authgate_mail_failures_total";
pub const REFRESH_REUSE: &str = "authgate_refresh_reuse_total";
pub const RATE_LIMITED: &str = "authgate_rate_limited_total";
pub const HASHES_WAITING: &str = "authgate_password_hashes_waiting";
pub const HASHES_IN_PROGRESS: &str = "authgate_password_hashes_in_progress";

/// Upper bounds (seconds) of the request latency buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The process-wide registry, installed on first use. Like any Prometheus client's default
/// registry it is global: several apps in one process (the tests) share it.
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(HTTP_REQUEST_DURATION.into()),
                    &LATENCY_BUCKETS,
                )
                .ok()?;
            let handle = builder
                .install_recorder()
                .inspect_err(|err| tracing::warn!(error = %err, "metrics are off"))
                .ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

/// Installs the registry (once per process).
pub fn install() {
    handle();
}

fn describe() {
    describe_counter!(HTTP_REQUESTS, "HTTP requests by route, method and status.");
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        Unit::Seconds,
        "HTTP request latency by route and method."
    );
    describe_counter!(LOGINS, "Login attempts by outcome.");
    describe_counter!(
        MAILS_SENT,
        "Mails handed to the transport, by kind (codes and notices)."
    );
    describe_counter!(MAIL_FAILURES, "Mails the transport refused, by kind.");
    describe_counter!(
        REFRESH_REUSE,
        "Replayed refresh tokens detected (sessions revoked)."
    );
    describe_counter!(
        RATE_LIMITED,
        "Requests refused by an abuse limit, by limit."
    );
    describe_gauge!(HASHES_WAITING, "Password hashes queued for a worker.");
    describe_gauge!(HASHES_IN_PROGRESS, "Password hashes being computed.");
    // Every counter is listed from the start, so dashboards and alerts find it before the
    // first event.
    for name in [
        MAILS_SENT,
        MAIL_FAILURES,
        REFRESH_REUSE,
        RATE_LIMITED,
        LOGINS,
    ] {
        counter!(name).absolute(0);
    }
}

/// Records one HTTP request.
pub fn observe_request(route: &str, method: &'static str, status: u16, seconds: f64) {
    let route = route.to_string();
    counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => method, "status" => status.to_string())
        .increment(1);
    histogram!(HTTP_REQUEST_DURATION, "route" => route, "method" => method).record(seconds);
}

/// The Prometheus text exposition, with the hashing gauges read now.
pub fn render(load: HashingLoad) -> String {
    gauge!(HASHES_WAITING).set(load.waiting as f64);
    gauge!(HASHES_IN_PROGRESS).set(load.running as f64);
    handle().map(PrometheusHandle::render).unwrap_or_default()
}

/// Keeps histograms from growing between scrapes.
pub fn run_upkeep() {
    if let Some(handle) = handle() {
        handle.run_upkeep();
    }
}
