//! Canonical keys for customer identifiers: phone numbers, email addresses
//! and company names.
//!
//! The same customer reaches leadguard under many spellings: `138-0013-8000`,
//! `+86 138 0013 8000`, `００８６１３８００１３８０００`, `Li.Wei@X.com`,
//! `上海星辰科技有限公司` / `上海星辰科技`. Collision detection compares keys, so each
//! identifier is reduced to one canonical key first. Two kinds of mistake are
//! possible and both hurt: a *missed* match lets two reps work the same
//! customer unnoticed; a *false* match accuses a rep of poaching. Every rule
//! below therefore removes only what is formatting or a well-known habit, and
//! rejects (with a reason an integrator can act on) what it cannot read,
//! rather than guessing.
//!
//! All functions are pure, allocation-light (one output `String` per call,
//! plus one copy of the input only when it contains full-width characters,
//! see [`fold_width`]), use no regexes, and never panic on any input.
//!
//! # Width folding ([`fold_width`])
//! Chinese input methods type full-width forms of ASCII (`１３８`, `＋`, `＠`,
//! `（`, `Ｉｎｃ．`) and the ideographic space U+3000. To a reader they are the
//! same characters, so every function folds them to ASCII first.
//!
//! # Phone numbers ([`normalize_phone`]) → E.164 (`+8613800138000`)
//! - **Extensions are cut first** (`ext`, `ext.`, `x`, `#`, `,`, `;`, `转`,
//!   `分机`): an extension reaches a person behind the same switchboard, so the
//!   customer is the main number; left in place, its digits would silently be
//!   glued onto the number. The Chinese business-card habit
//!   `010-12345678-801` (area code, subscriber number, extension, all joined
//!   by dashes) is recognised for the same reason.
//! - **Spaces, dashes, dots, slashes and brackets are ignored**: they are
//!   layout only.
//! - **`(0)` after the country code is dropped** (`+44 (0)20 7946 0958`):
//!   a European habit showing the trunk prefix that is dialled only from inside
//!   the country. For the same reason a trunk prefix written right after the
//!   country code of a region we know (`+86 021 …`, a frequent mistake) is
//!   dropped: no number of those regions starts with its trunk prefix.
//! - **`+`, and the international dialling (IDD) prefixes of the default
//!   region, mean international** (`0086 …` typed in China, `011 1 …` typed in
//!   the US). For China a bare `86` + 11-digit mobile (13 digits, `861[3-9]…`)
//!   is also international: CRM exports often lose the `+`, and no Chinese
//!   national number has 13 digits, so the reading is unambiguous.
//! - **National numbers lose the default region's trunk prefix** and gain its
//!   country code: `021 6555 1234` dialled in China is `+862165551234`.
//! - **Validation** keeps garbage out of the key space: a key like `+86123`
//!   would match every other record with the same typo. E.164 allows 8–15
//!   digits here; Chinese numbers are checked against the national plan
//!   (mobiles `1[3-9]` + 9 digits, landlines 9–11 digits after the trunk
//!   prefix, `400`/`800` service numbers 10 digits), North American numbers
//!   must have 10 digits after the `1`.
//! - **Errors never repeat the number** (only digit counts and the offending
//!   character): phone numbers are personal data and error texts end up in
//!   logs.
//!
//! # Email addresses ([`normalize_email`])
//! - The whole address is lower-cased: domains are case-insensitive by
//!   standard and, in practice, so are local parts at every major provider.
//! - `mailto:` and `Display Name <addr>` wrappers are removed because
//!   addresses are often copied from mail clients and web pages.
//! - Optional removal of `+tags` (`li.wei+crm@x.com` → `li.wei@x.com`): the
//!   tag routes mail into a folder of the same mailbox, i.e. the same person.
//! - Structural checks (one `@`, dotted domain without empty labels, no
//!   spaces, at most 254 bytes) reject text that is not an address, so it
//!   cannot become a key that matches other junk.
//!
//! # Company names ([`normalize_company`])
//! - Letters are lower-cased; everything that is not a letter or digit
//!   (spaces, punctuation, brackets) is dropped at the end, because reps type
//!   `上海 星辰科技` and `上海星辰科技` interchangeably.
//! - Legal-form suffixes (`股份有限公司`, `有限公司`, `Co., Ltd.`, `Inc.`, …) are
//!   stripped, repeatedly, from the end: reps rarely type them consistently,
//!   and within one market the name without its legal form identifies the
//!   customer. `集团` (group) is *not* a legal form and is kept. A Latin
//!   suffix is only stripped at a word boundary, so `Zinc` stays `zinc`.
//!   `公司` is not stripped from `分公司` (branch office): a branch is a
//!   different customer from its parent and `…分` would be a meaningless key.
//! - Bracketed parts are dropped when they hold only a legal form
//!   (`上海星辰科技（有限公司）`) or the country marker `中国` / `china`; other
//!   bracket contents are kept (only the brackets go). Region markers such as
//!   `华为技术（深圳）有限公司` name a separately registered subsidiary with its
//!   own buyers and contracts, so it must not collide with
//!   `华为技术有限公司`. `（中国）` is the exception: it is how foreign groups
//!   name their one mainland entity (`耐克体育（中国）有限公司`), and for a
//!   China-based sales team that entity *is* the customer, with or without
//!   the marker.

use std::borrow::Cow;
use std::fmt;

// ---------------------------------------------------------------------------
// Width folding
// ---------------------------------------------------------------------------

/// Offset between a full-width ASCII variant (U+FF01..=U+FF5E) and its ASCII
/// counterpart (U+0021..=U+007E).
const FULL_WIDTH_OFFSET: u32 = 0xFEE0;

/// Folds one character: full-width ASCII variants to ASCII, U+3000 to `' '`.
fn fold_char(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - FULL_WIDTH_OFFSET).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

fn needs_fold(c: char) -> bool {
    matches!(c, '\u{FF01}'..='\u{FF5E}' | '\u{3000}')
}

/// Converts full-width ASCII variants (U+FF01..=U+FF5E, e.g. `１`, `＋`, `＠`,
/// `（`, `Ａ`) to their half-width ASCII forms and the ideographic space
/// U+3000 to `' '`. Every other character is left alone.
///
/// Borrows the input when there is nothing to fold (the common case), so it
/// allocates only for input that actually contains full-width characters.
/// Used by [`normalize_phone`], [`normalize_email`] and
/// [`normalize_company`]; public for reuse.
///
/// ```text
/// "＋８６　１３８"  ->  "+86 138"
/// ```
#[must_use]
pub fn fold_width(raw: &str) -> Cow<'_, str> {
    if raw.is_ascii() {
        return Cow::Borrowed(raw);
    }
    let Some(first) = raw.find(needs_fold) else {
        return Cow::Borrowed(raw);
    };
    let (head, tail) = raw.split_at(first);
    let mut out = String::with_capacity(raw.len());
    out.push_str(head);
    out.extend(tail.chars().map(fold_char));
    Cow::Owned(out)
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why an identifier could not be normalized.
///
/// The `String` in each variant is a complete, user-facing sentence (it is
/// what [`Display`](fmt::Display) prints). It never repeats the rejected
/// value, because identifiers are personal data and errors end up in logs.
/// Retrying the same input never helps: the record must be corrected at its
/// source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NormalizeError {
    /// The input was empty or contained only whitespace.
    Empty,
    /// The input is not a phone number we can read; the text says why.
    InvalidPhone(String),
    /// The input is not an email address; the text says why.
    InvalidEmail(String),
    /// The input does not contain a usable company name; the text says why.
    InvalidCompany(String),
}

impl fmt::Display for NormalizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NormalizeError::Empty => f.write_str("the value is empty or contains only spaces"),
            NormalizeError::InvalidPhone(why)
            | NormalizeError::InvalidEmail(why)
            | NormalizeError::InvalidCompany(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for NormalizeError {}

fn phone_err(why: impl Into<String>) -> NormalizeError {
    NormalizeError::InvalidPhone(why.into())
}

fn email_err(why: impl Into<String>) -> NormalizeError {
    NormalizeError::InvalidEmail(why.into())
}

fn company_err(why: impl Into<String>) -> NormalizeError {
    NormalizeError::InvalidCompany(why.into())
}

// ---------------------------------------------------------------------------
// Regions and country calling codes
// ---------------------------------------------------------------------------

/// A country whose national phone-number conventions we know.
///
/// It supplies, for numbers written in national form, the country calling
/// code to prepend, the trunk prefix to drop (`0` in China, `1` in North
/// America) and the international dialling prefixes that announce a foreign
/// number (`00` in China, `011` in North America). Obtain one with
/// [`Region::from_iso`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    iso: &'static str,
    calling_code: &'static str,
    trunk_prefix: Option<&'static str>,
    idd_prefixes: &'static [&'static str],
}

