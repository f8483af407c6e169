//! Graph optimization before expansion. The pipeline is short: [`fuse_blockwise`] merges chains of
//! blockwise layers (sources, elementwise math, a partial reduction at the end) into one layer whose
//! tasks compute a whole chain per chunk; [`transpose_sources`] then generates transposes of
//! input-free chains in place instead of copying them, which leaves the source with fewer readers, so
//! a second fusion can merge it with the rest. Culling happens when the optimized graph is expanded
//! into chunk tasks ([`crate::graph::expand`]).

mod fuse;
mod transpose;

pub use fuse::fuse_blockwise;
pub use transpose::transpose_sources;

use crate::graph::Graph;

/// Runs every optimization pass.
pub fn optimize(graph: Graph) -> Graph {
    fuse_blockwise(transpose_sources(fuse_blockwise(graph)))
}
