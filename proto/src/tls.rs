//! TLS for tessera's gRPC links, loaded from PEM files: [`TlsFiles`] names a certificate, its private
//! key and a CA, reads and checks them once at start-up, and turns them into tonic's server and client
//! configurations. With a CA on the server side, clients must present a certificate signed by it
//! (mutual TLS); with a CA on the client side, servers are verified against it alone (never the system
//! roots: a tessera cluster trusts its own CA). [`ClientTls::endpoint`] builds an `Endpoint` for an
//! address and refuses a scheme that disagrees with the configuration, so a cluster never falls back
//! to plain text by a typo.
//!
//! The files are parsed here rather than left to tonic, which would only parse them on the first
//! connection or at serve time, with an error that names no file. `tessera_proto::certs` (or
//! `tessera-scheduler certs DIR`) writes a set of files that fits.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls::RootCertStore;
use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

/// How long a TLS handshake may take, on either side. Without a bound, a peer that opens a
/// connection and never finishes the handshake would hold it (and a server task) forever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What went wrong loading TLS files or matching an address to them. Every variant names the file
/// or the address concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A configured file does not exist.
    #[error("TLS file {} does not exist", file.display())]
    Missing {
        /// The file.
        file: PathBuf,
    },
    /// A configured file exists but cannot be read (permissions, a directory, ...).
    #[error("cannot read TLS file {}: {source}", file.display())]
    Unreadable {
        /// The file.
        file: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file's PEM is malformed (a section without its end line, bad base64, ...).
    #[error("TLS file {} is not valid PEM: {message}", file.display())]
    BadPem {
        /// The file.
        file: PathBuf,
        /// The parser's complaint.
        message: String,
    },
    /// A certificate or CA file holds no `CERTIFICATE` section.
    #[error("TLS file {} holds no PEM certificate", file.display())]
    NoCertificate {
        /// The file.
        file: PathBuf,
    },
    /// A certificate in the file is not a usable X.509 certificate.
    #[error("TLS file {} holds a certificate that cannot be used: {message}", file.display())]
    BadCertificate {
        /// The file.
        file: PathBuf,
        /// rustls's complaint.
        message: String,
    },
    /// A key file holds no private key (PKCS#8, PKCS#1 or SEC1 PEM section).
    #[error("TLS file {} holds no PEM private key", file.display())]
    NoPrivateKey {
        /// The file.
        file: PathBuf,
    },
    /// The key does not belong to the certificate, or is of a kind rustls cannot sign with.
    #[error("TLS key {} does not fit certificate {}: {message}", key.display(), cert.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's complaint.
        message: String,
    },
    /// A certificate was given without its private key.
    #[error("TLS certificate {} was given without a private key (--tls-key)", cert.display())]
    CertWithoutKey {
        /// The certificate file.
        cert: PathBuf,
    },
    /// A private key was given without its certificate.
    #[error("TLS key {} was given without a certificate (--tls-cert)", key.display())]
    KeyWithoutCert {
        /// The key file.
        key: PathBuf,
    },
    /// A server was given a CA (to check its clients) but no certificate and key to serve TLS with.
    /// Serving plain text here would silently drop the mutual TLS the operator asked for.
    #[error(
        "TLS CA {} was given to a server without a certificate and key (--tls-cert, --tls-key)",
        ca.display()
    )]
    CaWithoutIdentity {
        /// The CA file.
        ca: PathBuf,
    },
    /// An address that is not a URI tonic can connect to.
    #[error("invalid address {address:?}: {message}")]
    InvalidAddress {
        /// The address.
        address: String,
        /// Why.
        message: String,
    },
    /// An address whose scheme is neither `http` nor `https`.
    #[error("address {address:?} must start with http:// or https://")]
    UnsupportedScheme {
        /// The address.
        address: String,
    },
    /// An `https://` address, but no CA to verify the server with.
    #[error("address {address:?} is https:// but no CA (--tls-ca) was given to verify the server")]
    HttpsWithoutCa {
        /// The address.
        address: String,
    },
    /// An `http://` address while TLS is configured: the connection would be plain text.
    #[error("address {address:?} is plain http:// but TLS is configured: use https://")]
    PlainHttpWithTls {
        /// The address.
        address: String,
    },
    /// tonic refused the client configuration for this address.
    #[error("cannot configure TLS for {address:?}: {message}")]
    Endpoint {
        /// The address.
        address: String,
        /// tonic's complaint.
        message: String,
    },
}