/// The ISO 3166 alpha-2 code of the region assumed for phone numbers written
/// without a country code, unless configured otherwise.
pub const DEFAULT_REGION_ISO: &str = "CN";

const fn region(
    iso: &'static str,
    calling_code: &'static str,
    trunk_prefix: Option<&'static str>,
    idd_prefixes: &'static [&'static str],
) -> Region {
    Region {
        iso,
        calling_code,
        trunk_prefix,
        idd_prefixes,
    }
}

/// Regions whose national conventions we know. Where two regions share a
/// calling code (US and CA), the first one is used to interpret international
/// numbers; their conventions are identical.
static REGIONS: &[Region] = &[
    region("CN", "86", Some("0"), &["00"]),
    region("HK", "852", None, &["001"]),
    region("MO", "853", None, &["00"]),
    region("TW", "886", Some("0"), &["002"]),
    region("SG", "65", None, &["001"]),
    region("MY", "60", Some("0"), &["00"]),
    region("JP", "81", Some("0"), &["010"]),
    region("KR", "82", Some("0"), &["001"]),
    region("US", "1", Some("1"), &["011"]),
    region("CA", "1", Some("1"), &["011"]),
    region("GB", "44", Some("0"), &["00"]),
    region("DE", "49", Some("0"), &["00"]),
    region("FR", "33", Some("0"), &["00"]),
    region("AU", "61", Some("0"), &["0011"]),
    region("IN", "91", Some("0"), &["00"]),
];

/// Country calling codes (ITU-T E.164 assignments): all 1- and 2-digit codes,
/// plus the 3-digit codes of the regions in [`REGIONS`].
///
/// Calling codes form a prefix-free set, so this is enough to find where the
/// code ends in any international number: if a number starts with a 1- or
/// 2-digit code listed here, that is its code; otherwise its code has 3 digits
/// (whether or not we list it).
const COUNTRY_CODES: &[&str] = &[
    "1", "7", // NANP; Russia and Kazakhstan
    "20", "27", // Egypt, South Africa
    "30", "31", "32", "33", "34", "36", "39", // GR NL BE FR ES HU IT
    "40", "41", "43", "44", "45", "46", "47", "48", "49", // RO CH AT GB DK SE NO PL DE
    "51", "52", "53", "54", "55", "56", "57", "58", // PE MX CU AR BR CL CO VE
    "60", "61", "62", "63", "64", "65", "66", // MY AU ID PH NZ SG TH
    "81", "82", "84", "86", // JP KR VN CN
    "90", "91", "92", "93", "94", "95", "98", // TR IN PK AF LK MM IR
    "852", "853", "886", // HK MO TW
];

/// Length of the country calling code at the start of `digits` (1, 2 or 3).
fn country_code_len(digits: &[u8]) -> usize {
    COUNTRY_CODES
        .iter()
        .find(|code| digits.starts_with(code.as_bytes()))
        .map_or(3, |code| code.len())
}

fn region_by_calling_code(code: &[u8]) -> Option<&'static Region> {
    REGIONS.iter().find(|r| r.calling_code.as_bytes() == code)
}

impl Region {
    /// Looks up a region by ISO 3166 alpha-2 code, case-insensitive (`"CN"`,
    /// `"us"`). Returns `None` for codes whose conventions we do not know.
    #[must_use]
    pub fn from_iso(code: &str) -> Option<Region> {
        REGIONS
            .iter()
            .find(|r| r.iso.eq_ignore_ascii_case(code))
            .copied()
    }

    /// The ISO 3166 alpha-2 code, upper case (`"CN"`).
    #[must_use]
    pub fn iso(&self) -> &'static str {
        self.iso
    }

    /// The country calling code, without `+` (`"86"`).
    #[must_use]
    pub fn calling_code(&self) -> &'static str {
        self.calling_code
    }
}

// ---------------------------------------------------------------------------
// Phone numbers
// ---------------------------------------------------------------------------

/// Most digits in an E.164 number, country code included.
const MAX_E164_DIGITS: usize = 15;
/// Fewest digits we accept in an E.164 number, country code included.
const MIN_E164_DIGITS: usize = 8;
/// Digits kept while scanning: the longest IDD prefix (4) + 15 + a stray
/// trunk prefix fit; anything longer is rejected anyway.
const DIGIT_BUF: usize = 24;

/// Returns the E.164 form, e.g. `"+8613800138000"`.
///
/// Numbers without `+` or an international dialling prefix are read in the
/// conventions of `default_region`. Extensions are dropped. See the module
/// documentation for every rule and why it exists.
///
/// # Errors
/// [`NormalizeError::Empty`] for empty or blank input;
/// [`NormalizeError::InvalidPhone`] when the input contains letters or
/// symbols outside an extension, or when its digits cannot form a valid number.
///
/// ```text
/// "0086 138-0013-8000 转 12", CN  ->  "+8613800138000"
/// "(415) 555-2671", US            ->  "+14155552671"
/// ```
pub fn normalize_phone(raw: &str, default_region: Region) -> Result<String, NormalizeError> {
    match plain_phone(raw) {
        Some(scanned) => phone_from_digits(&scanned, default_region),
        None => general_phone(raw, default_region),
    }
}

/// The digits of a plain phone number, ASCII digits and spaces with an optional leading
/// `+` (`13800138000`, `+86 138 0013 8000`), read in one pass: what [`scan_phone`] reads of it
/// once [`general_phone`] has found no wrapper, extension or marker to cut (it can't, in these
/// characters). `None` for anything else, which the general path reads or refuses with its
/// reason. Most of the messages' numbers are plain, and the general path's separate passes
/// took about 1,800 instructions for each.
fn plain_phone(raw: &str) -> Option<Scanned> {
    let bytes = raw.as_bytes();
    let (plus, body) = match bytes.split_first() {
        Some((b'+', rest)) => (true, rest),
        _ => (false, bytes),
    };
    let mut sc = Scanned {
        buf: [0; DIGIT_BUF],
        len: 0,
        count: 0,
        plus,
        trunk_mark: None,
    };
    for &b in body {
        match b {
            b'0'..=b'9' => {
                *sc.buf.get_mut(sc.len)? = b;
                sc.len += 1;
                sc.count += 1;
            }
            b' ' => {}
            _ => return None,
        }
    }
    (sc.count > 0).then_some(sc)
}

/// [`normalize_phone`] for any input: wrappers, extensions, trunk markers, and the reason for a
/// refusal.
fn general_phone(raw: &str, default_region: Region) -> Result<String, NormalizeError> {
    let folded = fold_width(raw);
    let mut s = folded.trim();
    if s.is_empty() {
        return Err(NormalizeError::Empty);
    }
    if let Some(rest) = strip_prefix_ignore_ascii_case(s, "tel:") {
        s = rest;
    }
    let uncut_len = s.len();
    s = cut_extension(s);
    if default_region.calling_code == "86" {
        s = cut_cn_landline_extension(s);
    }
    let scanned = scan_phone(s)?;
    if scanned.count == 0 {
        return Err(phone_err(if s.len() < uncut_len {
            "phone number has no digits before the extension"
        } else {
            "phone number has no digits"
        }));
    }
    if scanned.count > DIGIT_BUF {
        return Err(phone_err(format!(
            "phone number has {} digits; a full international number has at most {MAX_E164_DIGITS}",
            scanned.count
        )));
    }
    phone_from_digits(&scanned, default_region)
}

/// The E.164 number a phone number's scanned digits make in `default_region`'s conventions.
fn phone_from_digits(scanned: &Scanned, default_region: Region) -> Result<String, NormalizeError> {
    let digits = scanned.digits();
    let mark = scanned.trunk_mark;

    if scanned.plus {
        return international(digits, mark);
    }
    if let Some(idd) = default_region
        .idd_prefixes
        .iter()
        .find(|p| digits.starts_with(p.as_bytes()))
    {
        let mark = match mark {
            Some(m) => Some(m.checked_sub(idd.len()).ok_or_else(misplaced_trunk_mark)?),
            None => None,
        };
        return international(digits.get(idd.len()..).unwrap_or_default(), mark);
    }
    if default_region.calling_code == "86" && mark.is_none() && is_bare_86_mobile(digits) {
        return international(digits, None);
    }
    national(digits, mark, default_region)
}

/// `86` + an 11-digit Chinese mobile number, with the `+` lost.
fn is_bare_86_mobile(digits: &[u8]) -> bool {
    digits.len() == 13 && digits.starts_with(b"861") && matches!(digits.get(3), Some(b'3'..=b'9'))
}

