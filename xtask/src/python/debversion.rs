//! Debian package versions (`[epoch:]upstream[-revision]`): ordering and the upstream part.
//!
//! The ordering is dpkg's (`deb-version(7)`): `~` sorts before everything, even the end.

use std::cmp::Ordering;

/// The upstream part of a Debian version: `3.13.15` for `3.13.15-1` or `1:3.13.15-2+b1`.
pub fn upstream(version: &str) -> &str {
    let (_, upstream, _) = split(version);
    upstream
}

/// Compares two Debian versions the way dpkg does.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb).then_with(|| compare_part(ua, ub)).then_with(|| compare_part(ra, rb))
}

/// Splits into (epoch, upstream, revision); a missing epoch is 0, a missing revision is empty.
fn split(version: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match version.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit()) => {
            (e.parse().unwrap_or(u64::MAX), rest)
        }
        _ => (0, version),
    };
    match rest.rsplit_once('-') {
        Some((upstream, revision)) => (epoch, upstream, revision),
        None => (epoch, rest, ""),
    }
}

/// The sort weight of one non-digit character (0 stands for "end of string" or a digit).
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`: alternating runs of non-digits (by [`weight`]) and digits (numerically).
fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (wa, wb) = (weight(a.get(i).copied()), weight(b.get(j).copied()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_strips_epoch_and_revision() {
        assert_eq!(upstream("3.13.15-1"), "3.13.15");
        assert_eq!(upstream("3.13.5-2+deb13u5"), "3.13.5");
        assert_eq!(upstream("1:3.14.0~rc1-1"), "3.14.0~rc1");
        assert_eq!(upstream("3.13.15"), "3.13.15");
    }

    #[test]
    fn orders_like_dpkg() {
        use Ordering::*;
        assert_eq!(compare("3.13.18-1", "3.13.15-1"), Greater);
        assert_eq!(compare("3.13.15-1", "3.13.5-2+deb13u5"), Greater);
        assert_eq!(compare("3.14.0~rc1-1", "3.14.0-1"), Less);
        assert_eq!(compare("3.14.0-1", "3.14.0-1+b1"), Less);
        assert_eq!(compare("1:3.0-1", "9.9-1"), Greater);
        assert_eq!(compare("3.13.15-1", "3.13.15-1"), Equal);
        assert_eq!(compare("1.0a", "1.0"), Greater);
        assert_eq!(compare("1.0~", "1.0"), Less);
        assert_eq!(compare("1.01", "1.1"), Equal);
    }
}
