//! The array API of Zarr stores: [`from_zarr`] / [`from_zarr_with`] open a store's array lazily, and
//! [`Array::to_zarr`] / [`Array::to_zarr_on`] compute an array into a store (new, overwritten, or a
//! region of an existing one), each chunk written by the task that holds it.

use crate::array::{Array, Executor, compute_many_on, default_executor};
use crate::error::{Error, Result};
use crate::io::zarr::{ZarrArrayRef, ZarrOptions, ZarrReadOptions, ZarrStore, zarr_err};
use crate::meta::Chunks;
use crate::ops::zarr::{misaligned, store_aligned};
use crate::ops::{Op, ZarrSource, ZarrWrite};

/// A local directory as an absolute path, so that workers started elsewhere open the same one; URLs
/// as given.
fn absolute(store: ZarrStore) -> ZarrStore {
    if store.is_s3() {
        return store;
    }
    match std::path::absolute(store.as_str()) {
        Ok(p) => ZarrStore::from(p),
        Err(_) => store,
    }
}

/// Opens the Zarr array at the root of a store (a directory, or an `s3://bucket/prefix` URL with the
/// `s3` feature) as a lazy array chunked like the store: each chunk task reads one store chunk (one
/// shard, when sharded). Zarr v3 and v2 are read; missing chunks read as the fill value. Its dtype
/// must be one tessera has (float64, float32, int64, bool): another is an error naming it.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("x.zarr");
/// let x = tessera::arange(0i64, 12, 1, [5])?;
/// x.to_zarr(&path, &tessera::ZarrOptions::new())?;
/// let y = tessera::from_zarr(&path)?;
/// assert_eq!(y.chunks().axis(0), &[5, 5, 2]);
/// assert_eq!(y.sum()?.compute_scalar::<i64>()?, 66);
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn from_zarr(store: impl Into<ZarrStore>) -> Result<Array> {
    from_zarr_with(store, &ZarrReadOptions::new())
}

/// [`from_zarr`] with options: the array's node path inside the store, and how many store chunks
/// along each axis make one chunk (task) of the array.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("x.zarr");
/// use tessera::{ZarrOptions, ZarrReadOptions};
/// let x = tessera::ones::<f64>(&[8, 8], [2, 2])?;
/// x.to_zarr(&path, &ZarrOptions::new().path("group/ones"))?;
/// let y = tessera::from_zarr_with(&path, &ZarrReadOptions::new().path("group/ones").group([2, 4]))?;
/// assert_eq!(y.numblocks(), vec![2, 1]);
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn from_zarr_with(store: impl Into<ZarrStore>, options: &ZarrReadOptions) -> Result<Array> {
    let store = absolute(store.into());
    let array = ZarrArrayRef::open(&store, &options.path)?;
    let group = options
        .group
        .clone()
        .unwrap_or_else(|| vec![1; array.shape.len()]);
    Array::from_op(Op::ZarrSource(ZarrSource { array, group }), vec![], None)
}

impl Array {
    /// Computes the array into a Zarr v3 store on the default local executor and returns when every
    /// chunk is written (dask's `to_zarr(compute=True)`).
    ///
    /// Without [`ZarrOptions::region`] the array at the options' path is created, replacing whatever
    /// was there, chunked like this array's first chunk unless [`ZarrOptions::chunks`] says otherwise,
    /// sharded with [`ZarrOptions::shards`], compressed with [`ZarrOptions::codec`]. With a region,
    /// the array is written into the existing store array at that offset (same dtype; the store's
    /// chunking and codec).
    ///
    /// Every chunk is written by the task that computes it, in parallel. Where this array's chunk
    /// boundaries are not store chunk (or shard) boundaries, it is first rechunked to the store's
    /// chunks along those axes, so that no store chunk is written by two tasks.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("r.zarr");
    /// use tessera::{ZarrCodec, ZarrOptions};
    /// let x = tessera::default_rng(1).random(&[100, 60], [25, 30])?;
    /// x.to_zarr(&path, &ZarrOptions::new().chunks([50, 30]).codec(ZarrCodec::Gzip { level: 1 }))?;
    /// let back = tessera::from_zarr(&path)?.compute::<f64>()?;
    /// assert_eq!(back, x.compute::<f64>()?);
    /// // Overwrite one corner with zeros.
    /// tessera::zeros::<f64>(&[10, 10], [10, 10])?.to_zarr(&path, &ZarrOptions::new().region([90, 50]))?;
    /// let corner = tessera::from_zarr(&path)?.compute::<f64>()?;
    /// assert_eq!(corner[[95, 55]], 0.0);
    /// assert_eq!(corner[[0, 0]], back[[0, 0]]);
    /// # Ok::<(), tessera::Error>(())
    /// ```
    pub fn to_zarr(&self, store: impl Into<ZarrStore>, options: &ZarrOptions) -> Result<()> {
        self.usable()?;
        self.to_zarr_on(store, options, default_executor())
    }

