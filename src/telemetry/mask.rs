//! Masking of phone numbers and email addresses in log text.
//!
//! Logs travel further than the data (log shippers, tickets, chat), so no phone number or email
//! address is ever written to them whole: a phone keeps its country code and last four digits
//! (`+86****8000`), an email its first character and domain (`l***@example.com`). That is
//! enough to tell two customers apart while debugging, and not enough to call or mail anyone.
//!
//! [`mask_text`] finds identifiers in free text (rejection details, rule diagnostics, request
//! descriptions); the log writer applies it to every line (see `telemetry::init_logging`), so
//! masking does not depend on each call site remembering it. The dead-letter *file* is not a
//! log: it keeps the original bytes, because the publisher needs them to fix the message.

use std::borrow::Cow;

/// E.164 calling codes are prefix-free: a `+` number's country code is the one prefix of it in
/// this list (1 or 2 digits), or else its first three digits.
const SHORT_CALLING_CODES: &[&str] = &[
    "1", "7", "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45",
    "46", "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63",
    "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
];

/// Masks one phone number: `+8613800138000` → `+86****8000`; without a `+`, only the last four
/// digits are kept (`****8000`).
pub fn mask_phone(phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let last4 = &digits[digits.len().saturating_sub(4)..];
    if phone.trim_start().starts_with('+') {
        let cc = SHORT_CALLING_CODES
            .iter()
            .find(|c| digits.starts_with(**c))
            .map_or_else(|| &digits[..digits.len().min(3)], |c| &digits[..c.len()]);
        format!("+{cc}****{last4}")
    } else {
        format!("****{last4}")
    }
}

/// Masks one email address: `li.wei@example.com` → `l***@example.com`.
pub fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first = local.chars().next().map(String::from).unwrap_or_default();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

/// Masks every phone number and email address found in `text`.
pub fn mask_text(text: &str) -> Cow<'_, str> {
    let emails = mask_emails(text);
    match mask_phones(&emails) {
        Cow::Borrowed(_) => emails,
        Cow::Owned(s) => Cow::Owned(s),
    }
}

fn is_local_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-')
}

fn mask_emails(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'@', &b[i..]) {
        let at = i + off;
        let mut start = at;
        while start > 0 && is_local_char(b[start - 1]) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < b.len() && is_domain_char(b[end]) {
            end += 1;
        }
        // A trailing dot ends the sentence, not the domain.
        while end > at + 1 && b[end - 1] == b'.' {
            end -= 1;
        }
        let domain = &text[at + 1..end];
        let is_email = start < at
            && domain.contains('.')
            && !domain.starts_with('.')
            && !text[start..at].starts_with('*');
        if is_email {
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            o.push_str(&text[copied..start]);
            o.push_str(&mask_email(&text[start..end]));
            copied = end;
        }
        i = end.max(at + 1);
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

/// A run of characters that may be a phone number: digits with single separators between
/// them, optionally after a `+`.
struct Run {
    start: usize,
    end: usize,
    digits: usize,
    plus: bool,
    separated: bool,
}

fn scan_run(b: &[u8], start: usize) -> Run {
    let plus = b[start] == b'+';
    let mut i = start + usize::from(plus || b[start] == b'(');
    let mut end = i;
    let mut digits = 0;
    let mut separated = false;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() {
            digits += 1;
            i += 1;
            end = i;
        } else if matches!(c, b' ' | b'-' | b'.' | b'(' | b')') {
            // A separator belongs to the number only when a digit (or a bracketed area code)
            // follows it directly: `138 0013 8000`, `(021) 6555-1234`.
            let next = b.get(i + 1).copied();
            let joins = match c {
                b'(' => next.is_some_and(|n| n.is_ascii_digit()),
                b')' => next.is_some_and(|n| n.is_ascii_digit() || n == b' ' || n == b'-'),
                _ => next.is_some_and(|n| n.is_ascii_digit() || n == b'('),
            };
            if !joins {
                break;
            }
            separated = true;
            i += 1;
        } else {
            break;
        }
    }
    Run {
        start,
        end,
        digits,
        plus,
        separated,
    }
}

