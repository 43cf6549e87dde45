//! Writing files the user owns: atomically (temp file in the same folder,
//! fsync, rename), keeping an existing file's mode, through symlinks (a
//! dotfiles-managed ~/.aws/config stays a symlink), and under an advisory
//! lock on the folder, so that two rolecall runs never interleave their
//! read-modify-write cycles.
//!
//! The lock, the reads and the writes run on tokio's blocking threads: a
//! lock held by another run, or a slow disk, never stalls the runtime's
//! one thread (the calls in flight, the second Ctrl-C). Only the edit, a
//! pure function of the text, runs on the runtime.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file a write to `path` must replace: the symlink's target if it is
/// one. A symlink whose target does not exist is an error: replacing the
/// link by a file would silently detach the user's dotfiles.
fn real_path(path: &Path) -> io::Result<PathBuf> {
    match fs::canonicalize(path) {
        Ok(p) => Ok(p),
        Err(_) if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) => {
            let to = fs::read_link(path).map_or_else(|_| "?".to_owned(), |t| t.display().to_string());
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} is a symlink to {to}, which does not exist; create the target or remove the link (rolecall does not replace a link by a file)",
                    path.display()
                ),
            ))
        }
        Err(_) => Ok(path.to_path_buf()),
    }
}

/// Reads a file, or "" when it does not exist yet.
pub(crate) fn read_or_empty(path: &Path) -> io::Result<String> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e),
    }
}

/// `read_or_empty` on a blocking thread.
pub(crate) async fn read(path: &Path) -> io::Result<String> {
    let path = path.to_owned();
    blocking(move || read_or_empty(&path)).await
}

/// Runs blocking file work on tokio's blocking threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(io::Error::other)?
}

/// Replaces `path` with `contents` in one rename: readers see the old file
/// or the new one, never half of one. A new file gets `new_mode`.
pub(crate) async fn write_atomic(path: &Path, contents: &str, new_mode: u32) -> io::Result<()> {
    update(path, new_mode, |_| Ok::<_, io::Error>(Some(contents.to_owned())))
        .await
        .map(|_| ())
}

/// Read-modify-write of `path` under the folder's advisory lock: `edit`
/// gets the current text ("" when there is no file) and returns the new
/// text, or `None` to leave the file alone. If the file changes between
/// the read and the rename (an editor, `aws configure`, which take no
/// lock), the edit is made again on the new text, so that nobody's change
/// is lost. Returns what `edit` returned last.
pub(crate) async fn update<E>(
    path: &Path,
    new_mode: u32,
    mut edit: impl FnMut(&str) -> Result<Option<String>, E>,
) -> Result<Option<String>, E>
where
    E: From<io::Error>,
{
    let owned = path.to_owned();
    let locked = Arc::new(blocking(move || Locked::take(&owned, new_mode)).await?);
    for _ in 0..5 {
        let before = {
            let locked = Arc::clone(&locked);
            blocking(move || read_or_empty(&locked.target)).await?
        };
        let Some(contents) = edit(&before)? else {
            return Ok(None);
        };
        let replaced = {
            let (locked, contents) = (Arc::clone(&locked), contents.clone());
            blocking(move || locked.replace(&before, &contents)).await?
        };
        if replaced {
            return Ok(Some(contents));
        }
    }
    Err(io::Error::other(format!(
        "{} kept changing while rolecall wrote it; nothing was written, run again",
        path.display()
    ))
    .into())
}

/// A file to replace, with its folder's lock held (released on drop).
struct Locked {
    target: PathBuf,
    dir: PathBuf,
    name: String,
    tmp: PathBuf,
    new_mode: u32,
    _lock: File,
}

impl Locked {
    /// Waits for the folder's lock (creating the folder if needed) and
    /// removes what crashed runs left there.
    fn take(path: &Path, new_mode: u32) -> io::Result<Locked> {
        let target = real_path(path)?;
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // A folder made for a private file (the AWS config) is private too.
        let dir_mode = if new_mode & 0o077 == 0 { 0o700 } else { 0o755 };
        DirBuilder::new().recursive(true).mode(dir_mode).create(&dir)?;
        let lock = File::open(&dir)?;
        lock.lock()?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".to_owned());
        remove_stale_temps(&dir, &name);
        let tmp = dir.join(format!(".{name}.rolecall-{}.tmp", std::process::id()));
        Ok(Locked {
            target,
            dir,
            name,
            tmp,
            new_mode,
            _lock: lock,
        })
    }

