//! The stored form of blob data: encrypted objects and the export container.
//! `docs/artifact-format.md` is the normative description; keep the two in step.
//!
//! Object (one per chunk; a blob below the chunking threshold is one chunk):
//!
//! ```text
//! offset size
//!  0      8   magic b"PITOBJ01"
//!  8      1   format version = 1
//!  9      1   flags: bit 0 = payload is a zstd frame; other bits 0
//! 10      2   reserved, 0
//! 12      4   u32 LE N = ciphertext length including the 16-byte GCM tag
//! 16      8   u64 LE plaintext length
//! 24     32   BLAKE3-256 of the plaintext
//! 56     12   AES-GCM nonce (random)
//! 68      N   AES-256-GCM(key, nonce, aad = bytes 0..68) of the payload, then the tag
//! ```

use std::cell::RefCell;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, Nonce, Tag as GcmTag};
use rand::RngCore;

/// A BLAKE3-256 content hash.
pub type Hash = [u8; 32];

/// Object magic.
pub const OBJ_MAGIC: &[u8; 8] = b"PITOBJ01";
/// Export-container magic (several objects forming one blob).
pub const MAN_MAGIC: &[u8; 8] = b"PITMAN01";
/// Object header length (also the AAD).
pub const OBJ_HEADER: usize = 68;
/// Container header length.
pub const MAN_HEADER: usize = 56;
const TAG_LEN: usize = 16;
const FLAG_ZSTD: u8 = 1;
/// No object holds more plaintext than this (chunks are at most 4 MiB; small blobs below 1 MiB).
pub const OBJ_PLAIN_MAX: u64 = 64 << 20;
/// Below this size compression is not tried (a zstd frame and its tables cost more than they save
/// on tiny inputs, and the attempt costs about a microsecond).
const COMPRESS_MIN: usize = 256;

thread_local! {
    static ZSTD: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    static UNZSTD: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Why an object does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad(pub String);

fn bad(s: impl Into<String>) -> Bad {
    Bad(s.into())
}

/// BLAKE3 of `data`, multithreaded above 1 MiB.
pub fn hash(data: &[u8]) -> Hash {
    if data.len() >= 1 << 20 {
        *blake3::Hasher::new()
            .update_rayon(data)
            .finalize()
            .as_bytes()
    } else {
        *blake3::hash(data).as_bytes()
    }
}

/// Compress `plain` with zstd at `level` into the thread's scratch buffer and run `f` on the
/// result when it is smaller by at least 1/16; else run `f` on `None`.
fn with_compressed<R>(plain: &[u8], level: i32, f: impl FnOnce(Option<&[u8]>) -> R) -> R {
    if plain.len() < COMPRESS_MIN {
        return f(None);
    }
    ZSTD.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(have, _)| *have != level) {
            match zstd::bulk::Compressor::new(level) {
                Ok(c) => *slot = Some((level, c)),
                Err(_) => return f(None),
            }
        }
        let (_, compressor) = slot.as_mut().expect("compressor set above");
        SCRATCH.with(|scratch| {
            let mut out = scratch.borrow_mut();
            out.clear();
            out.reserve(zstd::zstd_safe::compress_bound(plain.len()));
            match compressor.compress_to_buffer(plain, &mut *out) {
                Ok(len) if len < plain.len() - plain.len() / 16 => f(Some(&out[..len])),
                _ => f(None),
            }
        })
    })
}

/// Encode one object: compress when it pays, encrypt, header. `h` is the plaintext's hash.
pub fn seal(cipher: &Aes256Gcm, plain: &[u8], h: &Hash, level: i32) -> Vec<u8> {
    with_compressed(plain, level, |compressed| {
        let (flags, payload) = match compressed {
            Some(c) => (FLAG_ZSTD, c),
            None => (0, plain),
        };
        let mut out = Vec::with_capacity(OBJ_HEADER + payload.len() + TAG_LEN);
        out.extend_from_slice(OBJ_MAGIC);
        out.push(1);
        out.push(flags);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&((payload.len() + TAG_LEN) as u32).to_le_bytes());
        out.extend_from_slice(&(plain.len() as u64).to_le_bytes());
        out.extend_from_slice(h);
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(payload);
        let (head, body) = out.split_at_mut(OBJ_HEADER);
        let tag = cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), head, body)
            .expect("AES-GCM encryption of a payload below 64 GiB cannot fail");
        out.extend_from_slice(&tag);
        out
    })
}

