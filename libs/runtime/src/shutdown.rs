//! Turning operating-system signals into a graceful stop.

use tokio_util::sync::CancellationToken;

/// Cancels `stop` on SIGTERM or SIGINT.
///
/// SIGTERM is what Kubernetes sends when it wants the pod gone (then waits
/// `terminationGracePeriodSeconds` before SIGKILL); SIGINT is Ctrl-C in a
/// terminal. Either starts the same drain.
pub async fn cancel_on_signal(stop: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM; only Ctrl-C will stop this service");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = terminate => tracing::info!("received SIGTERM"),
        result = tokio::signal::ctrl_c() => match result {
            Ok(()) => tracing::info!("received SIGINT"),
            Err(error) => tracing::error!(%error, "cannot listen for Ctrl-C"),
        },
    }
    stop.cancel();
}
