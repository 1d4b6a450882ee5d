//! Files handed over in memory instead of read from disk. The web page has no
//! file system: it fetches the bundle's files from beside itself and
//! registers them here under the paths the loaders read (`models/…`). Every
//! read of plugen's loaders ([`crate::io::fsutil::read_limited`],
//! [`crate::io::fsutil::is_file`], [`crate::io::fsutil::is_dir`], the plugin
//! versions of a folder) looks here first, so preloaded files go through the
//! same format and SHA-256 checks as files on disk.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, RwLock};

static FILES: RwLock<BTreeMap<PathBuf, Arc<[u8]>>> = RwLock::new(BTreeMap::new());

/// `path` without `.` components, the key files are kept under.
fn key(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| *c != Component::CurDir)
        .collect()
}

/// Registers `bytes` as the file at `path` (replacing an earlier one).
pub fn insert(path: &Path, bytes: Vec<u8>) {
    if let Ok(mut files) = FILES.write() {
        files.insert(key(path), bytes.into());
    }
}

/// Forgets every preloaded file at or under `path`.
pub fn remove_under(path: &Path) {
    let k = key(path);
    if let Ok(mut files) = FILES.write() {
        files.retain(|p, _| !p.starts_with(&k));
    }
}

/// The preloaded file at `path`, if there is one.
pub fn read(path: &Path) -> Option<Arc<[u8]>> {
    FILES.read().ok()?.get(&key(path)).cloned()
}

/// Whether a file is preloaded at `path`.
pub fn is_file(path: &Path) -> bool {
    read(path).is_some()
}

/// Whether some preloaded file lies under `path` (a folder of them).
pub fn is_dir(path: &Path) -> bool {
    let k = key(path);
    FILES
        .read()
        .is_ok_and(|files| files.keys().any(|p| p != &k && p.starts_with(&k)))
}

/// The preloaded files directly in the folder `dir`.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let k = key(dir);
    FILES.read().map_or_else(
        |_| Vec::new(),
        |files| {
            files
                .keys()
                .filter(|p| p.parent() == Some(k.as_path()))
                .cloned()
                .collect()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_folders_and_listings_follow_the_registered_paths() {
        let base = Path::new("preloaded-unit");
        insert(&base.join("m/a.json"), b"{}".to_vec());
        insert(&base.join("./m/b.bin"), vec![1, 2, 3]);
        insert(&base.join("m/sub/c"), vec![]);
        assert_eq!(
            read(&base.join("m/b.bin")).as_deref(),
            Some(&[1u8, 2, 3][..])
        );
        assert!(is_file(&base.join("./m/a.json")) && !is_file(&base.join("m")));
        assert!(is_dir(&base.join("m")) && is_dir(&base.join("m/sub")));
        assert!(!is_dir(&base.join("m/a.json")) && !is_dir(&base.join("n")));
        let mut names = files_in(&base.join("m"));
        names.sort();
        assert_eq!(names, vec![base.join("m/a.json"), base.join("m/b.bin")]);
        remove_under(&base.join("m"));
        assert!(!is_file(&base.join("m/a.json")) && !is_dir(&base.join("m")));
    }
}
