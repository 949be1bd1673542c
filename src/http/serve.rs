//! The accept loop: one task per connection, HTTP/1.1 by hyper over [`JsonErrors`], a
//! limit on how long a client may take to send its headers (and its TLS handshake), and a
//! graceful end. With TLS on, the port speaks both: a connection that opens with a TLS
//! handshake is served over TLS, a plain HTTP request gets a redirect to `https://`.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower::Layer as _;

use super::tls::Tls;
use super::wire::JsonErrors;

/// How long shutdown lets requests in flight finish.
const DRAIN: Duration = Duration::from_secs(2);
/// The first byte of every TLS connection (a handshake record).
const TLS_HANDSHAKE: u8 = 0x16;

/// Serves `app` on `listener` until `stop`, then lets open requests finish (bounded). A
/// client has `header_timeout` to send a request's headers, or to finish its TLS
/// handshake (a slow-loris holds no task longer); the router bounds the body's time too.
/// Each request carries its client's address as [`ConnectInfo`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    tls: Option<Tls>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    // A client may shut its side down once it has sent its request (as `nc -N` does):
    // it still gets its answer. Without this, hyper sometimes closed a CONNECT request's
    // connection on that end of input before the 405 was written (1 hostile-input run in
    // 15). The header and body deadlines still close a client that sends nothing.
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout).half_close(true);
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, mostly: wait instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = axum::Extension(ConnectInfo(peer)).layer(app.clone());
        let service = TowerToHyperService::new(app);
        let Some(tls) = &tls else {
            let connection = builder.serve_connection(TokioIo::new(JsonErrors::new(stream)), service);
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
            continue;
        };
        // The handshake runs in the connection's task, so a client that stalls in it holds
        // up nobody; graceful shutdown cannot watch it until it is HTTP, so it is bounded.
        let (builder, tls, stop) = (builder.clone(), tls.clone(), stop.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let opening = tokio::select! {
                () = stop.cancelled() => return,
                opening = tokio::time::timeout(header_timeout, first_byte(&stream)) => opening,
            };
            match opening {
                Ok(Some(TLS_HANDSHAKE)) => {}
                Ok(Some(_)) => return redirect(builder, stream, peer).await,
                Ok(None) | Err(_) => return,
            }
            let accepted = tokio::select! {
                () = stop.cancelled() => return,
                accepted = tokio::time::timeout(header_timeout, tls.acceptor.accept(stream)) => accepted,
            };
            let stream = match accepted {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
            };
            let connection = builder.serve_connection(TokioIo::new(JsonErrors::new(stream)), service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
    Ok(())
}

/// The first byte the client sent, without taking it from the stream; `None` when it
/// closed first.
async fn first_byte(stream: &TcpStream) -> Option<u8> {
    let mut byte = [0u8; 1];
    match stream.peek(&mut byte).await {
        Ok(1) => Some(byte[0]),
        _ => None,
    }
}

/// Answers a plain HTTP request on the TLS port: `308` to the same host and path on
/// `https://`, so a typed `http://robot.local:8443/` still lands on the page.
async fn redirect(mut builder: http1::Builder, stream: TcpStream, peer: SocketAddr) {
    builder.keep_alive(false);
    let service = hyper::service::service_fn(|request: hyper::Request<hyper::body::Incoming>| async move {
        let host = request.headers().get(hyper::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let sane = !host.is_empty() && !host.contains(['/', ' ', '@', '\\', '"']);
        let target = format!("https://{host}{path}");
        let hint = if sane { format!("open {target}") } else { "open https://<this address>/".into() };
        let body = serde_json::json!({ "error": "this port speaks HTTPS", "hint": hint }).to_string();
        let mut response = hyper::Response::builder()
            .status(if sane { hyper::StatusCode::PERMANENT_REDIRECT } else { hyper::StatusCode::BAD_REQUEST })
            .header(hyper::header::CONTENT_TYPE, "application/json");
        if sane {
            response = response.header(hyper::header::LOCATION, target);
        }
        response.body(axum::body::Body::from(body))
    });
    if let Err(e) = builder.serve_connection(TokioIo::new(stream), service).await {
        tracing::debug!(%peer, error = %e, "plain HTTP connection on the TLS port ended with an error");
    }
}
