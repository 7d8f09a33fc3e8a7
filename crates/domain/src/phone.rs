//! Phone numbers of the people a campaign targets, read the way people and spreadsheets write them
//! and kept in E.164 (`+79123456789`), the one form in which the same number always compares equal.
//!
//! This is deliberately not a full libphonenumber: it knows every country calling code and how long
//! national numbers can be in the common countries, which catches typos, truncated cells and numbers
//! read with the wrong country, but it does not know which number ranges are actually in service.

use std::fmt;

/// E.164 allows at most 15 digits after the `+`.
const MAX_DIGITS: usize = 15;
/// No country has complete international numbers shorter than this.
const MIN_DIGITS: usize = 8;
/// Digits kept while reading; a longer input is reported as too long without storing the rest.
const SCAN_CAPACITY: usize = 32;

/// A country (ISO 3166-1 alpha-2) whose conventions are used to read a number written without its
/// country code: which calling code to put in front and which national trunk prefix (`8`, `0`…) to
/// drop first.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region(u8);

struct RegionInfo {
    code: &'static str,
    calling_code: u16,
    /// Prefixes dialled before a national number inside the country, longest first when one is a
    /// prefix of another (Belarus: `80` and `8`).
    trunk_prefixes: &'static [&'static str],
}

const fn region(code: &'static str, calling_code: u16, trunk_prefixes: &'static [&'static str]) -> RegionInfo {
    RegionInfo {
        code,
        calling_code,
        trunk_prefixes,
    }
}

/// The regions a number may be read in. The first is the default. Italy, Spain, Poland and others
/// have no trunk prefix: their national numbers keep a leading `0` when there is one.
const REGIONS: &[RegionInfo] = &[
    region("RU", 7, &["8"]),
    region("KZ", 7, &["8"]),
    // Ukrainians still write the old long-distance `8` before the `0` now and then: `8 044 …`.
    region("UA", 380, &["80", "0"]),
    region("BY", 375, &["80", "8", "0"]),
    region("UZ", 998, &["8"]),
    region("KG", 996, &["0"]),
    region("TJ", 992, &[]),
    region("TM", 993, &["8"]),
    region("AZ", 994, &["0"]),
    region("AM", 374, &["0"]),
    region("GE", 995, &["0"]),
    region("MD", 373, &["0"]),
    region("LV", 371, &[]),
    region("LT", 370, &["8", "0"]),
    region("EE", 372, &[]),
    region("MN", 976, &["0"]),
    region("US", 1, &["1"]),
    region("CA", 1, &["1"]),
    region("GB", 44, &["0"]),
    region("IE", 353, &["0"]),
    region("DE", 49, &["0"]),
    region("AT", 43, &["0"]),
    region("CH", 41, &["0"]),
    region("FR", 33, &["0"]),
    region("BE", 32, &["0"]),
    region("NL", 31, &["0"]),
    region("LU", 352, &[]),
    region("IT", 39, &[]),
    region("ES", 34, &[]),
    region("PT", 351, &[]),
    region("GR", 30, &[]),
    region("CY", 357, &[]),
    region("MT", 356, &[]),
    region("PL", 48, &[]),
    region("CZ", 420, &[]),
    region("SK", 421, &["0"]),
    region("HU", 36, &["06"]),
    region("RO", 40, &["0"]),
    region("BG", 359, &["0"]),
    region("RS", 381, &["0"]),
    region("HR", 385, &["0"]),
    region("SI", 386, &["0"]),
    region("BA", 387, &["0"]),
    region("ME", 382, &["0"]),
    region("MK", 389, &["0"]),
    region("AL", 355, &["0"]),
    region("DK", 45, &[]),
    region("NO", 47, &[]),
    region("SE", 46, &["0"]),
    region("FI", 358, &["0"]),
    region("IS", 354, &[]),
    region("TR", 90, &["0"]),
    region("IL", 972, &["0"]),
    region("AE", 971, &["0"]),
    region("SA", 966, &["0"]),
    region("QA", 974, &[]),
    region("EG", 20, &["0"]),
    region("IR", 98, &["0"]),
    region("IN", 91, &["0"]),
    region("PK", 92, &["0"]),
    region("BD", 880, &["0"]),
    region("CN", 86, &["0"]),
    region("HK", 852, &[]),
    region("TW", 886, &["0"]),
    region("JP", 81, &["0"]),
    region("KR", 82, &["0"]),
    region("VN", 84, &["0"]),
    region("TH", 66, &["0"]),
    region("MY", 60, &["0"]),
    region("SG", 65, &[]),
    region("ID", 62, &["0"]),
    region("PH", 63, &["0"]),
    region("AU", 61, &["0"]),
    region("NZ", 64, &["0"]),
    region("BR", 55, &["0"]),
    region("AR", 54, &["0"]),
    region("MX", 52, &[]),
    region("CL", 56, &[]),
    region("CO", 57, &[]),
    region("NG", 234, &["0"]),
    region("ZA", 27, &["0"]),
];

impl Region {
    /// Looks a region up by its ISO 3166-1 alpha-2 code, in any case; `None` for a code this module
    /// has no conventions for.
    pub fn parse(code: &str) -> Option<Region> {
        let code = code.trim();
        REGIONS
            .iter()
            .position(|r| r.code.eq_ignore_ascii_case(code))
            .map(|i| Region(i as u8))
    }

    /// Every region numbers can be read in.
    pub fn all() -> impl Iterator<Item = Region> {
        (0..REGIONS.len()).map(|i| Region(i as u8))
    }

    /// The ISO code, upper case: `"RU"`.
    pub fn code(self) -> &'static str {
        self.info().code
    }

    /// The country calling code put in front of national numbers: `7` for Russia.
    pub fn calling_code(self) -> u16 {
        self.info().calling_code
    }

    fn info(self) -> &'static RegionInfo {
        &REGIONS[usize::from(self.0)]
    }
}