/// The PEM files of one process's TLS set-up, as given on the command line (`--tls-cert`,
/// `--tls-key`, `--tls-ca`). All unset means plain text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// This process's certificate (chain), leaf first: served as a server, presented as a client.
    pub cert: Option<PathBuf>,
    /// The private key of `cert`.
    pub key: Option<PathBuf>,
    /// The CA that peers' certificates must be signed by: servers are verified against it, and a
    /// server given one requires client certificates (mutual TLS).
    pub ca: Option<PathBuf>,
}

impl TlsFiles {
    /// True when no file is set: the process speaks plain text.
    pub fn is_empty(&self) -> bool {
        self.cert.is_none() && self.key.is_none() && self.ca.is_none()
    }

    /// The server side: `None` when nothing is set, TLS with `cert` and `key`, and in addition
    /// required client certificates signed by `ca` when it is set. Reads and checks every file now.
    ///
    /// # Errors
    /// A file that is missing, unreadable or holds no certificate or key; a key that does not fit its
    /// certificate; a certificate without key or key without certificate; a `ca` with neither.
    pub fn server_config(&self) -> Result<Option<ServerTlsConfig>, TlsError> {
        let identity = self.identity()?;
        let ca = self.ca.as_deref().map(load_ca).transpose()?;
        let Some(identity) = identity else {
            return match &self.ca {
                Some(ca) => Err(TlsError::CaWithoutIdentity { ca: ca.clone() }),
                None => Ok(None),
            };
        };
        let mut config = ServerTlsConfig::new()
            .identity(identity)
            .timeout(HANDSHAKE_TIMEOUT);
        if let Some(ca) = ca {
            config = config.client_ca_root(ca);
        }
        Ok(Some(config))
    }

    /// The client side as tonic's configuration: `None` when nothing is set; otherwise servers are
    /// verified against `ca`, and `cert` and `key`, when set, are presented as this process's
    /// identity (a mutual-TLS server requires one). Prefer [`TlsFiles::client`], which also checks
    /// addresses against the configuration.
    ///
    /// # Errors
    /// As [`TlsFiles::server_config`], except that a `ca` alone is the normal client set-up.
    pub fn client_config(&self) -> Result<Option<ClientTlsConfig>, TlsError> {
        Ok(self.client()?.config)
    }

    /// The client side, ready to build endpoints with [`ClientTls::endpoint`].
    ///
    /// # Errors
    /// As [`TlsFiles::client_config`].
    pub fn client(&self) -> Result<ClientTls, TlsError> {
        let identity = self.identity()?;
        let ca = self.ca.as_deref().map(load_ca).transpose()?;
        if identity.is_none() && ca.is_none() {
            return Ok(ClientTls::default());
        }
        let verifies_servers = ca.is_some();
        let mut config = ClientTlsConfig::new().timeout(HANDSHAKE_TIMEOUT);
        if let Some(ca) = ca {
            config = config.ca_certificate(ca);
        }
        if let Some(identity) = identity {
            config = config.identity(identity);
        }
        Ok(ClientTls {
            config: Some(config),
            verifies_servers,
        })
    }

    /// The certificate and key as tonic's `Identity`, after checking that the key fits.
    fn identity(&self) -> Result<Option<Identity>, TlsError> {
        let (cert_path, key_path) = match (&self.cert, &self.key) {
            (None, None) => return Ok(None),
            (Some(cert), None) => return Err(TlsError::CertWithoutKey { cert: cert.clone() }),
            (None, Some(key)) => return Err(TlsError::KeyWithoutCert { key: key.clone() }),
            (Some(cert), Some(key)) => (cert, key),
        };
        let cert_pem = read(cert_path)?;
        let chain = certificates(cert_path, &cert_pem)?;
        let key_pem = read(key_path)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
            pem::Error::NoItemsFound => TlsError::NoPrivateKey {
                file: key_path.clone(),
            },
            e => TlsError::BadPem {
                file: key_path.clone(),
                message: e.to_string(),
            },
        })?;
        // The same check rustls makes when a server starts, made here so that the error names both
        // files: the key must parse for the provider tonic uses and match the leaf's public key.
        CertifiedKey::from_der(chain, key, &default_provider()).map_err(|e| {
            TlsError::KeyMismatch {
                cert: cert_path.clone(),
                key: key_path.clone(),
                message: e.to_string(),
            }
        })?;
        Ok(Some(Identity::from_pem(cert_pem, key_pem)))
    }
}

