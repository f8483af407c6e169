//! The local executor's memory limit: its default (the environment variable
//! [`MEMORY_LIMIT_ENV`], else half of the machine's physical memory), the byte sizes users write
//! ("512MiB", "4GB", "1e9"), and the fractions the executor acts at.

use crate::error::{Error, Result};

/// Environment variable holding the local executor's default memory limit ("512MiB", "8GB", a byte
/// count).
pub const MEMORY_LIMIT_ENV: &str = "TESSERA_MEMORY_LIMIT";

/// Past this fraction of its limit the executor prefers tasks that release memory, and spills the
/// least recently used chunks that no running task needs.
pub const TARGET_FRACTION: f64 = 0.6;

/// Allocations of at least this many bytes get their own pages from the system (glibc's
/// `M_MMAP_THRESHOLD`), set by [`bound_allocator`].
pub const ALLOCATOR_MMAP_THRESHOLD: usize = 128 << 10;

/// Makes freed chunk buffers go back to the system at once, so that a process's resident memory
/// follows the bytes it holds. glibc raises its mmap threshold each time a large block is freed
/// (up to 32 MiB), after which chunks come from heap arenas whose freed middles stay resident:
/// measured on an all-to-all rechunk under a 128 MiB limit, holding at most 112 MiB peaked at
/// 230–280 MiB RSS, and at 129 MiB with the threshold fixed. Fixing it at
/// [`ALLOCATOR_MMAP_THRESHOLD`] (glibc's starting value) keeps every chunk in pages of its own.
/// The free memory that the allocator kept until then goes back to the system too (`malloc_trim`).
/// Called by the worker at start and by the local executor once a job's memory is short (a job
/// that fits need not pay for pages of its own per chunk: measured, a 2000² matmul took 25 % longer
/// with the threshold fixed). It does nothing where the allocator is not glibc's, or when
/// `MALLOC_MMAP_THRESHOLD_` is set (the user's own choice stands). Idempotent.
pub fn bound_allocator() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            // SAFETY: mallopt only changes the allocator's tuning and malloc_trim only returns
            // free memory to the system; both are thread-safe in glibc.
            unsafe {
                libc::mallopt(
                    libc::M_MMAP_THRESHOLD,
                    ALLOCATOR_MMAP_THRESHOLD as libc::c_int,
                );
                libc::malloc_trim(0);
            }
        }
    });
}

/// Bytes of a size written as a number with an optional unit: `B`, decimal `kB MB GB TB` (also `K M
/// G T`), binary `KiB MiB GiB TiB`; case-insensitive, spaces allowed, a fractional number allowed.
///
/// ```
/// use tessera::exec::parse_bytes;
/// assert_eq!(parse_bytes("512MiB").unwrap(), 512 << 20);
/// assert_eq!(parse_bytes("1.5 GB").unwrap(), 1_500_000_000);
/// assert_eq!(parse_bytes("4096").unwrap(), 4096);
/// assert!(parse_bytes("lots").is_err());
/// ```
pub fn parse_bytes(text: &str) -> Result<usize> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E' || c == '_'))
        .unwrap_or(t.len());
    // "1e9" is a number; "1EiB" is not supported and fails below.
    let (num, unit) = t.split_at(split);
    let bad = |reason: &str| Error::InvalidArgument {
        op: "memory size",
        reason: format!("{text:?}: {reason} (write a byte count or a size like 512MiB or 4GB)"),
    };
    let value: f64 = num
        .replace('_', "")
        .parse()
        .map_err(|_| bad("not a number"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad("unknown unit")),
    };
    let bytes = value * scale;
    if !bytes.is_finite() || bytes < 0.0 || bytes > usize::MAX as f64 {
        return Err(bad("out of range"));
    }
    Ok(bytes as usize)
}

/// The machine's physical memory from `/proc/meminfo`, where there is one.
pub fn physical_memory() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The default limit: [`MEMORY_LIMIT_ENV`] if set (an error if it does not parse), else half of the
/// physical memory, else 4 GiB where the platform does not say.
pub fn default_memory_limit() -> Result<usize> {
    match std::env::var(MEMORY_LIMIT_ENV) {
        Ok(v) => parse_bytes(&v).map_err(|e| Error::InvalidArgument {
            op: MEMORY_LIMIT_ENV,
            reason: e.to_string(),
        }),
        Err(_) => Ok(physical_memory().map_or(4 << 30, |m| m / 2)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_the_worker_flags() {
        assert_eq!(parse_bytes("512MiB").unwrap(), 536_870_912);
        assert_eq!(parse_bytes("512 mib").unwrap(), 536_870_912);
        assert_eq!(parse_bytes("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("10kB").unwrap(), 10_000);
        assert_eq!(parse_bytes("1e6").unwrap(), 1_000_000);
        assert_eq!(parse_bytes("1_000").unwrap(), 1000);
        for bad in ["", "MiB", "-1GB", "5 parsecs", "1.2.3"] {
            let e = parse_bytes(bad).unwrap_err().to_string();
            assert!(e.contains("512MiB"), "{bad}: {e}");
        }
    }

    #[test]
    fn physical_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(physical_memory().unwrap() > 64 << 20);
        }
    }
}
