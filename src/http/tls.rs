//! HTTPS: browsers give a page the camera and microphone only on `https://` (or
//! localhost), so a robot reached over the network needs a certificate.
//!
//! * `tls = "auto"`: robocast's own, generated on first start (rcgen, an ECDSA P-256 key)
//!   for the device's host names and addresses, kept in `<state_dir>/tls/`, its SHA-256
//!   fingerprint logged at every start so a user can check what the browser shows;
//! * `tls = { cert, key }`: the user's own (PEM files, e.g. from Let's Encrypt), read again
//!   when the files change, so a renewal needs no restart;
//! * `tls = "off"`: plain HTTP.
//!
//! One port speaks both: a connection that opens with a TLS handshake is served over TLS,
//! anything else gets a redirect to the same address on `https://` ([`super::serve`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;

/// How often the user's certificate files are checked for a change.
const RELOAD_EVERY: Duration = Duration::from_secs(5);
/// How long a generated certificate is valid.
const VALID_DAYS: i64 = 3650;

/// The `tls` setting.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum TlsSetting {
    /// Plain HTTP.
    #[default]
    Off,
    /// A certificate of robocast's own, generated into the state directory.
    Auto,
    /// The user's certificate chain and key (PEM).
    Files { cert: PathBuf, key: PathBuf },
}

impl TlsSetting {
    /// `auto`, `off` (also `on` for auto), as the flag and the file's string form say.
    pub fn parse(text: &str) -> Result<TlsSetting, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" | "on" => Ok(TlsSetting::Auto),
            "off" | "none" => Ok(TlsSetting::Off),
            other => Err(format!("`{other}` is neither auto nor off")),
        }
    }
}

/// HTTPS, ready to accept connections.
#[derive(Clone)]
pub struct Tls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// The certificate in use now.
    current: Arc<RwLock<Served>>,
}

/// The certificate being served and what the status says about it.
#[derive(Clone, Debug)]
struct Served {
    key: Arc<CertifiedKey>,
    fingerprint: String,
}

impl Tls {
    /// The SHA-256 fingerprint of the certificate being served, as browsers show it
    /// (upper-case hex pairs separated by colons).
    pub fn fingerprint(&self) -> String {
        self.current.read().map(|s| s.fingerprint.clone()).unwrap_or_default()
    }
}

/// Why HTTPS cannot start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot use {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} holds no usable {what}: {problem}")]
    Pem { path: PathBuf, what: &'static str, problem: String },
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
    #[error("tls = \"auto\" needs a state directory to keep its certificate in")]
    NoStateDir,
    #[error("TLS set-up failed: {0}")]
    Rustls(String),
}

impl TlsError {
    pub fn hint(&self) -> &'static str {
        match self {
            TlsError::Io { .. } | TlsError::NoStateDir => {
                "give robocast a writable --state-dir, or set tls = { cert = ..., key = ... }, or --tls off"
            }
            TlsError::Pem { .. } => {
                "cert must be a PEM certificate chain (leaf first) and key its PEM private key (PKCS#8, PKCS#1 or SEC1)"
            }
            TlsError::Generate(_) | TlsError::Rustls(_) => {
                "report this, with the log; --tls off serves plain HTTP meanwhile"
            }
        }
    }
}

/// Where `tls = "auto"` keeps its certificate and key.
pub fn auto_paths(state_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = state_dir.join("tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// Sets HTTPS up as `setting` says: `Ok(None)` for off. `names` are the host names and
/// addresses a generated certificate is for. A user's files are watched until `cancel`.
pub fn start(
    setting: &TlsSetting,
    state_dir: Option<&Path>,
    names: &[String],
    cancel: CancellationToken,
) -> Result<Option<Tls>, TlsError> {
    let (cert, key, watch) = match setting {
        TlsSetting::Off => return Ok(None),
        TlsSetting::Auto => {
            let (cert, key) = auto_paths(state_dir.ok_or(TlsError::NoStateDir)?);
            if !cert.exists() || !key.exists() {
                generate(&cert, &key, names)?;
                tracing::info!(cert = %cert.display(), names = ?names, "generated a self-signed certificate for HTTPS");
            }
            (cert, key, false)
        }
        TlsSetting::Files { cert, key } => (cert.clone(), key.clone(), true),
    };
    let served = Arc::new(RwLock::new(load(&cert, &key)?));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Resolver(Arc::clone(&served))));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if watch {
        tokio::spawn(reload(cert, key, Arc::clone(&served), cancel));
    }
    Ok(Some(Tls { acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)), current: served }))
}

#[derive(Debug)]
struct Resolver(Arc<RwLock<Served>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.read().ok().map(|s| Arc::clone(&s.key))
    }
}

