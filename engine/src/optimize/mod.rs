//! Graph optimization before expansion. The pipeline is short: [`fuse_blockwise`] merges chains of
//! blockwise layers (sources, elementwise math, a partial reduction at the end) into one layer whose
//! tasks compute a whole chain per chunk; culling happens when the optimized graph is expanded into
//! chunk tasks ([`crate::graph::expand`]).

mod fuse;

pub use fuse::fuse_blockwise;

use crate::graph::Graph;

/// Runs every optimization pass.
pub fn optimize(graph: Graph) -> Graph {
    fuse_blockwise(graph)
}