/// `2026-11-02`: a date, not a phone.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// `192.168.10.200`: an address, not a phone.
fn is_ipv4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_digit()))
}

fn mask_phones(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let starts = c.is_ascii_digit()
            || (matches!(c, b'+' | b'(') && b.get(i + 1).is_some_and(u8::is_ascii_digit));
        // A number glued to a word (`cc-00000042`, `r0001`, `v1.2`) is an id or a version.
        let glued = i > 0 && {
            let p = b[i - 1];
            p.is_ascii_alphanumeric()
                || matches!(p, b'_' | b'/' | b'.' | b'*' | b'#')
                || (p == b'-' && i > 1 && b[i - 2].is_ascii_alphanumeric())
        };
        if !starts || glued {
            i += 1;
            continue;
        }
        let run = scan_run(b, i);
        let candidate = &text[run.start..run.end];
        // A number followed by a letter is a time (`2026-11-02T09:00`), a span (`10m`) or a
        // unit; followed by `:` it is a clock time or a port.
        let followed = b
            .get(run.end)
            .is_some_and(|n| n.is_ascii_alphabetic() || *n == b':');
        // No upper bound: a number too long to be valid (a typo, an extension glued on) is
        // still mostly someone's phone number.
        let phone_like = if run.plus || run.separated {
            run.digits >= 7
        } else {
            // Bare digits: 10 or more (a mobile, a landline with its area code) rather than a
            // count or a port.
            run.digits >= 10
        };
        if phone_like && !followed && !is_date(candidate) && !is_ipv4(candidate) {
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            o.push_str(&text[copied..run.start]);
            o.push_str(&mask_phone(candidate));
            copied = run.end;
        }
        i = run.end.max(i + 1);
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_keep_country_code_and_last_four() {
        assert_eq!(mask_phone("+8613800138000"), "+86****8000");
        assert_eq!(mask_phone("+14155550123"), "+1****0123");
        assert_eq!(mask_phone("+85291234567"), "+852****4567");
        assert_eq!(mask_phone("138 0013 8000"), "****8000");
    }

    #[test]
    fn emails_keep_first_character_and_domain() {
        assert_eq!(mask_email("li.wei@example.com"), "l***@example.com");
    }

    #[test]
    fn identifiers_in_free_text_are_masked() {
        let cases = [
            (
                "ambiguous: phone +862160000000 belongs to 2 customers",
                "ambiguous: phone +86****0000 belongs to 2 customers",
            ),
            (
                "customer.phone: `138 0013 8000` is not valid",
                "customer.phone: `****8000` is not valid",
            ),
            ("call 13800138000 now", "call ****8000 now"),
            (
                "mail Li.Wei+crm@Example.com. Done",
                "mail L***@Example.com. Done",
            ),
            (
                r#"{"detail":"email li@x.cn is shared","phone":"+86-21-6555-1234"}"#,
                r#"{"detail":"email l***@x.cn is shared","phone":"+86****1234"}"#,
            ),
            ("tel (021) 6555-1234 ext", "tel ****1234 ext"),
            (
                "invalid type: integer `13800138000`, expected a string",
                "invalid type: integer `****8000`, expected a string",
            ),
            (
                "too long: +86 138 0013 8000 1234 5678",
                "too long: +86****5678",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(mask_text(text), want, "{text}");
        }
    }

    #[test]
    fn times_ids_counts_and_addresses_are_left_alone() {
        for text in [
            "2026-11-02T09:31:02+08:00 occurred_at 2026-11-02 is late by 10m",
            "event cc-00000001 from crm-00000042, rep r0001",
            "3035 lines read, 1009924 events accepted in 2.5s",
            "listening on 192.168.100.200:9464 and 0.0.0.0:9464",
            "version 0.1.0, id 4cbd103f9a2e",
            "already masked +86****8000 and l***@example.com",
        ] {
            assert_eq!(mask_text(text), text);
        }
    }

    #[test]
    fn masking_is_idempotent() {
        let once = mask_text("phone +8613800138000, email a.b@c.com").into_owned();
        assert_eq!(mask_text(&once), once);
    }
}