impl Default for Region {
    /// Russia: the platform's users are mostly Russian-speaking and so are the numbers they upload.
    fn default() -> Self {
        Region(0)
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Region").field(&self.code()).finish()
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The lengths a national significant number (the digits after the country code) may have in a
/// country, as a set so that gaps (Britain: 7, 9 or 10) can be said exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PossibleLengths(u32);

impl PossibleLengths {
    const fn range(min: u32, max: u32) -> Self {
        Self(((1 << (max + 1)) - 1) & !((1 << min) - 1))
    }

    const fn exactly(len: u32) -> Self {
        Self(1 << len)
    }

    const fn or(self, len: u32) -> Self {
        Self(self.0 | 1 << len)
    }

    pub fn contains(self, len: usize) -> bool {
        len < 32 && self.0 & (1 << len) != 0
    }

    fn iter(self) -> impl Iterator<Item = u32> {
        (0..32).filter(move |l| self.0 & (1 << l) != 0)
    }
}

impl fmt::Display for PossibleLengths {
    /// `10`, `9 or 10`, `7, 9 or 10`, `8 to 12`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.count_ones();
        let min = self.0.trailing_zeros();
        let max = 31 - self.0.leading_zeros();
        if count > 2 && max - min + 1 == count {
            return write!(f, "{min} to {max}");
        }
        let last = count as usize - 1;
        for (i, len) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(if i == last { " or " } else { ", " })?;
            }
            write!(f, "{len}")?;
        }
        Ok(())
    }
}

/// How long national numbers are, by calling code: exact for the countries the platform's users
/// and their contacts mostly come from, generous for the rest.
fn possible_lengths(calling_code: u16) -> PossibleLengths {
    use PossibleLengths as L;
    match calling_code {
        1 | 7 | 30 | 52 | 90 | 91 | 98 => L::exactly(10),
        27 | 31 | 33 | 34 | 40 | 41 | 48 | 61 | 351 | 375 | 380 | 420 | 421 | 966 | 992 | 994 | 995 | 996 | 998 => {
            L::exactly(9)
        }
        45 | 47 | 65 | 370 | 371 | 373 | 374 | 852 | 993 => L::exactly(8),
        44 => L::exactly(7).or(9).or(10),
        20 | 60 | 63 => L::range(8, 10),
        32 | 36 | 66 | 886 | 971 | 972 => L::range(8, 9),
        39 => L::range(6, 12),
        43 => L::range(4, 13),
        46 => L::range(7, 10),
        49 => L::range(5, 15),
        55 => L::range(10, 11),
        62 => L::range(8, 12),
        81 | 84 => L::range(9, 10),
        82 => L::range(8, 11),
        86 => L::range(5, 12),
        234 => L::range(8, 10),
        353 | 354 => L::range(7, 9),
        358 => L::range(5, 12),
        372 => L::range(7, 8),
        _ => L::range(4, 12),
    }
}

