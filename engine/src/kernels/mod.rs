//! Per-chunk compute, apart from the graph code: the blockwise program evaluator, elementwise and
//! reduction kernels (with vectorized transcendental functions in `math`), and the counter-based random generator. Hot loops are written over fixed-size
//! tiles that stay in L1 so that the compiler vectorizes them; dense factorizations (`linalg`) call
//! faer per block; Fourier transforms (`fft`) call rustfft/realfft per lane; the random generator also selects
//! AES-NI, VAES (256- or 512-bit) or software AES at run time, all giving the same bits.

pub mod blockwise;
pub mod elementwise;
pub mod fft;
pub mod linalg;
pub mod math;
pub mod random;
pub mod reduce;
pub mod simd;
pub mod sort;

/// Elements per tile of a blockwise program: every live value of a tile stays in L1.
pub const TILE: usize = 1024;