/// The parsed header of an object.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    /// Whether the payload is zstd.
    pub zstd: bool,
    /// Ciphertext length with the tag.
    pub n: usize,
    /// Plaintext length.
    pub plain_len: u64,
    /// Plaintext hash.
    pub hash: Hash,
}

/// Parse an object header at the start of `b`.
pub fn header(b: &[u8]) -> Result<Header, Bad> {
    if b.len() < OBJ_HEADER {
        return Err(bad(format!(
            "object shorter than its header ({} bytes)",
            b.len()
        )));
    }
    if &b[..8] != OBJ_MAGIC {
        return Err(bad("object magic is wrong"));
    }
    if b[8] != 1 {
        return Err(bad(format!("unknown object format version {}", b[8])));
    }
    if b[9] & !FLAG_ZSTD != 0 || b[10] != 0 || b[11] != 0 {
        return Err(bad("unknown object flags"));
    }
    let n = u32::from_le_bytes(b[12..16].try_into().expect("4 bytes")) as usize;
    let plain_len = u64::from_le_bytes(b[16..24].try_into().expect("8 bytes"));
    if n < TAG_LEN || plain_len > OBJ_PLAIN_MAX {
        return Err(bad("object lengths out of range"));
    }
    Ok(Header {
        zstd: b[9] & FLAG_ZSTD != 0,
        n,
        plain_len,
        hash: b[24..56].try_into().expect("32 bytes"),
    })
}

/// Decrypt and decompress one whole object (`obj` is exactly the object), checking its
/// authentication tag and its plaintext hash. Returns the header and the plaintext.
pub fn open(cipher: &Aes256Gcm, mut obj: Vec<u8>) -> Result<(Header, Vec<u8>), Bad> {
    let h = header(&obj)?;
    if obj.len() != OBJ_HEADER + h.n {
        return Err(bad(format!(
            "object is {} bytes, its header says {}",
            obj.len(),
            OBJ_HEADER + h.n
        )));
    }
    let tag_at = obj.len() - TAG_LEN;
    let tag = *GcmTag::from_slice(&obj[tag_at..]);
    let (head, rest) = obj.split_at_mut(OBJ_HEADER);
    let body = &mut rest[..h.n - TAG_LEN];
    let nonce = *Nonce::from_slice(&head[56..68]);
    cipher
        .decrypt_in_place_detached(&nonce, head, body, &tag)
        .map_err(|_| bad("authentication failed (the bytes were changed, or the key is wrong)"))?;
    let plain = if h.zstd {
        UNZSTD.with(|d| {
            let mut d = d.borrow_mut();
            if d.is_none() {
                *d = Some(
                    zstd::bulk::Decompressor::new()
                        .map_err(|e| bad(format!("zstd unavailable: {e}")))?,
                );
            }
            d.as_mut()
                .expect("decompressor set above")
                .decompress(body, h.plain_len as usize)
                .map_err(|e| bad(format!("zstd payload does not decode: {e}")))
        })?
    } else {
        obj.truncate(tag_at);
        obj.drain(..OBJ_HEADER);
        obj
    };
    if plain.len() as u64 != h.plain_len {
        return Err(bad("plaintext length differs from the header"));
    }
    if hash(&plain) != h.hash {
        return Err(bad("plaintext does not hash to the header's BLAKE3"));
    }
    Ok((h, plain))
}

