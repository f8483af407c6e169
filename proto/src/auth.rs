//! Authentication of every RPC in a tessera cluster with one shared secret.
//!
//! The scheduler, its workers and its clients share a 256-bit [`Secret`] kept in a file only its owner
//! can read (HyperQueue's access-file model: the scheduler writes it on first start, the rest read it,
//! so one machine needs no set-up step). The secret itself never crosses the network: each request
//! carries a fresh credential, `v1.<unix seconds>.<random nonce>.<HMAC-SHA256 of both>`, in its
//! `authorization` header. A server accepts a credential whose MAC verifies (compared in constant time)
//! and whose time is within [`MAX_CLOCK_SKEW`] of its own clock; without TLS an eavesdropper could replay
//! a captured credential within that window, which is why clusters across machines also use TLS
//! (`tls.rs`).
//!
//! [`ClientAuth`] adds credentials to outgoing requests (a tonic interceptor on every client);
//! [`ServerAuth`] checks them on every service before the request body is decoded, answers
//! `UNAUTHENTICATED` with a one-line reason, and logs each refused peer once. Either holds `None` when
//! the cluster runs with `--insecure`.

use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// The environment variable naming the secret file (the binaries' `--secret-file`).
pub const SECRET_FILE_ENV: &str = "TESSERA_SECRET_FILE";

/// How far a credential's time may be from the server's clock.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// Bytes of a generated secret.
const SECRET_BYTES: usize = 32;

/// The shortest secret accepted from a file or from code: anything shorter is guessable.
const MIN_SECRET_BYTES: usize = 16;

/// A secret file is a line of hex; anything much longer is not one.
const MAX_SECRET_FILE_BYTES: u64 = 1024;

const HEADER: &str = "authorization";

/// What can go wrong finding or reading a cluster secret. Messages name the file, never the secret.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "no cluster secret at {path}: start the scheduler first (it writes one there) or pass --secret-file"
    )]
    Missing { path: PathBuf },
    #[error("cannot read the cluster secret {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("cannot write a new cluster secret to {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error(
        "{path} can be read by other users (mode {mode:04o}): run `chmod 600 {path}` so that only its owner can"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("{path} is not a tessera secret file: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error("a cluster secret needs at least {MIN_SECRET_BYTES} bytes, this one has {len}")]
    TooShort { len: usize },
    #[error(
        "no place for the cluster secret: neither {SECRET_FILE_ENV}, XDG_CONFIG_HOME nor HOME is set"
    )]
    NoHome,
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

/// The cluster secret. Its `Debug` output never shows the bytes.
#[derive(Clone)]
pub struct Secret {
    key: Vec<u8>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Where the cluster secret lives when no `--secret-file` is given: `$TESSERA_SECRET_FILE`, else
/// `$XDG_CONFIG_HOME/tessera/cluster.secret`, else `$HOME/.config/tessera/cluster.secret` — the same
/// rule in the scheduler, the workers and the clients, so one user's processes on one machine agree.
pub fn default_secret_path() -> Result<PathBuf, AuthError> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(p) = non_empty(SECRET_FILE_ENV) {
        return Ok(PathBuf::from(p));
    }
    let config = match non_empty("XDG_CONFIG_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(non_empty("HOME").ok_or(AuthError::NoHome)?).join(".config"),
    };
    Ok(config.join("tessera").join("cluster.secret"))
}

/// The secret a scheduler or worker process runs with: `None` with `--insecure`; otherwise the secret
/// in `file` (or in [`default_secret_path`] when no file is named), created there if it does not
/// exist and `create` allows it or the file is the default one. Returns the secret, its file, and
/// whether this call created the file.
pub fn secret_for_process(
    file: Option<&Path>,
    insecure: bool,
    create: bool,
) -> Result<Option<(Arc<Secret>, PathBuf, bool)>, AuthError> {
    if insecure {
        return Ok(None);
    }
    let (path, create) = match file {
        Some(f) => (f.to_path_buf(), create),
        None => (default_secret_path()?, true),
    };
    let (secret, created) = if create {
        Secret::load_or_create(&path)?
    } else {
        (Secret::load(&path)?, false)
    };
    Ok(Some((Arc::new(secret), path, created)))
}

impl Secret {
    /// A new random 256-bit secret from the operating system.
    pub fn generate() -> Result<Secret, AuthError> {
        let mut key = vec![0u8; SECRET_BYTES];
        getrandom::fill(&mut key).map_err(|e| AuthError::Random(e.to_string()))?;
        Ok(Secret { key })
    }

