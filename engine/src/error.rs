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
        /// Source location of the operator, `file:line:column`.
        location: String,
        /// The error the operator met.
        error: std::sync::Arc<Error>,
    },
    /// A chunk specification whose number of axes differs from the shape's.
    #[error("chunks {chunks} do not match the {}-d shape {shape:?}", shape.len())]
    ChunksRank {
        /// The array's shape, in elements per axis.
        shape: Vec<usize>,
        /// The chunk specification as written.
        chunks: String,
    },
    /// Chunk sizes that cannot tile the shape (zero, or block sizes not summing to an axis length).
    #[error("invalid chunks for shape {shape:?}: {reason}")]
    InvalidChunks {
        /// The array's shape, in elements per axis.
        shape: Vec<usize>,
        /// Which axis and sizes were wrong.
        reason: String,
    },
    /// Two shapes that numpy's broadcasting rules cannot combine.
    #[error("shapes {left:?} and {right:?} cannot be broadcast together")]
    Broadcast {
        /// Shape of the left operand.
        left: Vec<usize>,
        /// Shape of the right operand.
        right: Vec<usize>,
    },
    /// An axis argument outside `-ndim..ndim`.
    #[error("axis {axis} is out of bounds for an array of rank {ndim}")]
    AxisOutOfBounds {
        /// The axis as given (negative counts from the end).
        axis: isize,
        /// The array's number of dimensions.
        ndim: usize,
    },
    /// An axis named twice in one list of axes.
    #[error("axis {axis} is repeated in {axes:?}")]
    DuplicateAxis {
        /// The repeated axis, normalized to be non-negative.
        axis: usize,
        /// The axes as given.
        axes: Vec<isize>,
    },
    /// Operands whose shapes an operation cannot combine (`matmul` inner lengths, `concatenate` …).
    #[error("shape mismatch in {op}: {reason}")]
    ShapeMismatch {
        /// The operation's numpy name.
        op: &'static str,
        /// Which shapes and axes disagree.
        reason: String,
    },
    /// An operation called on an element type it does not implement.
    #[error("{op} does not support dtype {dtype}")]
    UnsupportedDType {
        /// The operation's numpy name.
        op: &'static str,
        /// The dtype it was given.
        dtype: crate::DType,
    },
    /// An integer scalar operand that the array's integer type cannot hold (numpy 2's
    /// `OverflowError: Python integer 300 out of bounds for uint8`).
    #[error("Python integer {value} out of bounds for {dtype}")]
    ScalarOutOfBounds {
        /// The scalar, printed in decimal.
        value: String,
        /// The array's integer dtype.
        dtype: crate::DType,
    },
    /// An array of another element type than the caller asked for (e.g. `compute::<f32>()` on an
    /// `f64` array).
    #[error("expected an array of dtype {expected}, but it is {actual}")]
    DTypeMismatch {
        /// The dtype the caller asked for.
        expected: crate::DType,
        /// The array's dtype.
        actual: crate::DType,
    },
    /// An argument outside what an operation accepts (a negative count, an empty list …).
    #[error("invalid argument to {op}: {reason}")]
    InvalidArgument {
        /// The operation's numpy name.
        op: &'static str,
        /// Which argument and why.
        reason: String,
    },
    /// An index past the end of an axis.
    #[error("index {index} is out of bounds for axis {axis} of length {len}")]
    IndexOutOfBounds {
        /// The index as given (negative counts from the end).
        index: isize,
        /// The axis it indexes.
        axis: usize,
        /// The axis length, in elements.
        len: usize,
    },
    /// A chunk task returned an error.
    #[error("task {key} failed: {message}")]
    TaskFailed {
        /// The task's chunk key, `layer[i, j …]`.
        key: String,
        /// The task's error, with its causes.
        message: String,
    },
    /// A chunk task panicked (the panic is caught; the process goes on).
    #[error("task {key} panicked: {message}")]
    TaskPanicked {
        /// The task's chunk key, `layer[i, j …]`.
        key: String,
        /// The panic payload, if it was a string.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A `.npy` file with a header or data this reader does not accept.
    #[error("{path}: not a readable .npy file: {reason}")]
    Npy {
        /// The file.
        path: PathBuf,
        /// What in the header or data was wrong.
        reason: String,
    },
    /// A Zarr store could not be opened, read or written: `store` is its path or URL, `reason` names
    /// the array, the chunk (indices and store key) and the cause.
    #[error("Zarr store {store}: {reason}")]
    Zarr {
        /// The store's path or URL.
        store: String,
        /// The array, chunk and cause.
        reason: String,
    },
    /// A graph holding a `map_blocks` closure was sent to a cluster, which cannot run Rust closures.
    #[error(
        "map_blocks runs a Rust closure, which cannot leave this process: compute {key} with the local executor"
    )]
    NotSerializable {
        /// The `map_blocks` layer's id.
        key: String,
    },
    /// The client could not reach the scheduler.
    #[error("cannot connect to the scheduler at {address}: {message}")]
    Connect {
        /// The scheduler's address as given.
        address: String,
        /// The transport error, with its causes.
        message: String,
    },
    /// Client and scheduler speak different protocol versions.
    #[error(
        "the scheduler at {address} speaks protocol version {theirs}, this client {ours}: run the same tessera version everywhere"
    )]
    ProtocolMismatch {
        /// The scheduler's address.
        address: String,
        /// This client's protocol version.
        ours: u32,
        /// The scheduler's protocol version.
        theirs: u32,
    },
    /// The cluster failed a request (a task error on a worker, a lost worker, a scheduler error).
    #[error("the cluster at {address} failed: {message}")]
    Remote {
        /// The scheduler's address.
        address: String,
        /// The cluster's error message.
        message: String,
    },
    /// The scheduler refused a submitted graph (invalid, or over one of its limits).
    #[error("the scheduler at {address} rejected the graph: {message}")]
    Rejected {
        /// The scheduler's address.
        address: String,
        /// Why the scheduler refused it.
        message: String,
    },
    /// A graph that is inconsistent as a whole (missing outputs, a cycle …).
    #[error("invalid graph: {reason}")]
    InvalidGraph {
        /// What is inconsistent.
        reason: String,
    },
    /// A graph failed [`crate::graph::validate::validate`]: `layer` is the offending layer's id.
    #[error("invalid graph: layer {layer}: {reason}")]
    InvalidLayer {
        /// The offending layer's id.
        layer: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A protobuf message could not be turned into the engine's types (missing field, unknown enum
    /// value, data that does not fit its shape …); `what` says which and where.
    #[error("malformed wire message: {what}")]
    Wire {
        /// The message field and what was wrong with it.
        what: String,
    },
    /// An array persisted on a cluster (`persist_on(&client)`) was used where its kept chunks cannot
    /// be read: on the local executor, with another client, or after it was released; `layer` is
    /// the persisted layer's id.
    #[error("persisted array {layer}: {reason}")]
    Persisted {
        /// The persisted layer's id.
        layer: String,
        /// Why its chunks cannot be read here.
        reason: String,
    },
    /// The local executor's rayon thread pool could not be built; holds rayon's message.
    #[error("could not build the thread pool: {0}")]
    ThreadPool(String),
    /// A computation stopped because its [`crate::exec::CancelToken`] was cancelled or its time limit
    /// passed; `reason` says which ("cancelled", "time limit of 2s exceeded").
    #[error("{reason}")]
    Cancelled {
        /// "cancelled", or the time limit that passed.
        reason: String,
    },
    /// A plan is larger than a configured limit ([`crate::graph::limits`], or expansion): `what` names
    /// the graph or layer (with its chunk shape), `amount` and `unit` how large it is, `setting` the
    /// option that raises `limit`, and `hint` (possibly empty) how to make the plan fit.
    #[error("{what} {amount} {unit}; the limit is {limit} ({setting}){hint}")]
    LimitExceeded {
        /// The graph or layer that is too large, with its chunk shape.
        what: String,
        /// Its size, in `unit`.
        amount: u64,
        /// The unit of `amount` and `limit` ("tasks", "bytes" …).
        unit: &'static str,
        /// The configured limit, in `unit`.
        limit: u64,
        /// The option (flag or env var) that raises the limit.
        setting: String,
        /// How to make the plan fit; possibly empty.
        hint: String,
    },
    /// An input chunk of a task is not what its producing layer declares for that block (from
    /// [`crate::graph::check::check_inputs`]): `key` is the task, `input` the position among its
    /// inputs and `chunk` the key of the chunk it should be.
    #[error("task {key}: input {input} (chunk {chunk}): expected {expected}, got {got}")]
    InputMismatch {
        /// The task's chunk key.
        key: String,
        /// Position of the input among the task's inputs.
        input: usize,
        /// Key of the chunk the input should be.
        chunk: String,
        /// The dtype and shape the producing layer declares.
        expected: String,
        /// The dtype and shape that arrived.
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
