//! Certificates for a tessera cluster, generated in Rust (rcgen, ECDSA P-256): a cluster CA and one
//! node certificate signed by it, which every scheduler, worker and client of the cluster can share.
//! The node certificate is valid as a TLS server and as a TLS client, so the same three files
//! (`node.pem`, `node-key.pem`, `ca.pem`) give mutual TLS everywhere: see [`crate::tls::TlsFiles`].
//!
//! The CA is valid for 10 years and the node certificate for 1 year ([`CA_VALIDITY`],
//! [`NODE_VALIDITY`]), both from an hour before generation so that a peer whose clock is a little
//! behind still accepts them. The CA's key (`ca-key.pem`) is only needed to sign more certificates:
//! it need not be copied to the nodes. Private keys are written with mode 0600 on Unix.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use crate::tls::TlsFiles;

/// How long the cluster CA is valid.
pub const CA_VALIDITY: Duration = Duration::days(3650);
/// How long a node certificate is valid.
pub const NODE_VALIDITY: Duration = Duration::days(365);
/// How far back both certificates' validity starts, for peers whose clocks lag.
const CLOCK_SKEW: Duration = Duration::hours(1);

/// The names every node certificate holds, so that a one-machine cluster works without `--host`.
pub const DEFAULT_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The CA certificate's file name in the output directory.
pub const CA_CERT: &str = "ca.pem";
/// The CA private key's file name.
pub const CA_KEY: &str = "ca-key.pem";
/// The node certificate's file name.
pub const NODE_CERT: &str = "node.pem";
/// The node private key's file name.
pub const NODE_KEY: &str = "node-key.pem";

/// What went wrong generating or writing certificates. Every variant names the host or file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertsError {
    /// A `--host` that is neither an IP address nor a DNS name.
    #[error(
        "host {host:?} is neither an IP address nor a DNS name (letters, digits, '-' and '.' only)"
    )]
    BadHost {
        /// The host as given.
        host: String,
    },
    /// The output directory could not be created.
    #[error("cannot create directory {}: {source}", dir.display())]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file to be written exists and overwriting was not asked for.
    #[error("{} already exists (use --force to overwrite)", file.display())]
    Exists {
        /// The file.
        file: PathBuf,
    },
    /// A file could not be written (or, when overwriting, removed first).
    #[error("cannot write {}: {source}", file.display())]
    Write {
        /// The file.
        file: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// rcgen failed to generate a key or sign a certificate.
    #[error("cannot generate the {what}: {source}")]
    Generate {
        /// Which key or certificate.
        what: &'static str,
        /// rcgen's error.
        source: rcgen::Error,
    },
}

/// The files [`generate`] wrote, and the names the node certificate is valid for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedCerts {
    /// The CA certificate (`DIR/ca.pem`): give it to every node as `--tls-ca`.
    pub ca_cert: PathBuf,
    /// The CA private key (`DIR/ca-key.pem`), mode 0600.
    pub ca_key: PathBuf,
    /// The node certificate (`DIR/node.pem`): `--tls-cert`.
    pub node_cert: PathBuf,
    /// The node private key (`DIR/node-key.pem`), mode 0600: `--tls-key`.
    pub node_key: PathBuf,
    /// The node certificate's subject alternative names, defaults first, without duplicates.
    pub hosts: Vec<String>,
}

impl GeneratedCerts {
    /// The files a node uses for mutual TLS: the node certificate and key, and the CA.
    pub fn tls_files(&self) -> TlsFiles {
        TlsFiles {
            cert: Some(self.node_cert.clone()),
            key: Some(self.node_key.clone()),
            ca: Some(self.ca_cert.clone()),
        }
    }

    /// The command-line flags that use these files, for printing.
    pub fn flags(&self) -> String {
        format!(
            "--tls-cert {} --tls-key {} --tls-ca {}",
            self.node_cert.display(),
            self.node_key.display(),
            self.ca_cert.display()
        )
    }
}

