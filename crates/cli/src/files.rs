//! Writing files the user owns: atomically (temp file in the same folder,
//! fsync, rename), keeping an existing file's mode, and through symlinks
//! (a dotfiles-managed ~/.aws/config stays a symlink).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The file a write to `path` must replace: the symlink's target if it is one.
fn real_path(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Reads a file, or "" when it does not exist yet.
pub fn read_or_empty(path: &Path) -> io::Result<String> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e),
    }
}

/// Replaces `path` with `contents` in one rename: readers see the old file
/// or the new one, never half of one. A new file gets `new_mode`.
pub fn write_atomic(path: &Path, contents: &str, new_mode: u32) -> io::Result<()> {
    let target = real_path(path);
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let mode = fs::metadata(&target)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(new_mode);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    let tmp = dir.join(format!(".{name}.rolecall-{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        file.write_all(contents.as_bytes())?;
        // The umask may have narrowed the mode at creation.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
        fs::rename(&tmp, &target)?;
        // Make the rename itself durable; not every filesystem allows it.
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_mode_follows_symlinks_and_creates_new_files_private() {
        let dir = std::env::temp_dir().join(format!("rolecall-files-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let new = dir.join("aws/config");
        write_atomic(&new, "a\n", 0o600).unwrap();
        assert_eq!(fs::metadata(&new).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read_to_string(&new).unwrap(), "a\n");

        let existing = dir.join("existing");
        fs::write(&existing, "old").unwrap();
        fs::set_permissions(&existing, fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.join("link");
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&existing, &link).unwrap();
        write_atomic(&link, "new", 0o600).unwrap();
        assert!(
            fs::symlink_metadata(&link).unwrap().file_type().is_symlink(),
            "the symlink stays a symlink"
        );
        assert_eq!(fs::read_to_string(&existing).unwrap(), "new");
        assert_eq!(fs::metadata(&existing).unwrap().permissions().mode() & 0o777, 0o640);
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
