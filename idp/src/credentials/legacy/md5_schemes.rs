//! The two schemes built on MD5 that no maintained crate computes:
//! MD5-crypt (`$1$`) and phpass's portable hash (`$P$`, `$H$`). Both return
//! the encoded digest, which is what their own software compares.

use md5::{Digest as _, Md5};

use super::encoding::push64;

/// MD5-crypt (Poul-Henning Kamp's, FreeBSD and glibc `$1$`), encoded.
pub(super) fn md5_crypt_encoded(password: &[u8], salt: &[u8]) -> String {
    let alternate = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut ctx = Md5::new()
        .chain_update(password)
        .chain_update(b"$1$")
        .chain_update(salt);
    for chunk in password.chunks(16) {
        ctx.update(&alternate[..chunk.len()]);
    }
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        i >>= 1;
    }
    let mut digest: [u8; 16] = ctx.finalize().into();
    for round in 0..1000 {
        let mut ctx = Md5::new();
        if round & 1 == 1 {
            ctx.update(password);
        } else {
            ctx.update(digest);
        }
        if round % 3 != 0 {
            ctx.update(salt);
        }
        if round % 7 != 0 {
            ctx.update(password);
        }
        if round & 1 == 1 {
            ctx.update(digest);
        } else {
            ctx.update(password);
        }
        digest = ctx.finalize().into();
    }
    let mut out = String::with_capacity(22);
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        let v = u32::from(digest[a]) << 16 | u32::from(digest[b]) << 8 | u32::from(digest[c]);
        push64(&mut out, v, 4);
    }
    push64(&mut out, u32::from(digest[11]), 2);
    out
}

/// phpass's portable hash: MD5 of salt and password, then 2^log2 times MD5
/// of the digest and password; encoded three bytes at a time, low first.
pub(super) fn phpass_encoded(password: &[u8], salt: &[u8], log2: u32) -> String {
    let mut digest: [u8; 16] = Md5::new()
        .chain_update(salt)
        .chain_update(password)
        .finalize()
        .into();
    for _ in 0..(1u64 << log2) {
        digest = Md5::new()
            .chain_update(digest)
            .chain_update(password)
            .finalize()
            .into();
    }
    let mut out = String::with_capacity(22);
    for chunk in digest.chunks(3) {
        let v = chunk
            .iter()
            .enumerate()
            .fold(0u32, |v, (i, b)| v | u32::from(*b) << (8 * i));
        push64(&mut out, v, chunk.len() + 1);
    }
    out
}
