//! TLS over real loopback sockets: a `Worker` server configured from `TlsFiles` written by
//! `certs::generate`, and clients that should and should not get through (mutual TLS, a missing client
//! certificate, a foreign CA, plain HTTP). Then the loaders' and the address checks' errors, which must
//! name the file or address, and the generator's refusals.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use tessera_proto::certs::{self, CertsError, GeneratedCerts};
use tessera_proto::tls::{ClientTls, TlsError, TlsFiles};
use tessera_proto::v1::worker_client::WorkerClient;
use tessera_proto::v1::worker_server::{Worker, WorkerServer};
use tessera_proto::v1::{ChunkPiece, ChunkRef, ChunkRefs};
use tokio_stream::{Stream, StreamExt};
use tonic::transport::{Endpoint, ServerTlsConfig};
use tonic::{Request, Response, Status};

/// Answers `FetchChunk` with one piece whose `total_len` is the task number, so a client can tell a
/// real answer from anything else.
struct Echo;

type PieceStream = Pin<Box<dyn Stream<Item = Result<ChunkPiece, Status>> + Send>>;

#[tonic::async_trait]
impl Worker for Echo {
    type FetchChunkStream = PieceStream;
    type FetchChunksStream = PieceStream;

    async fn fetch_chunk(
        &self,
        request: Request<ChunkRef>,
    ) -> Result<Response<PieceStream>, Status> {
        let piece = ChunkPiece {
            total_len: u64::from(request.into_inner().task),
            data: Vec::new(),
            index: 0,
        };
        Ok(Response::new(Box::pin(tokio_stream::iter([Ok(piece)]))))
    }

    async fn fetch_chunks(
        &self,
        _request: Request<ChunkRefs>,
    ) -> Result<Response<PieceStream>, Status> {
        Err(Status::unimplemented("not needed by these tests"))
    }
}

/// Serves `Echo` with `tls` on a fresh loopback port (IPv4, or IPv6 when `v6`).
async fn serve(tls: ServerTlsConfig, v6: bool) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let bind = if v6 { "[::1]:0" } else { "127.0.0.1:0" };
    let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tonic::transport::Server::builder()
        .tls_config(tls)
        .unwrap()
        .serve_with_incoming(
            WorkerServer::new(Echo),
            tessera_proto::serve::incoming(listener),
        );
    let handle = tokio::spawn(async move {
        server.await.unwrap();
    });
    (addr, handle)
}

/// Connects through `endpoint` and asks for task `task`; the echoed number, or the error as text.
/// Bounded so that a hang fails the test instead of stalling it.
async fn call(endpoint: Endpoint, task: u32) -> Result<u64, String> {
    let attempt = async {
        let channel = endpoint.connect().await.map_err(|e| format!("{e:?}"))?;
        let mut client = WorkerClient::new(channel);
        let mut stream = client
            .fetch_chunk(ChunkRef {
                job: 1,
                task,
                ..ChunkRef::default()
            })
            .await
            .map_err(|e| format!("{e:?}"))?
            .into_inner();
        match stream.next().await {
            Some(Ok(piece)) => Ok(piece.total_len),
            Some(Err(e)) => Err(format!("{e:?}")),
            None => Err("empty stream".to_string()),
        }
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .unwrap_or_else(|_| Err("no answer within 5 s".to_string()))
}

/// A fresh certificate set in its own temporary directory (kept alive by the returned guard).
fn cert_set(hosts: &[&str]) -> (tempfile::TempDir, GeneratedCerts) {
    let dir = tempfile::tempdir().unwrap();
    let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    let generated = certs::generate(&dir.path().join("certs"), &hosts, false).unwrap();
    (dir, generated)
}

fn mtls_server_config(set: &GeneratedCerts) -> ServerTlsConfig {
    set.tls_files().server_config().unwrap().unwrap()
}

#[tokio::test]
async fn mutual_tls_client_gets_through_by_ip_and_by_name() {
    let (_dir, set) = cert_set(&[]);
    let (addr, server) = serve(mtls_server_config(&set), false).await;
    let client = set.tls_files().client().unwrap();
    assert!(client.is_enabled());
    let port = addr.port();

    let by_ip = client
        .endpoint(&format!("https://127.0.0.1:{port}"))
        .unwrap();
    assert_eq!(call(by_ip, 7).await, Ok(7));
    let by_name = client
        .endpoint(&format!("https://localhost:{port}"))
        .unwrap();
    assert_eq!(call(by_name, 8).await, Ok(8));
    server.abort();
}

#[tokio::test]
async fn mutual_tls_over_ipv6_in_brackets() {
    // Not every machine has an IPv6 loopback; where it has none there is nothing to test.
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        return;
    }
    let (_dir, set) = cert_set(&[]);
    let (addr, server) = serve(mtls_server_config(&set), true).await;
    let client = set.tls_files().client().unwrap();
    let endpoint = client
        .endpoint(&format!("https://[::1]:{}", addr.port()))
        .unwrap();
    assert_eq!(call(endpoint, 9).await, Ok(9));
    server.abort();
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused_and_the_server_keeps_serving() {
    let (_dir, set) = cert_set(&[]);
    let (addr, server) = serve(mtls_server_config(&set), false).await;
    let address = format!("https://127.0.0.1:{}", addr.port());

    let ca_only = TlsFiles {
        ca: set.tls_files().ca,
        ..TlsFiles::default()
    };
    let anonymous = ca_only.client().unwrap().endpoint(&address).unwrap();
    let refused = call(anonymous, 1).await;
    // Under TLS 1.3 the client learns of the refusal from the server's alert, after its handshake.
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("CertificateRequired")),
        "{refused:?}"
    );

    let good = set
        .tls_files()
        .client()
        .unwrap()
        .endpoint(&address)
        .unwrap();
    assert_eq!(call(good, 2).await, Ok(2));
    server.abort();
}

