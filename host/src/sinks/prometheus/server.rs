use super::store::MetricStore;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::Registry;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct Served {
    store: MetricStore,
    internal: Option<Registry>,
}

pub async fn serve(
    address: SocketAddr,
    store: MetricStore,
    internal: Option<Registry>,
    shutdown: CancellationToken,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| anyhow::anyhow!("prometheus sink: cannot listen on {address}: {e}"))?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(Served { store, internal });
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
    });
    Ok((bound, handle))
}

async fn metrics(State(served): State<Served>) -> impl IntoResponse {
    let mut families = served.store.registry().gather();
    if let Some(internal) = &served.internal {
        families.extend(internal.gather());
    }
    families.sort_by(|a, b| a.name().cmp(b.name()));
    let body = prometheus::TextEncoder::new()
        .encode_to_string(&families)
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], body)
}
