//! Zarr stores in S3-compatible object stores (feature `s3`): `s3://bucket/prefix` opened through
//! `object_store` and `zarrs_object_store`, configured from the environment as the AWS tools are
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`;
//! an `http://` endpoint is allowed without TLS, as a local test server needs).
//!
//! The store is async; chunk tasks are not. Its requests run on a small tokio runtime of this module's
//! own (the connector spawns them there), and a task blocks on each request's future with a plain
//! executor, so it works from any thread: a rayon worker, a tokio blocking thread, or the client's.

use std::sync::{Arc, OnceLock};

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::client::SpawnedReqwestConnector;
use object_store::prefix::PrefixStore;
use zarrs::storage::ReadableWritableListableStorage;
use zarrs::storage::storage_adapter::async_to_sync::{
    AsyncToSyncBlockOn, AsyncToSyncStorageAdapter,
};
use zarrs_object_store::AsyncObjectStore;

use super::zarr::{ZarrStore, zarr_err};
use crate::error::Result;

/// Threads of the runtime that carries object-store requests: they only wait on sockets.
const IO_THREADS: usize = 2;

fn io_runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(IO_THREADS)
            .thread_name("tessera-s3-io")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the object-store I/O runtime: {e}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Drives a store future to completion on the calling thread; the I/O itself runs on the runtime.
struct BlockOn;

impl AsyncToSyncBlockOn for BlockOn {
    fn block_on<F: core::future::Future>(&self, future: F) -> F::Output {
        futures_executor::block_on(future)
    }
}

/// Opens `s3://bucket/prefix`.
pub(crate) fn open(store: &ZarrStore) -> Result<ReadableWritableListableStorage> {
    let rest = store.as_str().strip_prefix("s3://").expect("an s3:// URL");
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(zarr_err(
            store,
            "the URL names no bucket (s3://bucket/prefix)",
        ));
    }
    // reqwest's TLS takes the process's default provider: ring, as everywhere else in tessera. An
    // error only means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = io_runtime().map_err(|e| zarr_err(store, e))?;
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_http_connector(SpawnedReqwestConnector::new(rt.handle().clone()));
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .or_else(|_| std::env::var("AWS_ENDPOINT"))
        .unwrap_or_default();
    if endpoint.starts_with("http://") {
        builder = builder.with_allow_http(true);
    }
    let s3 = builder
        .build()
        .map_err(|e| zarr_err(store, format!("cannot configure the S3 client: {e}")))?;
    let inner: Arc<dyn ObjectStore> = if prefix.trim_matches('/').is_empty() {
        Arc::new(s3)
    } else {
        Arc::new(PrefixStore::new(s3, prefix.trim_matches('/')))
    };
    let async_store = Arc::new(AsyncObjectStore::new(inner));
    Ok(Arc::new(AsyncToSyncStorageAdapter::new(
        async_store,
        BlockOn,
    )))
}