fn strip_prefix_ignore_ascii_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// Returns the part of `s` before the first extension marker.
fn cut_extension(s: &str) -> &str {
    for (i, c) in s.char_indices() {
        let rest = &s[i..];
        let is_marker = match c {
            '#' | ',' | ';' | '转' | 'x' | 'X' => true,
            'e' | 'E' => strip_prefix_ignore_ascii_case(rest, "ext").is_some(),
            '分' => rest.starts_with("分机"),
            _ => false,
        };
        if is_marker {
            return &s[..i];
        }
    }
    s
}

/// Chinese landline habit `010-12345678-801` (also `022 5766 9363-517`): area
/// code with trunk `0` (3–4 digits), 7–8 digit subscriber number (spaces and
/// dashes inside allowed), then a dash and a 1–5 digit extension. Returns `s`
/// without the extension group, or `s` unchanged.
fn cut_cn_landline_extension(s: &str) -> &str {
    let Some(last_dash) = s.rfind('-') else {
        return s;
    };
    let (number, ext) = (&s[..last_dash], s[last_dash + 1..].trim());
    if !(1..=5).contains(&ext.len()) || !ext.bytes().all(|b| b.is_ascii_digit()) {
        return s;
    }
    let number = number.trim();
    let mut digits = 0;
    for b in number.bytes() {
        match b {
            b'0'..=b'9' => digits += 1,
            b' ' | b'-' | b'(' | b')' => {}
            _ => return s,
        }
    }
    let starts_with_trunk = number.trim_start_matches('(').starts_with('0');
    // Area code with its trunk 0 (3 or 4 digits) plus 7 or 8 subscriber digits.
    if starts_with_trunk && (10..=12).contains(&digits) {
        return &s[..last_dash];
    }
    s
}

/// Digits and markers found in the number part of a phone input.
struct Scanned {
    buf: [u8; DIGIT_BUF],
    /// Digits stored in `buf`.
    len: usize,
    /// Digits seen (may exceed `DIGIT_BUF`; such input is rejected).
    count: usize,
    /// A leading `+` was present.
    plus: bool,
    /// A `(0)` trunk marker stood before the digit with this index.
    trunk_mark: Option<usize>,
}

impl Scanned {
    fn digits(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

fn is_phone_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '-' | '.' | '/' | '(' | ')' | '[' | ']' | '\u{2010}'..='\u{2015}' | '\u{2212}'
        )
}

fn misplaced_trunk_mark() -> NormalizeError {
    phone_err(
        "phone number has '(0)' in the middle; it may only stand at the start of a national \
         number or right after the country code",
    )
}

fn scan_phone(s: &str) -> Result<Scanned, NormalizeError> {
    let mut sc = Scanned {
        buf: [0; DIGIT_BUF],
        len: 0,
        count: 0,
        plus: false,
        trunk_mark: None,
    };
    let mut skip_until = 0;
    for (i, c) in s.char_indices() {
        if i < skip_until {
            continue;
        }
        match c {
            '0'..='9' => {
                if let Some(slot) = sc.buf.get_mut(sc.len) {
                    *slot = c as u8;
                    sc.len += 1;
                }
                sc.count += 1;
            }
            '+' => {
                if sc.count > 0 || sc.plus || sc.trunk_mark.is_some() {
                    return Err(phone_err(
                        "phone number has a '+' that is not at the start; '+' may only introduce \
                         the country code",
                    ));
                }
                sc.plus = true;
            }
            '(' if s[i..].starts_with("(0)") => {
                if sc.trunk_mark.is_some() {
                    return Err(phone_err("phone number has the trunk marker '(0)' twice"));
                }
                sc.trunk_mark = Some(sc.count);
                skip_until = i + "(0)".len();
            }
            c if is_phone_separator(c) => {}
            c if c.is_alphabetic() => {
                return Err(phone_err(format!(
                    "phone number contains the letter '{}'; only digits, '+', spaces, dashes, \
                     dots, slashes and brackets are allowed, and an extension must follow \
                     'ext', 'x', '#', '转' or '分机'",
                    c.escape_debug()
                )));
            }
            c => {
                return Err(phone_err(format!(
                    "phone number contains '{}', which is not allowed; only digits, '+', spaces, \
                     dashes, dots, slashes and brackets are",
                    c.escape_debug()
                )));
            }
        }
    }
    Ok(sc)
}

/// `digits` start with the country calling code (prefix `+` or IDD removed);
/// `mark` is the position of a `(0)` marker relative to `digits`.
fn international(digits: &[u8], mark: Option<usize>) -> Result<String, NormalizeError> {
    match digits.first() {
        None => {
            return Err(phone_err(
                "phone number has an international prefix but no number after it",
            ))
        }
        Some(b'0') => {
            return Err(phone_err(
                "phone number's country code starts with 0; after '+' or the international \
                 prefix comes the country code, e.g. +86, not +0086",
            ))
        }
        Some(_) => {}
    }
    let cc_len = country_code_len(digits);
    let (Some(cc), Some(mut nsn)) = (digits.get(..cc_len), digits.get(cc_len..)) else {
        return Err(phone_err(
            "phone number has only a country code and no number after it",
        ));
    };
    let known = region_by_calling_code(cc);
    match mark {
        Some(m) if m != cc_len => return Err(misplaced_trunk_mark()),
        Some(_) => {}
        None => {
            // A trunk prefix written after the country code (`+86 021 …`):
            // no number of a region we know starts with its trunk prefix.
            if let Some(trunk) = known.and_then(|r| r.trunk_prefix) {
                if let Some(rest) = nsn.strip_prefix(trunk.as_bytes()) {
                    nsn = rest;
                }
            }
        }
    }
    finish(cc, nsn)
}

fn national(digits: &[u8], mark: Option<usize>, region: Region) -> Result<String, NormalizeError> {
    let nsn = match (mark, region.trunk_prefix) {
        // `(0)21 6555 1234`: the trunk prefix is the marker itself.
        (Some(0), _) => digits,
        (Some(_), _) => return Err(misplaced_trunk_mark()),
        (None, Some(trunk)) => digits.strip_prefix(trunk.as_bytes()).unwrap_or(digits),
        (None, None) => digits,
    };
    finish(region.calling_code.as_bytes(), nsn)
}

/// Validates the country code `cc` + national significant number `nsn` and
/// renders the E.164 string.
fn finish(cc: &[u8], nsn: &[u8]) -> Result<String, NormalizeError> {
    if nsn.is_empty() {
        return Err(phone_err(
            "phone number has only a country code or trunk prefix and no number after it",
        ));
    }
    match cc {
        b"86" => validate_cn(nsn)?,
        b"1" if nsn.len() != 10 => {
            return Err(phone_err(format!(
                "North American numbers have 10 digits after the country code 1 \
                 (3-digit area code + 7 digits); this one has {}",
                nsn.len()
            )))
        }
        _ => {}
    }
    let cc_text = String::from_utf8_lossy(cc);
    if let Some(trunk) = region_by_calling_code(cc).and_then(|r| r.trunk_prefix) {
        if nsn.starts_with(trunk.as_bytes()) {
            return Err(phone_err(format!(
                "phone number has an extra trunk prefix {trunk} after the country code \
                 {cc_text}; numbers there never start with it"
            )));
        }
    }
    let total = cc.len() + nsn.len();
    if total < MIN_E164_DIGITS {
        return Err(phone_err(format!(
            "phone number is too short: {} digits after the country code {cc_text}; a full \
             number has at least {MIN_E164_DIGITS} digits including the country code",
            nsn.len()
        )));
    }
    if total > MAX_E164_DIGITS {
        return Err(phone_err(format!(
            "phone number is too long: {} digits after the country code {cc_text}; a full \
             number has at most {MAX_E164_DIGITS} digits including the country code",
            nsn.len()
        )));
    }
    let mut out = String::with_capacity(1 + total);
    out.push('+');
    out.extend(cc.iter().chain(nsn).map(|&b| char::from(b)));
    Ok(out)
}

/// Checks a Chinese national significant number (without trunk `0`).
fn validate_cn(nsn: &[u8]) -> Result<(), NormalizeError> {
    let n = nsn.len();
    match nsn {
        // Beijing landlines: area code 10 + 8-digit subscriber number.
        [b'1', b'0', ..] if n == 10 => Ok(()),
        [b'1', second, ..] if n == 11 => {
            if matches!(second, b'3'..=b'9') {
                Ok(())
            } else {
                Err(phone_err(format!(
                    "Chinese mobile numbers start with 13 to 19; this one starts with 1{}",
                    char::from(*second)
                )))
            }
        }
        [b'1', ..] => Err(phone_err(format!(
            "Chinese mobile numbers have 11 digits starting with 13 to 19 (Beijing landlines: \
             010 + 8 digits); this one has {n} digits"
        ))),
        [b'0', ..] => Err(phone_err(
            "Chinese number has an extra leading 0 after the trunk prefix; area codes never \
             start with 0",
        )),
        [b'4', b'0', b'0', ..] | [b'8', b'0', b'0', ..] if n != 10 => Err(phone_err(format!(
            "Chinese 400/800 service numbers have 10 digits; this one has {n}"
        ))),
        _ if (9..=11).contains(&n) => Ok(()),
        _ => Err(phone_err(format!(
            "Chinese landline numbers have 9 to 11 digits without the leading 0 (area code \
             plus 7 or 8 digits); this one has {n}"
        ))),
    }
}

