//! IBAN recognition. A bare `CC99...` run is only treated as an IBAN when its length
//! matches its country and its mod-97 checksum holds, so product codes and other
//! capitals-then-digits tokens are left alone.

/// IBAN lengths by country (the SWIFT registry plus the countries that use IBANs
/// without being in it).
const LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AO", 25),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BF", 28),
    (b"BG", 22),
    (b"BH", 22),
    (b"BI", 27),
    (b"BJ", 28),
    (b"BR", 29),
    (b"BY", 28),
    (b"CF", 27),
    (b"CG", 27),
    (b"CH", 21),
    (b"CI", 28),
    (b"CM", 27),
    (b"CR", 22),
    (b"CV", 25),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DJ", 27),
    (b"DK", 18),
    (b"DO", 28),
    (b"DZ", 26),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FK", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GA", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GQ", 27),
    (b"GR", 27),
    (b"GT", 28),
    (b"GW", 25),
    (b"HN", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IR", 26),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KM", 27),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"LY", 25),
    (b"MA", 28),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MG", 27),
    (b"MK", 19),
    (b"ML", 28),
    (b"MN", 20),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"MZ", 25),
    (b"NE", 28),
    (b"NI", 28),
    (b"NL", 18),
    (b"NO", 15),
    (b"OM", 23),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"RU", 33),
    (b"SA", 24),
    (b"SC", 31),
    (b"SD", 18),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"SN", 28),
    (b"SO", 23),
    (b"ST", 25),
    (b"SV", 28),
    (b"TD", 27),
    (b"TG", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
    (b"YE", 30),
];

fn length_of(country: &[u8]) -> Option<usize> {
    LENGTHS
        .iter()
        .find(|(code, _)| code.as_slice() == country)
        .map(|&(_, len)| len)
}

/// True when `hay[at..]` could start an IBAN: two capitals and two digits.
#[inline]
pub(crate) fn could_start(hay: &[u8], at: usize) -> bool {
    hay.len() >= at + 15
        && hay[at].is_ascii_uppercase()
        && hay[at + 1].is_ascii_uppercase()
        && hay[at + 2].is_ascii_digit()
        && hay[at + 3].is_ascii_digit()
}

/// The end of the IBAN that starts at `start`, if one does. Spaces are allowed between
/// groups of four, as IBANs are printed; the IBAN must end at a word boundary.
pub(crate) fn match_at(hay: &[u8], start: usize) -> Option<usize> {
    let len = length_of(&hay[start..start + 2])?;
    let mut compact = [0u8; 34];
    let mut n = 0;
    let mut i = start;
    while n < len {
        let c = *hay.get(i)?;
        if c.is_ascii_uppercase() || c.is_ascii_digit() {
            compact[n] = c;
            n += 1;
            i += 1;
        } else if c == b' '
            && n % 4 == 0
            && n > 0
            && hay.get(i + 1).is_some_and(u8::is_ascii_alphanumeric)
        {
            i += 1;
        } else {
            return None;
        }
    }
    if hay.get(i).is_some_and(u8::is_ascii_alphanumeric) {
        return None;
    }
    checksum_ok(&compact[..len]).then_some(i)
}

/// ISO 13616: move the first four characters to the end, read letters as 10..35, and
/// the number must be 1 modulo 97.
fn checksum_ok(iban: &[u8]) -> bool {
    let mut rem: u32 = 0;
    for &c in iban[4..].iter().chain(&iban[..4]) {
        if c.is_ascii_digit() {
            rem = (rem * 10 + u32::from(c - b'0')) % 97;
        } else {
            rem = (rem * 100 + u32::from(c - b'A') + 10) % 97;
        }
    }
    rem == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ibans_validate_compact_and_spaced() {
        for iban in [
            "DE89370400440532013000",
            "GB82WEST12345698765432",
            "FR1420041010050500013M02606",
            "NO9386011117947",
            "DE89 3704 0044 0532 0130 00",
            "GB82 WEST 1234 5698 7654 32",
        ] {
            assert!(could_start(iban.as_bytes(), 0), "{iban}");
            assert_eq!(match_at(iban.as_bytes(), 0), Some(iban.len()), "{iban}");
        }
    }

    #[test]
    fn wrong_checksum_length_or_boundary_is_refused() {
        for text in [
            "DE89370400440532013001",
            "DE8937040044053201300",
            "DE893704004405320130001",
            "XX89370400440532013000",
            "DE89 370 40044 0532 0130 00",
        ] {
            assert_eq!(match_at(text.as_bytes(), 0), None, "{text}");
        }
        let followed = "DE89 3704 0044 0532 0130 00 EUR";
        assert_eq!(match_at(followed.as_bytes(), 0), Some(27));
    }
}
