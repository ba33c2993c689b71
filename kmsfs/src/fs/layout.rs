//! What a mount's backing directory looks like: format 1 (plaintext names,
//! no headers on empty files, `user.*` values under one volume key) or
//! format 2 (docs/FORMAT.md "Version 2"). The filesystem asks this module,
//! not the config, every question whose answer differs between the two.

use super::xattr::XattrCipher;
use crate::format::offsets::{
    apparent_size, cipher_size, cipher_size_v2, plain_size, plain_size_v2,
};
use crate::format::symlink::target_len;
use crate::format::xattr::XattrCipherV2;
use crate::format::{DataKey, DirId, FormatError, NameCipher, SymlinkCipher, VolumeId};

/// The format's size rules, cheap to copy into every content call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sizes {
    /// Empty files are 0 bytes.
    V1,
    /// Every file has a header and a final block (empty: 540 bytes).
    V2,
}

impl Sizes {
    pub fn cipher_size(self, plain: u64) -> u64 {
        match self {
            Sizes::V1 => cipher_size(plain),
            Sizes::V2 => cipher_size_v2(plain),
        }
    }

    pub fn plain_size(self, cipher: u64) -> Result<u64, FormatError> {
        match self {
            Sizes::V1 => plain_size(cipher),
            Sizes::V2 => plain_size_v2(cipher),
        }
    }

    /// The size `stat` shows of a regular file: its plaintext size, or a
    /// best effort for a damaged one (reads of it fail).
    pub fn apparent_size(self, cipher: u64) -> u64 {
        match self.plain_size(cipher) {
            Ok(p) => p,
            Err(_) => apparent_size(cipher),
        }
    }

    /// The size `lstat` shows of a symlink whose backing target is
    /// `stored` bytes long.
    pub fn symlink_size(self, stored: u64) -> u64 {
        match self {
            Sizes::V1 => stored,
            Sizes::V2 => target_len(stored).unwrap_or(0),
        }
    }
}

/// Format 2's ciphers, from the volume's name key.
pub struct V2 {
    pub volume_id: VolumeId,
    /// `None` with `--plaintext-names`.
    pub names: Option<NameCipher>,
    pub symlinks: SymlinkCipher,
    /// Values of directories' and symlinks' xattrs.
    pub node_xattr: XattrCipherV2,
}

impl V2 {
    /// The root's directory id: the volume id.
    pub fn root_id(&self) -> DirId {
        DirId::root(&self.volume_id)
    }
}

/// A mount's format.
pub enum Layout {
    V1 { xattr: XattrCipher },
    V2(V2),
}

impl Layout {
    /// Format 1, from the config data key.
    pub fn format1(config_key: &DataKey) -> Layout {
        Layout::V1 {
            xattr: XattrCipher::new(config_key),
        }
    }

    /// Format 2, from the name key.
    pub fn format2(volume_id: VolumeId, name_key: &DataKey, plaintext_names: bool) -> Layout {
        Layout::V2(V2 {
            volume_id,
            names: (!plaintext_names).then(|| NameCipher::new(name_key)),
            symlinks: SymlinkCipher::new(name_key),
            node_xattr: XattrCipherV2::for_nodes(name_key),
        })
    }

    /// The layout of an opened volume.
    pub fn of(
        config: &crate::format::VolumeConfig,
        keys: &crate::keys::VolumeKeys,
    ) -> Result<Layout, String> {
        match (&config.names, &keys.name_key) {
            (None, _) => Ok(Layout::format1(&keys.config_key)),
            (Some(n), Some(k)) => Ok(Layout::format2(config.volume_id, k, n.plaintext_names)),
            (Some(_), None) => Err("the volume's name key was not unwrapped".into()),
        }
    }

    pub fn sizes(&self) -> Sizes {
        match self {
            Layout::V1 { .. } => Sizes::V1,
            Layout::V2(_) => Sizes::V2,
        }
    }

    pub fn v2(&self) -> Option<&V2> {
        match self {
            Layout::V2(v) => Some(v),
            Layout::V1 { .. } => None,
        }
    }

    /// Whether names are stored encrypted.
    pub fn encrypted_names(&self) -> bool {
        matches!(self, Layout::V2(V2 { names: Some(_), .. }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_format() {
        assert_eq!(Sizes::V1.cipher_size(0), 0);
        assert_eq!(Sizes::V2.cipher_size(0), 540);
        assert_eq!(Sizes::V2.plain_size(540).unwrap(), 0);
        assert!(Sizes::V2.plain_size(0).is_err());
        assert!(Sizes::V2.plain_size(512).is_err());
        assert_eq!(Sizes::V1.plain_size(0).unwrap(), 0);
        assert_eq!(Sizes::V2.apparent_size(0), 0);
        for p in [1u64, 4095, 4096, 4097, 100_000] {
            assert_eq!(Sizes::V1.cipher_size(p), Sizes::V2.cipher_size(p));
            assert_eq!(Sizes::V2.plain_size(Sizes::V2.cipher_size(p)).unwrap(), p);
        }
        // A 3039-byte target is stored as 4095 characters.
        assert_eq!(Sizes::V2.symlink_size(4095), 3039);
        assert_eq!(Sizes::V1.symlink_size(7), 7);
    }
}