    /// A secret from bytes held by the caller (at least 16).
    pub fn from_bytes(bytes: &[u8]) -> Result<Secret, AuthError> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(AuthError::TooShort { len: bytes.len() });
        }
        Ok(Secret {
            key: bytes.to_vec(),
        })
    }

    /// Reads a secret file: one line of hex, readable by its owner only.
    pub fn load(path: &Path) -> Result<Secret, AuthError> {
        let read_err = |e: std::io::Error| AuthError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let file = match fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(AuthError::Missing {
                    path: path.to_path_buf(),
                });
            }
            Err(e) => return Err(read_err(e)),
        };
        let meta = file.metadata().map_err(read_err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(AuthError::Permissions {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        if meta.len() > MAX_SECRET_FILE_BYTES {
            return Err(AuthError::Malformed {
                path: path.to_path_buf(),
                reason: format!("{} bytes is too long for one", meta.len()),
            });
        }
        let mut text = String::new();
        file.take(MAX_SECRET_FILE_BYTES)
            .read_to_string(&mut text)
            .map_err(read_err)?;
        let malformed = |reason: String| AuthError::Malformed {
            path: path.to_path_buf(),
            reason,
        };
        let key = decode_hex(text.trim()).ok_or_else(|| malformed("not a line of hex".into()))?;
        if key.len() < MIN_SECRET_BYTES {
            return Err(malformed(format!(
                "{} bytes of secret, at least {MIN_SECRET_BYTES} are needed",
                key.len()
            )));
        }
        Ok(Secret { key })
    }

    /// Reads the secret file, or creates it with a new secret when there is none. Creation is atomic
    /// (written aside, then linked into place), so a scheduler and a worker starting together end up
    /// with the same secret. Returns whether this call created it.
    pub fn load_or_create(path: &Path) -> Result<(Secret, bool), AuthError> {
        match Secret::load(path) {
            Err(AuthError::Missing { .. }) => {}
            other => return other.map(|s| (s, false)),
        }
        let secret = Secret::generate()?;
        let write_err = |e: std::io::Error| AuthError::Write {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir {
            let mut builder = fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir).map_err(write_err)?;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "cluster.secret".into());
        let aside = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(&aside).and_then(|mut f| {
            f.write_all(format!("{}\n", encode_hex(&secret.key)).as_bytes())?;
            f.sync_all()
        });
        if let Err(e) = written {
            let _ = fs::remove_file(&aside);
            return Err(write_err(e));
        }
        // A hard link fails if the name exists: whoever linked first wins and everyone reads theirs.
        let linked = fs::hard_link(&aside, path);
        let _ = fs::remove_file(&aside);
        match linked {
            Ok(()) => Ok((secret, true)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Secret::load(path).map(|s| (s, false))
            }
            Err(e) => Err(write_err(e)),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }

    /// A fresh credential for one request, valid around `now`.
    pub fn credential(&self, now: SystemTime) -> String {
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut nonce = [0u8; 16];
        // A failing OS generator leaves a zero nonce: the credential stays valid (the MAC covers
        // the time), it only loses uniqueness.
        let _ = getrandom::fill(&mut nonce);
        let nonce = encode_hex(&nonce);
        let mut mac = self.mac();
        mac.update(message(secs, &nonce).as_bytes());
        let tag = encode_hex(&mac.finalize().into_bytes());
        format!("v1.{secs}.{nonce}.{tag}")
    }

    /// Checks a credential against this secret at `now`; the error is the reason to give the peer.
    pub fn verify(&self, credential: &str, now: SystemTime) -> Result<(), &'static str> {
        let mut parts = credential.split('.');
        let (Some("v1"), Some(secs), Some(nonce), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err("malformed credential (not a tessera v1 credential)");
        };
        let (Ok(secs), Some(tag)) = (secs.parse::<u64>(), decode_hex(tag)) else {
            return Err("malformed credential");
        };
        if nonce.len() != 32 {
            return Err("malformed credential");
        }
        let mut mac = self.mac();
        mac.update(message(secs, nonce).as_bytes());
        mac.verify_slice(&tag).map_err(
            |_| "wrong credential: this client's cluster secret differs from the server's",
        )?;
        let ours = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if ours.abs_diff(secs) > MAX_CLOCK_SKEW.as_secs() {
            return Err("expired credential: the two machines' clocks differ by more than 300 s");
        }
        Ok(())
    }

    /// A fixed token for one purpose, `hex(HMAC-SHA256(secret, purpose))`: whoever holds the secret
    /// can make it, the token does not reveal the secret, and a token for one purpose is worthless
    /// for another. The scheduler's dashboard (a browser cannot make per-request credentials) uses
    /// `derive_token("tessera-dashboard")`.
    pub fn derive_token(&self, purpose: &str) -> String {
        let mut mac = self.mac();
        mac.update(purpose.as_bytes());
        encode_hex(&mac.finalize().into_bytes())
    }
}

/// What a credential's MAC covers.
fn message(secs: u64, nonce: &str) -> String {
    format!("tessera-auth-v1\0{secs}.{nonce}")
}

/// A 128-bit random token (session tokens, job keys), from the operating system.
pub fn random_token() -> Result<[u8; 16], AuthError> {
    let mut t = [0u8; 16];
    getrandom::fill(&mut t).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(t)
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keep the compiler from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// Adds a fresh credential to every outgoing request (nothing when insecure).
#[derive(Clone, Debug)]
pub struct ClientAuth {
    secret: Option<Arc<Secret>>,
}

impl ClientAuth {
    pub fn new(secret: Option<Arc<Secret>>) -> Self {
        ClientAuth { secret }
    }
}

impl Interceptor for ClientAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(secret) = &self.secret {
            let value = MetadataValue::try_from(secret.credential(SystemTime::now()))
                .map_err(|_| Status::internal("a credential is not a valid header value"))?;
            request.metadata_mut().insert(HEADER, value);
        }
        Ok(request)
    }
}

