//! HTTPS with rustls as the client: robocast's generated certificate (kept across starts,
//! its fingerprint what the log says), plain HTTP redirected on the same port, the user's
//! own certificate read again when its files change, and a stalled handshake cut off.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use robocast::http::tls::{TlsSetting, auto_paths, fingerprint};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn temp_dir(what: &str) -> PathBuf {
    let random = robocast::auth::random_hex::<6>().expect("random");
    std::env::temp_dir().join(format!("robocast-https-{what}-{random}"))
}

fn certificate(path: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).expect("a PEM certificate")
}

/// `GET path` over TLS to `localhost` trusting only `roots`: the status line and the
/// certificate the server showed.
async fn https_get(
    addr: SocketAddr,
    roots: &[CertificateDer<'static>],
    path: &str,
) -> Result<(String, Vec<u8>)> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root.clone())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(store)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    let mut tls =
        connector.connect(ServerName::try_from("localhost")?, tcp).await.context("TLS handshake")?;
    let shown =
        tls.get_ref().1.peer_certificates().and_then(|c| c.first()).context("no certificate")?.to_vec();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n", addr.port());
    tls.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    Ok((text.lines().next().unwrap_or_default().to_owned(), shown))
}

async fn start(tls: TlsSetting, state_dir: &Path) -> robocast::Running {
    let state_dir = state_dir.to_owned();
    common::start_daemon(move |c| {
        (c.video, c.audio) = ("none".into(), "test".into());
        c.tls = tls;
        c.state_dir = Some(state_dir);
        c.request_timeout_ms = 1000;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_certificate_serves_https_and_plain_http_is_redirected() -> Result<()> {
    let state = temp_dir("auto");
    let daemon = start(TlsSetting::Auto, &state).await;
    let addr = daemon.local_addr();
    let (cert_path, key_path) = auto_paths(&state);
    let cert = certificate(&cert_path);
    let (status, shown) = https_get(addr, std::slice::from_ref(&cert), "/healthz").await?;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(shown, cert.to_vec(), "the generated certificate is the one served");
    let expected = fingerprint(&cert);
    assert_eq!(daemon.tls_fingerprint().as_deref(), Some(expected.as_str()));
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&key_path)?.permissions().mode() & 0o777, 0o600, "the key is private");
    }
    // The page and the API over HTTPS, with the token as the header.
    let (status, _) = https_get(addr, std::slice::from_ref(&cert), "/").await?;
    assert_eq!(status, "HTTP/1.1 200 OK");

    // Plain HTTP on the same port: a redirect to the same address on https://.
    let plain = common::http::get(addr, "/api/status?x=1").await;
    assert_eq!(plain.status, 308, "{plain:?}");
    assert_eq!(plain.header("location"), Some(format!("https://{addr}/api/status?x=1").as_str()));
    assert!(plain.json()["hint"].as_str().unwrap_or_default().contains("https://"), "{plain:?}");

    // A client that opens the connection and says nothing is closed after the timeout.
    let mut silent = TcpStream::connect(addr).await?;
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut byte)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "a silent connection stays open: {closed:?}");

    // A restart keeps the certificate: a browser that trusted it once trusts it again.
    daemon.shutdown().await;
    let again = start(TlsSetting::Auto, &state).await;
    assert_eq!(again.tls_fingerprint(), Some(expected));
    again.shutdown().await;
    let _ = std::fs::remove_dir_all(&state);
    Ok(())
}

/// A certificate for `localhost` written where a user's would be.
fn write_user_certificate(dir: &Path) -> Result<CertificateDer<'static>> {
    let pair = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?.self_signed(&pair)?;
    std::fs::create_dir_all(dir)?;
    // Written to the side and renamed, as certbot's renewal does.
    std::fs::write(dir.join("key.pem.new"), pair.serialize_pem())?;
    std::fs::write(dir.join("cert.pem.new"), cert.pem())?;
    std::fs::rename(dir.join("key.pem.new"), dir.join("key.pem"))?;
    std::fs::rename(dir.join("cert.pem.new"), dir.join("cert.pem"))?;
    Ok(cert.der().clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_certificate_is_read_again_when_its_files_change() -> Result<()> {
    let dir = temp_dir("files");
    let first = write_user_certificate(&dir)?;
    let setting = TlsSetting::Files { cert: dir.join("cert.pem"), key: dir.join("key.pem") };
    let daemon = start(setting, &dir.join("state")).await;
    let addr = daemon.local_addr();
    let (status, shown) = https_get(addr, std::slice::from_ref(&first), "/healthz").await?;
    assert_eq!((status.as_str(), shown), ("HTTP/1.1 200 OK", first.to_vec()));

    // A renewal: new files, the same paths. robocast checks them every few seconds.
    tokio::time::sleep(Duration::from_millis(1100)).await; // a new modification time
    let renewed = write_user_certificate(&dir)?;
    let roots = [first.clone(), renewed.clone()];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, shown) = https_get(addr, &roots, "/healthz").await?;
        if shown == renewed.to_vec() {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the renewed certificate was not served within 15 s");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(daemon.tls_fingerprint(), Some(fingerprint(&renewed)));
    daemon.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_certificate_files_stop_the_start_with_what_to_fix() {
    let dir = temp_dir("bad");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("cert.pem"), "not a certificate").expect("write");
    std::fs::write(dir.join("key.pem"), "not a key").expect("write");
    let config = robocast::Config {
        listen: ([127, 0, 0, 1], 0).into(),
        video: "none".into(),
        audio: "none".into(),
        tls: TlsSetting::Files { cert: dir.join("cert.pem"), key: dir.join("key.pem") },
        operator_token: Some(common::operator_token()),
        ..Default::default()
    };
    let error = robocast::spawn(config).await.err().expect("bad files are an error").to_string();
    assert!(error.contains("cert.pem") && error.contains("PEM certificate chain"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}
