//! Outgoing gRPC channels, made the same way by clients, workers (to the scheduler and to peers) and
//! tests: Nagle off, a bound on connecting, HTTP/2 keep-alive pings so that a peer that goes silent on
//! a long stream is noticed, TLS for `https://` addresses, and the cluster credential on every request.

use std::future::Future;
use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::auth::ClientAuth;
use crate::tls::ClientTls;

/// A channel whose every request carries the cluster credential.
pub type AuthChannel = InterceptedService<Channel, ClientAuth>;

/// How often an idle connection is pinged, and how long a ping may go unanswered before the
/// connection is dropped: a peer that is paused, partitioned or gone is noticed within half a minute
/// even on a stream where nothing is due.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a connection or a call with a deadline failed; each message names the address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    #[error("bad address {address:?}: {message}")]
    BadAddress { address: String, message: String },
    #[error("cannot connect to {address}: {message}")]
    Connect { address: String, message: String },
    #[error("no answer from {address} within {timeout:?} while {what}")]
    Timeout {
        address: String,
        timeout: Duration,
        what: String,
    },
}

/// Makes channels to tessera servers.
#[derive(Clone, Debug)]
pub struct Dialer {
    /// Credentials added to every request.
    pub auth: ClientAuth,
    /// TLS settings for `https://` addresses (plain: only `http://` addresses can be reached).
    pub tls: ClientTls,
    /// Longest wait for a connection (TCP, TLS and HTTP/2 handshakes together).
    pub connect_timeout: Duration,
}

impl Dialer {
    pub fn new(auth: ClientAuth, connect_timeout: Duration) -> Self {
        Dialer {
            auth,
            tls: ClientTls::plain(),
            connect_timeout,
        }
    }

    pub fn with_tls(mut self, tls: ClientTls) -> Self {
        self.tls = tls;
        self
    }

    /// The endpoint for `address` with this dialer's settings; connects lazily.
    pub fn endpoint(&self, address: &str) -> Result<Endpoint, DialError> {
        let bad = |message: String| DialError::BadAddress {
            address: address.to_string(),
            message,
        };
        let endpoint = Endpoint::from_shared(address.to_string())
            .map_err(|e| bad(e.to_string()))?
            .tcp_nodelay(true)
            .connect_timeout(self.connect_timeout)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        // Checks the scheme against the TLS settings (https needs a CA, TLS needs https).
        self.tls.apply(endpoint).map_err(|e| bad(e.to_string()))
    }

    /// Connects to `address` within the connect timeout.
    pub async fn connect(&self, address: &str) -> Result<AuthChannel, DialError> {
        let endpoint = self.endpoint(address)?;
        let channel = within(
            address,
            self.connect_timeout,
            "connecting",
            endpoint.connect(),
        )
        .await?
        .map_err(|e| DialError::Connect {
            address: address.to_string(),
            message: display_chain(&e),
        })?;
        Ok(InterceptedService::new(channel, self.auth.clone()))
    }
}

/// Runs `call`, failing with [`DialError::Timeout`] (naming `address` and `what`) if it takes longer
/// than `timeout`.
pub async fn within<T>(
    address: &str,
    timeout: Duration,
    what: &str,
    call: impl Future<Output = T>,
) -> Result<T, DialError> {
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| DialError::Timeout {
            address: address.to_string(),
            timeout,
            what: what.to_string(),
        })
}

/// An error and its causes on one line, `outer: cause: root cause` (transport errors hide the useful
/// part deep in the chain); a cause the line already ends with is not repeated.
pub fn display_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.ends_with(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}
