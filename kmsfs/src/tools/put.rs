//! Writing a whole file into a volume without a mount (tests, imports):
//! a fresh key, the header, and every block in one buffer, the last one
//! final (docs/FORMAT.md, "Writer obligations").

use crate::format::offsets::cipher_len;
use crate::keys::Volume;
use std::io::Write;
use std::path::Path;

/// Writes `data` as the content of `path` (a backing path, relative to the
/// backing directory, or absolute), replacing it. Empty data makes an
/// empty file (format 2: a header and an empty final block).
pub fn put(volume: &Volume, path: &Path, data: &[u8]) -> std::io::Result<()> {
    let full = volume.dir.join(path);
    let mut f = std::fs::File::create(&full)?;
    let v2 = volume.layout.v2().is_some();
    if data.is_empty() && !v2 {
        return Ok(());
    }
    let nf = volume
        .keys
        .new_file()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut buf = nf.header;
    if data.is_empty() {
        // Format 2: an empty file is its header and an empty final block.
        let empty = nf
            .cipher
            .seal_empty_final()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        buf.extend_from_slice(&empty);
    } else {
        let start = buf.len();
        buf.resize(start + cipher_len(data.len()), 0);
        nf.cipher
            .encrypt_blocks(0, data, &mut buf[start..], true)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
    }
    f.write_all(&buf)?;
    f.sync_all()
}