#[tokio::test]
async fn a_server_only_tls_set_up_lets_a_client_without_certificate_in() {
    // Without a CA the server asks for no client certificate: TLS, but not mutual.
    let (_dir, set) = cert_set(&[]);
    let server_files = TlsFiles {
        ca: None,
        ..set.tls_files()
    };
    let (addr, server) = serve(server_files.server_config().unwrap().unwrap(), false).await;
    let ca_only = TlsFiles {
        ca: set.tls_files().ca,
        ..TlsFiles::default()
    };
    let endpoint = ca_only
        .client()
        .unwrap()
        .endpoint(&format!("https://127.0.0.1:{}", addr.port()))
        .unwrap();
    assert_eq!(call(endpoint, 3).await, Ok(3));
    server.abort();
}

#[tokio::test]
async fn certificates_of_another_cluster_are_refused_both_ways() {
    let (_dir, set) = cert_set(&[]);
    let (_other_dir, other) = cert_set(&[]);
    let (addr, server) = serve(mtls_server_config(&set), false).await;
    let address = format!("https://127.0.0.1:{}", addr.port());

    // The client trusts only the other CA, so it rejects the server's certificate.
    let foreign = other
        .tls_files()
        .client()
        .unwrap()
        .endpoint(&address)
        .unwrap();
    let refused = call(foreign, 1).await;
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("UnknownIssuer")),
        "{refused:?}"
    );

    // The client trusts the right CA but presents the other cluster's certificate: the server refuses.
    let mixed = TlsFiles {
        ca: set.tls_files().ca,
        ..other.tls_files()
    };
    let refused = call(mixed.client().unwrap().endpoint(&address).unwrap(), 1).await;
    assert!(refused.is_err(), "{refused:?}");

    let good = set
        .tls_files()
        .client()
        .unwrap()
        .endpoint(&address)
        .unwrap();
    assert_eq!(call(good, 4).await, Ok(4));
    server.abort();
}

#[tokio::test]
async fn extra_hosts_are_in_the_node_certificate_and_other_names_are_not() {
    let (_dir, set) = cert_set(&["Tessera-Head.example", "10.1.2.3", "[fd00::7]"]);
    assert_eq!(
        set.hosts,
        [
            "localhost",
            "127.0.0.1",
            "::1",
            "tessera-head.example",
            "10.1.2.3",
            "fd00::7"
        ]
    );
    let (addr, server) = serve(mtls_server_config(&set), false).await;
    let client = set.tls_files().client().unwrap();
    // Connect to loopback but verify the certificate for another name, as a peer that reached this
    // node by that name would.
    let as_name = |name: &str| {
        Endpoint::from_shared(format!("https://127.0.0.1:{}", addr.port()))
            .unwrap()
            .tls_config(client.config().unwrap().clone().domain_name(name))
            .unwrap()
    };
    assert_eq!(call(as_name("tessera-head.example"), 5).await, Ok(5));
    assert_eq!(call(as_name("10.1.2.3"), 6).await, Ok(6));
    assert_eq!(call(as_name("fd00::7"), 7).await, Ok(7));
    let refused = call(as_name("elsewhere.example"), 8).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("NotValidForName")),
        "{refused:?}"
    );
    server.abort();
}