/// Reads a certificate chain and its key.
fn load(cert: &Path, key: &Path) -> Result<Served, TlsError> {
    let pem =
        |path: &Path, what: &'static str, problem: String| TlsError::Pem { path: path.into(), what, problem };
    let io = |path: &Path, source: std::io::Error| TlsError::Io { path: path.into(), source };
    let cert_text = std::fs::read(cert).map_err(|e| io(cert, e))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_text)
        .collect::<Result<_, _>>()
        .map_err(|e| pem(cert, "certificate", e.to_string()))?;
    let leaf = chain.first().ok_or_else(|| pem(cert, "certificate", "no CERTIFICATE block".into()))?;
    let fingerprint = fingerprint(leaf);
    let key_text = std::fs::read(key).map_err(|e| io(key, e))?;
    let private =
        PrivateKeyDer::from_pem_slice(&key_text).map_err(|e| pem(key, "private key", e.to_string()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&private)
        .map_err(|e| pem(key, "private key", e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| pem(key, "private key for this certificate", e.to_string()))?;
    Ok(Served { key: Arc::new(certified), fingerprint })
}

/// SHA-256 of the certificate, `AB:CD:...`, as browsers and `openssl x509 -fingerprint
/// -sha256` show it.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    digest.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// A self-signed certificate for `names` (host names and IP addresses), written with its
/// key (mode 0600, directory 0700).
fn generate(cert: &Path, key: &Path, names: &[String]) -> Result<(), TlsError> {
    let failed = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(failed)?;
    let mut subject = rcgen::DistinguishedName::new();
    let host = names.iter().find(|n| n.as_str() != "localhost" && n.parse::<std::net::IpAddr>().is_err());
    subject.push(
        rcgen::DnType::CommonName,
        format!("robocast on {}", host.map_or("this robot", String::as_str)),
    );
    params.distinguished_name = subject;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(VALID_DAYS);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let pair = rcgen::KeyPair::generate().map_err(failed)?;
    let certificate = params.self_signed(&pair).map_err(failed)?;
    let dir = cert.parent().unwrap_or(Path::new("."));
    crate::auth::write_private(dir, key, pair.serialize_pem().as_bytes())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    crate::auth::write_private(dir, cert, certificate.pem().as_bytes())
        .map_err(|e| TlsError::Generate(e.to_string()))
}

/// Reads the user's files again whenever either changes; a change that does not load (a
/// renewal caught half-written) keeps the old certificate and is retried.
async fn reload(cert: PathBuf, key: PathBuf, served: Arc<RwLock<Served>>, cancel: CancellationToken) {
    let stamp = |cert: &Path, key: &Path| -> Option<(SystemTime, SystemTime)> {
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        Some((modified(cert)?, modified(key)?))
    };
    let mut loaded = stamp(&cert, &key);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(RELOAD_EVERY) => {}
        }
        let now = stamp(&cert, &key);
        if now.is_none() || now == loaded {
            continue;
        }
        match load(&cert, &key) {
            Ok(new) => {
                tracing::info!(fingerprint = %new.fingerprint, cert = %cert.display(), "TLS certificate reloaded");
                if let Ok(mut current) = served.write() {
                    *current = new;
                }
                loaded = now;
            }
            Err(e) => {
                tracing::warn!(error = %e, hint = e.hint(), "the new TLS certificate does not load; keeping the old one")
            }
        }
    }
}

/// The names a generated certificate is for: `localhost`, the host name and its `.local`
/// (mDNS) form, and `addresses`.
pub fn host_names(addresses: &[std::net::IpAddr]) -> Vec<String> {
    let mut names = vec!["localhost".to_owned()];
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() && host != "localhost" {
            names.push(host.to_owned());
            if !host.contains('.') {
                names.push(format!("{host}.local"));
            }
        }
    }
    for address in addresses {
        let text = address.to_string();
        if !names.contains(&text) {
            names.push(text);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_names_cover_localhost_and_addresses() {
        assert_eq!(TlsSetting::parse("auto"), Ok(TlsSetting::Auto));
        assert_eq!(TlsSetting::parse(" OFF "), Ok(TlsSetting::Off));
        assert!(TlsSetting::parse("maybe").expect_err("bad").contains("maybe"));
        let names = host_names(&["127.0.0.1".parse().expect("ip"), "::1".parse().expect("ip")]);
        assert_eq!(names.first().map(String::as_str), Some("localhost"));
        assert!(names.contains(&"127.0.0.1".to_owned()) && names.contains(&"::1".to_owned()), "{names:?}");
    }

    #[test]
    fn a_generated_certificate_loads_and_is_kept_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir()
            .join(format!("robocast-tls-{}", crate::auth::random_hex::<8>().expect("random")));
        let (cert, key) = auto_paths(&dir);
        generate(&cert, &key, &["localhost".into(), "127.0.0.1".into()]).expect("generated");
        let served = load(&cert, &key).expect("loads");
        assert_eq!(served.fingerprint.len(), 32 * 3 - 1, "{}", served.fingerprint);
        let mode = std::fs::metadata(&key).expect("key").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A key that is not the certificate's is refused with a clear error.
        let (other_cert, other_key) = auto_paths(&dir.join("other"));
        generate(&other_cert, &other_key, &["localhost".into()]).expect("generated");
        let error = load(&cert, &other_key).expect_err("mismatch").to_string();
        assert!(error.contains("private key for this certificate"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