// ---------------------------------------------------------------------------
// Email addresses
// ---------------------------------------------------------------------------

/// Longest address we accept, in bytes (RFC 5321 path limit minus `<>`).
const MAX_EMAIL_LEN: usize = 254;

/// Lower-cased address; when `strip_plus_tags`, `"li.wei+crm@x.com"` becomes
/// `"li.wei@x.com"`.
///
/// Accepts a `mailto:` prefix (a `?query` after it is dropped) and a
/// `Display Name <address>` wrapper. A `+tag` is only removed if something is
/// left of the local part (`+crm@x.com` stays as is).
///
/// # Errors
/// [`NormalizeError::Empty`] for empty or blank input;
/// [`NormalizeError::InvalidEmail`] unless there is exactly one `@`, a
/// non-empty local part, a domain with at least one dot and no empty labels,
/// no whitespace or control characters, and at most 254 bytes.
///
/// ```text
/// "Li Wei <Li.Wei+CRM@X.com>", strip_plus_tags  ->  "li.wei@x.com"
/// ```
pub fn normalize_email(raw: &str, strip_plus_tags: bool) -> Result<String, NormalizeError> {
    match plain_email(raw, strip_plus_tags) {
        Some(address) => Ok(address),
        None => general_email(raw, strip_plus_tags),
    }
}

/// [`normalize_email`] for the common case, a bare address of letters, digits and `._%+-`
/// around one `@`, that [`general_email`] accepts, in one pass over its bytes: `None` for
/// anything else (wrappers, other characters, anything wrong), which the general path then
/// reads or refuses with its reason. Most of the messages' addresses are plain, and the general
/// path's separate checks (a search of a string for each character among them) took about
/// 4,000 instructions for each.
fn plain_email(raw: &str, strip_plus_tags: bool) -> Option<String> {
    let bytes = raw.as_bytes();
    if bytes.len() > MAX_EMAIL_LEN {
        return None;
    }
    let mut at = None;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'_' | b'%' | b'+' | b'-' => {}
            b'@' if at.is_none() => at = Some(i),
            _ => return None,
        }
    }
    let at = at?;
    let (local, domain) = (&bytes[..at], &bytes[at + 1..]);
    let labels_ok = domain.contains(&b'.')
        && domain.first() != Some(&b'.')
        && domain.last() != Some(&b'.')
        && !domain.windows(2).any(|w| w == b"..");
    if local.is_empty() || !labels_ok {
        return None;
    }
    let keep = match strip_plus_tags {
        true => local.iter().position(|&b| b == b'+').filter(|&p| p > 0),
        false => None,
    };
    let mut out = String::with_capacity(bytes.len());
    out.push_str(&raw[..keep.unwrap_or(at)]);
    out.push_str(&raw[at..]);
    out.make_ascii_lowercase();
    Some(out)
}

/// [`normalize_email`] for any input: wrappers, width folding, and the reason for a refusal.
fn general_email(raw: &str, strip_plus_tags: bool) -> Result<String, NormalizeError> {
    let folded = fold_width(raw);
    let mut s = folded.trim();
    if s.is_empty() {
        return Err(NormalizeError::Empty);
    }
    if let Some(inner) = s.strip_suffix('>') {
        let Some(open) = inner.rfind('<') else {
            return Err(email_err(
                "email address ends with '>' but has no matching '<'",
            ));
        };
        s = inner[open + 1..].trim();
    }
    if let Some(rest) = strip_prefix_ignore_ascii_case(s, "mailto:") {
        s = rest.split('?').next().unwrap_or(rest).trim();
    }
    if s.is_empty() {
        return Err(email_err("no email address found inside the wrapper"));
    }
    if s.len() > MAX_EMAIL_LEN {
        return Err(email_err(format!(
            "email address is too long: {} bytes; at most {MAX_EMAIL_LEN} are allowed",
            s.len()
        )));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(email_err("email address contains a space"));
    }
    if s.chars().any(char::is_control) {
        return Err(email_err("email address contains a control character"));
    }
    // RFC 5322 "specials": legal only in quoted local parts and domain
    // literals, which CRM data does not use; here they mean the text is not
    // (only) one address, e.g. `Name: a@x.com` or `mailto:mailto:…`.
    if let Some(c) = s.chars().find(|c| "<>()[],;:\"\\".contains(*c)) {
        return Err(email_err(format!(
            "email address contains '{c}', which is not allowed in an address"
        )));
    }
    let Some((local, domain)) = s.split_once('@') else {
        return Err(email_err("email address has no '@'"));
    };
    if domain.contains('@') {
        return Err(email_err("email address has more than one '@'"));
    }
    if local.is_empty() {
        return Err(email_err("email address has nothing before the '@'"));
    }
    if domain.is_empty() {
        return Err(email_err("email address has nothing after the '@'"));
    }
    if !domain.contains('.') {
        return Err(email_err(
            "email domain has no dot; expected a domain such as example.com after the '@'",
        ));
    }
    if domain.split('.').any(str::is_empty) {
        return Err(email_err(
            "email domain has an empty part: two dots in a row, or a dot right after the '@' \
             or at the end",
        ));
    }
    let mut out = s.to_lowercase();
    if strip_plus_tags {
        if let Some(at) = out.find('@') {
            if let Some(plus) = out[..at].find('+') {
                if plus > 0 {
                    out.replace_range(plus..at, "");
                }
            }
        }
    }
    Ok(out)
}

/// Returns the domain part of an already-normalized email (`"x.com"` for
/// `"li.wei@x.com"`): everything after the last `@`, or `""` if there is none.
#[must_use]
pub fn email_domain(normalized: &str) -> &str {
    normalized
        .rfind('@')
        .and_then(|at| normalized.get(at + 1..))
        .unwrap_or("")
}

// ---------------------------------------------------------------------------
// Company names
// ---------------------------------------------------------------------------

/// Legal forms, written without separators, longest first within each script
/// (so `股份有限公司` wins over `有限公司` and `coltd` over `ltd`). When matching,
/// spaces in the name are ignored, so `co., ltd.`, `co.,ltd`, `co ltd` and
/// `coltd` all match `coltd`. ASCII forms must start at a word boundary.
const LEGAL_FORMS: &[&str] = &[
    "companylimited",
    "incorporated",
    "corporation",
    "company",
    "limited",
    "股份有限公司",
    "有限责任公司",
    "pteltd",
    "coltd",
    "gmbh",
    "corp",
    "有限公司",
    "ltd",
    "inc",
    "llc",
    "plc",
    "公司",
];

fn is_open_bracket(c: char) -> bool {
    matches!(c, '(' | '[' | '{' | '【' | '〔' | '〖')
}

fn is_close_bracket(c: char) -> bool {
    matches!(c, ')' | ']' | '}' | '】' | '〕' | '〗')
}

/// A CJK unified ideograph: a letter without case, as most company names are written. Telling
/// so by its range skips two Unicode table look-ups per character.
fn is_ideograph(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}')
}

/// A character a company key keeps: a letter or digit, ideographs tested first.
fn is_word_char(c: char) -> bool {
    is_ideograph(c) || c.is_alphanumeric()
}

/// Appends a word separator unless `buf` is empty or already ends with one.
fn push_separator(buf: &mut String) {
    if !buf.is_empty() && !buf.ends_with(' ') {
        buf.push(' ');
    }
}

