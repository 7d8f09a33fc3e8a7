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
pub fn load_or_generate(path: &Path) -> anyhow::Result<(Secret, bool)> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
    }
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let value: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(value.as_bytes())
                .and_then(|_| file.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok((Secret(value), true))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let stored = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let stored = stored.trim();
            anyhow::ensure!(
                stored.len() >= 16,
                "{} holds no usable secret; delete it to generate a new one",
                path.display()
            );
            Ok((Secret(stored.to_string()), false))
        }
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
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
}