/// At most this many refused peers are remembered for logging once each; past it, refusals are
/// logged at debug level only, so a scan of addresses cannot grow the set without bound.
const MAX_LOGGED_PEERS: usize = 1024;

/// Checks the credential of every incoming request (accepts everything when insecure).
#[derive(Clone, Debug)]
pub struct ServerAuth {
    secret: Option<Arc<Secret>>,
    /// Which server this is, for the log line ("scheduler", "worker").
    role: &'static str,
    logged: Arc<Mutex<HashSet<Option<IpAddr>>>>,
}

impl ServerAuth {
    pub fn new(secret: Option<Arc<Secret>>, role: &'static str) -> Self {
        ServerAuth {
            secret,
            role,
            logged: Arc::default(),
        }
    }

    /// Whether requests are checked at all.
    pub fn is_secure(&self) -> bool {
        self.secret.is_some()
    }

    fn refuse(&self, request: &Request<()>, reason: &'static str) -> Status {
        let peer = request.remote_addr().map(|a| a.ip());
        let first = {
            let mut logged = self.logged.lock().expect("auth log");
            logged.len() < MAX_LOGGED_PEERS && logged.insert(peer)
        };
        let who = peer.map_or_else(|| "an unknown peer".to_string(), |p| p.to_string());
        if first {
            tracing::warn!(peer = %who, "{} refused a request: {reason}", self.role);
        } else {
            tracing::debug!(peer = %who, "{} refused a request: {reason}", self.role);
        }
        Status::unauthenticated(format!(
            "the tessera {} refused the request: {reason}",
            self.role
        ))
    }
}

impl Interceptor for ServerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(secret) = &self.secret else {
            return Ok(request);
        };
        let credential = match request.metadata().get(HEADER) {
            None => {
                return Err(self.refuse(
                    &request,
                    "no credential: this cluster requires its secret (the secret file, see --secret-file)",
                ));
            }
            Some(v) => match v.to_str() {
                Ok(s) => s,
                Err(_) => return Err(self.refuse(&request, "malformed credential")),
            },
        };
        match secret.verify(credential, SystemTime::now()) {
            Ok(()) => Ok(request),
            Err(reason) => Err(self.refuse(&request, reason)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> Secret {
        Secret::from_bytes(&[byte; 32]).unwrap()
    }

    #[test]
    fn a_credential_verifies_only_with_its_secret_and_in_time() {
        let now = SystemTime::now();
        let c = secret(1).credential(now);
        assert_eq!(secret(1).verify(&c, now), Ok(()));
        assert!(secret(1).verify(&c, now + Duration::from_secs(299)).is_ok());
        let wrong = secret(2).verify(&c, now).unwrap_err();
        assert!(wrong.contains("wrong credential"), "{wrong}");
        let late = secret(1)
            .verify(&c, now + Duration::from_secs(301))
            .unwrap_err();
        assert!(late.contains("clocks"), "{late}");
        // A tampered time or nonce breaks the MAC.
        let parts: Vec<&str> = c.split('.').collect();
        let shifted = format!(
            "v1.{}.{}.{}",
            parts[1].parse::<u64>().unwrap() + 1,
            parts[2],
            parts[3]
        );
        assert!(secret(1).verify(&shifted, now).is_err());
        for bad in ["", "v1", "v2.1.2.3", "v1.x.y.z", "v1.1.00.00.extra"] {
            assert!(secret(1).verify(bad, now).is_err(), "{bad:?}");
        }
        // Two credentials differ (fresh nonces), and the secret is in neither.
        let c2 = secret(1).credential(now);
        assert_ne!(c, c2);
        assert!(!c.contains(&encode_hex(&[1u8; 32])));
    }

    #[test]
    fn secret_files_are_created_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("cluster.secret");
        let (a, created) = Secret::load_or_create(&path).unwrap();
        assert!(created);
        let (b, created) = Secret::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(a.key, b.key);
        assert_eq!(a.key.len(), 32);
        assert_eq!(format!("{a:?}"), "Secret(<redacted>)");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            let e = Secret::load(&path).unwrap_err().to_string();
            assert!(e.contains("chmod 600") && e.contains("0644"), "{e}");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        }
        fs::write(&path, "not hex\n").unwrap();
        let e = Secret::load(&path).unwrap_err().to_string();
        assert!(e.contains("not a tessera secret file"), "{e}");
        let missing = Secret::load(&dir.path().join("none")).unwrap_err();
        assert!(matches!(missing, AuthError::Missing { .. }));
        assert!(Secret::from_bytes(b"short").is_err());
    }

    #[test]
    fn hex_round_trips_and_comparison_is_exact() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(decode_hex(&encode_hex(&bytes)).unwrap(), bytes);
        assert!(decode_hex("abc").is_none() && decode_hex("zz").is_none());
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd") && !constant_time_eq(b"abc", b"ab"));
    }
}