/// Generates a cluster CA and a node certificate into `dir` (created if missing): `ca.pem`,
/// `ca-key.pem`, `node.pem`, `node-key.pem`. The node certificate is valid for `localhost`,
/// `127.0.0.1`, `::1` and each of `hosts` (an IP address, bracketed or not, or a DNS name).
///
/// # Errors
/// A bad host; any of the four files existing while `overwrite` is false (checked before anything
/// is written, so a refusal leaves the directory as it was); a directory or file that cannot be
/// created or written.
pub fn generate(
    dir: &Path,
    hosts: &[String],
    overwrite: bool,
) -> Result<GeneratedCerts, CertsError> {
    let sans = subject_alt_names(hosts)?;
    let out = GeneratedCerts {
        ca_cert: dir.join(CA_CERT),
        ca_key: dir.join(CA_KEY),
        node_cert: dir.join(NODE_CERT),
        node_key: dir.join(NODE_KEY),
        hosts: sans.iter().map(|(name, _)| name.clone()).collect(),
    };
    let files = [&out.ca_cert, &out.ca_key, &out.node_cert, &out.node_key];
    if let Some(file) = files.iter().find(|f| !overwrite && f.exists()) {
        return Err(CertsError::Exists {
            file: file.to_path_buf(),
        });
    }

    let now = OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate().map_err(|source| CertsError::Generate {
        what: "CA key",
        source,
    })?;
    let mut ca = CertificateParams::default();
    // The CA's name carries a piece of its key's identifier: two clusters' CAs then differ by name,
    // so a peer holding the wrong CA is told "unknown issuer", not a puzzling bad signature.
    let id: String = ca
        .key_identifier(&ca_key)
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    ca.distinguished_name = name(&format!("tessera cluster CA {id}"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = now - CLOCK_SKEW;
    ca.not_after = now + CA_VALIDITY;
    let ca_cert = ca
        .self_signed(&ca_key)
        .map_err(|source| CertsError::Generate {
            what: "CA certificate",
            source,
        })?;

    let node_key = KeyPair::generate().map_err(|source| CertsError::Generate {
        what: "node key",
        source,
    })?;
    let mut node = CertificateParams::default();
    node.distinguished_name = name("tessera node");
    node.subject_alt_names = sans.into_iter().map(|(_, san)| san).collect();
    node.is_ca = IsCa::ExplicitNoCa;
    node.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    node.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    node.use_authority_key_identifier_extension = true;
    node.not_before = now - CLOCK_SKEW;
    node.not_after = now + NODE_VALIDITY;
    let issuer = Issuer::from_params(&ca, &ca_key);
    let node_cert = node
        .signed_by(&node_key, &issuer)
        .map_err(|source| CertsError::Generate {
            what: "node certificate",
            source,
        })?;

    std::fs::create_dir_all(dir).map_err(|source| CertsError::CreateDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    // Keys first: a run that fails halfway leaves no certificate whose key is missing.
    write(&out.ca_key, &ca_key.serialize_pem(), true, overwrite)?;
    write(&out.node_key, &node_key.serialize_pem(), true, overwrite)?;
    write(&out.ca_cert, &ca_cert.pem(), false, overwrite)?;
    write(&out.node_cert, &node_cert.pem(), false, overwrite)?;
    Ok(out)
}

/// The default names plus `hosts`, each with its SAN entry, in order and without duplicates.
fn subject_alt_names(hosts: &[String]) -> Result<Vec<(String, SanType)>, CertsError> {
    let mut sans: Vec<(String, SanType)> = Vec::new();
    for host in DEFAULT_HOSTS
        .iter()
        .map(|h| h.to_string())
        .chain(hosts.iter().cloned())
    {
        let san = parse_host(&host)?;
        if !sans.iter().any(|(_, s)| *s == san) {
            let name = match &san {
                SanType::IpAddress(ip) => ip.to_string(),
                _ => host.to_ascii_lowercase(),
            };
            sans.push((name, san));
        }
    }
    Ok(sans)
}

/// An IP address (IPv6 optionally in brackets, as in URLs) or a DNS name (ASCII labels of letters,
/// digits and '-', matched case-insensitively, so stored lower-case).
fn parse_host(host: &str) -> Result<SanType, CertsError> {
    let bad = || CertsError::BadHost {
        host: host.to_string(),
    };
    let unbracketed = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let labels_ok = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    if !labels_ok || host.len() > 253 {
        return Err(bad());
    }
    let name = host.to_ascii_lowercase().try_into().map_err(|_| bad())?;
    Ok(SanType::DnsName(name))
}

/// A subject name `O=tessera, CN=common_name`.
fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "tessera");
    name.push(DnType::CommonName, common_name);
    name
}

/// Writes `text` to a new `file`; a private key is created with mode 0600 (Unix) from the start, so
/// it is never readable by others, not even for a moment. An existing file is removed first when
/// `overwrite` (rather than truncated, which would keep its old, perhaps wider, mode).
fn write(file: &Path, text: &str, private: bool, overwrite: bool) -> Result<(), CertsError> {
    let err = |source| CertsError::Write {
        file: file.to_path_buf(),
        source,
    };
    if overwrite {
        match std::fs::remove_file(file) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e)),
        }
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = options.open(file).map_err(|e| match e.kind() {
        // Another process created it since the check in `generate`.
        io::ErrorKind::AlreadyExists => CertsError::Exists {
            file: file.to_path_buf(),
        },
        _ => err(e),
    })?;
    f.write_all(text.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)
}