#[tokio::test]
async fn a_plain_http_client_against_a_tls_server_fails_cleanly() {
    let (_dir, set) = cert_set(&[]);
    let (addr, server) = serve(mtls_server_config(&set), false).await;
    let plain = ClientTls::plain()
        .endpoint(&format!("http://127.0.0.1:{}", addr.port()))
        .unwrap();
    let refused = call(plain, 1).await;
    assert!(refused.is_err(), "{refused:?}");
    assert!(!refused.unwrap_err().contains("within 5 s"));

    let good = set
        .tls_files()
        .client()
        .unwrap()
        .endpoint(&format!("https://127.0.0.1:{}", addr.port()))
        .unwrap();
    assert_eq!(call(good, 2).await, Ok(2));
    server.abort();
}

#[test]
fn addresses_must_agree_with_the_configuration() {
    let (_dir, set) = cert_set(&[]);
    let tls = set.tls_files().client().unwrap();
    let address = "http://10.0.0.5:8786";
    let err = tls.endpoint(address).unwrap_err();
    assert!(matches!(err, TlsError::PlainHttpWithTls { .. }), "{err}");
    assert!(err.to_string().contains(address), "{err}");

    let address = "https://10.0.0.5:8786";
    let err = ClientTls::plain().endpoint(address).unwrap_err();
    assert!(matches!(err, TlsError::HttpsWithoutCa { .. }), "{err}");
    assert!(err.to_string().contains(address), "{err}");

    // An identity without a CA cannot verify servers either.
    let identity_only = TlsFiles {
        ca: None,
        ..set.tls_files()
    };
    let err = identity_only
        .client()
        .unwrap()
        .endpoint(address)
        .unwrap_err();
    assert!(matches!(err, TlsError::HttpsWithoutCa { .. }), "{err}");

    let err = tls.endpoint("ftp://10.0.0.5:8786").unwrap_err();
    assert!(matches!(err, TlsError::UnsupportedScheme { .. }), "{err}");
    let err = tls.endpoint("https://bad host:1").unwrap_err();
    assert!(matches!(err, TlsError::InvalidAddress { .. }), "{err}");

    assert!(tls.endpoint(address).is_ok());
    assert!(ClientTls::plain().endpoint("http://10.0.0.5:8786").is_ok());
    // `apply` keeps an endpoint's own settings and checks it the same way.
    let built = Endpoint::from_static("http://10.0.0.5:8786").timeout(Duration::from_secs(1));
    assert!(matches!(
        tls.apply(built).unwrap_err(),
        TlsError::PlainHttpWithTls { .. }
    ));
}

/// `err`'s message names `file`.
fn names(err: &TlsError, file: &Path) -> bool {
    err.to_string().contains(&file.display().to_string())
}

#[test]
fn nothing_set_is_plain_text() {
    let none = TlsFiles::default();
    assert!(none.is_empty());
    assert!(none.server_config().unwrap().is_none());
    assert!(none.client_config().unwrap().is_none());
    assert!(!none.client().unwrap().is_enabled());
}