/// A process's client-side TLS: either plain text (the default) or tonic's configuration plus
/// whether it can verify servers. Cheap to clone; build one per process and an endpoint per peer.
#[derive(Clone, Debug, Default)]
pub struct ClientTls {
    config: Option<ClientTlsConfig>,
    verifies_servers: bool,
}

impl ClientTls {
    /// Plain text: only `http://` addresses are accepted.
    pub fn plain() -> Self {
        Self::default()
    }

    /// True when TLS is configured (then only `https://` addresses are accepted).
    pub fn is_enabled(&self) -> bool {
        self.config.is_some()
    }

    /// tonic's configuration, `None` for plain text.
    pub fn config(&self) -> Option<&ClientTlsConfig> {
        self.config.as_ref()
    }

    /// An endpoint for `address` (`http://host:port` or `https://host:port`) with TLS applied. The
    /// server's name is checked against the address's host (a DNS name, or an IP address matched
    /// against the certificate's IP addresses; IPv6 in brackets, `https://[::1]:8786`).
    ///
    /// # Errors
    /// An address that does not parse or has another scheme; `https://` without a CA to verify the
    /// server; `http://` while TLS is configured.
    pub fn endpoint(&self, address: &str) -> Result<Endpoint, TlsError> {
        let endpoint =
            Endpoint::from_shared(address.to_string()).map_err(|e| TlsError::InvalidAddress {
                address: address.to_string(),
                message: e.to_string(),
            })?;
        self.check_and_apply(endpoint, address.to_string())
    }

    /// Applies TLS to an endpoint already built (with its timeouts and other settings), after
    /// checking its scheme against the configuration as [`ClientTls::endpoint`] does.
    ///
    /// # Errors
    /// As [`ClientTls::endpoint`].
    pub fn apply(&self, endpoint: Endpoint) -> Result<Endpoint, TlsError> {
        let address = endpoint.uri().to_string();
        self.check_and_apply(endpoint, address)
    }

    /// `address` is what errors name: the caller's own spelling when it has one.
    fn check_and_apply(&self, endpoint: Endpoint, address: String) -> Result<Endpoint, TlsError> {
        match (endpoint.uri().scheme_str(), &self.config) {
            (Some("http"), None) => Ok(endpoint),
            (Some("http"), Some(_)) => Err(TlsError::PlainHttpWithTls { address }),
            (Some("https"), Some(config)) if self.verifies_servers => endpoint
                .tls_config(config.clone())
                .map_err(|e| TlsError::Endpoint {
                    address,
                    message: crate::dial::display_chain(&e),
                }),
            (Some("https"), _) => Err(TlsError::HttpsWithoutCa { address }),
            _ => Err(TlsError::UnsupportedScheme { address }),
        }
    }
}

/// The whole file, with "missing" told apart from other read failures.
fn read(file: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(file).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => TlsError::Missing {
            file: file.to_path_buf(),
        },
        _ => TlsError::Unreadable {
            file: file.to_path_buf(),
            source,
        },
    })
}

/// Every `CERTIFICATE` section of a PEM file, at least one.
fn certificates(file: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem {
            file: file.to_path_buf(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            file: file.to_path_buf(),
        });
    }
    Ok(certs)
}

/// A CA file as tonic's `Certificate`, after checking that every certificate in it can be a trust
/// anchor: rustls would otherwise skip an unusable one silently and refuse every peer later.
fn load_ca(file: &Path) -> Result<Certificate, TlsError> {
    let pem = read(file)?;
    let mut roots = RootCertStore::empty();
    for cert in certificates(file, &pem)? {
        roots.add(cert).map_err(|e| TlsError::BadCertificate {
            file: file.to_path_buf(),
            message: e.to_string(),
        })?;
    }
    Ok(Certificate::from_pem(pem))
}