/// Every country calling code in service (ITU-T E.164 assignments, including the non-geographic
/// ones such as +800 and +888, where Telegram's anonymous numbers live). Sorted; no code is a prefix
/// of another, so at most one matches the start of a number.
const CALLING_CODES: &[u16] = &[
    1, 7, 20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54, 55, 56, 57, 58, 60,
    61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98, //
    211, 212, 213, 216, 218, 220, 221, 222, 223, 224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237,
    238, 239, 240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253, 254, 255, 256, 257, 258, 260, 261,
    262, 263, 264, 265, 266, 267, 268, 269, 290, 291, 297, 298, 299, //
    350, 351, 352, 353, 354, 355, 356, 357, 358, 359, 370, 371, 372, 373, 374, 375, 376, 377, 378, 379, 380, 381, 382,
    383, 385, 386, 387, 389, //
    420, 421, 423, //
    500, 501, 502, 503, 504, 505, 506, 507, 508, 509, 590, 591, 592, 593, 594, 595, 596, 597, 598, 599, //
    670, 672, 673, 674, 675, 676, 677, 678, 679, 680, 681, 682, 683, 685, 686, 687, 688, 689, 690, 691, 692, //
    800, 808, 850, 852, 853, 855, 856, 870, 878, 880, 881, 882, 883, 886, 888, //
    960, 961, 962, 963, 964, 965, 966, 967, 968, 970, 971, 972, 973, 974, 975, 976, 977, 979, 992, 993, 994, 995, 996,
    998,
];

fn code_len(code: u16) -> usize {
    match code {
        0..=9 => 1,
        10..=99 => 2,
        _ => 3,
    }
}

fn value(digits: &[u8]) -> u32 {
    digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'))
}

/// The calling code a number in international form starts with.
fn calling_code_of(digits: &[u8]) -> Option<u16> {
    if digits.first() == Some(&b'0') {
        return None;
    }
    (1..=3.min(digits.len()))
        .map(|n| value(&digits[..n]) as u16)
        .find(|code| CALLING_CODES.binary_search(code).is_ok())
}

/// The digits to show for a code that is not assigned: the shortest start no code begins with
/// (`+999`, `+89`, `+0`).
fn unknown_code(digits: &[u8]) -> String {
    let is_start_of_some_code = |prefix: &[u8]| {
        CALLING_CODES.iter().any(|&code| {
            let extra = code_len(code).checked_sub(prefix.len());
            extra.is_some_and(|extra| u32::from(code) / 10u32.pow(extra as u32) == value(prefix))
        })
    };
    let n = (1..=3.min(digits.len()))
        .find(|&n| !is_start_of_some_code(&digits[..n]))
        .unwrap_or(3.min(digits.len()));
    digits[..n].iter().map(|&d| char::from(d)).collect()
}

fn starts_with_code(digits: &[u8], code: u16) -> bool {
    let n = code_len(code);
    digits.len() >= n && digits[0] != b'0' && value(&digits[..n]) == u32::from(code)
}

/// Trunk prefixes used inside the country with this calling code, to recognise `+44 (0)20 …`.
fn trunk_prefixes_of(code: u16) -> &'static [&'static str] {
    REGIONS
        .iter()
        .find(|r| r.calling_code == code)
        .map_or(&["0"], |r| r.trunk_prefixes)
}

