//! XXH3 of a few byte strings one after the other, in one call.
//!
//! The digest is the one a streaming `Xxh3` fed the same parts gives (XXH3 defines both to
//! agree), so ids and orders derived from it never change; but the hot paths hash short keys
//! (a source and an event id, a few rep ids) for which setting up the streaming state cost more
//! than the hashing. The parts are joined in a per-thread buffer that is reused.

use std::cell::RefCell;

thread_local! {
    static JOINED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Joins short parts (most keys) on the stack, longer ones in the per-thread buffer.
fn with_joined<'p, T>(
    parts: impl IntoIterator<Item = &'p [u8]>,
    hash: impl FnOnce(&[u8]) -> T,
) -> T {
    let mut stack = [0u8; 128];
    let mut len = 0;
    let mut parts = parts.into_iter();
    while let Some(p) = parts.next() {
        if let Some(dst) = stack.get_mut(len..len + p.len()) {
            dst.copy_from_slice(p);
            len += p.len();
            continue;
        }
        return JOINED.with_borrow_mut(|buf| {
            buf.clear();
            buf.extend_from_slice(&stack[..len]);
            buf.extend_from_slice(p);
            for p in parts {
                buf.extend_from_slice(p);
            }
            hash(buf)
        });
    }
    hash(&stack[..len])
}

/// The 64-bit XXH3 of one text: what the core finds customer ids, identifiers and rep ids by
/// (`engine::keys`, [`crate::digest_map`]).
pub fn text(text: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

/// The 64-bit XXH3 of `parts` concatenated.
pub fn xxh3_64_parts<'p>(parts: impl IntoIterator<Item = &'p [u8]>) -> u64 {
    with_joined(parts, xxhash_rust::xxh3::xxh3_64)
}

/// The 128-bit XXH3 of `parts` concatenated.
pub fn xxh3_128_parts<'p>(parts: impl IntoIterator<Item = &'p [u8]>) -> u128 {
    with_joined(parts, xxhash_rust::xxh3::xxh3_128)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xxhash_rust::xxh3::Xxh3;

    fn streamed(parts: &[&[u8]]) -> Xxh3 {
        let mut h = Xxh3::new();
        for p in parts {
            h.update(p);
        }
        h
    }

    #[test]
    fn same_digest_as_the_streaming_hasher() {
        let long = vec![b'x'; 5000];
        let edge = vec![b'y'; 127];
        let cases: [&[&[u8]]; 8] = [
            &[&edge],
            &[&edge, b"z"],
            &[&edge, b"z", b"w"],
            &[],
            &[b"callcenter", &[0], b"cc-00000001"],
            &[b"r0001", &[0], b"r0420", &[0]],
            &["客户".as_bytes(), &[0], b""],
            &[
                b"leadguard.collision.detected",
                &[0],
                b"C000123",
                &[0],
                &long,
            ],
        ];
        for parts in cases {
            let parts = parts.iter().copied();
            let all: Vec<&[u8]> = parts.clone().collect();
            assert_eq!(
                xxh3_64_parts(parts.clone()),
                streamed(&all).digest(),
                "{all:?}"
            );
            assert_eq!(xxh3_128_parts(parts), streamed(&all).digest128(), "{all:?}");
        }
    }
}
