//! Prometheus metrics: the process-wide recorder and the `/metrics` route.
//!
//! The crates record through the `metrics` facade under the names in
//! [`patchbay_core::metrics`]; the host installs a Prometheus recorder for them
//! once per process, unless the embedding service installed its own recorder first,
//! in which case the figures go there and this host serves no `/metrics`.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::header;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use patchbay_core::metrics::ALERT_COMMIT_BATCH_SIZE;

/// The media type of Prometheus' text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Latency buckets, in seconds: from a loopback round trip to a slow provider.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Group-commit batch sizes, up to the largest `PATCHBAY_INGEST_BATCH`.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 10000.0,
];
/// How often histogram samples are folded into their buckets between scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The Prometheus handle, installing the recorder on first use; `None` when the
/// process already had another recorder.
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Full(ALERT_COMMIT_BATCH_SIZE.into()),
                        BATCH_BUCKETS,
                    )
                })
                .expect("the bucket lists are not empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => {
                    patchbay_core::metrics::describe_all();
                    Some(handle)
                }
                Err(_) => {
                    tracing::info!(
                        "a metrics recorder is already installed; Patchbay's metrics go to it"
                    );
                    None
                }
            }
        })
        .as_ref()
}

/// Folds histogram samples into their buckets now and then, so memory stays
/// bounded when nothing scrapes. Runs until the runtime stops.
pub(crate) fn spawn_upkeep() {
    if let Some(handle) = prometheus() {
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(UPKEEP_INTERVAL);
            loop {
                interval.tick().await;
                handle.run_upkeep();
            }
        });
    }
}

/// `GET /metrics` in Prometheus' text format; empty when another recorder has them.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    match prometheus() {
        Some(handle) => Router::new().route(
            "/metrics",
            get(move || async move { ([(header::CONTENT_TYPE, TEXT_FORMAT)], handle.render()) }),
        ),
        None => Router::new(),
    }
}

/// Counts an OAuth connection flow reaching `stage` (`started`, `completed`, `failed`).
pub(crate) fn record_oauth_flow(connector: &'static str, stage: &'static str) {
    metrics::counter!(
        patchbay_core::metrics::OAUTH_FLOWS,
        "connector" => connector,
        "stage" => stage,
    )
    .increment(1);
}