/// A phone number in E.164 form: `+` and 8–15 digits, with a known country calling code and a
/// national number of a length possible in that country.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Phone(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("is empty")]
    Empty,
    #[error("has no digits")]
    NoDigits,
    #[error("contains letters")]
    Letters,
    #[error("contains {0:?}, which is not part of a phone number")]
    Char(char),
    #[error("has a '+' that is not at the start")]
    MisplacedPlus,
    #[error("is too short to be a phone number")]
    TooShort,
    #[error("is too long to be a phone number ({0} digits; at most 15 are possible)")]
    TooLong(usize),
    #[error("has an unknown country code +{0}")]
    UnknownCountryCode(String),
    #[error("has {got} digits after +{calling_code}; numbers there have {expected}")]
    NationalLength {
        calling_code: u16,
        got: usize,
        expected: PossibleLengths,
    },
    #[error("repeats one digit throughout, which no real number does")]
    RepeatedDigit,
}

impl Phone {
    /// Reads a number as a person or a spreadsheet wrote it: `+7 912 345-67-89`, `8 (912) 345-67-89`,
    /// `0079123456789`, `79123456789` (the `+` lost on export), or a national number of
    /// `default_region` (`9123456789`, `020 7946 0958` in GB).
    pub fn parse(input: &str, default_region: Region) -> Result<Phone, PhoneError> {
        let written = Written::scan(input)?;
        let digits = written.digits();
        if digits.len() >= MIN_DIGITS && digits.iter().all(|&d| d == digits[0]) {
            return Err(PhoneError::RepeatedDigit);
        }
        if written.plus {
            return international(digits);
        }
        if let Some(rest) = digits.strip_prefix(b"00") {
            return international(rest);
        }
        national(digits, default_region)
    }

    /// The E.164 string: `+79123456789`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The digits of the input and whether it started with `+`, separators dropped.
struct Written {
    digits: [u8; SCAN_CAPACITY],
    len: usize,
    plus: bool,
}

impl Written {
    fn scan(input: &str) -> Result<Self, PhoneError> {
        let mut written = Written {
            digits: [0; SCAN_CAPACITY],
            len: 0,
            plus: false,
        };
        let mut count = 0;
        let mut blank = true;
        for c in input.chars() {
            match c {
                '0'..='9' => {
                    if count < SCAN_CAPACITY {
                        written.digits[count] = c as u8;
                    }
                    count += 1;
                }
                '+' if count == 0 && !written.plus => written.plus = true,
                '+' => return Err(PhoneError::MisplacedPlus),
                c if is_separator(c) => {}
                c if c.is_alphabetic() => return Err(PhoneError::Letters),
                c => return Err(PhoneError::Char(c)),
            }
            blank &= c.is_whitespace();
        }
        if blank {
            return Err(PhoneError::Empty);
        }
        if count == 0 {
            return Err(PhoneError::NoDigits);
        }
        if count > SCAN_CAPACITY {
            return Err(PhoneError::TooLong(count));
        }
        written.len = count;
        Ok(written)
    }

    fn digits(&self) -> &[u8] {
        &self.digits[..self.len]
    }
}

/// What people put between groups of digits: spaces of any kind (spreadsheets like no-break
/// spaces), hyphens and dashes, dots, brackets around the area code, slashes.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '-' | '.' | '(' | ')' | '/' | '\u{2010}'..='\u{2015}' | '\u{2212}')
}

/// Reads digits that start with the country code.
fn international(digits: &[u8]) -> Result<Phone, PhoneError> {
    if digits.len() < MIN_DIGITS {
        return Err(PhoneError::TooShort);
    }
    if digits.len() > MAX_DIGITS {
        return Err(PhoneError::TooLong(digits.len()));
    }
    let code = calling_code_of(digits).ok_or_else(|| PhoneError::UnknownCountryCode(unknown_code(digits)))?;
    let code_digits = &digits[..code_len(code)];
    let lengths = possible_lengths(code);
    let mut national = &digits[code_digits.len()..];
    if !lengths.contains(national.len()) {
        // `+44 (0)20 7946 0958`, `+7 8 912 …`: the trunk prefix kept after the country code.
        national = trunk_prefixes_of(code)
            .iter()
            .filter_map(|prefix| national.strip_prefix(prefix.as_bytes()))
            .find(|rest| lengths.contains(rest.len()) && code_digits.len() + rest.len() >= MIN_DIGITS)
            .ok_or(PhoneError::NationalLength {
                calling_code: code,
                got: national.len(),
                expected: lengths,
            })?;
    }
    if national.iter().all(|&d| d == national[0]) {
        return Err(PhoneError::RepeatedDigit);
    }
    let mut e164 = String::with_capacity(1 + code_digits.len() + national.len());
    e164.push('+');
    e164.extend(code_digits.iter().chain(national).map(|&d| char::from(d)));
    Ok(Phone(e164))
}

