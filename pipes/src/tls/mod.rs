//! TLS as connection middleware (feature `tls`): rustls, with the `ring` crypto provider,
//! between the socket's pipe and the protocol's.
//!
//! [`TlsAcceptor`] runs the handshake (bounded by a handshake timeout kept by the reactor's
//! watchdog), records what it negotiated in [`ConnInfo::tls`](crate::ConnInfo) (SNI, ALPN,
//! version), and then runs rustls' record layer in one local task per connection: ciphertext
//! from the socket's pipe is decrypted into the pipe the protocol reads, and what the protocol
//! writes is encrypted into the socket's pipe. Both directions keep the pipes'
//! backpressure. The protocol's clean end sends `close_notify`; an end with an error resets
//! the connection. A client that closes without `close_notify` (a truncation) ends the
//! protocol's input with an `UnexpectedEof` error, after everything decrypted before it: a
//! complete request followed by such a close is still answered in full (HTTP servers see an
//! error only where they would see an early end in cleartext).
//!
//! Bad handshakes (plaintext on the TLS port, unknown versions, no shared cipher, a closed or
//! silent client) end the connection with an alert where TLS allows one, and count in
//! [`stats`]; nothing a client sends can panic.

mod session;

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::duplex::DuplexPipe;
use crate::middleware::{ConnInfo, Middleware};

pub use rustls;

/// The middleware that serves TLS: build it from PEM files ([`TlsAcceptor::from_pem_files`]),
/// from a certificate-choosing function ([`TlsAcceptor::with_sni`]), or from any rustls
/// [`ServerConfig`] ([`TlsAcceptor::new`]).
///
/// ```no_run
/// use ringhop_pipes::tls::TlsAcceptor;
/// let tls = TlsAcceptor::from_pem_files("cert.pem", "key.pem")?
///     .alpn_protocols(&[b"h2", b"http/1.1"]);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct TlsAcceptor {
    config: Arc<ServerConfig>,
    handshake_timeout: Duration,
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("alpn_protocols", &self.config.alpn_protocols)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

impl TlsAcceptor {
    /// Serves with `config` as given (its ALPN list included). Handshake timeout: 10 s.
    pub fn new(config: Arc<ServerConfig>) -> TlsAcceptor {
        TlsAcceptor {
            config,
            handshake_timeout: Duration::from_secs(10),
        }
    }

    /// One certificate chain and its private key, both PEM (the chain leaf first, as
    /// certbot's `fullchain.pem`; the key PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> io::Result<TlsAcceptor> {
        let key = certified_key_from_pem(&read(cert_chain.as_ref())?, &read(key.as_ref())?)?;
        Ok(TlsAcceptor::with_sni(move |_| Some(key.clone())))
    }

    /// Chooses the certificate per connection: `resolve` gets the server name the client
    /// asked for (SNI; `None` if it sent none) and returns the certificate to present, or
    /// `None` to refuse the handshake. Build keys with [`certified_key_from_pem`].
    pub fn with_sni(
        resolve: impl Fn(Option<&str>) -> Option<Arc<CertifiedKey>> + Send + Sync + 'static,
    ) -> TlsAcceptor {
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SniResolver(Box::new(resolve))));
        TlsAcceptor::new(Arc::new(config))
    }

    /// The protocols offered by ALPN, most preferred first (e.g. `[b"h2", b"http/1.1"]`).
    /// The HTTP servers set theirs in `tls(..)`.
    pub fn alpn_protocols(mut self, protocols: &[&[u8]]) -> TlsAcceptor {
        Arc::make_mut(&mut self.config).alpn_protocols =
            protocols.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// How long a client has to complete the handshake (default 10 s; checked by the
    /// reactor's watchdog, so up to a second late).
    pub fn handshake_timeout(mut self, timeout: Duration) -> TlsAcceptor {
        self.handshake_timeout = timeout;
        self
    }

    /// The rustls configuration in use.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }
}

impl Middleware for TlsAcceptor {
    async fn call(&self, pipe: DuplexPipe, info: &mut ConnInfo) -> io::Result<DuplexPipe> {
        // Boxed: the handshake's state (rustls' connection by value, ~3 KB) would otherwise
        // widen the connection's task for its whole life; this way it is freed once the
        // handshake is done.
        Box::pin(session::accept(
            self.config.clone(),
            self.handshake_timeout,
            pipe,
            info,
        ))
        .await
    }
}

/// The crypto provider: `ring` (aws-lc-rs, rustls' default, needs cmake and a long C build).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain and its key, from PEM, for [`TlsAcceptor::with_sni`].
pub fn certified_key_from_pem(cert_chain: &[u8], key: &[u8]) -> io::Result<Arc<CertifiedKey>> {
    let certs = CertificateDer::pem_slice_iter(cert_chain)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| invalid(format!("bad certificate PEM: {err}")))?;
    if certs.is_empty() {
        return Err(invalid(
            "no CERTIFICATE block in the certificate PEM".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|err| invalid(format!("bad private key PEM: {err}")))?;
    let key = CertifiedKey::from_der(certs, key, &provider())
        .map_err(|err| invalid(format!("the certificate and key do not fit: {err}")))?;
    Ok(Arc::new(key))
}

fn read(path: &Path) -> io::Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", path.display())))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

type Resolve = Box<dyn Fn(Option<&str>) -> Option<Arc<CertifiedKey>> + Send + Sync>;

struct SniResolver(Resolve);

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SniResolver")
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        (self.0)(client_hello.server_name())
    }
}

/// TLS counters of the process (all reactors).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsStats {
    /// Handshakes completed.
    pub handshakes: u64,
    /// Handshakes that failed (bad input, timeout, refused SNI, client gone).
    pub handshake_failures: u64,
    /// TLS connections whose record layer is still running.
    pub open: u64,
    /// Connections the client ended without `close_notify`.
    pub truncated: u64,
}

static HANDSHAKES: AtomicU64 = AtomicU64::new(0);
static FAILURES: AtomicU64 = AtomicU64::new(0);
static OPEN: AtomicU64 = AtomicU64::new(0);
static TRUNCATED: AtomicU64 = AtomicU64::new(0);

/// The current [`TlsStats`].
pub fn stats() -> TlsStats {
    TlsStats {
        handshakes: HANDSHAKES.load(Ordering::Relaxed),
        handshake_failures: FAILURES.load(Ordering::Relaxed),
        open: OPEN.load(Ordering::Relaxed),
        truncated: TRUNCATED.load(Ordering::Relaxed),
    }
}