    /// [`Array::to_zarr`] on a given executor; on a cluster every worker writes the store itself
    /// (a directory all workers see, or an object store).
    pub fn to_zarr_on(
        &self,
        store: impl Into<ZarrStore>,
        options: &ZarrOptions,
        executor: &dyn Executor,
    ) -> Result<()> {
        self.usable()?;
        let store = absolute(store.into());
        let (array, region) = match &options.region {
            Some(region) => {
                let array = ZarrArrayRef::open(&store, &options.path)?;
                if array.dtype != self.dtype() {
                    return Err(zarr_err(
                        &store,
                        format!(
                            "array {}: its data type is {}, the array written is {}",
                            options.path,
                            array.dtype,
                            self.dtype()
                        ),
                    ));
                }
                (array, region.clone())
            }
            None => {
                let chunks = match &options.chunks {
                    Some(c) => c.clone(),
                    None => first_chunk(self.chunks()),
                };
                let array = ZarrArrayRef::create(
                    &store,
                    &options.path,
                    self.dtype(),
                    self.shape(),
                    &chunks,
                    options,
                )?;
                (array, vec![0; self.ndim()])
            }
        };
        if region.len() != self.ndim() {
            return Err(zarr_err(
                &store,
                format!(
                    "array {}: region offset {region:?} has {} entries for a {}-d array",
                    options.path,
                    region.len(),
                    self.ndim()
                ),
            ));
        }
        let input = self.aligned_to(&array.grid, &region)?;
        let write = Array::from_op(
            Op::ZarrWrite(ZarrWrite { array, region }),
            vec![input],
            None,
        )?;
        let counts = compute_many_on(&[&write], executor)?;
        let written: i64 = counts[0].clone().into_typed::<i64>()?.iter().sum();
        if written as usize != self.size() {
            return Err(Error::InvalidGraph {
                reason: format!(
                    "to_zarr wrote {written} elements of {} to {store}",
                    self.size()
                ),
            });
        }
        Ok(())
    }

    /// This array rechunked, along the axes where its chunk boundaries would fall inside store chunks,
    /// to the store's chunks as they lie over `[region, region + shape)`.
    fn aligned_to(&self, grid: &[Vec<usize>], region: &[usize]) -> Result<Array> {
        if region.len() != grid.len() || misaligned(self.chunks(), region, grid).is_none() {
            // A rank mismatch is for the write rule to report.
            return Ok(self.clone());
        }
        let sizes: Vec<Vec<usize>> = (0..self.ndim())
            .map(|axis| {
                let one = Chunks::from_sizes(vec![self.chunks().axis(axis).to_vec()]);
                if misaligned(&one, &region[axis..=axis], &grid[axis..=axis]).is_none() {
                    self.chunks().axis(axis).to_vec()
                } else {
                    store_aligned(region[axis], self.shape()[axis], &grid[axis])
                }
            })
            .collect();
        self.rechunk(sizes)
    }
}

/// The shape of an array's first chunk, the default store chunk shape (at least 1 along each axis).
fn first_chunk(chunks: &Chunks) -> Vec<usize> {
    (0..chunks.ndim())
        .map(|a| chunks.axis(a).first().copied().unwrap_or(1).max(1))
        .collect()
}
