//! The engine's one error type. Every variant names what was wrong (shape, chunk, key, path) so that a
//! binary can print it as one readable line.

use std::path::PathBuf;

/// Errors from building, optimizing or computing array expressions.
///
/// `Debug` prints the same readable sentence as `Display` (with its causes), so that a program whose
/// `main` returns [`Result`] reports a failure as one line, not as a structure:
///
/// ```
/// let e = tessera::zeros::<f64>(&[3], [2]).unwrap().reshape(&[2, 2]).unwrap_err();
/// assert_eq!(format!("{e:?}"), e.to_string());
/// ```
#[derive(thiserror::Error)]
pub enum Error {
    /// An operator (`+`, `*`, `-x` …) that could not build its array, reported by the next call
    /// that returns a `Result` (see `Array::usable`); `location` is where the operator was written.
    #[error("{error} (in the operator at {location})")]
    Operator {
        location: String,
        error: std::sync::Arc<Error>,
    },
    #[error("chunks {chunks} do not match the {}-d shape {shape:?}", shape.len())]
    ChunksRank { shape: Vec<usize>, chunks: String },
    #[error("invalid chunks for shape {shape:?}: {reason}")]
    InvalidChunks { shape: Vec<usize>, reason: String },
    #[error("shapes {left:?} and {right:?} cannot be broadcast together")]
    Broadcast { left: Vec<usize>, right: Vec<usize> },
    #[error("axis {axis} is out of bounds for an array of rank {ndim}")]
    AxisOutOfBounds { axis: isize, ndim: usize },
    #[error("axis {axis} is repeated in {axes:?}")]
    DuplicateAxis { axis: usize, axes: Vec<isize> },
    #[error("shape mismatch in {op}: {reason}")]
    ShapeMismatch { op: &'static str, reason: String },
    #[error("{op} does not support dtype {dtype}")]
    UnsupportedDType {
        op: &'static str,
        dtype: crate::DType,
    },
    /// An integer scalar operand that the array's integer type cannot hold (numpy 2's
    /// `OverflowError: Python integer 300 out of bounds for uint8`).
    #[error("Python integer {value} out of bounds for {dtype}")]
    ScalarOutOfBounds { value: String, dtype: crate::DType },
    #[error("expected an array of dtype {expected}, but it is {actual}")]
    DTypeMismatch {
        expected: crate::DType,
        actual: crate::DType,
    },
    #[error("invalid argument to {op}: {reason}")]
    InvalidArgument { op: &'static str, reason: String },
    #[error("index {index} is out of bounds for axis {axis} of length {len}")]
    IndexOutOfBounds {
        index: isize,
        axis: usize,
        len: usize,
    },
    #[error("task {key} failed: {message}")]
    TaskFailed { key: String, message: String },
    #[error("task {key} panicked: {message}")]
    TaskPanicked { key: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a readable .npy file: {reason}")]
    Npy { path: PathBuf, reason: String },
    /// A Zarr store could not be opened, read or written: `store` is its path or URL, `reason` names
    /// the array, the chunk (indices and store key) and the cause.
    #[error("Zarr store {store}: {reason}")]
    Zarr { store: String, reason: String },
    #[error(
        "map_blocks runs a Rust closure, which cannot leave this process: compute {key} with the local executor"
    )]
    NotSerializable { key: String },
    #[error("cannot connect to the scheduler at {address}: {message}")]
    Connect { address: String, message: String },
    #[error(
        "the scheduler at {address} speaks protocol version {theirs}, this client {ours}: run the same tessera version everywhere"
    )]
    ProtocolMismatch {
        address: String,
        ours: u32,
        theirs: u32,
    },
    #[error("the cluster at {address} failed: {message}")]
    Remote { address: String, message: String },
    #[error("the scheduler at {address} rejected the graph: {message}")]
    Rejected { address: String, message: String },
    #[error("invalid graph: {reason}")]
    InvalidGraph { reason: String },
    /// A graph failed [`crate::graph::validate::validate`]: `layer` is the offending layer's id.
    #[error("invalid graph: layer {layer}: {reason}")]
    InvalidLayer { layer: String, reason: String },
    /// A protobuf message could not be turned into the engine's types (missing field, unknown enum
    /// value, data that does not fit its shape …); `what` says which and where.
    #[error("malformed wire message: {what}")]
    Wire { what: String },
    /// An array persisted on a cluster (`persist_on(&client)`) was used where its kept chunks cannot
    /// be read: on the local executor, with another client, or after it was released; `layer` is
    /// the persisted layer's id.
    #[error("persisted array {layer}: {reason}")]
    Persisted { layer: String, reason: String },
    #[error("could not build the thread pool: {0}")]
    ThreadPool(String),
    /// A computation stopped because its [`crate::exec::CancelToken`] was cancelled or its time limit
    /// passed; `reason` says which ("cancelled", "time limit of 2s exceeded").
    #[error("{reason}")]
    Cancelled { reason: String },
    /// A plan is larger than a configured limit ([`crate::graph::limits`], or expansion): `what` names
    /// the graph or layer (with its chunk shape), `amount` and `unit` how large it is, `setting` the
    /// option that raises `limit`, and `hint` (possibly empty) how to make the plan fit.
    #[error("{what} {amount} {unit}; the limit is {limit} ({setting}){hint}")]
    LimitExceeded {
        what: String,
        amount: u64,
        unit: &'static str,
        limit: u64,
        setting: String,
        hint: String,
    },
    /// An input chunk of a task is not what its producing layer declares for that block (from
    /// [`crate::graph::check::check_inputs`]): `key` is the task, `input` the position among its
    /// inputs and `chunk` the key of the chunk it should be.
    #[error("task {key}: input {input} (chunk {chunk}): expected {expected}, got {got}")]
    InputMismatch {
        key: String,
        input: usize,
        chunk: String,
        expected: String,
        got: String,
    },
    /// The cluster secret could not be found or read (the message names the file, never the secret).
    #[cfg(feature = "distributed")]
    #[error("cluster secret: {0}")]
    Secret(#[from] tessera_proto::auth::AuthError),
}

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The error itself, or for [`Error::Operator`] the error the operator met (an operator's
    /// error only adds where it was written).
    pub fn root(&self) -> &Error {
        match self {
            Error::Operator { error, .. } => error.root(),
            e => e,
        }
    }
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&display_chain(self))
    }
}

/// An error and its sources on one line, `outer: cause: root cause`, for messages about transport
/// failures whose useful part is deep in the chain. A cause that the line already ends with (a
/// wrapper displaying its source, or two links saying the same) is not repeated.
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

#[cfg(test)]
mod tests {
    use super::display_chain;

    #[derive(Debug)]
    struct Link(&'static str, Option<Box<Link>>);

    impl std::fmt::Display for Link {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Link {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn display_chain_says_each_cause_once() {
        let root = Link("Connection refused (os error 111)", None);
        let twice = Link("tcp connect error", Some(Box::new(root)));
        let e = Link(
            "transport error",
            Some(Box::new(Link("tcp connect error", Some(Box::new(twice))))),
        );
        assert_eq!(
            display_chain(&e),
            "transport error: tcp connect error: Connection refused (os error 111)"
        );
    }
}
