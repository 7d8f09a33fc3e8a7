//! Secrets: held in a type that never prints its value, and generated into files of the data folder
//! when the standalone profile has none configured.

use std::{
    fmt,
    fs::OpenOptions,
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::Context;
use rand::RngCore;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The value, for the one place that needs it (signing or verifying).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Reads a secret from `path`, generating 32 random bytes (hex) into it with owner-only permissions
/// when it does not exist yet. Returns the secret and whether it was generated now.
///
/// The new file is written whole under a temporary name and then hard-linked into place, so two
/// processes starting at once (`serve` and `token`) agree on one secret and never read a half-written
/// file.
pub fn load_or_generate(path: &Path) -> anyhow::Result<(Secret, bool)> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
    }
    if !path.exists() {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let value: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let temp = path.with_extension(format!("tmp-{}-{:016x}", std::process::id(), rand::random::<u64>()));
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options
            .open(&temp)
            .and_then(|mut file| file.write_all(value.as_bytes()).and_then(|_| file.sync_all()))
            .and_then(|_| std::fs::hard_link(&temp, path));
        let _ = std::fs::remove_file(&temp);
        match written {
            Ok(()) => return Ok((Secret(value), true)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("cannot write {}", path.display())),
        }
    }
    let stored = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let stored = stored.trim();
    anyhow::ensure!(
        stored.len() >= 16,
        "{} holds no usable secret; delete it to generate a new one",
        path.display()
    );
    Ok((Secret(stored.to_string()), false))
}

/// Where the standalone JWT secret lives.
pub fn jwt_secret_path(data_dir: &Path) -> PathBuf {
    data_dir.join("jwt-secret")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_reads_the_same_value() {
        let dir = std::env::temp_dir().join(format!("invite-secret-{}", std::process::id()));
        let path = jwt_secret_path(&dir);
        let _ = std::fs::remove_file(&path);
        let (first, generated) = load_or_generate(&path).unwrap();
        assert!(generated);
        let (second, generated_again) = load_or_generate(&path).unwrap();
        assert!(!generated_again);
        assert_eq!(first, second);
        assert_eq!(format!("{first:?}"), "Secret([redacted])");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn processes_starting_together_agree_on_one_secret() {
        let dir = std::env::temp_dir().join(format!("invite-secret-race-{}", std::process::id()));
        let path = jwt_secret_path(&dir);
        let results: Vec<(Secret, bool)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| load_or_generate(&path).unwrap())).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|(_, generated)| *generated).count(), 1);
        assert!(results.iter().all(|(secret, _)| *secret == results[0].0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
