//! The local content-addressed store of pulled artifacts: `<data_dir>/oci/blobs/sha256/<hex>`
//! (manifests and layers, each written only after its digest was checked), `tags.json` (the
//! last digest each `registry/repository:tag` resolved to, so a run by tag works offline) and
//! `files/<hex>.<ext>` (hard links with the extension the loaders expect).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::OciError;

/// The cache under one data directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The 64 hex digits of a `sha256:<hex>` digest: the only digests the cache stores, and a file
/// name that cannot leave the cache's directory whatever a registry sent.
pub fn sha256_hex(digest: &str) -> Result<&str, OciError> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| OciError::UnsupportedDigest(digest.to_string()))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OciError + '_ {
    move |error| OciError::Io {
        path: path.to_path_buf(),
        error,
    }
}

impl Cache {
    /// The cache of `data_dir` (created on first write).
    pub fn new(data_dir: &Path) -> Self {
        Cache {
            root: data_dir.join("oci"),
        }
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with `digest` lives (whether or not it is there yet).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, OciError> {
        Ok(self.root.join("blobs/sha256").join(sha256_hex(digest)?))
    }

    /// The cached blob, if present.
    pub fn blob(&self, digest: &str) -> Result<Option<PathBuf>, OciError> {
        let p = self.blob_path(digest)?;
        Ok(p.is_file().then_some(p))
    }

    /// Stores `bytes` under `digest` after checking that they hash to it.
    pub fn put(&self, digest: &str, bytes: &[u8], reference: &str) -> Result<PathBuf, OciError> {
        let actual = sha256_digest(bytes);
        if actual != digest {
            return Err(OciError::DigestMismatch {
                reference: reference.to_string(),
                expected: digest.to_string(),
                actual,
            });
        }
        let path = self.blob_path(digest)?;
        let mut tmp = self.temp_file()?;
        tmp.write_all(bytes).map_err(io(&path))?;
        self.commit(tmp, &path)
    }

    /// A temporary file in the cache, for a download in progress (removed if dropped).
    pub fn temp_file(&self) -> Result<tempfile::NamedTempFile, OciError> {
        let dir = self.root.join("tmp");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        tempfile::NamedTempFile::new_in(&dir).map_err(io(&dir))
    }

    /// Moves a verified temporary file to `path` (atomically: readers never see half a blob).
    pub fn commit(&self, tmp: tempfile::NamedTempFile, path: &Path) -> Result<PathBuf, OciError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        tmp.persist(path).map_err(|e| OciError::Io {
            path: path.to_path_buf(),
            error: e.error,
        })?;
        Ok(path.to_path_buf())
    }

    /// The blob as a file with extension `ext` (a hard link, or a copy across file systems).
    pub fn file_with_extension(&self, digest: &str, ext: &str) -> Result<PathBuf, OciError> {
        let blob = self.blob_path(digest)?;
        let hex = sha256_hex(digest)?;
        let dir = self.root.join("files");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let file = dir.join(format!("{hex}.{ext}"));
        if !file.is_file() && std::fs::hard_link(&blob, &file).is_err() {
            std::fs::copy(&blob, &file).map_err(io(&file))?;
        }
        Ok(file)
    }

    fn tags_path(&self) -> PathBuf {
        self.root.join("tags.json")
    }

    fn tags(&self) -> BTreeMap<String, String> {
        std::fs::read(self.tags_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The digest `tag_reference` resolved to when last pulled.
    pub fn tag(&self, tag_reference: &str) -> Option<String> {
        self.tags().get(tag_reference).cloned()
    }

    /// Records what `tag_reference` resolves to now.
    pub fn set_tag(&self, tag_reference: &str, digest: &str) -> Result<(), OciError> {
        let mut tags = self.tags();
        tags.insert(tag_reference.to_string(), digest.to_string());
        let path = self.tags_path();
        let mut tmp = self.temp_file()?;
        let json = serde_json::to_vec_pretty(&tags).unwrap_or_default();
        tmp.write_all(&json).map_err(io(&path))?;
        self.commit(tmp, &path).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_is_stored_only_under_its_own_digest() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let d = sha256_digest(b"hello");
        let p = cache.put(&d, b"hello", "r").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"hello");
        assert_eq!(cache.blob(&d).unwrap(), Some(p));

        let other = sha256_digest(b"other");
        let e = cache.put(&other, b"tampered", "reg.io/a:1").unwrap_err().to_string();
        assert!(e.contains("digest mismatch") && e.contains("reg.io/a:1"), "{e}");
        assert_eq!(cache.blob(&other).unwrap(), None, "a mismatching blob is never cached");
        assert!(cache.blob("sha512:00").is_err());
    }

    #[test]
    fn tags_remember_their_last_digest() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        assert_eq!(cache.tag("reg.io/a:1"), None);
        cache.set_tag("reg.io/a:1", "sha256:aa").unwrap();
        cache.set_tag("reg.io/b:1", "sha256:bb").unwrap();
        cache.set_tag("reg.io/a:1", "sha256:cc").unwrap();
        assert_eq!(cache.tag("reg.io/a:1").as_deref(), Some("sha256:cc"));
        assert_eq!(Cache::new(dir.path()).tag("reg.io/b:1").as_deref(), Some("sha256:bb"));
    }
}