#[test]
fn loader_errors_name_the_file() {
    let (dir, set) = cert_set(&[]);
    let good = set.tls_files();

    let missing = dir.path().join("nowhere.pem");
    let files = TlsFiles {
        cert: Some(missing.clone()),
        ..good.clone()
    };
    let err = files.server_config().unwrap_err();
    assert!(
        matches!(err, TlsError::Missing { .. }) && names(&err, &missing),
        "{err}"
    );
    let files = TlsFiles {
        ca: Some(missing.clone()),
        ..good.clone()
    };
    let err = files.client_config().unwrap_err();
    assert!(
        matches!(err, TlsError::Missing { .. }) && names(&err, &missing),
        "{err}"
    );

    // A key file where a certificate belongs, and a text file as the CA.
    let files = TlsFiles {
        cert: set.tls_files().key,
        ..good.clone()
    };
    let err = files.server_config().unwrap_err();
    assert!(
        matches!(err, TlsError::NoCertificate { .. }) && names(&err, &set.node_key),
        "{err}"
    );
    let text = write(dir.path(), "notes.txt", "not a certificate\n");
    let files = TlsFiles {
        ca: Some(text.clone()),
        ..good.clone()
    };
    let err = files.client().unwrap_err();
    assert!(
        matches!(err, TlsError::NoCertificate { .. }) && names(&err, &text),
        "{err}"
    );

    // A certificate where the key belongs.
    let files = TlsFiles {
        key: Some(set.node_cert.clone()),
        ..good.clone()
    };
    let err = files.server_config().unwrap_err();
    assert!(
        matches!(err, TlsError::NoPrivateKey { .. }) && names(&err, &set.node_cert),
        "{err}"
    );

    // Broken PEM: a section that never ends.
    let broken = write(
        dir.path(),
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\nMIIB\n",
    );
    let files = TlsFiles {
        cert: Some(broken.clone()),
        ..good.clone()
    };
    let err = files.server_config().unwrap_err();
    assert!(
        matches!(err, TlsError::BadPem { .. }) && names(&err, &broken),
        "{err}"
    );

    // Half an identity, either way round.
    let files = TlsFiles {
        key: None,
        ..good.clone()
    };
    let err = files.server_config().unwrap_err();
    assert!(
        matches!(err, TlsError::CertWithoutKey { .. }) && names(&err, &set.node_cert),
        "{err}"
    );
    let err = files.client_config().unwrap_err();
    assert!(matches!(err, TlsError::CertWithoutKey { .. }), "{err}");
    let files = TlsFiles {
        cert: None,
        ..good.clone()
    };
    let err = files.server_config().unwrap_err();
    assert!(
        matches!(err, TlsError::KeyWithoutCert { .. }) && names(&err, &set.node_key),
        "{err}"
    );

    // The CA's key with the node's certificate.
    let files = TlsFiles {
        key: Some(set.ca_key.clone()),
        ..good.clone()
    };
    let err = files.server_config().unwrap_err();
    assert!(
        matches!(err, TlsError::KeyMismatch { .. })
            && names(&err, &set.ca_key)
            && names(&err, &set.node_cert),
        "{err}"
    );

    // A server with only a CA would serve plain text while mutual TLS was asked for.
    let files = TlsFiles {
        ca: good.ca.clone(),
        ..TlsFiles::default()
    };
    let err = files.server_config().unwrap_err();
    assert!(
        matches!(err, TlsError::CaWithoutIdentity { .. }) && names(&err, &set.ca_cert),
        "{err}"
    );
    assert!(files.client_config().unwrap().is_some());

    #[cfg(unix)]
    {
        // A directory where a file belongs cannot be read.
        let err = TlsFiles {
            ca: Some(dir.path().to_path_buf()),
            ..TlsFiles::default()
        }
        .client()
        .unwrap_err();
        assert!(
            matches!(err, TlsError::Unreadable { .. }) && names(&err, dir.path()),
            "{err}"
        );
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_generator_writes_private_keys_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a").join("b");
    let first = certs::generate(&out, &[], false).unwrap();
    for file in [
        &first.ca_cert,
        &first.ca_key,
        &first.node_cert,
        &first.node_key,
    ] {
        assert!(file.is_file(), "{}", file.display());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |f: &Path| std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&first.ca_key), 0o600);
        assert_eq!(mode(&first.node_key), 0o600);
    }
    let ca_before = std::fs::read(&first.ca_cert).unwrap();

    let err = certs::generate(&out, &[], false).unwrap_err();
    assert!(matches!(err, CertsError::Exists { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&first.ca_cert.display().to_string()),
        "{err}"
    );
    assert_eq!(std::fs::read(&first.ca_cert).unwrap(), ca_before);

    // Overwriting replaces the whole set, and the keys stay private even if the old file was not.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&first.node_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let second = certs::generate(&out, &[], true).unwrap();
    assert_ne!(std::fs::read(&second.ca_cert).unwrap(), ca_before);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&second.node_key)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(second.tls_files().server_config().unwrap().is_some());
    assert_eq!(
        second.flags(),
        format!(
            "--tls-cert {} --tls-key {} --tls-ca {}",
            out.join("node.pem").display(),
            out.join("node-key.pem").display(),
            out.join("ca.pem").display()
        )
    );
}

#[test]
fn the_generator_refuses_a_bad_host_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    for host in ["bad host", "", "-lead.example", "a..b", "http://x"] {
        let err = certs::generate(dir.path(), &[host.to_string()], false).unwrap_err();
        assert!(matches!(err, CertsError::BadHost { .. }), "{host:?}: {err}");
        assert!(err.to_string().contains(&format!("{host:?}")), "{err}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