/// If `s` (lower-case letters/digits separated by single spaces) ends with
/// the legal form `form`, returns the byte index where the form starts.
fn match_legal_form(s: &str, form: &str) -> Option<usize> {
    let mut subject = s.char_indices().rev().filter(|&(_, c)| c != ' ');
    let mut start = s.len();
    for want in form.chars().rev() {
        let (i, c) = subject.next()?;
        if c != want {
            return None;
        }
        start = i;
    }
    let before = s[..start].chars().next_back();
    // `zinc` does not end with the legal form `inc`.
    if form.is_ascii() && before.is_some_and(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    // `…分公司` is a branch office, not a legal form.
    if form == "公司" && before == Some('分') {
        return None;
    }
    Some(start)
}

/// Byte length of `s` once all trailing legal forms (and spaces) are removed.
fn without_legal_forms(s: &str) -> usize {
    let mut end = s.len();
    loop {
        let current = s[..end].trim_end_matches(' ');
        end = current.len();
        // Most names don't end in the last letter of any legal form: no form to try.
        if !current.chars().next_back().is_some_and(ends_a_legal_form) {
            return end;
        }
        match LEGAL_FORMS
            .iter()
            .find_map(|form| match_legal_form(current, form))
        {
            Some(start) => end = start,
            None => return end,
        }
    }
}

/// Whether some legal form in [`LEGAL_FORMS`] ends with `c` (a test keeps the two in step).
fn ends_a_legal_form(c: char) -> bool {
    matches!(c, 'd' | 'n' | 'y' | 'h' | 'p' | 'c' | '司')
}

/// `s` equals `word` when spaces in `s` are ignored.
fn eq_ignoring_spaces(s: &str, word: &str) -> bool {
    s.chars().filter(|&c| c != ' ').eq(word.chars())
}

/// Bracket contents that are dropped rather than kept: only legal forms, or
/// only the country marker 中国 / china (possibly followed by legal forms).
fn is_droppable_group(group: &str) -> bool {
    let rest = &group[..without_legal_forms(group)];
    rest.trim().is_empty() || eq_ignoring_spaces(rest, "中国") || eq_ignoring_spaces(rest, "china")
}

/// Canonical company key: `"上海星辰科技有限公司"`, `"上海星辰科技"` and
/// `"上海 星辰科技（有限公司）"` all give `"上海星辰科技"`; `"Acme Co., Ltd."` and
/// `"ＡＣＭＥ　Ｉｎｃ．"` give `"acme"`.
///
/// Folds width, lower-cases letters, drops bracketed legal forms and
/// `（中国）`/`(China)` (other bracket contents are kept), strips legal-form
/// suffixes repeatedly from the end, and keeps only letters and digits.
///
/// # Errors
/// [`NormalizeError::Empty`] for empty or blank input;
/// [`NormalizeError::InvalidCompany`] when no letters or digits remain, e.g.
/// for `"有限公司"` or `"Inc."`.
pub fn normalize_company(raw: &str) -> Result<String, NormalizeError> {
    if raw.chars().map(fold_char).all(char::is_whitespace) {
        return Err(NormalizeError::Empty);
    }
    // Working form: lower-case letters and digits, words separated by one
    // space (separators matter for the word-boundary rule of Latin legal
    // forms); removed at the end.
    let mut buf = String::with_capacity(raw.len());
    let mut depth = 0usize;
    let mut group_start = 0usize;
    let mut had_alphanumeric = false;
    for c in raw.chars().map(fold_char) {
        if is_open_bracket(c) {
            push_separator(&mut buf);
            if depth == 0 {
                group_start = buf.len();
            }
            depth += 1;
        } else if is_close_bracket(c) {
            if depth == 1 && is_droppable_group(&buf[group_start..]) {
                buf.truncate(group_start);
            }
            depth = depth.saturating_sub(1);
            push_separator(&mut buf);
        } else if is_word_char(c) {
            had_alphanumeric = true;
            if c.is_ascii() {
                buf.push(c.to_ascii_lowercase());
            } else if is_ideograph(c) {
                buf.push(c);
            } else {
                buf.extend(c.to_lowercase());
            }
        } else {
            push_separator(&mut buf);
        }
    }
    buf.truncate(without_legal_forms(&buf));
    buf.retain(is_word_char);
    if buf.is_empty() {
        return Err(company_err(if had_alphanumeric {
            "company name consists only of a legal form (such as 有限公司 or Ltd.) or a \
             bracketed country marker; nothing is left that identifies the company"
        } else {
            "company name contains no letters or digits"
        }));
    }
    Ok(buf)
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn region(iso: &str) -> Region {
        Region::from_iso(iso).expect("region is in the table")
    }

    fn phone(raw: &str, iso: &str) -> Result<String, NormalizeError> {
        normalize_phone(raw, region(iso))
    }

    fn ok(s: &str) -> Result<String, NormalizeError> {
        Ok(s.to_string())
    }

    fn assert_invalid_phone(raw: &str, iso: &str) -> String {
        match phone(raw, iso) {
            Err(NormalizeError::InvalidPhone(why)) => why,
            other => panic!("{raw:?} ({iso}) should be InvalidPhone, got {other:?}"),
        }
    }

    #[test]
    fn ideographs_are_letters_without_case() {
        for c in '\u{4E00}'..='\u{9FFF}' {
            assert!(is_ideograph(c), "{c:?}");
            assert!(c.is_alphanumeric(), "{c:?}");
            assert!(c.to_lowercase().eq([c]), "{c:?}");
        }
        assert!(!is_ideograph('\u{4DFF}') && !is_ideograph('\u{A000}'));
    }

    // ----- fold_width -----

    #[test]
    fn fold_width_borrows_when_nothing_to_fold() {
        assert!(matches!(fold_width("abc 123"), Cow::Borrowed("abc 123")));
        assert!(matches!(fold_width("上海星辰"), Cow::Borrowed("上海星辰")));
        assert!(matches!(fold_width(""), Cow::Borrowed("")));
    }

    #[test]
    fn fold_width_converts_full_width_and_ideographic_space() {
        assert_eq!(fold_width("＋８６　１３８"), "+86 138");
        assert_eq!(fold_width("ＡＣＭＥ　Ｉｎｃ．"), "ACME Inc.");
        assert_eq!(fold_width("li＠x．com"), "li@x.com");
        assert_eq!(fold_width("（有限公司）"), "(有限公司)");
        // Range ends: U+FF01 '！' and U+FF5E '～'; U+FF5F is outside.
        assert_eq!(fold_width("！～\u{FF5F}"), "!~\u{FF5F}");
        assert_eq!(fold_width("上海１号"), "上海1号");
    }

    // ----- regions -----

    #[test]
    fn region_lookup_is_case_insensitive() {
        assert_eq!(region("cn").iso(), "CN");
        assert_eq!(region("Us").calling_code(), "1");
        assert_eq!(region("hk").calling_code(), "852");
        assert_eq!(Region::from_iso("XX"), None);
        assert_eq!(Region::from_iso(""), None);
        assert_eq!(Region::from_iso("中国"), None);
        assert_eq!(
            Region::from_iso(DEFAULT_REGION_ISO).map(|r| r.iso()),
            Some("CN")
        );
    }

    #[test]
    fn required_regions_are_present() {
        for (iso, cc) in [
            ("CN", "86"),
            ("HK", "852"),
            ("MO", "853"),
            ("TW", "886"),
            ("SG", "65"),
            ("MY", "60"),
            ("JP", "81"),
            ("KR", "82"),
            ("US", "1"),
            ("CA", "1"),
            ("GB", "44"),
            ("DE", "49"),
            ("FR", "33"),
            ("AU", "61"),
            ("IN", "91"),
        ] {
            assert_eq!(region(iso).calling_code(), cc, "{iso}");
            assert!(
                COUNTRY_CODES.contains(&cc),
                "{cc} missing from COUNTRY_CODES"
            );
        }
    }

    #[test]
    fn country_codes_are_prefix_free() {
        for a in COUNTRY_CODES {
            for b in COUNTRY_CODES {
                assert!(a == b || !b.starts_with(a), "{a} is a prefix of {b}");
            }
        }
        assert_eq!(country_code_len(b"8613800138000"), 2);
        assert_eq!(country_code_len(b"14155552671"), 1);
        assert_eq!(country_code_len(b"85221234567"), 3);
        assert_eq!(country_code_len(b"97141234567"), 3); // unknown 3-digit code (UAE)
    }

    // ----- phone: the CN mobile examples -----

    #[test]
    fn cn_mobile_spellings_all_normalize_the_same() {
        for raw in [
            "13800138000",
            "138 0013 8000",
            "138-0013-8000",
            "+86 138 0013 8000",
            "+86-138-0013-8000",
            "0086 138 0013 8000",
            "008613800138000",
            "8613800138000",
            "(+86) 13800138000",
            "＋８６ １３８００１３８０００",
            "+86 13800138000 ext 12",
            "00 86 138 0013 8000",
            "138.0013.8000",
            "138/0013/8000",
            "[+86] 138 0013 8000",
            "（＋８６）１３８－００１３－８０００",
            "  13800138000  ",
            "tel:+86-138-0013-8000",
            "+86 (0) 138 0013 8000",
        ] {
            assert_eq!(phone(raw, "CN"), ok("+8613800138000"), "{raw:?}");
        }
    }

    // ----- phone: extensions -----

    #[test]
    fn extension_markers_are_cut() {
        for raw in [
            "+86 13800138000 ext 12",
            "+86 13800138000 ext. 12",
            "+86 13800138000ext12",
            "+86 13800138000 EXT.12",
            "+86 13800138000 Ext 12",
            "+86 13800138000 extension 12",
            "+86 13800138000 x12",
            "+86 13800138000 X 12",
            "+86 13800138000#12",
            "+86 13800138000 # 12",
            "+86 13800138000,12",
            "+86 13800138000;ext=12",
            "+86 13800138000转12",
            "+86 13800138000 转 12",
            "+86 13800138000分机12",
            "+86 13800138000 分机 12",
            "+86 13800138000 分机号：12",
            "+86 13800138000 ｅｘｔ １２",
            "+86 13800138000 ＃12",
        ] {
            assert_eq!(phone(raw, "CN"), ok("+8613800138000"), "{raw:?}");
        }
    }

    #[test]
    fn extension_without_number_is_invalid() {
        let why = assert_invalid_phone("ext 12", "CN");
        assert!(why.contains("no digits before the extension"), "{why}");
        assert_invalid_phone("#", "CN");
        let why = assert_invalid_phone("tel:", "CN");
        assert_eq!(why, "phone number has no digits");
    }

    #[test]
    fn cn_landline_dash_extension() {
        assert_eq!(phone("010-12345678-801", "CN"), ok("+861012345678"));
        assert_eq!(phone("0755-1234567-12345", "CN"), ok("+867551234567"));
        assert_eq!(phone("021 - 65551234 - 1", "CN"), ok("+862165551234"));
        assert_eq!(phone("010-12345678", "CN"), ok("+861012345678"));
        assert_eq!(phone("022 5766 9363-517", "CN"), ok("+862257669363"));
        assert_eq!(phone("(0551) 8581 7476-883", "CN"), ok("+8655185817476"));
        // A mobile number split by dashes is not an extension.
        assert_eq!(phone("138-0013-8000", "CN"), ok("+8613800138000"));
        // Six-digit last group is not an extension: the digits stay and the
        // number is too long.
        assert_invalid_phone("010-12345678-123456", "CN");
    }

    // ----- phone: separators and trunk prefixes -----

    #[test]
    fn trunk_marker_after_country_code_is_dropped() {
        assert_eq!(phone("+44 (0)20 7946 0958", "CN"), ok("+442079460958"));
        assert_eq!(phone("+44（0）20 7946 0958", "CN"), ok("+442079460958"));
        assert_eq!(phone("0044 (0)20 7946 0958", "CN"), ok("+442079460958"));
        assert_eq!(phone("+33 (0)1 23 45 67 89", "FR"), ok("+33123456789"));
        assert_eq!(phone("(0)20 7946 0958", "GB"), ok("+442079460958"));
        assert_eq!(phone("(0)21 6555 1234", "CN"), ok("+862165551234"));
    }

    #[test]
    fn misplaced_trunk_marker_is_invalid() {
        let why = assert_invalid_phone("+44 20 (0) 7946 0958", "CN");
        assert!(why.contains("(0)"), "{why}");
        assert_invalid_phone("021 (0) 6555 1234", "CN");
        assert_invalid_phone("(0) 20 (0) 7946", "GB");
        let why = assert_invalid_phone("(0)020 7946 0958", "GB");
        assert!(why.contains("extra trunk prefix"), "{why}");
    }

    #[test]
    fn trunk_prefix_written_after_country_code_is_dropped() {
        assert_eq!(phone("+86 021 6555 1234", "CN"), ok("+862165551234"));
        assert_eq!(phone("+44 020 7946 0958", "US"), ok("+442079460958"));
        assert_eq!(phone("+1 1 415 555 2671", "CN"), ok("+14155552671"));
    }

    #[test]
    fn national_numbers_drop_trunk_and_gain_country_code() {
        assert_eq!(phone("021 6555 1234", "CN"), ok("+862165551234"));
        assert_eq!(phone("(021) 6555-1234", "CN"), ok("+862165551234"));
        assert_eq!(phone("2165551234", "CN"), ok("+862165551234"));
        assert_eq!(phone("0755 8765 4321", "CN"), ok("+8675587654321"));
        assert_eq!(phone("020 7946 0958", "GB"), ok("+442079460958"));
        assert_eq!(phone("2123 4567", "HK"), ok("+85221234567"));
        assert_eq!(phone("03-1234-5678", "JP"), ok("+81312345678"));
        assert_eq!(phone("02 9876 5432", "AU"), ok("+61298765432"));
        assert_eq!(phone("02-2345-6789", "TW"), ok("+886223456789"));
    }

    #[test]
    fn cn_service_numbers() {
        assert_eq!(phone("400-123-4567", "CN"), ok("+864001234567"));
        assert_eq!(phone("800 123 4567", "CN"), ok("+868001234567"));
        assert_eq!(phone("+86 400 123 4567", "US"), ok("+864001234567"));
        let why = assert_invalid_phone("400-123-456", "CN");
        assert!(why.contains("400/800"), "{why}");
        assert_invalid_phone("400-123-45678", "CN");
    }

    // ----- phone: North America -----

    #[test]
    fn north_american_numbers() {
        assert_eq!(phone("+1 (415) 555-2671", "CN"), ok("+14155552671"));
        assert_eq!(phone("(415) 555-2671", "US"), ok("+14155552671"));
        assert_eq!(phone("1-415-555-2671", "US"), ok("+14155552671"));
        assert_eq!(phone("415.555.2671", "CA"), ok("+14155552671"));
        assert_eq!(phone("011 1 415 555 2671", "US"), ok("+14155552671"));
        assert_eq!(phone("011 86 138 0013 8000", "US"), ok("+8613800138000"));
        assert_eq!(phone("+1 415 555 2671 x 204", "US"), ok("+14155552671"));
        let why = assert_invalid_phone("+1 415 555 267", "CN");
        assert!(why.contains("10 digits"), "{why}");
    }

    // ----- phone: international prefixes -----

    #[test]
    fn idd_prefixes_of_the_default_region() {
        assert_eq!(phone("001 852 2123 4567", "SG"), ok("+85221234567"));
        assert_eq!(phone("0011 86 138 0013 8000", "AU"), ok("+8613800138000"));
        assert_eq!(phone("010 86 138 0013 8000", "JP"), ok("+8613800138000"));
        assert_eq!(phone("002 86 138 0013 8000", "TW"), ok("+8613800138000"));
        assert_eq!(phone("001 86 138 0013 8000", "KR"), ok("+8613800138000"));
        assert_eq!(phone("00 44 20 7946 0958", "DE"), ok("+442079460958"));
    }

    #[test]
    fn unknown_country_code_is_accepted_when_length_is_valid() {
        assert_eq!(phone("+971 4 123 4567", "CN"), ok("+97141234567"));
        assert_eq!(phone("+7 495 123 45 67", "CN"), ok("+74951234567"));
        assert_invalid_phone("+971 4", "CN");
    }

    #[test]
    fn bare_86_only_for_mobiles() {
        assert_eq!(phone("86 138 0013 8000", "CN"), ok("+8613800138000"));
        // 86 + landline is not read as international.
        assert_invalid_phone("86 21 6555 1234", "CN");
        // Other regions do not apply the CN rule.
        assert_invalid_phone("8613800138000", "US");
    }

    // ----- phone: validation -----

    #[test]
    fn cn_validation() {
        let why = assert_invalid_phone("1380013800", "CN");
        assert!(why.contains("11 digits"), "{why}");
        let why = assert_invalid_phone("12800138000", "CN");
        assert!(why.contains("13 to 19"), "{why}");
        let why = assert_invalid_phone("021 6555", "CN");
        assert!(why.contains("9 to 11"), "{why}");
        assert_invalid_phone("021 6555 1234 5678", "CN");
        assert_invalid_phone("+86 00 21 6555 1234", "CN");
        assert_eq!(phone("19912345678", "CN"), ok("+8619912345678"));
    }

    #[test]
    fn letters_and_symbols_are_rejected() {
        let why = assert_invalid_phone("138 0013 abcd", "CN");
        assert!(why.contains("letter 'a'"), "{why}");
        assert_invalid_phone("call me", "CN");
        assert_invalid_phone("电话13800138000", "CN");
        let why = assert_invalid_phone("138*0013*8000", "CN");
        assert!(why.contains("'*'"), "{why}");
        assert_invalid_phone("138 0013 8000 😀", "CN");
        assert_invalid_phone("138\u{0}0013", "CN");
    }

    #[test]
    fn plus_only_at_start() {
        assert_invalid_phone("86+13800138000", "CN");
        assert_invalid_phone("++8613800138000", "CN");
        let why = assert_invalid_phone("+0086 138 0013 8000", "CN");
        assert!(why.contains("starts with 0"), "{why}");
        assert_invalid_phone("+", "CN");
        assert_invalid_phone("+86", "CN");
        assert_invalid_phone("0086", "CN");
    }

    #[test]
    fn too_few_or_too_many_digits() {
        let why = assert_invalid_phone("12345", "GB");
        assert!(why.contains("too short"), "{why}");
        let why = assert_invalid_phone("+44 20 7946 0958 1234 5", "CN");
        assert!(why.contains("too long"), "{why}");
        let long = "1".repeat(10_000);
        let why = assert_invalid_phone(&long, "CN");
        assert!(why.contains("10000 digits"), "{why}");
        assert_invalid_phone("---", "CN");
    }

    #[test]
    fn errors_do_not_echo_the_number() {
        for raw in ["1380013800", "+44 20 7946 0958 1234 5", "400-123-456"] {
            let why = assert_invalid_phone(raw, "CN");
            assert!(!why.contains("013800"), "{why}");
            assert!(!why.contains("7946"), "{why}");
        }
    }

    #[test]
    fn empty_phone() {
        assert_eq!(phone("", "CN"), Err(NormalizeError::Empty));
        assert_eq!(phone("   ", "CN"), Err(NormalizeError::Empty));
        assert_eq!(phone("\u{3000}\t", "CN"), Err(NormalizeError::Empty));
    }

    // ----- email -----

    #[test]
    fn email_lowercases_and_unwraps() {
        assert_eq!(normalize_email("Li.Wei@X.com", false), ok("li.wei@x.com"));
        assert_eq!(
            normalize_email("  li.wei@x.com  ", false),
            ok("li.wei@x.com")
        );
        assert_eq!(normalize_email("li.wei＠x．com", false), ok("li.wei@x.com"));
        assert_eq!(
            normalize_email("Li Wei <li.wei@x.com>", false),
            ok("li.wei@x.com")
        );
        assert_eq!(normalize_email("<li.wei@x.com>", false), ok("li.wei@x.com"));
        assert_eq!(
            normalize_email("\"Wei, Li\" <Li.Wei@x.com>", false),
            ok("li.wei@x.com")
        );
        assert_eq!(
            normalize_email("mailto:li.wei@x.com", false),
            ok("li.wei@x.com")
        );
        assert_eq!(
            normalize_email("MAILTO:Li.Wei@X.COM", false),
            ok("li.wei@x.com")
        );
        assert_eq!(
            normalize_email("<mailto:li.wei@x.com>", false),
            ok("li.wei@x.com")
        );
        assert_eq!(
            normalize_email("mailto:li.wei@x.com?subject=hi", false),
            ok("li.wei@x.com")
        );
        assert_eq!(normalize_email("Ü@bücher.de", false), ok("ü@bücher.de"));
    }

    #[test]
    fn email_plus_tags() {
        assert_eq!(
            normalize_email("li.wei+crm@x.com", true),
            ok("li.wei@x.com")
        );
        assert_eq!(
            normalize_email("li.wei+crm@x.com", false),
            ok("li.wei+crm@x.com")
        );
        assert_eq!(
            normalize_email("Li.Wei+a+b@X.com", true),
            ok("li.wei@x.com")
        );
        assert_eq!(normalize_email("+crm@x.com", true), ok("+crm@x.com"));
        assert_eq!(normalize_email("li@x+y.com", true), ok("li@x+y.com"));
    }

    #[test]
    fn email_invalid() {
        let cases = [
            ("li.wei.x.com", "no '@'"),
            ("li@wei@x.com", "more than one '@'"),
            ("@x.com", "nothing before"),
            ("li@", "nothing after"),
            ("li@localhost", "no dot"),
            ("li@x..com", "empty part"),
            ("li@.x.com", "empty part"),
            ("li@x.com.", "empty part"),
            ("li wei@x.com", "space"),
            ("li\u{3000}wei@x.com", "space"),
            ("li\u{7}@x.com", "control"),
            ("li@x.com>", "matching '<'"),
            ("Li Wei <>", "no email address"),
            ("mailto:", "no email address"),
            ("li:wei@x.com", "':'"),
            ("mailto:mailto:li@x.com", "':'"),
            ("a@x.com,b@y.com", "','"),
            ("li (work)@x.com", "space"),
            ("li(work)@x.com", "'('"),
        ];
        for (raw, expected) in cases {
            match normalize_email(raw, true) {
                Err(NormalizeError::InvalidEmail(why)) => {
                    assert!(why.contains(expected), "{raw:?}: {why}");
                }
                other => panic!("{raw:?} should be InvalidEmail, got {other:?}"),
            }
        }
    }

    #[test]
    fn email_length_limit() {
        let local = "a".repeat(64);
        let domain = format!("{}.com", "b".repeat(185)); // 64 + 1 + 189 = 254
        let max = format!("{local}@{domain}");
        assert_eq!(max.len(), 254);
        assert_eq!(normalize_email(&max, false), Ok(max.clone()));
        let over = format!("a{max}");
        assert!(matches!(
            normalize_email(&over, false),
            Err(NormalizeError::InvalidEmail(why)) if why.contains("too long")
        ));
        let huge = "a@b.c".repeat(100_000);
        assert!(matches!(
            normalize_email(&huge, false),
            Err(NormalizeError::InvalidEmail(_))
        ));
    }

    #[test]
    fn empty_email() {
        assert_eq!(normalize_email("", true), Err(NormalizeError::Empty));
        assert_eq!(
            normalize_email(" \u{3000} ", true),
            Err(NormalizeError::Empty)
        );
    }

    #[test]
    fn email_domain_of_normalized() {
        assert_eq!(email_domain("li.wei@x.com"), "x.com");
        assert_eq!(email_domain("no-at-sign"), "");
        assert_eq!(email_domain("li@"), "");
        assert_eq!(email_domain(""), "");
    }

    // ----- company -----

    fn company(raw: &str) -> Result<String, NormalizeError> {
        normalize_company(raw)
    }

    #[test]
    fn chinese_legal_forms_are_stripped() {
        for raw in [
            "上海星辰科技有限公司",
            "上海星辰科技股份有限公司",
            "上海星辰科技有限责任公司",
            "上海星辰科技公司",
            "上海 星辰科技",
            "上海星辰科技（有限公司）",
            "上海 星辰科技（有限公司）",
            "上海星辰科技(股份有限公司)",
            "上海星辰科技有限公司 ",
            "上海星辰科技 有限公司",
            "上海星辰科技Co., Ltd.",
        ] {
            assert_eq!(company(raw), ok("上海星辰科技"), "{raw:?}");
        }
    }

    #[test]
    fn latin_legal_forms_are_stripped() {
        for raw in [
            "Acme",
            "Acme Co., Ltd.",
            "ACME co ltd",
            "Acme Co.,Ltd",
            "Acme Co.,Ltd.",
            "Acme CO.LTD",
            "Acme, Inc.",
            "ＡＣＭＥ　Ｉｎｃ．",
            "Acme Incorporated",
            "Acme Corp.",
            "Acme Corporation",
            "Acme LLC",
            "Acme GmbH",
            "Acme plc",
            "Acme Pte Ltd",
            "Acme Pte. Ltd.",
            "Acme Company Limited",
            "Acme Company",
            "Acme Limited",
            "Acme Corporation Ltd.",
            "Acme (China) Co., Ltd.",
            "Acme Inc",
        ] {
            assert_eq!(company(raw), ok("acme"), "{raw:?}");
        }
    }

    #[test]
    fn latin_legal_forms_need_a_word_boundary() {
        assert_eq!(company("Zinc"), ok("zinc"));
        assert_eq!(company("Bigcorp"), ok("bigcorp"));
        assert_eq!(company("Taco Ltd"), ok("taco"));
        assert_eq!(company("3M Company"), ok("3m"));
    }

    #[test]
    fn group_is_kept() {
        assert_eq!(company("上海星辰集团有限公司"), ok("上海星辰集团"));
        assert_eq!(company("上海星辰（集团）有限公司"), ok("上海星辰集团"));
    }

    #[test]
    fn bracketed_region_markers() {
        // 中国 / china is dropped ...
        assert_eq!(company("耐克体育（中国）有限公司"), ok("耐克体育"));
        assert_eq!(company("耐克体育有限公司"), ok("耐克体育"));
        assert_eq!(company("Nike (China) Limited"), ok("nike"));
        // ... other regions identify a separate subsidiary and are kept.
        assert_eq!(company("华为技术（深圳）有限公司"), ok("华为技术深圳"));
        assert_ne!(
            company("华为技术（深圳）有限公司"),
            company("华为技术有限公司")
        );
        // Other bracket contents are kept without brackets.
        assert_eq!(company("星辰【北京】科技"), ok("星辰北京科技"));
        assert_eq!(company("Zinc (Asia) Ltd"), ok("zincasia"));
    }

    #[test]
    fn branch_offices_keep_their_name() {
        assert_eq!(
            company("上海星辰科技有限公司北京分公司"),
            ok("上海星辰科技有限公司北京分公司")
        );
    }

    #[test]
    fn odd_brackets_do_not_panic() {
        assert_eq!(company("星辰（科技"), ok("星辰科技"));
        assert_eq!(company("星辰）科技"), ok("星辰科技"));
        assert_eq!(company("星辰((有限公司))科技"), ok("星辰科技"));
        assert_eq!(company("星辰(a(b)c)"), ok("星辰abc"));
        assert_eq!(
            company("))(("),
            Err(company_err("company name contains no letters or digits"))
        );
    }

    #[test]
    fn only_legal_form_is_invalid() {
        for raw in [
            "有限公司",
            "Inc.",
            "Co., Ltd.",
            "（有限公司）",
            "(China) Ltd",
            "公司",
        ] {
            assert!(
                matches!(company(raw), Err(NormalizeError::InvalidCompany(_))),
                "{raw:?} -> {:?}",
                company(raw)
            );
        }
        assert!(matches!(
            company("...!!"),
            Err(NormalizeError::InvalidCompany(_))
        ));
    }

    #[test]
    fn empty_company() {
        assert_eq!(company(""), Err(NormalizeError::Empty));
        assert_eq!(company("   "), Err(NormalizeError::Empty));
        assert_eq!(company("\u{3000}"), Err(NormalizeError::Empty));
    }

    #[test]
    fn company_punctuation_and_unicode() {
        assert_eq!(company("AT&T Inc."), ok("att"));
        assert_eq!(company("McDonald's Corporation"), ok("mcdonalds"));
        assert_eq!(company("MÜLLER GmbH"), ok("müller"));
        assert_eq!(
            company("星巴克·企业管理（中国）有限公司"),
            ok("星巴克企业管理")
        );
        assert_eq!(company("😀 Emoji Ltd"), ok("emoji"));
    }

    // ----- errors -----

    #[test]
    fn display_is_the_reason() {
        assert_eq!(
            NormalizeError::InvalidPhone("phone number has no digits".into()).to_string(),
            "phone number has no digits"
        );
        assert!(!NormalizeError::Empty.to_string().is_empty());
        let err: Box<dyn std::error::Error> = Box::new(NormalizeError::Empty);
        assert!(!err.to_string().is_empty());
    }

    // ----- no panics on odd input -----

    /// Deterministic pseudo-random strings from an alphabet of characters the
    /// parsers treat specially; every function must return without panicking.
    #[test]
    fn odd_input_never_panics() {
        let alphabet: Vec<char> =
            "0123456789+()（）[]【】-. /#,;xXeEtT转分机@＠<>:mailto有限公司中国china\
                                   incltdco 　＋０８６😀\u{0}\u{301}İ"
                .chars()
                .collect();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let regions: Vec<Region> = REGIONS.to_vec();
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let s: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let r = regions[(next() % regions.len() as u64) as usize];
            if let Ok(p) = normalize_phone(&s, r) {
                assert!(p.starts_with('+'));
                assert!((MIN_E164_DIGITS..=MAX_E164_DIGITS).contains(&(p.len() - 1)));
                assert!(p[1..].bytes().all(|b| b.is_ascii_digit()));
                // Normalizing is idempotent.
                assert_eq!(normalize_phone(&p, r).as_deref(), Ok(p.as_str()), "{s:?}");
            }
            if let Ok(e) = normalize_email(&s, true) {
                assert_eq!(
                    normalize_email(&e, true).as_deref(),
                    Ok(e.as_str()),
                    "{s:?}"
                );
                let _ = email_domain(&e);
            }
            if let Ok(c) = normalize_company(&s) {
                assert!(!c.is_empty());
                assert!(c.chars().all(char::is_alphanumeric));
            }
            let _ = fold_width(&s);
        }
        // Phone-shaped input, so that the success paths are exercised too.
        let phone_alphabet: Vec<char> = "0123456789000111886+ -()(0)#x转".chars().collect();
        let mut accepted = 0;
        for _ in 0..50_000 {
            let len = 6 + (next() % 16) as usize;
            let s: String = (0..len)
                .map(|_| phone_alphabet[(next() % phone_alphabet.len() as u64) as usize])
                .collect();
            let r = regions[(next() % regions.len() as u64) as usize];
            if let Ok(p) = normalize_phone(&s, r) {
                accepted += 1;
                assert!((MIN_E164_DIGITS..=MAX_E164_DIGITS).contains(&(p.len() - 1)));
                assert!(p[1..].bytes().all(|b| b.is_ascii_digit()));
                assert_eq!(normalize_phone(&p, r).as_deref(), Ok(p.as_str()), "{s:?}");
            }
        }
        assert!(
            accepted > 1_000,
            "only {accepted} phone-shaped inputs accepted"
        );
        let long = "上海😀".repeat(50_000);
        assert!(normalize_phone(&long, region("CN")).is_err());
        assert!(normalize_email(&long, false).is_err());
        assert!(normalize_company(&long).is_ok());
        let spaces = " ".repeat(100_000);
        assert_eq!(normalize_company(&spaces), Err(NormalizeError::Empty));
    }

    /// Addresses made of the characters the one-pass path decides on and those that send an
    /// address to the general path, in every arrangement.
    fn email_like() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            4 => "[a-zA-Z0-9]{1,6}",
            3 => prop::sample::select(vec![".", "@", "+", "-", "_", "%", ".."]).prop_map(String::from),
            1 => prop::sample::select(vec![" ", "<", ">", ":", "mailto:", "\"", ",", "\t", "é", "＠", "ｃ", "\u{7f}"])
                .prop_map(String::from),
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|p| p.concat())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 4000, ..Default::default() })]

        #[test]
        fn the_one_pass_email_path_agrees_with_the_general_one(raw in email_like(), strip in proptest::prelude::any::<bool>()) {
            let fast = plain_email(&raw, strip);
            let general = general_email(&raw, strip);
            if let Some(address) = &fast {
                proptest::prop_assert_eq!(Ok(address.clone()), general.clone());
            }
            proptest::prop_assert_eq!(normalize_email(&raw, strip), general);
        }
    }

    /// Numbers made of what the one-pass path reads and what sends a number to the general
    /// path, in every arrangement.
    fn phone_like() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            6 => "[0-9]{1,4}",
            3 => prop::sample::select(vec![" ", "+", "  ", "1", "86", "0086", "0"]).prop_map(String::from),
            1 => prop::sample::select(vec!["-", "(0)", "(", "x12", "#", "转", "\t", "ext", "a", "１", "tel:", "."])
                .prop_map(String::from),
        ];
        proptest::collection::vec(piece, 0..10).prop_map(|p| p.concat())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 4000, ..Default::default() })]

        #[test]
        fn the_one_pass_phone_path_agrees_with_the_general_one(
            raw in phone_like(),
            iso in proptest::sample::select(vec!["CN", "US", "HK", "GB", "DE"]),
        ) {
            let region = region(iso);
            proptest::prop_assert_eq!(normalize_phone(&raw, region), general_phone(&raw, region));
        }
    }

    #[test]
    fn plain_numbers_take_the_one_pass_path() {
        for plain in [
            "13800138000",
            "+86 138 0013 8000",
            " 138 ",
            "+ 86",
            "1",
            "+1",
        ] {
            assert!(plain_phone(plain).is_some(), "{plain}");
        }
        for other in ["", "+", "138-0013", "(0)10", "１38", "++86", "86+1"] {
            assert!(plain_phone(other).is_none(), "{other}");
        }
        assert_eq!(
            normalize_phone("+86 138 0013 8000", region("CN")).as_deref(),
            Ok("+8613800138000")
        );
    }

    #[test]
    fn the_quick_test_knows_the_last_letter_of_every_legal_form() {
        let last: std::collections::BTreeSet<char> = LEGAL_FORMS
            .iter()
            .filter_map(|f| f.chars().next_back())
            .collect();
        // Every letter a name can end in that matters here: ASCII and the forms' own letters.
        let letters = (0..0x80u32).filter_map(char::from_u32);
        for c in letters.chain(LEGAL_FORMS.iter().flat_map(|f| f.chars())) {
            assert_eq!(ends_a_legal_form(c), last.contains(&c), "{c:?}");
        }
    }

    #[test]
    fn plain_addresses_take_the_one_pass_path() {
        assert_eq!(
            plain_email("Li.Wei+CRM@X.com", true).as_deref(),
            Some("li.wei@x.com")
        );
        assert_eq!(
            plain_email("+crm@x.com", true).as_deref(),
            Some("+crm@x.com")
        );
        assert_eq!(
            plain_email("li+crm@x.com", false).as_deref(),
            Some("li+crm@x.com")
        );
        for other in [
            "Li <li@x.com>",
            "li@x..com",
            "li@x",
            "@x.com",
            "li@x.com.",
            "a@b@c.com",
            " li@x.com",
        ] {
            assert_eq!(plain_email(other, true), None, "{other}");
        }
    }
}
