//! Writes that cannot leave half a file behind: write to a temporary file in the
//! target folder, flush it to disk, then rename it into place.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Whether an existing file at the target path may be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Refuse to replace an existing file.
    Never,
    /// Replace it atomically.
    Allow,
}

impl Overwrite {
    /// `Allow` when the user asked for it (an `--overwrite` flag), else `Never`.
    pub fn when(allowed: bool) -> Self {
        if allowed { Self::Allow } else { Self::Never }
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8], overwrite: Overwrite) -> Result<()> {
    write_atomic_with(path, overwrite, |w| w.write_all(bytes))
}

/// Writes to `path` atomically with `fill` producing the content.
pub fn write_atomic_with(
    path: &Path,
    overwrite: Overwrite,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if overwrite == Overwrite::Never && path.exists() {
        return Err(Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "file exists, not overwriting it",
            ),
        ));
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".plugen-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    fill(tmp.as_file_mut()).map_err(|e| Error::io(path, e))?;
    // tempfile creates 0600 files; give results the usual permissions of a new file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let perms = std::fs::Permissions::from_mode(0o644);
        tmp.as_file()
            .set_permissions(perms)
            .map_err(|e| Error::io(path, e))?;
    }
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    match overwrite {
        Overwrite::Never => tmp
            .persist_noclobber(path)
            .map_err(|e| Error::io(path, e.error))?,
        Overwrite::Allow => tmp.persist(path).map_err(|e| Error::io(path, e.error))?,
    };
    Ok(())
}

/// Whether `path` is a file, on disk or preloaded ([`crate::io::preloaded`]).
pub fn is_file(path: &Path) -> bool {
    path.is_file() || crate::io::preloaded::is_file(path)
}

/// Whether `path` is a folder, on disk or of preloaded files.
pub fn is_dir(path: &Path) -> bool {
    path.is_dir() || crate::io::preloaded::is_dir(path)
}

/// Reads a whole file, refusing directories and files over `max_bytes` before
/// reading them; a preloaded file ([`crate::io::preloaded`]) is read from memory.
pub fn read_limited(path: &Path, max_bytes: u64) -> Result<Vec<u8>> {
    if let Some(bytes) = crate::io::preloaded::read(path) {
        if bytes.len() as u64 > max_bytes {
            return Err(Error::format(
                path,
                format!(
                    "file is {} bytes, more than the {max_bytes} allowed here",
                    bytes.len()
                ),
            ));
        }
        return Ok(bytes.to_vec());
    }
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::format(path, "is a directory, not a file"));
    }
    if meta.len() > max_bytes {
        return Err(Error::format(
            path,
            format!(
                "file is {} bytes, more than the {max_bytes} allowed here",
                meta.len()
            ),
        ));
    }
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_overwrites_and_leaves_no_temp_files() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io(Path::new("tmp"), e))?;
        let p = dir.path().join("a.txt");
        write_atomic(&p, b"one", Overwrite::Never)?;
        assert!(write_atomic(&p, b"two", Overwrite::Never).is_err());
        assert_eq!(std::fs::read(&p).map_err(|e| Error::io(&p, e))?, b"one");
        write_atomic(&p, b"three", Overwrite::Allow)?;
        assert_eq!(std::fs::read(&p).map_err(|e| Error::io(&p, e))?, b"three");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .map_err(|e| Error::io(dir.path(), e))?
            .filter_map(|e| e.ok())
            .collect();
        assert_eq!(names.len(), 1);
        Ok(())
    }

    #[test]
    fn failed_fill_leaves_nothing() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io(Path::new("tmp"), e))?;
        let p = dir.path().join("b.txt");
        let r = write_atomic_with(&p, Overwrite::Never, |_| Err(std::io::Error::other("boom")));
        assert!(r.is_err());
        assert!(!p.exists());
        assert_eq!(
            std::fs::read_dir(dir.path())
                .map_err(|e| Error::io(dir.path(), e))?
                .count(),
            0
        );
        Ok(())
    }
}
