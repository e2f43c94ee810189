//! Scratch directories for tests.
//!
//! A scratch directory is emptied when it is made and removed when its test passes: runs add
//! up on one machine (the Kafka tests alone write about 55 MB each), and the disk of a CI
//! machine is not ours to fill. A failing test keeps its directory and names it on stderr, so
//! what it wrote can be looked at.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

pub struct Scratch(PathBuf);

impl Scratch {
    /// `<temp dir>/leadguard-<name>-<process id>`, empty.
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("leadguard-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Scratch(dir)
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<OsStr> for Scratch {
    fn as_ref(&self) -> &OsStr {
        self.0.as_os_str()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} for a look at the failed test", self.0.display());
        } else {
            // Best effort: a child process may still be writing its last file.
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
