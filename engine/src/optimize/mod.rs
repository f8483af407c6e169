//! Graph optimization before expansion. The pipeline is short: [`fuse_blockwise`] merges chains of
//! blockwise layers (sources, elementwise math, a partial reduction at the end) into one layer whose
//! tasks compute a whole chain per chunk; [`transpose_sources`] and [`slice_sources`] then generate
//! transposes and strided slices of input-free chains in place instead of generating them whole and
//! copying, which leaves the source with fewer readers, so
//! a second fusion can merge it with the rest; [`rematerialize`] copies cheap input-free sources into
//! consumers in a later pass (which would otherwise hold their chunks while the first pass finishes),
//! and the last fusion merges each source with its one remaining reader. Culling happens when the optimized graph is expanded
//! into chunk tasks ([`crate::graph::expand`]).

mod fuse;
mod remat;
mod slice;
mod transpose;

pub use fuse::fuse_blockwise;
pub use remat::{REMAT_MAX_NS_PER_ELEMENT, REMAT_MIN_BYTES, rematerialize, source_cost_ns};
pub use slice::slice_sources;
pub use transpose::transpose_sources;

use crate::graph::Graph;

/// Runs every optimization pass.
pub fn optimize(graph: Graph) -> Graph {
    // Slices before and after transposes, so both `x[::2].T` and `x.T[::2]` of a source are generated
    // in place.
    fuse_blockwise(rematerialize(slice_sources(transpose_sources(
        slice_sources(fuse_blockwise(graph)),
    ))))
}