/// Reads digits written without `+` or `00`: the country code without its plus, or a national
/// number of the region.
fn national(digits: &[u8], region: Region) -> Result<Phone, PhoneError> {
    if digits.len() > MAX_DIGITS {
        return Err(PhoneError::TooLong(digits.len()));
    }
    let info = region.info();
    let code = info.calling_code;
    let lengths = possible_lengths(code);
    if starts_with_code(digits, code) && lengths.contains(digits.len() - code_len(code)) {
        // Where national numbers have no trunk prefix, one may begin with the country code's digits
        // (Italian mobiles start with 3, Italy's code is 39). Numbers written nationally rarely
        // have more than 10 digits and exported international ones rarely fewer than 11, so up to
        // 10 digits that fit a national number are read as one.
        let also_national = info.trunk_prefixes.is_empty() && digits.len() <= 10 && lengths.contains(digits.len());
        if !also_national {
            return international(digits);
        }
    }
    let national = strip_trunk_prefix(digits, info.trunk_prefixes, lengths);
    let mut full = [0u8; MAX_DIGITS + 3];
    let code_len = code_len(code);
    for (i, slot) in full[..code_len].iter_mut().enumerate() {
        *slot = b'0' + (code / 10u16.pow((code_len - 1 - i) as u32) % 10) as u8;
    }
    full[code_len..code_len + national.len()].copy_from_slice(national);
    international(&full[..code_len + national.len()])
}

