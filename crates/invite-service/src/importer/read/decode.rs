//! Turning the bytes of a text file into text. The encoding is detected, never assumed: Excel on
//! Windows writes CSV in the ANSI code page (Windows-1251 on Russian systems), "Unicode text" in
//! UTF-16LE, and everything else writes UTF-8, with or without a byte order mark.

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1251};

use super::ReadError;

/// A text file's content and the encoding it was found to be in.
#[derive(Debug)]
pub(super) struct Decoded<'a> {
    /// The text without its byte order mark. Borrowed from the upload when it already was UTF-8, so
    /// the common case costs no copy.
    pub text: Cow<'a, str>,
    /// The encoding's name as encoding_rs spells it: "UTF-8", "UTF-16LE", "UTF-16BE", "windows-1251".
    pub encoding: &'static str,
}

/// How many leading bytes decide whether a file without a byte order mark is UTF-16.
const UTF16_SAMPLE: usize = 4096;

pub(super) fn decode(bytes: &[u8]) -> Result<Decoded<'_>, ReadError> {
    let decoded = if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        // The mark says UTF-8; a few broken bytes (files glued together) should cost only the cells
        // they are in, so they become U+FFFD rather than failing the whole file.
        Decoded {
            text: String::from_utf8_lossy(rest),
            encoding: UTF_8.name(),
        }
    } else if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        lossy(UTF_16LE, rest)
    } else if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        lossy(UTF_16BE, rest)
    } else if let Some(decoded) = utf16_without_bom(bytes) {
        decoded
    } else if let Ok(text) = std::str::from_utf8(bytes) {
        Decoded {
            text: Cow::Borrowed(text),
            encoding: UTF_8.name(),
        }
    } else {
        // Every byte means something in Windows-1251, so this cannot fail; binary junk is caught by
        // the control-character check below.
        let (text, _) = WINDOWS_1251.decode_without_bom_handling(bytes);
        Decoded {
            text,
            encoding: WINDOWS_1251.name(),
        }
    };
    if looks_binary(&decoded.text) {
        return Err(ReadError::UnknownFormat);
    }
    Ok(decoded)
}

fn lossy<'a>(encoding: &'static Encoding, bytes: &'a [u8]) -> Decoded<'a> {
    let (text, _) = encoding.decode_without_bom_handling(bytes);
    Decoded {
        text,
        encoding: encoding.name(),
    }
}

/// UTF-16 without a byte order mark: text in it is mostly ASCII (digits, `@`, delimiters, line
/// breaks), whose high byte is zero, so zeros pile up at odd offsets (little-endian) or at even ones
/// (big-endian) and hardly ever at the other. The guess is kept only if the whole file then decodes
/// without a single error.
fn utf16_without_bom(bytes: &[u8]) -> Option<Decoded<'_>> {
    let sample = &bytes[..bytes.len().min(UTF16_SAMPLE) & !1];
    let pairs = sample.len() / 2;
    if pairs == 0 {
        return None;
    }
    let (mut even, mut odd) = (0usize, 0usize);
    for pair in sample.chunks_exact(2) {
        even += usize::from(pair[0] == 0);
        odd += usize::from(pair[1] == 0);
    }
    let encoding = if odd * 5 >= pairs && even * 4 <= odd {
        UTF_16LE
    } else if even * 5 >= pairs && odd * 4 <= even {
        UTF_16BE
    } else {
        return None;
    };
    let text = encoding.decode_without_bom_handling_and_without_replacement(bytes)?;
    Some(Decoded {
        text,
        encoding: encoding.name(),
    })
}

/// Text has line breaks and tabs but hardly any other control characters; images, archives and
/// executables are full of them (and of NULs, which no text file holds).
fn looks_binary(text: &str) -> bool {
    let mut controls = 0usize;
    for &b in text.as_bytes() {
        match b {
            0 => return true,
            b'\t' | b'\n' | b'\r' | 0x0C => {}
            0x01..=0x1F | 0x7F => controls += 1,
            _ => {}
        }
    }
    controls * 100 > text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(text: &str) -> Vec<u8> {
        text.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    fn utf16be(text: &str) -> Vec<u8> {
        text.encode_utf16().flat_map(u16::to_be_bytes).collect()
    }

    #[test]
    fn utf8_with_and_without_bom() {
        let plain = decode("имя;телефон\n".as_bytes()).unwrap();
        assert_eq!(plain.encoding, "UTF-8");
        assert!(matches!(plain.text, Cow::Borrowed(_)), "UTF-8 must not be copied");
        let bom = decode(b"\xEF\xBB\xBFname\n").unwrap();
        assert_eq!((bom.text.as_ref(), bom.encoding), ("name\n", "UTF-8"));
    }

    #[test]
    fn utf16_with_bom() {
        let mut le = b"\xFF\xFE".to_vec();
        le.extend(utf16le("Имя\tТелефон\r\n"));
        let d = decode(&le).unwrap();
        assert_eq!((d.text.as_ref(), d.encoding), ("Имя\tТелефон\r\n", "UTF-16LE"));

        let mut be = b"\xFE\xFF".to_vec();
        be.extend(utf16be("a,b\n"));
        let d = decode(&be).unwrap();
        assert_eq!((d.text.as_ref(), d.encoding), ("a,b\n", "UTF-16BE"));
    }

    #[test]
    fn utf16_without_bom_is_recognised_by_its_zero_bytes() {
        let text = "Иван Петров;+79123456789;@ivan\r\nМария;+79001234567;@maria\r\n";
        let le = utf16le(text);
        let d = decode(&le).unwrap();
        assert_eq!((d.text.as_ref(), d.encoding), (text, "UTF-16LE"));
        let be = utf16be(text);
        let d = decode(&be).unwrap();
        assert_eq!((d.text.as_ref(), d.encoding), (text, "UTF-16BE"));
    }

    #[test]
    fn invalid_utf8_is_windows_1251() {
        let (bytes, _, _) = WINDOWS_1251.encode("Фамилия;Телефон\nИванов;79123456789\n");
        let d = decode(&bytes).unwrap();
        assert_eq!(d.encoding, "windows-1251");
        assert_eq!(d.text, "Фамилия;Телефон\nИванов;79123456789\n");
    }

    #[test]
    fn control_characters_mean_binary() {
        assert!(matches!(decode(b"abc\0def"), Err(ReadError::UnknownFormat)));
        assert!(matches!(decode(b"\x01\x02\x03abc"), Err(ReadError::UnknownFormat)));
        // A truncated UTF-16 file (odd length) is neither UTF-16 nor text.
        let mut odd = utf16le("abc,def\n");
        odd.push(b'x');
        assert!(matches!(decode(&odd), Err(ReadError::UnknownFormat)));
        assert!(decode(b"a\tb\r\n\x0c").is_ok());
    }
}