/// Split a stored export (one object, or a container of objects) into its objects; returns the
/// blob's hash and total length as the container states them (for one object: its own).
pub fn split_export(b: &[u8]) -> Result<(Hash, u64, Vec<&[u8]>), Bad> {
    if b.len() >= 8 && &b[..8] == OBJ_MAGIC {
        let h = header(b)?;
        if b.len() != OBJ_HEADER + h.n {
            return Err(bad("stored object has trailing or missing bytes"));
        }
        return Ok((h.hash, h.plain_len, vec![b]));
    }
    if b.len() < MAN_HEADER || &b[..8] != MAN_MAGIC {
        return Err(bad("not a stored artifact blob (unknown magic)"));
    }
    let count = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes")) as usize;
    let total = u64::from_le_bytes(b[16..24].try_into().expect("8 bytes"));
    let blob: Hash = b[24..56].try_into().expect("32 bytes");
    let mut pos = MAN_HEADER;
    let mut objs = Vec::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        let h = header(&b[pos.min(b.len())..])?;
        let end = pos + OBJ_HEADER + h.n;
        if end > b.len() {
            return Err(bad("container truncated"));
        }
        objs.push(&b[pos..end]);
        pos = end;
    }
    if pos != b.len() {
        return Err(bad("container has trailing bytes"));
    }
    Ok((blob, total, objs))
}

/// Build an export container around `objs`.
pub fn container(blob: &Hash, total: u64, objs: &[Vec<u8>]) -> Vec<u8> {
    let len: usize = objs.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(MAN_HEADER + len);
    out.extend_from_slice(MAN_MAGIC);
    out.extend_from_slice(&(objs.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(blob);
    for o in objs {
        out.extend_from_slice(o);
    }
    out
}

#[cfg(test)]
mod tests {
    use aes_gcm::aead::KeyInit;

    use super::*;

    fn cipher() -> Aes256Gcm {
        Aes256Gcm::new_from_slice(&[7u8; 32]).unwrap()
    }

    #[test]
    fn seal_open_roundtrip_and_compression_flag() {
        let c = cipher();
        let text = b"hello world ".repeat(100);
        let obj = seal(&c, &text, &hash(&text), 3);
        assert_eq!(obj[9], FLAG_ZSTD);
        assert!(obj.len() < text.len());
        let (_, back) = open(&c, obj).unwrap();
        assert_eq!(back, text);
        let mut random = vec![0u8; 4096];
        rand::thread_rng().fill_bytes(&mut random);
        let obj = seal(&c, &random, &hash(&random), 3);
        assert_eq!(obj[9], 0, "incompressible data is stored raw");
        assert_eq!(open(&c, obj).unwrap().1, random);
    }

    #[test]
    fn any_flipped_byte_is_detected() {
        let c = cipher();
        let data = b"some artifact".to_vec();
        let obj = seal(&c, &data, &hash(&data), 3);
        for i in 0..obj.len() {
            let mut o = obj.clone();
            o[i] ^= 0x01;
            assert!(open(&c, o).is_err(), "flip at {i} went unnoticed");
        }
        let other = Aes256Gcm::new_from_slice(&[8u8; 32]).unwrap();
        assert!(open(&other, obj).is_err());
    }

    #[test]
    fn container_roundtrip() {
        let key = cipher();
        let first = seal(&key, b"aaaa", &hash(b"aaaa"), 1);
        let second = seal(&key, b"bbbb", &hash(b"bbbb"), 1);
        let whole = hash(b"aaaabbbb");
        let packed = container(&whole, 8, &[first.clone(), second.clone()]);
        let (h, total, objs) = split_export(&packed).unwrap();
        assert_eq!((h, total), (whole, 8));
        assert_eq!(objs, vec![&first[..], &second[..]]);
        assert!(split_export(&packed[..packed.len() - 1]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn roundtrip_any(data in proptest::collection::vec(proptest::num::u8::ANY, 0..3000)) {
            let c = cipher();
            let obj = seal(&c, &data, &hash(&data), 3);
            proptest::prop_assert_eq!(open(&c, obj).unwrap().1, data);
        }
    }
}
