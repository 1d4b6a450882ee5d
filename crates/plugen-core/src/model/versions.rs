//! Plugin versions in one folder: `plugin.json` is version 1 and
//! `plugin-vN.json` version N. A new version is written next to the old ones
//! under the first unused number and never replaces a file, so a user can
//! always switch back.

use std::path::{Path, PathBuf};

use crate::model::plugin::MANIFEST_FILE;

/// The version number of a plugin manifest file name, if it follows the naming.
pub fn version_of(file_name: &str) -> Option<u32> {
    if file_name == MANIFEST_FILE {
        return Some(1);
    }
    let n = file_name.strip_prefix("plugin-v")?.strip_suffix(".json")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || n.starts_with('0') {
        return None;
    }
    n.parse().ok().filter(|&v| v >= 2)
}

/// File name of version `n`.
pub fn file_name(n: u32) -> String {
    if n <= 1 {
        MANIFEST_FILE.into()
    } else {
        format!("plugin-v{n}.json")
    }
}

/// The plugin versions in `dir`, oldest first.
pub fn list(dir: &Path) -> Vec<(u32, PathBuf)> {
    let on_disk = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file());
    let preloaded = crate::io::preloaded::files_in(dir)
        .into_iter()
        .map(|p| dir.join(p.file_name().unwrap_or_default()));
    let mut found: Vec<(u32, PathBuf)> = on_disk
        .chain(preloaded)
        .filter_map(|p| Some((version_of(p.file_name()?.to_str()?)?, p)))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// The newest version in `dir`.
pub fn latest(dir: &Path) -> Option<PathBuf> {
    list(dir).pop().map(|(_, p)| p)
}

/// Where the next version in `dir` goes (one past the newest).
pub fn next_path(dir: &Path) -> PathBuf {
    let n = list(dir).last().map_or(1, |(v, _)| v + 1);
    dir.join(file_name(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_round_trip() {
        assert_eq!(version_of("plugin.json"), Some(1));
        assert_eq!(version_of("plugin-v2.json"), Some(2));
        assert_eq!(version_of("plugin-v17.json"), Some(17));
        for bad in [
            "plugin-v.json",
            "plugin-v1.json",
            "plugin-v02.json",
            "plugin-v2.js",
            "x.json",
            "plugin-v-3.json",
        ] {
            assert_eq!(version_of(bad), None, "{bad}");
        }
        for n in 1..30 {
            assert_eq!(version_of(&file_name(n)), Some(n));
        }
    }

    #[test]
    fn next_version_follows_the_newest() -> std::io::Result<()> {
        let dir = std::env::temp_dir().join(format!("plugen-versions-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        assert_eq!(next_path(&dir), dir.join("plugin.json"));
        std::fs::write(dir.join("plugin.json"), "{}")?;
        std::fs::write(dir.join("plugin-v3.json"), "{}")?;
        std::fs::write(dir.join("notes.json"), "{}")?;
        assert_eq!(latest(&dir), Some(dir.join("plugin-v3.json")));
        assert_eq!(next_path(&dir), dir.join("plugin-v4.json"));
        assert_eq!(list(&dir).len(), 2);
        std::fs::remove_dir_all(&dir)
    }
}