/// Drops the trunk prefix when what follows has a possible length; keeps a number that already has
/// one (a Petersburg number begins with 8, Russia's trunk prefix, but none begins with 0 where 0 is
/// the trunk prefix); otherwise drops any prefix written, so that the error speaks of the number
/// meant.
fn strip_trunk_prefix<'a>(digits: &'a [u8], prefixes: &[&str], lengths: PossibleLengths) -> &'a [u8] {
    let stripped = || prefixes.iter().filter_map(|p| digits.strip_prefix(p.as_bytes()));
    let starts_with_zero_prefix = prefixes.iter().any(|p| p.starts_with('0') && digits.starts_with(b"0"));
    stripped()
        .find(|rest| lengths.contains(rest.len()))
        .or_else(|| (lengths.contains(digits.len()) && !starts_with_zero_prefix).then_some(digits))
        .or_else(|| stripped().next())
        .unwrap_or(digits)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ru(input: &str) -> Result<String, PhoneError> {
        Phone::parse(input, Region::default()).map(|p| p.to_string())
    }

    fn in_region(input: &str, region: &str) -> Result<String, PhoneError> {
        Phone::parse(input, Region::parse(region).unwrap()).map(|p| p.to_string())
    }

    #[test]
    fn reads_russian_numbers_however_written() {
        for input in [
            "8 (912) 345-67-89",
            "+7 912 345 67 89",
            "00 7 912 345 67 89",
            "79123456789",
            "9123456789",
            "+7(912)345-67-89",
            "  +7\u{a0}912\u{a0}345\u{a0}67\u{a0}89\t",
            "8-912-345-67-89",
            "+7 8 912 345 67 89",
            "(+7) 912.345.67.89",
        ] {
            assert_eq!(ru(input).as_deref(), Ok("+79123456789"), "{input:?}");
        }
        assert_eq!(ru("8 (812) 123-45-67").as_deref(), Ok("+78121234567"));
        // A Petersburg number written without the trunk prefix begins with 8 too.
        assert_eq!(ru("812 123 45 67").as_deref(), Ok("+78121234567"));
    }

    #[test]
    fn reads_other_countries() {
        assert_eq!(ru("+44 20 7946 0958").as_deref(), Ok("+442079460958"));
        assert_eq!(ru("+44 (0)20 7946 0958").as_deref(), Ok("+442079460958"));
        assert_eq!(in_region("020 7946 0958", "GB").as_deref(), Ok("+442079460958"));
        assert_eq!(in_region("442079460958", "gb").as_deref(), Ok("+442079460958"));
        assert_eq!(ru("+1 (415) 555-2671").as_deref(), Ok("+14155552671"));
        assert_eq!(in_region("(415) 555-2671", "US").as_deref(), Ok("+14155552671"));
        assert_eq!(in_region("1 415 555 2671", "US").as_deref(), Ok("+14155552671"));
        assert_eq!(ru("+380 44 123 4567").as_deref(), Ok("+380441234567"));
        assert_eq!(in_region("044 123 4567", "UA").as_deref(), Ok("+380441234567"));
        assert_eq!(in_region("8 044 123 4567", "UA").as_deref(), Ok("+380441234567"));
        assert_eq!(in_region("8 029 123-45-67", "BY").as_deref(), Ok("+375291234567"));
        assert_eq!(in_region("029 123-45-67", "BY").as_deref(), Ok("+375291234567"));
        assert_eq!(in_region("8 701 234 56 78", "KZ").as_deref(), Ok("+77012345678"));
        assert_eq!(in_region("701 234 56 78", "KZ").as_deref(), Ok("+77012345678"));
        assert_eq!(in_region("90 123 45 67", "UZ").as_deref(), Ok("+998901234567"));
        assert_eq!(in_region("030 123456", "DE").as_deref(), Ok("+4930123456"));
        assert_eq!(in_region("06 12 34 56 78", "FR").as_deref(), Ok("+33612345678"));
        assert_eq!(in_region("06/6982 1234", "IT").as_deref(), Ok("+390669821234"));
        assert_eq!(in_region("393 123 4567", "IT").as_deref(), Ok("+393931234567"));
        assert_eq!(in_region("393931234567", "IT").as_deref(), Ok("+393931234567"));
        assert_eq!(in_region("34612345678", "ES").as_deref(), Ok("+34612345678"));
        assert_eq!(in_region("612 345 678", "ES").as_deref(), Ok("+34612345678"));
        assert_eq!(in_region("4915112345678", "DE").as_deref(), Ok("+4915112345678"));
        assert_eq!(in_region("06 30 123 456", "HU").as_deref(), Ok("+3630123456"));
        assert_eq!(ru("+888 0123 4567").as_deref(), Ok("+88801234567"));
    }

    #[test]
    fn says_why_a_number_is_rejected() {
        assert_eq!(ru(""), Err(PhoneError::Empty));
        assert_eq!(ru("  "), Err(PhoneError::Empty));
        assert_eq!(ru("+()-"), Err(PhoneError::NoDigits));
        assert_eq!(ru("12345"), Err(PhoneError::TooShort));
        assert_eq!(ru("+7 912 345"), Err(PhoneError::TooShort));
        assert_eq!(ru("abc"), Err(PhoneError::Letters));
        assert_eq!(ru("+7 912 345 67 89 доб. 12"), Err(PhoneError::Letters));
        assert_eq!(ru("+7 912 345 67 89 #1"), Err(PhoneError::Char('#')));
        assert_eq!(ru("+7 912+345 67 89"), Err(PhoneError::MisplacedPlus));
        assert_eq!(ru("+79123456789999999"), Err(PhoneError::TooLong(17)));
        assert_eq!(ru(&"1".repeat(12)), Err(PhoneError::RepeatedDigit));
        assert_eq!(ru(&"12".repeat(20)), Err(PhoneError::TooLong(40)));
        assert_eq!(ru("7777777777"), Err(PhoneError::RepeatedDigit));
        assert_eq!(ru("+7 000 000 00 00"), Err(PhoneError::RepeatedDigit));
        assert_eq!(ru("+999 123456789"), Err(PhoneError::UnknownCountryCode("999".into())));
        assert_eq!(ru("+89123456789"), Err(PhoneError::UnknownCountryCode("89".into())));
        assert_eq!(ru("+0 123 456 789"), Err(PhoneError::UnknownCountryCode("0".into())));
        assert_eq!(
            ru("+7 912 345 67 8"),
            Err(PhoneError::NationalLength {
                calling_code: 7,
                got: 9,
                expected: PossibleLengths::exactly(10)
            })
        );
        assert_eq!(
            in_region("020 7946 09", "GB").map_err(|e| e.to_string()),
            Err("has 8 digits after +44; numbers there have 7, 9 or 10".into())
        );
    }

    #[test]
    fn messages_read_as_sentences() {
        let message = |input: &str| ru(input).unwrap_err().to_string();
        assert_eq!(message("+999 123456789"), "has an unknown country code +999");
        assert_eq!(
            message("+7 912 345 67 8"),
            "has 9 digits after +7; numbers there have 10"
        );
        assert_eq!(message("8 912 345 67"), "has 8 digits after +7; numbers there have 10");
        assert_eq!(message("+7 912 345"), "is too short to be a phone number");
        assert_eq!(message("abc"), "contains letters");
        assert_eq!(message("+()"), "has no digits");
        assert_eq!(
            message("+86 1"),
            "is too short to be a phone number",
            "too short before any country rule"
        );
        assert_eq!(
            message("+86 1234 5678 9012 3"),
            "has 13 digits after +86; numbers there have 5 to 12"
        );
        assert_eq!(
            message("+971 12 345 67"),
            "has 7 digits after +971; numbers there have 8 or 9"
        );
    }

    #[test]
    fn regions_are_looked_up_by_iso_code() {
        assert_eq!(Region::parse("ru"), Some(Region::default()));
        assert_eq!(Region::default().code(), "RU");
        assert_eq!(Region::default().calling_code(), 7);
        let gb = Region::parse(" Gb ").unwrap();
        assert_eq!((gb.code(), gb.calling_code()), ("GB", 44));
        assert_eq!(format!("{gb:?} {gb}"), "Region(\"GB\") GB");
        assert_eq!(Region::parse("XX"), None);
        assert_eq!(Region::parse(""), None);
        for r in Region::all() {
            assert_eq!(Region::parse(r.code()), Some(r));
            assert!(CALLING_CODES.binary_search(&r.calling_code()).is_ok(), "{r}");
        }
    }

    #[test]
    fn calling_codes_are_sorted_and_prefix_free() {
        assert!(CALLING_CODES.windows(2).all(|w| w[0] < w[1]));
        for &a in CALLING_CODES {
            for &b in CALLING_CODES {
                let (la, lb) = (code_len(a), code_len(b));
                if a != b && la < lb {
                    assert_ne!(u32::from(b) / 10u32.pow((lb - la) as u32), u32::from(a), "{a} {b}");
                }
            }
        }
    }

    fn region() -> impl Strategy<Value = Region> {
        (0..REGIONS.len()).prop_map(|i| Region(i as u8))
    }

    proptest! {
        #[test]
        fn never_panics_on_any_text(input in any::<String>(), region in region()) {
            let _ = Phone::parse(&input, region);
        }

        #[test]
        fn never_panics_on_phone_like_text(input in "[0-9+ ()a-z-]{0,30}", region in region()) {
            let _ = Phone::parse(&input, region);
        }

        #[test]
        fn a_parsed_number_reads_back_as_itself(input in "\\+?[0-9 ()-]{6,22}", region in region()) {
            if let Ok(phone) = Phone::parse(&input, region) {
                let digits = &phone.as_str()[1..];
                prop_assert!(phone.as_str().starts_with('+'));
                prop_assert!((MIN_DIGITS..=MAX_DIGITS).contains(&digits.len()));
                prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()));
                for other in Region::all() {
                    prop_assert_eq!(Phone::parse(phone.as_str(), other), Ok(phone.clone()));
                }
            }
        }
    }
}
