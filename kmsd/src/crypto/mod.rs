//! Pure cryptography: AES-256-GCM sealing, the ciphertext blob codec, the
//! canonical encryption context and the root key's derived keys; and the
//! bounded cache of unwrapped key versions.

pub mod aead;
pub mod blob;
pub mod cipher_cache;
pub mod context;
pub mod material;
pub mod random;
pub mod rootkey;
pub mod secret;
