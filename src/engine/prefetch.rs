//! Asking the processor to start loading memory the core will read soon.
//!
//! Handling an event mostly waits for memory: the customer's record is usually cold (hundreds
//! of megabytes of state, a random customer per event). A driver that already holds the next
//! events can start those loads a step or two ahead, so that they overlap with work instead
//! of following it. A prefetch changes no result; it can only make a load faster.

/// Starts loading every cache line of `value` (its own bytes, not what it points to).
pub fn lines<T: ?Sized>(value: &T) {
    const LINE: usize = 64;
    let start = value as *const T as *const u8 as usize;
    let end = start + std::mem::size_of_val(value);
    let mut at = start & !(LINE - 1);
    while at < end {
        line(at as *const u8);
        at += LINE;
    }
}

#[cfg(target_arch = "x86_64")]
fn line(at: *const u8) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    // SAFETY: a prefetch is a hint: it never faults and reads nothing into the program, even
    // for an address that is not mapped. SSE, which it needs, is part of every x86-64 CPU.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(at as *const i8) }
}

#[cfg(not(target_arch = "x86_64"))]
fn line(_at: *const u8) {}