    /// Writes `contents` to the temp file and renames it over the target,
    /// unless the target no longer reads `before` (false then, and nothing
    /// is changed).
    fn replace(&self, before: &str, contents: &str) -> io::Result<bool> {
        let mode = fs::metadata(&self.target)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(self.new_mode);
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&self.tmp)?;
            file.write_all(contents.as_bytes())?;
            // The umask may have narrowed the mode at creation.
            file.set_permissions(fs::Permissions::from_mode(mode))?;
            file.sync_all()?;
            failpoint(&self.name);
            if read_or_empty(&self.target)? != before {
                return Ok(false);
            }
            fs::rename(&self.tmp, &self.target)?;
            // Make the rename itself durable; not every filesystem allows it.
            if let Ok(d) = File::open(&self.dir) {
                let _ = d.sync_all();
            }
            Ok::<_, io::Error>(true)
        })();
        if !matches!(result, Ok(true)) {
            let _ = fs::remove_file(&self.tmp);
        }
        result
    }
}

/// Temp files of a run that crashed before its rename. Every writer holds
/// the folder's lock while its temp file exists, so under the lock any
/// temp file of ours is stale.
fn remove_stale_temps(dir: &Path, name: &str) {
    let prefix = format!(".{name}.rolecall-");
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        if file.starts_with(&prefix) && file.ends_with(".tmp") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// For the crash tests: `ROLECALL_FAILPOINT=write:<file name>` aborts the
/// process after the temp file of that file is written, before the rename,
/// as a kill -9 at the worst moment would.
fn failpoint(name: &str) {
    if let Ok(point) = std::env::var("ROLECALL_FAILPOINT")
        && point.strip_prefix("write:") == Some(name)
    {
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The async writers on a runtime like rolecall's (one thread).
    fn run<T>(work: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(work)
    }

    #[test]
    fn waiting_for_the_lock_does_not_stall_the_runtime() {
        let dir = scratch("held");
        let file = dir.join("registry.json");
        // Another run holds the folder's lock for 300 ms.
        let holder = File::open(&dir).unwrap();
        holder.lock().unwrap();
        let other_run = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(holder);
        });
        let ticks = run(async {
            let write = write_atomic(&file, "x", 0o644);
            tokio::pin!(write);
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(10));
            let mut ticks = 0;
            loop {
                tokio::select! {
                    written = &mut write => break written.map(|()| ticks),
                    _ = tick.tick() => ticks += 1,
                }
            }
        })
        .unwrap();
        other_run.join().unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), "x");
        // Blocking the runtime's one thread would leave a tick or two.
        assert!(
            ticks >= 10,
            "the runtime ran {ticks} ticks while the write waited 300 ms"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rolecall-files-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn keeps_mode_follows_symlinks_and_creates_new_files_private() {
        let dir = scratch("modes");
        let new = dir.join("aws/config");
        run(write_atomic(&new, "a\n", 0o600)).unwrap();
        assert_eq!(fs::metadata(&new).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(dir.join("aws")).unwrap().permissions().mode() & 0o777,
            0o700,
            "a folder made for the config is private"
        );
        assert_eq!(fs::read_to_string(&new).unwrap(), "a\n");

        let existing = dir.join("existing");
        fs::write(&existing, "old").unwrap();
        fs::set_permissions(&existing, fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&existing, &link).unwrap();
        run(write_atomic(&link, "new", 0o600)).unwrap();
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

    #[test]
    fn a_dangling_symlink_is_an_error_and_stays_a_link() {
        let dir = scratch("dangling");
        let link = dir.join("config");
        std::os::unix::fs::symlink(dir.join("dotfiles/aws-config"), &link).unwrap();
        let err = run(write_atomic(&link, "x", 0o600)).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert!(!dir.join("dotfiles").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_crashed_runs_temp_file_does_not_block_the_next_write() {
        let dir = scratch("stale");
        let file = dir.join("config");
        // A crashed run of a process with our pid (pids are reused) and one
        // of another pid.
        fs::write(dir.join(format!(".config.rolecall-{}.tmp", std::process::id())), "half").unwrap();
        fs::write(dir.join(".config.rolecall-1.tmp"), "half").unwrap();
        run(write_atomic(&file, "whole\n", 0o600)).unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), "whole\n");
        let names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["config"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_edit_made_meanwhile_is_not_lost() {
        let dir = scratch("meanwhile");
        let file = dir.join("config");
        fs::write(&file, "[profile a]\n").unwrap();
        let mut seen = Vec::new();
        run(update(&file, 0o600, |text| {
            seen.push(text.to_owned());
            if seen.len() == 1 {
                // `aws configure` writes in place while we edit.
                fs::write(&file, "[profile a]\n[profile b]\n").unwrap();
            }
            Ok::<_, io::Error>(Some(format!("{text}# block\n")))
        }))
        .unwrap();
        assert_eq!(seen.len(), 2, "the edit was made again on the new text");
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "[profile a]\n[profile b]\n# block\n"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_writers_never_lose_an_update() {
        let dir = scratch("concurrent");
        let file = dir.join("counter");
        fs::write(&file, "0").unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let file = file.clone();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        run(update(&file, 0o600, |text| {
                            let n: u32 = text.parse().unwrap();
                            Ok::<_, io::Error>(Some((n + 1).to_string()))
                        }))
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(fs::read_to_string(&file).unwrap(), "200");
        fs::remove_dir_all(&dir).unwrap();
    }
}
