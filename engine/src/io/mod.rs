//! Reading and writing arrays in files and stores.

pub mod npy;
pub mod zarr;
#[cfg(feature = "s3")]
pub mod zarr_s3;
